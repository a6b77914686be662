/**
 * Where the session registry lives: a registry a Worker stored earlier is read from the same key,
 * `registry/sessions.json` (outside `sessions/` and `data/`), after an upgrade as before it.
 */
import { describe, expect, it } from 'vitest';
import { SessionAdmission } from '../../src/sync/admission.js';
import { listSessions } from '../../src/sync/shards.js';
import { MemoryObjectStore } from '../support/object-store.js';

describe('the registry key', () => {
  it('reads a full registry stored at registry/sessions.json, and refuses a new session with no list', async () => {
    const store = new MemoryObjectStore();
    store.set('registry/sessions.json', JSON.stringify({ sessions: ['a', 'b', 'c'] }));
    const admission = new SessionAdmission(store, { maxSessions: 3, clock: () => 0 });
    expect(await admission.admit('d')).toMatchObject({ status: 409 });
    expect(await admission.admit('b')).toBeUndefined();
    expect(store.count('list')).toBe(0);
  });

  it('writes the registry there, where no session is listed', async () => {
    const store = new MemoryObjectStore();
    expect(await new SessionAdmission(store, { maxSessions: 3 }).admit('a')).toBeUndefined();
    expect(JSON.parse(store.text('registry/sessions.json')!)).toEqual({ sessions: ['a'] });
    expect(await listSessions(store, Infinity)).toEqual([]);
  });
});
