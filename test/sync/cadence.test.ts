/**
 * The cadence the Worker tells sync clients: checked against the table users read
 * (docs/worker.md, "Cadence and plans"), not against a copy of the constants.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { syncCadence, staleAfter } from '../../src/sync/cadence.js';

/** The rows of docs/worker.md's cadence table: storage, push, heartbeat, stale, gap between requests. */
function documentedCadence(): Map<string, { pushMs: number; heartbeatMs: number; staleMs: number; requestGapMs: number }> {
  const doc = readFileSync(new URL('../../docs/worker.md', import.meta.url), 'utf8');
  const rows = new Map<string, { pushMs: number; heartbeatMs: number; staleMs: number; requestGapMs: number }>();
  const seconds = (text: string) => Math.round(Number(text.replace(/,/g, '')) * 1000);
  for (const [, kind, push, heartbeat, stale, gap] of doc.matchAll(/^\| (R2|KV) \| every ([\d,]+) s \| every ([\d,]+) s \| ([\d,]+) s \| (back to back|[\d.]+ s apart)/gm)) {
    rows.set(kind!.toLowerCase(), { pushMs: seconds(push!), heartbeatMs: seconds(heartbeat!), staleMs: seconds(stale!), requestGapMs: gap === 'back to back' ? 0 : seconds(gap!.split(' ')[0]!) });
  }
  return rows;
}

describe('syncCadence', () => {
  it('by default is what docs/worker.md tells users, for R2 and for KV', () => {
    const documented = documentedCadence();
    expect([...documented.keys()]).toEqual(['r2', 'kv']);
    expect(syncCadence('r2', {})).toEqual(documented.get('r2'));
    expect(syncCadence('kv', {})).toEqual(documented.get('kv'));
  });

  it('a session is stopped after two heartbeats and a minute: one lost heartbeat is not a stop', () => {
    expect(staleAfter(300_000)).toBe(660_000);
    expect(staleAfter(1_000)).toBe(62_000);
    expect(syncCadence('r2', { syncHeartbeatMs: 120_000 }).staleMs).toBe(300_000);
  });

  it('settings override the defaults; a heartbeat is never more frequent than the pushes', () => {
    expect(syncCadence('r2', { syncPushMs: 300_000 })).toEqual({ pushMs: 300_000, heartbeatMs: 300_000, staleMs: 660_000, requestGapMs: 0 });
    expect(syncCadence('r2', { syncPushMs: 400_000 })).toMatchObject({ pushMs: 400_000, heartbeatMs: 400_000, staleMs: 860_000 });
    expect(syncCadence('kv', { syncPushMs: 5_000, syncHeartbeatMs: 2_000 })).toMatchObject({ pushMs: 5_000, heartbeatMs: 5_000 });
    expect(syncCadence('kv', { syncHeartbeatMs: 3_600_000 })).toMatchObject({ pushMs: 600_000, heartbeatMs: 3_600_000, staleMs: 7_260_000 });
    expect(syncCadence('kv', { syncStaleMs: 0 }).staleMs).toBe(0);
  });

  it('only KV spaces the requests of one push (one write a second to a key)', () => {
    expect(syncCadence('kv', { syncPushMs: 60_000 }).requestGapMs).toBe(1_100);
    expect(syncCadence('r2', { syncPushMs: 600_000 }).requestGapMs).toBe(0);
  });
});
