/**
 * The ObjectStore contract (src/stores/object-store.ts), run over every implementation: the R2 and
 * KV adapters over workerd's own R2 and KV (Miniflare), and the in-memory store the Worker warms up
 * over and the tests build on, in both its modes. The in-memory store claims R2's semantics (KV's
 * with `strong` false): the same calls must give it the same answers as the adapter over the real
 * binding, etags aside (R2's is the MD5 of the bytes, memory's a counter: they are compared by
 * which write they name).
 */
import type { Miniflare } from 'miniflare';
import { startMiniflare, type OwnMiniflare } from '../support/miniflare.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KvObjectStore, type KvNamespaceLike } from '../../src/stores/kv.js';
import { MemoryObjectStore } from '../../src/stores/memory.js';
import type { ObjectStore, StoredObject } from '../../src/stores/object-store.js';
import { R2ObjectStore, type R2BucketLike } from '../../src/stores/r2.js';

/**
 * Runs the contract on a store, asserting each rule, and returns what it saw with every etag
 * replaced by the name of the write it came from (`#1` for the first etag seen, ...).
 */
async function contract(store: ObjectStore): Promise<unknown[]> {
  const seen: unknown[] = [];
  const names = new Map<string, string>();
  const name = (etag: string | undefined) => {
    if (etag === undefined) return undefined;
    if (!names.has(etag)) names.set(etag, `#${names.size + 1}`);
    return names.get(etag);
  };
  const get = async (key: string, etag?: string) => {
    const got = await store.get(key, etag);
    const plain = got === null || got === 'unchanged' ? got : { text: got.text, etag: name(got.etag) };
    seen.push(['get', key, name(etag), plain]);
    return got;
  };
  const put = async (key: string, text: string, ifMatch?: string | null) => {
    const written = await store.put(key, text, ifMatch);
    seen.push(['put', key, text, ifMatch === undefined || ifMatch === null ? ifMatch : name(ifMatch), written]);
    return written;
  };
  const etagOf = (got: StoredObject | 'unchanged' | null) => (got !== null && got !== 'unchanged' ? got.etag : undefined);

  // kind and strength agree: R2 is the strong one
  expect(store.kind).toBe(store.strong ? 'r2' : 'kv');

  // absent: null, with or without an etag
  expect(await get('s/a')).toBeNull();
  expect(await get('s/a', 'no-such-etag')).toBeNull();

  // a write, read back; an etag only where the store has them
  expect(await put('s/a', 'one')).toBe(true);
  const one = await get('s/a');
  expect(one).toMatchObject({ text: 'one' });
  expect(etagOf(one) !== undefined).toBe(store.strong);

  // 'unchanged' while the object still has the etag given (strong); the object otherwise
  const e1 = etagOf(one) ?? 'no-etag';
  expect(await get('s/a', e1)).toEqual(store.strong ? 'unchanged' : { text: 'one' });

  // a write conditional on the current etag succeeds; on a stale one it fails where writes can be conditional
  expect(await put('s/a', 'two', e1)).toBe(true);
  const two = await get('s/a', e1);
  expect(two).toMatchObject({ text: 'two' });
  expect(await put('s/a', 'three', e1)).toBe(!store.strong);
  expect(await get('s/a')).toMatchObject({ text: store.strong ? 'two' : 'three' });

  // ifMatch null: only while there is no object (strong); a weak store writes anyway
  expect(await put('s/b', 'bee', null)).toBe(true);
  expect(await put('s/b', 'bee again', null)).toBe(!store.strong);
  expect(await get('s/b')).toMatchObject({ text: store.strong ? 'bee' : 'bee again' });
  // an etag names no absent object
  expect(await put('s/c', 'sea', e1)).toBe(!store.strong);

  // list: the keys under the prefix, in key order, no next page when all fit
  await put('t/x', 'x');
  const listed = await store.list('s/');
  seen.push(['list', listed]);
  expect(listed).toStrictEqual({ keys: store.strong ? ['s/a', 's/b'] : ['s/a', 's/b', 's/c'] });

  // delete: absent keys are fine, others stay
  await store.delete(['s/a', 's/nope']);
  expect(await get('s/a')).toBeNull();
  expect(await get('s/b')).not.toBeNull();
  expect(await store.list('')).toStrictEqual({ keys: store.strong ? ['s/b', 't/x'] : ['s/b', 's/c', 't/x'] });
  return seen;
}

describe('the in-memory store keeps the contract', () => {
  it('as R2 (the default)', async () => {
    await contract(new MemoryObjectStore());
  });

  it('as KV', async () => {
    await contract(new MemoryObjectStore(false));
  });
});

/**
 * Miniflare's R2 binding in Node is a proxy that reads (and so uses up) an object's body to answer
 * `'body' in object`, which a Worker's binding never does. This gives the adapter workerd's shapes
 * instead: an R2ObjectBody (`body`, `text()`) when the body came, an R2Object (etag only) when
 * `onlyIf` held it back.
 */
function unproxied(bucket: R2BucketLike): R2BucketLike {
  return {
    get: async (key, options) => {
      const object = await bucket.get(key, options);
      if (object === null) return null;
      if (typeof object.text !== 'function') return { etag: object.etag };
      const text = await object.text();
      return { etag: object.etag, body: text, text: async () => text };
    },
    put: (key, value, options) => bucket.put(key, value, options),
    delete: (keys) => bucket.delete(keys),
    list: (options) => bucket.list(options),
  };
}

describe("over workerd's own R2 and KV (Miniflare)", () => {
  let mf: Miniflare;
  let own: OwnMiniflare | undefined;
  beforeAll(async () => {
    own = await startMiniflare('loki-test-object-store-', { r2Buckets: ['BUCKET'], kvNamespaces: ['KV'] });
    mf = own.mf;
  });
  afterAll(async () => {
    await own?.dispose();
  });

  it('the R2 adapter keeps the contract, and the in-memory store answers as it does', async () => {
    const bucket = unproxied((await mf.getR2Bucket('BUCKET')) as unknown as R2BucketLike);
    const real = await contract(new R2ObjectStore(bucket));
    expect(await contract(new MemoryObjectStore())).toEqual(real);
  });

  it('the KV adapter keeps the contract, and the in-memory store as KV answers as it does', async () => {
    const kv = (await mf.getKVNamespace('KV')) as unknown as KvNamespaceLike;
    const real = await contract(new KvObjectStore(kv));
    expect(await contract(new MemoryObjectStore(false))).toEqual(real);
  });
});
