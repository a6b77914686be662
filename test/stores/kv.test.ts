/**
 * The Workers KV adapter (src/stores/kv.ts) over an in-process KV binding built to Cloudflare's
 * Workers KV API (developers.cloudflare.com/kv/api/):
 *   - `get(key, 'text')` answers the value, or null for an absent key; there is no conditional read;
 *   - `put` always writes (last writer wins; there is no conditional write); `delete` takes one key,
 *     and an absent key is fine;
 *   - `list` returns up to `limit` keys (default and maximum 1,000) in key order, `list_complete`,
 *     and a `cursor` only while the list is not complete (the cursor is the last key returned,
 *     base64).
 * The binding is the double, not workerd, because the adapter's pages need thousands of keys
 * (seconds of loopback calls in workerd); the first describe runs one scenario through both the
 * double and workerd's own KV (Miniflare) and requires the same answers.
 */
import type { Miniflare } from 'miniflare';
import { startMiniflare, type OwnMiniflare } from '../support/miniflare.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KvObjectStore, type KvNamespaceLike } from '../../src/stores/kv.js';
import type { ObjectStore } from '../../src/stores/object-store.js';

type ListOptions = { prefix?: string; cursor?: string; limit?: number };
type ListPage = { keys: { name: string }[]; list_complete: boolean; cursor?: string };

class KvDouble implements KvNamespaceLike {
  readonly values = new Map<string, string>();
  readonly calls: { op: 'get' | 'put' | 'delete' | 'list'; key: string }[] = [];

  async get(key: string, type: 'text'): Promise<string | null> {
    this.calls.push({ op: 'get', key });
    // The adapter must ask for text: the other types ('json', 'arrayBuffer', 'stream') answer other things.
    if (type !== 'text') throw new Error(`this double answers only 'text', not ${String(type)}`);
    return this.values.get(key) ?? null;
  }

  async put(key: string, value: string): Promise<void> {
    this.calls.push({ op: 'put', key });
    this.values.set(key, value);
  }

  async delete(key: string): Promise<void> {
    this.calls.push({ op: 'delete', key });
    this.values.delete(key);
  }

  async list(options: ListOptions = {}): Promise<ListPage> {
    this.calls.push({ op: 'list', key: options.prefix ?? '' });
    const limit = options.limit ?? 1000;
    if (!(Number.isInteger(limit) && limit >= 1 && limit <= 1000)) throw new Error(`Invalid key_count_limit of ${limit}`);
    const after = options.cursor === undefined ? undefined : Buffer.from(options.cursor, 'base64').toString();
    const keys = [...this.values.keys()].filter((k) => k.startsWith(options.prefix ?? '') && (after === undefined || k > after)).sort();
    const page = keys.slice(0, limit);
    const complete = keys.length <= limit;
    return { keys: page.map((name) => ({ name })), list_complete: complete, ...(complete ? {} : { cursor: Buffer.from(page.at(-1)!).toString('base64') }) };
  }
}

/** One run of every rule the adapter relies on, as plain data to compare. */
async function scenario(kv: KvNamespaceLike): Promise<unknown[]> {
  const out: unknown[] = [];
  const page = async (options: ListOptions) => {
    const p = await kv.list(options);
    return { keys: p.keys.map((k) => k.name), complete: p.list_complete, cursor: p.cursor, hasCursor: 'cursor' in p };
  };
  await kv.put('a', 'alpha');
  await kv.put('b', 'bravo');
  await kv.put('c', 'charlie');
  out.push(await kv.get('a', 'text'), await kv.get('nope', 'text'));
  await kv.put('a', 'again');
  out.push(await kv.get('a', 'text'));
  const first = await page({ prefix: '', limit: 2 });
  out.push(first, await page({ prefix: '', limit: 2, cursor: first.cursor! }), await page({ prefix: 'b' }), await page({ prefix: '', cursor: undefined }));
  try {
    await kv.list({ prefix: '', limit: 1001 });
    out.push('listed 1001');
  } catch {
    out.push('refused a limit of 1001');
  }
  await kv.delete('a');
  await kv.delete('nope');
  out.push(await kv.get('a', 'text'), await kv.get('b', 'text'));
  return out;
}

