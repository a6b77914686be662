/**
 * The R2 adapter (src/stores/r2.ts) over an in-process R2 binding built to Cloudflare's Workers API
 * for R2 (developers.cloudflare.com/r2/api/workers/workers-api-reference/):
 *   - `get` answers null for an absent key; with `onlyIf: { etagDoesNotMatch }` that the object
 *     fails (its etag, or `*`), an R2Object with no body (no `body`, no `text()`); else an
 *     R2ObjectBody (`body`, `text()`);
 *   - `put` answers null when `onlyIf` fails (`etagMatches`: the object exists with that etag, `*`
 *     any; `etagDoesNotMatch`: the object is absent or has another etag, `*` none), else the R2Object
 *     written; a condition field that is present must be a string (undefined counts as absent);
 *   - the etag of a single-part upload is the MD5 of its bytes;
 *   - `delete` takes a key or up to 1,000 keys;
 *   - `list` returns up to `limit` keys (default and maximum 1,000) in key order, `truncated`, and a
 *     `cursor` only when truncated (the cursor is the last key returned, base64).
 * The binding is the double, not workerd, because the adapter's pages and batches need thousands of
 * keys (seconds of loopback calls each in workerd); the first describe runs one scenario through
 * both the double and workerd's own R2 (Miniflare) and requires the same answers.
 */
import { createHash } from 'node:crypto';
import type { Miniflare } from 'miniflare';
import { startMiniflare, type OwnMiniflare } from '../support/miniflare.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { R2ObjectStore, type R2BucketLike } from '../../src/stores/r2.js';

type OnlyIf = { etagMatches?: string; etagDoesNotMatch?: string };
interface HttpMetadata {
  contentType?: string;
}

/** An object without its body: what `get` answers when `onlyIf` held the body back, and what `put` answers. */
class R2Object {
  constructor(
    readonly key: string,
    readonly etag: string,
    readonly httpMetadata: HttpMetadata,
  ) {}
}

