/**
 * What one ingest (sync/ingest.ts) writes, counted on the store double: on the KV free plan every
 * write is billed (1,000 a day), so a change writes the objects it touches and nothing else. And
 * what the head then says about a set's buckets, also after a KV read that did not see the latest
 * write (a read may be up to ~60 s old elsewhere: the key absent, or its older version).
 */
import { describe, expect, it } from 'vitest';
import { manifestHead } from '../../src/sync/manifest.js';
import { manifestEntry } from '../../src/sync/protocol.js';
import { beatKey, bucketKey, bucketOf, docKey, headKey, INLINE_DOC_BYTES } from '../../src/sync/shards.js';
import { badFile, effPayload, headIn, ingestOk, namesInBuckets, payloadOf, record, remoteManifest, shipped, upserts } from '../support/format3.js';
import { MemoryObjectStore } from '../support/object-store.js';

const S = 's';
const DASH = 'dashboard-state.json';
const enc = new TextEncoder();

/** A dashboard document of exactly `bytes` bytes. */
function dashboard(bytes: number, mode = 'autonomous'): string {
  const bare = JSON.stringify({ mode, pad: '' });
  const text = JSON.stringify({ mode, pad: 'z'.repeat(bytes - bare.length) });
  expect(enc.encode(text).length).toBe(bytes);
  return text;
}

const putsSince = (store: MemoryObjectStore, from: number) => store.calls.slice(from).filter((c) => c.op === 'put').map((c) => c.key);
const deletesSince = (store: MemoryObjectStore, from: number) => store.calls.slice(from).filter((c) => c.op === 'delete').map((c) => c.key);

describe('documents', () => {
  it.each([true, false])(`one of exactly INLINE_DOC_BYTES rides in the head; one byte more is an object of its own (strong %s)`, async (strong) => {
    const store = new MemoryObjectStore(strong);
    await ingestOk(store, S, payloadOf({ documents: { 'loki.pid': await shipped('4242') } }));
    let from = store.calls.length;
    await ingestOk(store, S, payloadOf({ documents: { [DASH]: await shipped(dashboard(INLINE_DOC_BYTES), 2) } }));
    expect(putsSince(store, from)).toEqual([headKey(S), beatKey(S)]);
    expect(headIn(store, S).docs[DASH]!.t).toBe(dashboard(INLINE_DOC_BYTES));
    from = store.calls.length;
    const larger = await shipped(dashboard(INLINE_DOC_BYTES + 1), 3);
    await ingestOk(store, S, payloadOf({ documents: { [DASH]: larger } }));
    expect(putsSince(store, from)).toEqual([docKey(S, larger.hash), headKey(S), beatKey(S)]);
    expect(headIn(store, S).docs[DASH]!.t).toBeUndefined();
    expect(deletesSince(store, from)).toEqual([]);
  });

  it('a small document changed writes the head and the beat, nothing else', async () => {
    const store = new MemoryObjectStore(false);
    await ingestOk(store, S, payloadOf({ documents: { 'loki.pid': await shipped('4242', 1) } }));
    const from = store.calls.length;
    await ingestOk(store, S, payloadOf({ documents: { 'loki.pid': await shipped('4343', 2) } }));
    expect(putsSince(store, from)).toEqual([headKey(S), beatKey(S)]);
    expect(deletesSince(store, from)).toEqual([]);
  });

  it('a large document turned small: the head takes it in, its object is deleted, nothing else is written', async () => {
    const store = new MemoryObjectStore(false);
    const large = await shipped(dashboard(3000), 1);
    await ingestOk(store, S, payloadOf({ documents: { [DASH]: large } }));
    const from = store.calls.length;
    await ingestOk(store, S, payloadOf({ documents: { [DASH]: await shipped(dashboard(200), 2) } }));
    expect(putsSince(store, from)).toEqual([headKey(S), beatKey(S)]);
    expect(deletesSince(store, from)).toEqual([docKey(S, large.hash)]);
    expect(headIn(store, S).docs[DASH]!.t).toBe(dashboard(200));
  });

  it('a large document touched but not changed (a new mtime, the same hash) is not written again', async () => {
    const store = new MemoryObjectStore(false);
    const text = dashboard(3000);
    await ingestOk(store, S, payloadOf({ documents: { [DASH]: await shipped(text, 1) } }));
    const from = store.calls.length;
    await ingestOk(store, S, payloadOf({ documents: { [DASH]: await shipped(text, 2) } }));
    expect(putsSince(store, from)).toEqual([headKey(S), beatKey(S)]);
    expect(deletesSince(store, from)).toEqual([]);
    expect((await manifestHead(store, S)).documents[DASH]).toBe(manifestEntry(await shipped(text, 2)));
  });

  it('a large document\'s first version deletes nothing; its next deletes exactly the one before, after the head', async () => {
    const store = new MemoryObjectStore(false);
    await ingestOk(store, S, payloadOf({ documents: { 'loki.pid': await shipped('4242') } }));
    let from = store.calls.length;
    const first = await shipped(dashboard(3000, 'autonomous'), 2);
    await ingestOk(store, S, payloadOf({ documents: { [DASH]: first } }));
    expect(deletesSince(store, from)).toEqual([]);
    from = store.calls.length;
    const second = await shipped(dashboard(3000, 'paused'), 3);
    await ingestOk(store, S, payloadOf({ documents: { [DASH]: second } }));
    expect(store.calls.slice(from).filter((c) => c.op !== 'get').map((c) => `${c.op} ${c.key}`)).toEqual([
      `put ${docKey(S, second.hash)}`,
      `put ${headKey(S)}`,
      `delete ${docKey(S, first.hash)}`,
      `put ${beatKey(S)}`,
    ]);
  });
});

