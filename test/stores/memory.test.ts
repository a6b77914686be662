/**
 * The in-memory ObjectStore (src/stores/memory.ts): R2's semantics by default (etags, conditional
 * reads and writes), KV's with `strong` false (no etags, every write wins). That these are R2's and
 * KV's own is checked against workerd's R2 and KV in object-store.test.ts; here, each rule in turn.
 */
import { describe, expect, it } from 'vitest';
import { MemoryObjectStore } from '../../src/stores/memory.js';

const keysFrom = (n: number, prefix = 'k/') => Array.from({ length: n }, (_, i) => `${prefix}${String(i).padStart(5, '0')}`);

describe('MemoryObjectStore as R2 (the default)', () => {
  it('is strong, of kind r2', () => {
    const store = new MemoryObjectStore();
    expect(store.strong).toBe(true);
    expect(store.kind).toBe('r2');
  });

  it('answers null for an absent key, with or without an etag', async () => {
    const store = new MemoryObjectStore();
    expect(await store.get('nope')).toBeNull();
    expect(await store.get('nope', 'e1')).toBeNull();
  });

  it('reads back what was written, with an etag', async () => {
    const store = new MemoryObjectStore();
    expect(await store.put('a', 'one')).toBe(true);
    const got = await store.get('a');
    expect(got).toStrictEqual({ text: 'one', etag: expect.any(String) });
    expect(got === 'unchanged' || got === null ? '' : got.etag).not.toBe('');
  });

  it("answers 'unchanged' for the etag it has, and the object for any other", async () => {
    const store = new MemoryObjectStore();
    await store.put('a', 'one');
    const first = await store.get('a');
    const etag = first !== null && first !== 'unchanged' ? first.etag! : '';
    expect(await store.get('a', etag)).toBe('unchanged');
    expect(await store.get('a', `${etag}x`)).toStrictEqual({ text: 'one', etag });
    await store.put('a', 'two');
    const second = await store.get('a', etag);
    expect(second).toStrictEqual({ text: 'two', etag: expect.any(String) });
    expect(second !== null && second !== 'unchanged' && second.etag).not.toBe(etag);
  });

  it('gives every write a new etag, across keys too', async () => {
    const store = new MemoryObjectStore();
    const etags = new Set<string | undefined>();
    for (const [key, text] of [['a', '1'], ['b', '1'], ['a', '1'], ['a', '2']] as const) {
      await store.put(key, text);
      const got = await store.get(key);
      etags.add(got !== null && got !== 'unchanged' ? got.etag : undefined);
    }
    expect(etags.size).toBe(4);
    expect(etags.has(undefined)).toBe(false);
  });

  it('hands out a copy: changing what get returned does not change the store', async () => {
    const store = new MemoryObjectStore();
    await store.put('a', 'one');
    const got = (await store.get('a')) as { text: string; etag: string };
    (got as { text: string }).text = 'changed';
    expect(await store.get('a')).toStrictEqual({ text: 'one', etag: got.etag });
  });

  it('writes with ifMatch null only while the key is absent', async () => {
    const store = new MemoryObjectStore();
    expect(await store.put('a', 'first', null)).toBe(true);
    expect(await store.put('a', 'second', null)).toBe(false);
    expect(store.objects.get('a')?.text).toBe('first');
  });

  it('writes with an etag only while the stored object still has it', async () => {
    const store = new MemoryObjectStore();
    await store.put('a', 'one');
    const { etag } = store.objects.get('a')!;
    expect(await store.put('a', 'two', etag)).toBe(true);
    // the etag moved with that write: the old one no longer matches
    expect(await store.put('a', 'three', etag)).toBe(false);
    expect(store.objects.get('a')?.text).toBe('two');
    // an etag for a key that is absent never matches
    expect(await store.put('b', 'x', etag)).toBe(false);
    expect(store.objects.has('b')).toBe(false);
  });

  it('writes without a condition whatever is stored', async () => {
    const store = new MemoryObjectStore();
    expect(await store.put('a', 'one')).toBe(true);
    expect(await store.put('a', 'two')).toBe(true);
    expect(store.objects.get('a')?.text).toBe('two');
  });

  it('set writes as another writer would: a write conditional on the old etag then fails', async () => {
    const store = new MemoryObjectStore();
    await store.put('a', 'mine');
    const { etag } = store.objects.get('a')!;
    store.set('a', 'theirs');
    expect(store.objects.get('a')?.etag).not.toBe(etag);
    expect(await store.put('a', 'mine again', etag)).toBe(false);
    expect(await store.get('a', etag)).toStrictEqual({ text: 'theirs', etag: store.objects.get('a')!.etag });
  });
});