/** An object with its body (`body` on the prototype, as workerd's R2ObjectBody has it). */
class R2ObjectBody extends R2Object {
  readonly #text: string;
  constructor(key: string, etag: string, httpMetadata: HttpMetadata, text: string) {
    super(key, etag, httpMetadata);
    this.#text = text;
  }
  get body(): ReadableStream {
    return new Blob([this.#text]).stream();
  }
  async text(): Promise<string> {
    return this.#text;
  }
}

/** The binding's surface the scenario and the adapter use. */
interface R2Binding {
  get(key: string, options?: { onlyIf?: OnlyIf }): Promise<{ etag: string; text?: () => Promise<string>; httpMetadata?: HttpMetadata } | null>;
  put(key: string, value: string, options?: { httpMetadata?: HttpMetadata; onlyIf?: OnlyIf }): Promise<{ etag: string } | null>;
  delete(keys: string | string[]): Promise<unknown>;
  list(options?: { prefix?: string; cursor?: string; limit?: number }): Promise<{ objects: { key: string }[]; truncated: boolean; cursor?: string }>;
}

class R2Double implements R2Binding, R2BucketLike {
  readonly objects = new Map<string, { text: string; etag: string; httpMetadata: HttpMetadata }>();
  /** Every call, with how many keys a delete named. */
  readonly calls: { op: 'get' | 'put' | 'delete' | 'list'; key?: string; keys?: number; onlyIf?: OnlyIf }[] = [];

  async get(key: string, options?: { onlyIf?: OnlyIf }) {
    this.calls.push({ op: 'get', key, ...(options?.onlyIf ? { onlyIf: options.onlyIf } : {}) });
    checkConditional(options?.onlyIf);
    const object = this.objects.get(key);
    if (!object) return null;
    const held = options?.onlyIf?.etagDoesNotMatch;
    if (held !== undefined && (held === '*' || held === object.etag)) return new R2Object(key, object.etag, object.httpMetadata);
    return new R2ObjectBody(key, object.etag, object.httpMetadata, object.text);
  }

  async put(key: string, value: string, options?: { httpMetadata?: HttpMetadata; onlyIf?: OnlyIf }) {
    this.calls.push({ op: 'put', key, ...(options?.onlyIf ? { onlyIf: options.onlyIf } : {}) });
    const onlyIf = options?.onlyIf;
    checkConditional(onlyIf);
    const current = this.objects.get(key);
    if (onlyIf?.etagMatches !== undefined && !(current && (onlyIf.etagMatches === '*' || onlyIf.etagMatches === current.etag))) return null;
    if (onlyIf?.etagDoesNotMatch !== undefined && current && (onlyIf.etagDoesNotMatch === '*' || onlyIf.etagDoesNotMatch === current.etag)) return null;
    const etag = createHash('md5').update(value).digest('hex');
    const httpMetadata = { ...options?.httpMetadata };
    this.objects.set(key, { text: value, etag, httpMetadata });
    return new R2Object(key, etag, httpMetadata);
  }

  async delete(keys: string | string[]) {
    const list = typeof keys === 'string' ? [keys] : keys;
    this.calls.push({ op: 'delete', keys: list.length });
    if (list.length > 1000) throw new Error('delete: at most 1000 keys per call');
    for (const key of list) this.objects.delete(key);
  }

  async list(options: { prefix?: string; cursor?: string; limit?: number } = {}) {
    this.calls.push({ op: 'list', key: options.prefix ?? '' });
    const limit = options.limit ?? 1000;
    if (!(Number.isInteger(limit) && limit >= 1 && limit <= 1000)) throw new Error('list: MaxKeys params must be positive integer <= 1000.');
    const after = options.cursor === undefined ? undefined : Buffer.from(options.cursor, 'base64').toString();
    const keys = [...this.objects.keys()].filter((k) => k.startsWith(options.prefix ?? '') && (after === undefined || k > after)).sort();
    const page = keys.slice(0, limit);
    const truncated = keys.length > limit;
    return { objects: page.map((key) => ({ key })), truncated, ...(truncated ? { cursor: Buffer.from(page.at(-1)!).toString('base64') } : {}) };
  }
}

/** workerd checks each condition field's type; an undefined one is no condition. */
function checkConditional(onlyIf: OnlyIf | undefined) {
  for (const field of ['etagMatches', 'etagDoesNotMatch'] as const) {
    const value = (onlyIf as Record<string, unknown> | undefined)?.[field];
    if (value !== undefined && typeof value !== 'string') throw new TypeError(`Incorrect type for the '${field}' field on 'Conditional'`);
  }
}

/** One run of every rule the adapter relies on, as plain data to compare. */
async function scenario(bucket: R2Binding): Promise<unknown[]> {
  const out: unknown[] = [];
  const read = async (key: string, onlyIf?: OnlyIf) => {
    const o = await bucket.get(key, onlyIf ? { onlyIf } : undefined);
    if (o === null) return null;
    // typeof, never `'body' in`: Miniflare's Node proxy reads the body to answer `in`
    return { etag: o.etag, text: typeof o.text === 'function' ? await o.text() : '(no body)' };
  };
  const attempt = async (what: () => Promise<unknown>) => {
    try {
      return await what();
    } catch (error) {
      return `threw ${(error as Error).name}`;
    }
  };
  const a = (await bucket.put('a', 'alpha', { httpMetadata: { contentType: 'application/json' } }))!.etag;
  out.push(a, a === createHash('md5').update('alpha').digest('hex'));
  await bucket.put('b', 'bravo');
  await bucket.put('c', 'charlie');
  out.push(await read('a'), await read('a', { etagDoesNotMatch: a }), await read('a', { etagDoesNotMatch: 'other' }), await read('a', { etagDoesNotMatch: '*' }));
  out.push((await bucket.get('a'))?.httpMetadata?.contentType);
  out.push(await read('nope'), await read('nope', { etagDoesNotMatch: a }));
  out.push(await bucket.put('a', 'beta', { onlyIf: { etagMatches: 'wrong' } }), await read('a'));
  out.push((await bucket.put('a', 'beta', { onlyIf: { etagMatches: a } }))?.etag, await read('a'));
  out.push((await bucket.put('x', 'xray', { onlyIf: { etagDoesNotMatch: '*' } }))?.etag, await bucket.put('x', 'again', { onlyIf: { etagDoesNotMatch: '*' } }));
  out.push(await bucket.put('y', 'yankee', { onlyIf: { etagMatches: '*' } }), await read('y'));
  out.push((await bucket.put('a', 'gamma', { onlyIf: { etagMatches: undefined } }))?.etag, await read('a', { etagDoesNotMatch: undefined }));
  out.push(await attempt(() => bucket.put('a', 'delta', { onlyIf: { etagMatches: null as unknown as string } })), await read('a'));
  const page = async (options: { prefix?: string; cursor?: string; limit?: number }) => {
    const p = await bucket.list(options);
    return { keys: p.objects.map((o) => o.key), truncated: p.truncated, cursor: p.cursor };
  };
  const first = await page({ prefix: '', limit: 2 });
  out.push(first, await page({ prefix: '', limit: 2, cursor: first.cursor! }), await page({ prefix: 'b' }), await page({ prefix: '', cursor: undefined }));
  out.push(await attempt(() => bucket.list({ prefix: '', limit: 1001 })));
  await bucket.delete(['a', 'nope']);
  await bucket.delete('b');
  out.push(await read('a'), await read('b'), await read('c'));
  return out;
}

describe('the R2 double answers as workerd\'s own R2', () => {
  let mf: Miniflare;
  let own: OwnMiniflare | undefined;
  beforeAll(async () => {
    own = await startMiniflare('loki-test-r2-', { r2Buckets: ['BUCKET'] });
    mf = own.mf;
  });
  afterAll(async () => {
    await own?.dispose();
  });

  it('gives the same answers to the same calls', async () => {
    const real = (await mf.getR2Bucket('BUCKET')) as unknown as R2Binding;
    const expected = await scenario(real);
    expect(await scenario(new R2Double())).toEqual(expected);
  });
});

const md5 = (text: string) => createHash('md5').update(text).digest('hex');
const keysFrom = (n: number, prefix = 'k/') => Array.from({ length: n }, (_, i) => `${prefix}${String(i).padStart(5, '0')}`);

function setup() {
  const bucket = new R2Double();
  return { bucket, store: new R2ObjectStore(bucket) };
}

describe('R2ObjectStore', () => {
  it('is strong, of kind r2', () => {
    const { store } = setup();
    expect(store.strong).toBe(true);
    expect(store.kind).toBe('r2');
  });

  describe('get', () => {
    it('answers null for an absent key, with or without an etag', async () => {
      const { store } = setup();
      expect(await store.get('nope')).toBeNull();
      expect(await store.get('nope', md5('x'))).toBeNull();
    });

    it('answers the text with R2\'s etag', async () => {
      const { bucket, store } = setup();
      await bucket.put('a', 'alpha');
      expect(await store.get('a')).toStrictEqual({ text: 'alpha', etag: md5('alpha') });
    });

    it("answers 'unchanged', with no body sent, while the object still has the etag given", async () => {
      const { bucket, store } = setup();
      await bucket.put('a', 'alpha');
      expect(await store.get('a', md5('alpha'))).toBe('unchanged');
      expect(bucket.calls.at(-1)).toEqual({ op: 'get', key: 'a', onlyIf: { etagDoesNotMatch: md5('alpha') } });
    });

    it('answers the new text and etag once the object changed', async () => {
      const { bucket, store } = setup();
      await bucket.put('a', 'alpha');
      await bucket.put('a', 'beta');
      expect(await store.get('a', md5('alpha'))).toStrictEqual({ text: 'beta', etag: md5('beta') });
    });
  });

  describe('put', () => {
    it('writes the text as JSON (its content type) and answers true', async () => {
      const { bucket, store } = setup();
      expect(await store.put('a', '{"x":1}')).toBe(true);
      const object = (await bucket.get('a')) as R2ObjectBody;
      expect(await object.text()).toBe('{"x":1}');
      expect(object.httpMetadata).toEqual({ contentType: 'application/json' });
    });

    it('without a condition, overwrites whatever is there', async () => {
      const { bucket, store } = setup();
      await store.put('a', 'one');
      expect(await store.put('a', 'two')).toBe(true);
      expect(bucket.objects.get('a')?.text).toBe('two');
    });

    it('with ifMatch null, writes only while the key is absent (false, nothing written, when it is there)', async () => {
      const { bucket, store } = setup();
      expect(await store.put('a', 'first', null)).toBe(true);
      expect(await store.put('a', 'second', null)).toBe(false);
      expect(bucket.objects.get('a')?.text).toBe('first');
    });

    it('with an etag, writes only while the object still has it', async () => {
      const { bucket, store } = setup();
      await store.put('a', 'one');
      expect(await store.put('a', 'two', md5('one'))).toBe(true);
      expect(await store.put('a', 'three', md5('one'))).toBe(false);
      expect(bucket.objects.get('a')?.text).toBe('two');
      // an etag never matches an absent key
      expect(await store.put('b', 'x', md5('x'))).toBe(false);
      expect(bucket.objects.has('b')).toBe(false);
    });
  });

  describe('delete', () => {
    it('removes the keys, absent ones too, and keeps the rest', async () => {
      const { bucket, store } = setup();
      for (const key of ['a', 'b', 'c']) await bucket.put(key, key);
      await store.delete(['a', 'c', 'nope']);
      expect([...bucket.objects.keys()]).toEqual(['b']);
    });

    it('sends at most 1,000 keys a call, in as few calls as that allows', async () => {
      const { bucket, store } = setup();
      const keys = keysFrom(2_500);
      for (const key of keys) await bucket.put(key, '1');
      bucket.calls.length = 0;
      await store.delete(keys);
      expect(bucket.calls).toEqual([{ op: 'delete', keys: 1000 }, { op: 'delete', keys: 1000 }, { op: 'delete', keys: 500 }]);
      expect(bucket.objects.size).toBe(0);
    });

    it('sends exactly two calls for 2,000 keys, and none for no key', async () => {
      const { bucket, store } = setup();
      await store.delete(keysFrom(2_000));
      expect(bucket.calls).toEqual([{ op: 'delete', keys: 1000 }, { op: 'delete', keys: 1000 }]);
      bucket.calls.length = 0;
      await store.delete([]);
      expect(bucket.calls).toEqual([]);
    });
  });

  describe('list', () => {
    it('lists the keys under the prefix only, with no next page when all fit', async () => {
      const { bucket, store } = setup();
      for (const key of ['p/b', 'p/a', 'q/a', 'pp/a']) await bucket.put(key, '1');
      expect(await store.list('p/')).toStrictEqual({ keys: ['p/a', 'p/b'] });
      expect(await store.list('none/')).toStrictEqual({ keys: [] });
    });

    it('pages through more than 1,000 keys, each page from where the last ended', async () => {
      const { bucket, store } = setup();
      const keys = keysFrom(2_500);
      for (const key of keys) await bucket.put(key, '1');
      await bucket.put('other', '1');
      const first = await store.list('k/');
      expect(first.keys).toEqual(keys.slice(0, 1000));
      expect(first.next).toEqual(expect.any(String));
      const second = await store.list('k/', first.next);
      expect(second.keys).toEqual(keys.slice(1000, 2000));
      expect(await store.list('k/', second.next)).toStrictEqual({ keys: keys.slice(2000) });
    });

    it('has no next page after exactly 1,000 keys', async () => {
      const { bucket, store } = setup();
      for (const key of keysFrom(1000)) await bucket.put(key, '1');
      expect(await store.list('k/')).toStrictEqual({ keys: keysFrom(1000) });
    });
  });
});