describe("the KV double answers as workerd's own KV", () => {
  let mf: Miniflare;
  let own: OwnMiniflare | undefined;
  beforeAll(async () => {
    own = await startMiniflare('loki-test-kv-', { kvNamespaces: ['KV'] });
    mf = own.mf;
  });
  afterAll(async () => {
    await own?.dispose();
  });

  it('gives the same answers to the same calls', async () => {
    const real = (await mf.getKVNamespace('KV')) as unknown as KvNamespaceLike;
    const expected = await scenario(real);
    expect(await scenario(new KvDouble())).toEqual(expected);
  });
});

const keysFrom = (n: number, prefix = 'k/') => Array.from({ length: n }, (_, i) => `${prefix}${String(i).padStart(5, '0')}`);

function setup() {
  const kv = new KvDouble();
  // as the Worker holds it: through the interface, which lets a caller pass an etag or a condition
  const store: ObjectStore = new KvObjectStore(kv);
  return { kv, store };
}

describe('KvObjectStore', () => {
  it('is weak (eventually consistent, no conditional writes), of kind kv', () => {
    const { store } = setup();
    expect(store.strong).toBe(false);
    expect(store.kind).toBe('kv');
  });

  describe('get', () => {
    it('answers null for an absent key', async () => {
      const { store } = setup();
      expect(await store.get('nope')).toBeNull();
    });

    it('answers the text, with no etag (KV has none)', async () => {
      const { kv, store } = setup();
      await kv.put('a', 'alpha');
      expect(await store.get('a')).toStrictEqual({ text: 'alpha' });
    });

    it('answers an empty text as a present object, not as absent', async () => {
      const { kv, store } = setup();
      await kv.put('a', '');
      expect(await store.get('a')).toStrictEqual({ text: '' });
    });

    it("downloads every time: an etag given changes nothing, and never reads as 'unchanged'", async () => {
      const { kv, store } = setup();
      await kv.put('a', 'alpha');
      expect(await store.get('a', 'some-etag')).toStrictEqual({ text: 'alpha' });
    });
  });

  describe('put', () => {
    it('writes and answers true', async () => {
      const { kv, store } = setup();
      expect(await store.put('a', 'one')).toBe(true);
      expect(kv.values.get('a')).toBe('one');
    });

    it('always writes: a condition cannot hold a write back (last writer wins)', async () => {
      const { kv, store } = setup();
      await store.put('a', 'one');
      expect(await store.put('a', 'two', null)).toBe(true);
      expect(await store.put('a', 'three', 'stale-etag')).toBe(true);
      expect(kv.values.get('a')).toBe('three');
    });
  });

  describe('delete', () => {
    it('deletes each key, one call per key (KV has no batch delete in a Worker), absent ones too', async () => {
      const { kv, store } = setup();
      for (const key of ['a', 'b', 'c']) await kv.put(key, key);
      kv.calls.length = 0;
      await store.delete(['a', 'c', 'nope']);
      expect(kv.calls).toEqual([{ op: 'delete', key: 'a' }, { op: 'delete', key: 'c' }, { op: 'delete', key: 'nope' }]);
      expect([...kv.values.keys()]).toEqual(['b']);
    });
  });

  describe('list', () => {
    it('lists the keys under the prefix only, with no next page when all fit', async () => {
      const { kv, store } = setup();
      for (const key of ['p/b', 'p/a', 'q/a', 'pp/a']) await kv.put(key, '1');
      expect(await store.list('p/')).toStrictEqual({ keys: ['p/a', 'p/b'] });
      expect(await store.list('none/')).toStrictEqual({ keys: [] });
    });

    it('pages through more than 1,000 keys, each page from where the last ended', async () => {
      const { kv, store } = setup();
      const keys = keysFrom(2_500);
      for (const key of keys) await kv.put(key, '1');
      await kv.put('other', '1');
      const first = await store.list('k/');
      expect(first.keys).toEqual(keys.slice(0, 1000));
      expect(first.next).toEqual(expect.any(String));
      const second = await store.list('k/', first.next);
      expect(second.keys).toEqual(keys.slice(1000, 2000));
      expect(await store.list('k/', second.next)).toStrictEqual({ keys: keys.slice(2000) });
    });

    it('has no next page after exactly 1,000 keys', async () => {
      const { kv, store } = setup();
      for (const key of keysFrom(1000)) await kv.put(key, '1');
      expect(await store.list('k/')).toStrictEqual({ keys: keysFrom(1000) });
    });
  });
});
