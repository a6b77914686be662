/**
 * sessionSyncToken (src/sync/tokens.ts): a session's write token is HMAC-SHA-256 of
 * `loki-metrics session <name>` under the sync secret, in base64url without padding. Checked
 * against Node's own HMAC and base64url (an independent implementation), not against a copy.
 */
import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { sessionSyncToken } from '../../src/sync/tokens.js';

const reference = (secret: string, session: string) => createHmac('sha256', secret).update(`loki-metrics session ${session}`).digest('base64url');

describe('sessionSyncToken', () => {
  it('is the base64url HMAC-SHA-256 of the session under the secret, 43 characters, no padding', async () => {
    // Enough sessions that the tokens hold both characters base64url swaps for `+` and `/`.
    const sessions = Array.from({ length: 64 }, (_, i) => `project-${i}`);
    const tokens = await Promise.all(sessions.map((s) => sessionSyncToken('the sync secret', s)));
    expect(tokens).toEqual(sessions.map((s) => reference('the sync secret', s)));
    expect(tokens.join('')).toMatch(/-/);
    expect(tokens.join('')).toMatch(/_/);
    for (const token of tokens) expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it('differs by session and by secret, and names no other session', async () => {
    const a = await sessionSyncToken('s1', 'laptop');
    expect(await sessionSyncToken('s1', 'laptop')).toBe(a);
    expect(await sessionSyncToken('s2', 'laptop')).not.toBe(a);
    expect(await sessionSyncToken('s1', 'laptop2')).not.toBe(a);
    expect(await sessionSyncToken('s1', '')).toBe(reference('s1', ''));
    expect(await sessionSyncToken('s1', 'ünïcode ☃')).toBe(reference('s1', 'ünïcode ☃'));
  });
});
