import { describe, expect, it } from 'vitest';
import { SyncedStateStore } from '../../src/stores/synced.js';
import { emptyDoc } from '../../src/sync/protocol.js';
import { headKey, HeadSchema, parseStored } from '../../src/sync/shards.js';
import { ingestOk, payloadOf } from '../support/format3.js';
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

  it("reports the document's text as its retained bytes", async () => {
    const bucket = new MemoryObjectStore();
    const text = JSON.stringify({ ...emptyDoc(), syncedAtMs: 1, available: true });
    bucket.set(LEGACY, text);
    const store = new SyncedStateStore(bucket, 's');
    await store.read();
    expect(store.retainedBytes()).toBe(text.length);
  });
});

describe('SyncedStateStore over a session moving from format 2 to 3', () => {
  /** A format 2 session that a current client has begun to move over (its head is `filling`). */
  async function moving(doc: object) {
    const bucket = new MemoryObjectStore(false); // KV
    bucket.set(LEGACY, JSON.stringify({ ...emptyDoc(), ...doc }));
    await ingestOk(bucket, 's', payloadOf({ available: true, pid: 4242, pidAlive: true }), 2000);
    expect(parseStored(HeadSchema, bucket.objects.get(headKey('s'))!)?.filling).toBe(true);
    return bucket;
  }

  it('reads the old document until the first full pass ends, also when it says the directory was unavailable', async () => {
    const bucket = await moving({ syncedAtMs: 1000, available: false, problem: 'ENOENT' });
    const reading = await new SyncedStateStore(bucket, 's').read();
    expect(reading).toMatchObject({ available: false, problem: 'ENOENT', lastSyncMs: 1000 });
  });

  it('reads format 3 once the old document is gone, even where the head still says filling (KV lag)', async () => {
    const bucket = await moving({ syncedAtMs: 1000, available: true });
    const filling = bucket.text(headKey('s'))!;
    await ingestOk(bucket, 's', payloadOf({ available: true, pid: 4242, pidAlive: true, final: true }), 3000);
    expect(bucket.text(LEGACY)).toBeUndefined(); // the final request removed it
    bucket.set(headKey('s'), filling); // this location still sees the head of before
    const reading = await new SyncedStateStore(bucket, 's').read();
    expect(reading).toMatchObject({ available: true, lastSyncMs: 3000, runner: { decided: true, alive: true, pid: 4242 } });
  });
});
