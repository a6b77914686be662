/**
 * An ingest (sync/ingest.ts) that does not commit leaves nothing that counts: a worker killed right
 * after its bucket writes (no code of it runs after, so the buckets stay, each with what it
 * replaced, and the next read rolls them back), and a commit lost to another sync (503: what was
 * written is put back or removed at once).
 */
import { describe, expect, it } from 'vitest';
import { SyncedStateStore } from '../../src/stores/synced.js';
import { ingestShards } from '../../src/sync/ingest.js';
import { manifestEntry } from '../../src/sync/protocol.js';
import { bucketOf, docKey, headKey } from '../../src/sync/shards.js';
import { canonical, effPayload, headIn, ingestOk, namesInBuckets, nextNonce, options, payloadOf, record, remoteManifest, shipped, upserts } from '../support/format3.js';
import { MemoryObjectStore } from '../support/object-store.js';

const S = 's';

/** From the put of `key` on, every storage operation fails: the isolate was killed mid-request. Returns the revival. */
function killAt(store: MemoryObjectStore, key: string): () => void {
  const [get, put, del] = [store.get.bind(store), store.put.bind(store), store.delete.bind(store)];
  let dead = false;
  const alive = () => {
    if (dead) throw new Error('worker killed');
  };
  store.get = async (k, etag) => (alive(), get(k, etag));
  store.put = async (k, text, ifMatch) => {
    alive();
    if (k === key) {
      dead = true;
      alive();
    }
    return put(k, text, ifMatch);
  };
  store.delete = async (keys) => (alive(), del(keys));
  return () => {
    store.get = get;
    store.put = put;
    store.delete = del;
  };
}

/** A name in the bucket of `name`, not `name`. */
const sameBucket = (name: string) => Array.from({ length: 20_000 }, (_, k) => `iteration-${k + 1}.json`).find((n) => n !== name && bucketOf(n) === bucketOf(name))!;

describe('a worker killed between its bucket writes and the head', () => {
  it.each([true, false])('the buckets it wrote are rolled back when next read: files changed, added, removed (strong %s)', async (strong) => {
    const store = new MemoryObjectStore(strong);
    const [a, b] = namesInBuckets(2);
    const c = sameBucket(a!);
    await ingestOk(store, S, effPayload({ upsert: await upserts([a!, b!]) }));
    const committed = await remoteManifest(store, S);
    const totals = structuredClone(headIn(store, S).sets.efficiency!.totals);
    const revive = killAt(store, headKey(S));
    const change = effPayload({ upsert: { [a!]: await shipped(record(70, { cost_usd: 4 }), 9), [c]: await shipped(record(71), 9) }, remove: [b!] });
    await expect(ingestShards(store, S, change, options(store, 5000, nextNonce()))).rejects.toThrow('worker killed');
    revive();
    expect((await remoteManifest(store, S)).manifest).toEqual(committed.manifest);
    // the next sync of the same change counts from what was committed
    await ingestOk(store, S, change, 6000);
    const expected = new MemoryObjectStore(strong);
    await ingestOk(expected, S, effPayload({ upsert: { [a!]: await shipped(record(70, { cost_usd: 4 }), 9), [c]: await shipped(record(71), 9) } }));
    expect(headIn(store, S).sets.efficiency!.count).toBe(2);
    expect(canonical(headIn(store, S).sets.efficiency!.totals)).toEqual(canonical(headIn(expected, S).sets.efficiency!.totals));
    expect(canonical(totals)).not.toEqual(canonical(headIn(store, S).sets.efficiency!.totals));
  });

  it('a file removed and sent again in the same request is rolled back to its committed version', async () => {
    const store = new MemoryObjectStore();
    const [a] = namesInBuckets(1);
    const committed = await shipped(record(1), 5);
    await ingestOk(store, S, effPayload({ upsert: { [a!]: committed } }));
    const revive = killAt(store, headKey(S));
    await expect(ingestShards(store, S, effPayload({ remove: [a!], upsert: { [a!]: await shipped(record(2), 6) } }), options(store, 5000, nextNonce()))).rejects.toThrow();
    revive();
    expect((await remoteManifest(store, S)).manifest.sets.efficiency).toEqual({ [a!]: manifestEntry(committed) });
  });
});

describe('a commit lost to another sync (503)', () => {
  it('removes the large document it wrote and says why', async () => {
    const store = new MemoryObjectStore();
    await ingestOk(store, S, payloadOf({ documents: { 'loki.pid': await shipped('4242') } }));
    const put = store.put.bind(store);
    store.put = async (key, text, ifMatch) => {
      if (key === headKey(S)) store.set(key, store.text(key)!); // another writer, same moment
      return put(key, text, ifMatch);
    };
    const dashboard = await shipped(JSON.stringify({ mode: 'autonomous', pad: 'z'.repeat(3000) }), 2);
    const answer = await ingestShards(store, S, payloadOf({ documents: { 'dashboard-state.json': dashboard } }), options(store, 5000, nextNonce()));
    expect(answer).toEqual({ status: 503, body: { error: 'another sync changed this session at the same time; retry' } });
    expect(store.text(docKey(S, dashboard.hash))).toBeUndefined();
    expect([...store.objects.keys()].filter((key) => key.includes('/docs/'))).toEqual([]);
    expect((await new SyncedStateStore(store, S).read()).documents['dashboard-state.json'].present).toBe(false);
  });
});
