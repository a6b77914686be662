import { describe, expect, it } from 'vitest';
import { SyncedStateStore } from '../../src/stores/synced.js';
import { emptyDoc } from '../../src/sync/protocol.js';
import { MemoryObjectStore } from '../support/object-store.js';

const LEGACY = 'sessions/s/state.json';

describe('SyncedStateStore over a format 2 document', () => {
  it.each([true, false])('reuses the decoded reading while the stored document is unchanged (etag: %s)', async (strong) => {
    const bucket = new MemoryObjectStore(strong);
    bucket.set(LEGACY, JSON.stringify({ ...emptyDoc(), syncedAtMs: 1, available: true }));
    const store = new SyncedStateStore(bucket, 's');
    const first = await store.read();
    expect(await store.read()).toBe(first); // same object: the collector's memos keep hitting
    bucket.set(LEGACY, JSON.stringify({ ...emptyDoc(), syncedAtMs: 2, available: true }));
    const changed = await store.read();
    expect(changed).not.toBe(first);
    expect(changed.lastSyncMs).toBe(2);
    // per refresh: the beat (absent), then the document
    expect(bucket.count('get')).toBe(6);
    expect(bucket.calls.filter((c) => c.op === 'get' && c.key === LEGACY && c.etag !== undefined).length).toBe(strong ? 2 : 0);
  });

  it('reports a session nothing was synced to as unavailable, and an unreadable document as an error', async () => {
    const bucket = new MemoryObjectStore();
    const store = new SyncedStateStore(bucket, 's');
    expect((await store.read()).available).toBe(false);
    bucket.set(LEGACY, '{"format": 2');
    await expect(store.read()).rejects.toThrow(/unreadable/);
  });
});