describe('MemoryObjectStore as KV (strong false)', () => {
  it('is weak, of kind kv', () => {
    const store = new MemoryObjectStore(false);
    expect(store.strong).toBe(false);
    expect(store.kind).toBe('kv');
  });

  it('reads the text with no etag, and never answers unchanged', async () => {
    const store = new MemoryObjectStore(false);
    expect(await store.get('a')).toBeNull();
    await store.put('a', 'one');
    expect(await store.get('a')).toStrictEqual({ text: 'one' });
    const internal = store.objects.get('a')!.etag;
    expect(await store.get('a', internal)).toStrictEqual({ text: 'one' });
  });

  it('ignores write conditions: every write wins', async () => {
    const store = new MemoryObjectStore(false);
    expect(await store.put('a', 'one', null)).toBe(true);
    expect(await store.put('a', 'two', null)).toBe(true);
    expect(await store.put('a', 'three', 'not-the-etag')).toBe(true);
    expect(await store.get('a')).toStrictEqual({ text: 'three' });
  });
});

describe('MemoryObjectStore.delete', () => {
  it('removes the keys given, ignores absent ones, keeps the rest', async () => {
    const store = new MemoryObjectStore();
    for (const key of ['a', 'b', 'c']) await store.put(key, key);
    await store.delete(['a', 'c', 'nope']);
    expect([...store.objects.keys()]).toEqual(['b']);
    await store.delete([]);
    expect(await store.get('b')).not.toBeNull();
  });
});

describe('MemoryObjectStore.list', () => {
  it('lists the keys under the prefix (a prefix, not a substring), in key order', async () => {
    const store = new MemoryObjectStore();
    for (const key of ['p/c', 'x/p/a', 'p/a', 'q/a', 'p/b', 'pp/a']) store.set(key, '1');
    expect(await store.list('p/')).toStrictEqual({ keys: ['p/a', 'p/b', 'p/c'] });
    expect(await store.list('none/')).toStrictEqual({ keys: [] });
    expect((await store.list('')).keys).toEqual(['p/a', 'p/b', 'p/c', 'pp/a', 'q/a', 'x/p/a']);
  });

  it('pages 1,000 keys at a time, with where the next page starts', async () => {
    const store = new MemoryObjectStore();
    const keys = keysFrom(2_500);
    for (const key of [...keys].reverse()) store.set(key, '1');
    const first = await store.list('k/');
    expect(first.keys).toEqual(keys.slice(0, 1000));
    expect(first.next).toBeDefined();
    const second = await store.list('k/', first.next);
    expect(second.keys).toEqual(keys.slice(1000, 2000));
    const third = await store.list('k/', second.next);
    expect(third).toStrictEqual({ keys: keys.slice(2000) });
  });

  it('has no next page after exactly 1,000 keys, and one after 1,001', async () => {
    const store = new MemoryObjectStore();
    for (const key of keysFrom(1000)) store.set(key, '1');
    expect(await store.list('k/')).toStrictEqual({ keys: keysFrom(1000) });
    store.set('k/99999', '1');
    const first = await store.list('k/');
    expect(first.keys).toHaveLength(1000);
    expect(await store.list('k/', first.next)).toStrictEqual({ keys: ['k/99999'] });
  });
});
