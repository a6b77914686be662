/**
 * What a format 3 session holds, as the sync client reads it (sync/manifest.ts): the head's answer
 * and the pages of a set, over sessions whose objects are not all there or not all readable (a
 * worker killed between its writes, a KV read that does not see a recent write yet).
 */
import { describe, expect, it } from 'vitest';
import { manifestHead, manifestPage } from '../../src/sync/manifest.js';
import { manifestEntry } from '../../src/sync/protocol.js';
import { beatKey, bucketKey, bucketOf, headKey } from '../../src/sync/shards.js';
import { effPayload, headIn, ingestOk, namesInBuckets, options, nextNonce, payloadOf, shipped, upserts } from '../support/format3.js';
import { MemoryObjectStore } from '../support/object-store.js';
import { ingestShards } from '../../src/sync/ingest.js';

const S = 's';

describe('manifestHead', () => {
  it('a head committed by a worker killed before it wrote the beat: the head is listed, with no time', async () => {
    const store = new MemoryObjectStore();
    const pid = await shipped('4242', 7);
    const put = store.put.bind(store);
    store.put = async (key, text, ifMatch) => {
      if (key === beatKey(S)) throw new Error('worker killed');
      return put(key, text, ifMatch);
    };
    await expect(ingestShards(store, S, payloadOf({ documents: { 'loki.pid': pid } }), options(store, 1000, nextNonce()))).rejects.toThrow('worker killed');
    expect(store.text(headKey(S))).toBeDefined();
    expect(store.text(beatKey(S))).toBeUndefined();
    expect(await manifestHead(store, S)).toEqual({ session: S, layout: 3, syncedAtMs: null, documents: { 'loki.pid': manifestEntry(pid) }, sets: {} });
  });

  it('with a beat, the time is the beat\'s', async () => {
    const store = new MemoryObjectStore();
    await ingestOk(store, S, effPayload({ upsert: await upserts(['iteration-1.json']) }), 1234);
    const head = await manifestHead(store, S);
    expect(head.syncedAtMs).toBe(1234);
    expect(head.sets).toEqual({ efficiency: { buckets: [bucketOf('iteration-1.json')] } });
  });
});

describe('manifestPage', () => {
  it('a session with nothing stored, or no such set: no files and no next page', async () => {
    const store = new MemoryObjectStore();
    expect(await manifestPage(store, 'nobody', 'efficiency', 0)).toEqual({ files: {}, next: null });
    await ingestOk(store, S, effPayload({ upsert: await upserts(['iteration-1.json']) }));
    expect(await manifestPage(store, S, 'proofs', 0)).toEqual({ files: {}, next: null });
    // an unreadable head holds nothing to list
    store.set(headKey(S), '{"format": 3');
    expect(await manifestPage(store, S, 'efficiency', 0)).toEqual({ files: {}, next: null });
  });

  it('a used bucket that reads as absent or unreadable lists nothing; the others are listed (the client resends its files)', async () => {
    const store = new MemoryObjectStore(false);
    const names = namesInBuckets(3);
    const files = await upserts(names);
    await ingestOk(store, S, effPayload({ upsert: files }));
    const epoch = headIn(store, S).sets.efficiency!.epoch;
    const all = Object.fromEntries(names.map((name) => [name, manifestEntry(files[name]!)]));
    expect((await manifestPage(store, S, 'efficiency', 0)).files).toEqual(all);
    // KV: a read elsewhere may not see a key written moments ago; or the object was damaged
    await store.delete([bucketKey(S, 'efficiency', epoch, bucketOf(names[0]!))]);
    store.set(bucketKey(S, 'efficiency', epoch, bucketOf(names[1]!)), '{"rev": 1, "nonce"');
    expect(await manifestPage(store, S, 'efficiency', 0)).toEqual({ files: { [names[2]!]: all[names[2]!] }, next: null });
  });
});