describe('file sets', () => {
  it.each([true, false])('a set emptied (clear) with removals too writes only the buckets of what it still holds (strong %s)', async (strong) => {
    const store = new MemoryObjectStore(strong);
    const [a, b] = namesInBuckets(2);
    await ingestOk(store, S, effPayload({ upsert: await upserts([a!, b!]) }));
    const epoch = headIn(store, S).sets.efficiency!.epoch;
    const from = store.calls.length;
    await ingestOk(store, S, effPayload({ clear: true, remove: [b!], upsert: { [a!]: await shipped(record(7), 9) } }));
    expect(putsSince(store, from)).toEqual([bucketKey(S, 'efficiency', epoch + 1, bucketOf(a!)), headKey(S), beatKey(S)]);
    expect(headIn(store, S).sets.efficiency).toMatchObject({ epoch: epoch + 1, count: 1 });
  });

  it('a set reported absent with removals writes no bucket', async () => {
    const store = new MemoryObjectStore(false);
    const [a, b] = namesInBuckets(2);
    await ingestOk(store, S, effPayload({ upsert: await upserts([a!, b!]) }));
    const from = store.calls.length;
    await ingestOk(store, S, effPayload({ present: false, remove: [b!] }));
    expect(putsSince(store, from)).toEqual([headKey(S), beatKey(S)]);
    expect(headIn(store, S).sets.efficiency).toMatchObject({ present: false, count: 0, buckets: '' });
  });

  it('the last file of a bucket removed: the bucket is no longer listed as used', async () => {
    const store = new MemoryObjectStore();
    const [a, b] = namesInBuckets(2);
    await ingestOk(store, S, effPayload({ upsert: await upserts([a!, b!]) }));
    await ingestOk(store, S, effPayload({ remove: [b!] }));
    expect((await manifestHead(store, S)).sets).toEqual({ efficiency: { buckets: [bucketOf(a!)] } });
  });

  it('a file rewritten with the same value and mtime but other bytes: its bucket and the head are written, the manifest has the new hash', async () => {
    const store = new MemoryObjectStore(false);
    const name = 'iteration-1.json';
    await ingestOk(store, S, effPayload({ upsert: { [name]: await shipped(record(1), 5) } }));
    const head = store.text(headKey(S));
    const reformatted = await shipped(JSON.stringify(JSON.parse(record(1)), null, 2), 5);
    const from = store.calls.length;
    await ingestOk(store, S, effPayload({ upsert: { [name]: reformatted } }));
    const epoch = headIn(store, S).sets.efficiency!.epoch;
    expect(putsSince(store, from)).toEqual([bucketKey(S, 'efficiency', epoch, bucketOf(name)), headKey(S), beatKey(S)]);
    expect(store.text(headKey(S))).not.toBe(head);
    // without it the client would find the old hash and send the file again on every cycle
    expect((await remoteManifest(store, S)).manifest.sets.efficiency).toEqual({ [name]: manifestEntry(reformatted) });
  });
});

describe('a set emptied after a KV read missed a write', () => {
  it('a bucket read as absent: its file could not be taken out, and reporting the set absent still counts none', async () => {
    const store = new MemoryObjectStore(false);
    await ingestOk(store, S, effPayload({ upsert: { 'iteration-1.json': badFile('empty file') } }));
    const epoch = headIn(store, S).sets.efficiency!.epoch;
    await store.delete([bucketKey(S, 'efficiency', epoch, bucketOf('iteration-1.json'))]); // the read does not see it yet
    await ingestOk(store, S, effPayload({ remove: ['iteration-1.json'] }));
    expect(headIn(store, S).sets.efficiency).toMatchObject({ count: 1, buckets: '' });
    await ingestOk(store, S, effPayload({ present: false }));
    expect(headIn(store, S).sets.efficiency).toMatchObject({ present: false, count: 0, bad: 0, badEntries: [], buckets: '', epoch: epoch + 1 });
  });

  it('a bucket read in its older version: a file the head no longer counts is in it, and clearing the set drops it', async () => {
    const store = new MemoryObjectStore(false);
    const [f] = namesInBuckets(1);
    const g = Array.from({ length: 20_000 }, (_, k) => `iteration-${k + 1}.json`).find((name) => name !== f && bucketOf(name) === bucketOf(f!))!;
    await ingestOk(store, S, effPayload({ upsert: { [f!]: badFile('empty file') } }));
    const epoch = headIn(store, S).sets.efficiency!.epoch;
    const key = bucketKey(S, 'efficiency', epoch, bucketOf(f!));
    const older = store.text(key)!;
    await ingestOk(store, S, effPayload({ remove: [f!] }));
    store.set(key, older); // the next read answers the version before the removal
    await ingestOk(store, S, effPayload({ upsert: { [g]: badFile('empty file') } }));
    await ingestOk(store, S, effPayload({ remove: [g] }));
    expect(headIn(store, S).sets.efficiency).toMatchObject({ count: 0, buckets: expect.not.stringMatching(/^$/) });
    await ingestOk(store, S, effPayload({ clear: true }));
    expect((await manifestHead(store, S)).sets).toEqual({ efficiency: { buckets: [] } });
    expect((await remoteManifest(store, S)).manifest.sets.efficiency).toEqual({});
  });

  it('a set whose files were all removed keeps zeroed totals; clearing it starts afresh, as a session that never had them', async () => {
    const store = new MemoryObjectStore(false);
    await ingestOk(store, S, effPayload({ upsert: await upserts(['iteration-2.json']) }));
    await ingestOk(store, S, effPayload({ remove: ['iteration-2.json'] }));
    const emptied = headIn(store, S).sets.efficiency!;
    expect(emptied).toMatchObject({ count: 0, buckets: '' });
    expect(emptied.totals).toBeDefined();
    await ingestOk(store, S, effPayload({ clear: true, upsert: await upserts(['iteration-1.json']) }));
    const fresh = new MemoryObjectStore(false);
    await ingestOk(fresh, S, effPayload({ upsert: await upserts(['iteration-1.json']) }));
    expect(headIn(store, S).sets.efficiency!.totals).toEqual(headIn(fresh, S).sets.efficiency!.totals);
    expect(headIn(store, S).sets.efficiency!.epoch).toBe(emptied.epoch + 1);
  });
});

