/**
 * The Worker's projects (src/stores/session-catalog.ts): the sessions synced into its bucket, found
 * by listing it at most once per TTL, each served by a store over that session. Sessions are
 * synced here by the real ingest (sync/ingest.ts) into the in-memory R2, which counts the storage
 * calls; time is the catalog's injected clock.
 */
import { describe, expect, it } from 'vitest';
import { PROJECT_NAME } from '../../src/fleet.js';
import { SessionCatalog } from '../../src/stores/session-catalog.js';
import { beatKey, legacyKey } from '../../src/sync/shards.js';
import { ingestOk, payloadOf } from '../support/format3.js';
import { MemoryObjectStore } from '../support/object-store.js';

/** A session as the bucket holds it once synced (its beat), without the ingest's cost. */
const synced = (bucket: MemoryObjectStore, ...sessions: string[]) => {
  for (const session of sessions) bucket.set(beatKey(session), '{}');
};

function setup(options: { listTtlMs?: number } = {}) {
  const bucket = new MemoryObjectStore();
  let now = 1_000_000;
  const catalog = new SessionCatalog(bucket, { ...options, clock: () => now });
  return {
    bucket,
    catalog,
    names: async () => (await catalog.list()).map((p) => p.name),
    at: (ms: number) => void (now = 1_000_000 + ms),
  };
}

describe('SessionCatalog.list', () => {
  it('lists every synced session, labelled with its name, in name order', async () => {
    const { bucket, catalog } = setup();
    // In key order `sessions/a-b/…` comes before `sessions/a/…` ('-' sorts before '/'): names are sorted again.
    synced(bucket, 'a', 'a-b', 'Zeta', 'b');
    // a format 1–2 session (one document) counts as synced too
    bucket.set(legacyKey('old'), '{}');
    expect(await catalog.list()).toEqual([
      { name: 'Zeta', labels: { session: 'Zeta' } },
      { name: 'a', labels: { session: 'a' } },
      { name: 'a-b', labels: { session: 'a-b' } },
      { name: 'b', labels: { session: 'b' } },
      { name: 'old', labels: { session: 'old' } },
    ]);
  });

  it('leaves out a stored name that is not a valid project name', async () => {
    const { bucket, names } = setup();
    const tooLong = 'x'.repeat(65);
    const invalid = ['.hidden', 'with space', tooLong, '-dash-first'];
    for (const name of invalid) expect(PROJECT_NAME.test(name), name).toBe(false);
    synced(bucket, 'good', ...invalid);
    expect(await names()).toEqual(['good']);
  });

  it('lists every stored session however many (no cap), over several storage pages', async () => {
    const { bucket, names } = setup();
    const sessions = Array.from({ length: 1_200 }, (_, i) => `s${String(i).padStart(4, '0')}`);
    synced(bucket, ...sessions);
    expect(await names()).toEqual(sessions);
    expect(bucket.count('list')).toBe(2);
  });

  it('lists nothing, and reads no storage, without a bucket', async () => {
    const catalog = new SessionCatalog(undefined, {});
    expect(await catalog.list()).toEqual([]);
  });

  it('lists the bucket at most once a minute by default: the same answer until 60 s have passed', async () => {
    const { bucket, names, at } = setup();
    synced(bucket, 'one');
    expect(await names()).toEqual(['one']);
    expect(bucket.count('list')).toBe(1);
    synced(bucket, 'two');
    at(59_999);
    expect(await names()).toEqual(['one']);
    expect(bucket.count('list')).toBe(1);
    at(60_000);
    expect(await names()).toEqual(['one', 'two']);
    expect(bucket.count('list')).toBe(2);
    // and the next minute is counted from that list
    synced(bucket, 'three');
    at(119_999);
    expect(await names()).toEqual(['one', 'two']);
    at(120_000);
    expect(await names()).toEqual(['one', 'three', 'two']);
  });

  it('honours listTtlMs', async () => {
    const { bucket, names, at } = setup({ listTtlMs: 5_000 });
    synced(bucket, 'one');
    await names();
    synced(bucket, 'two');
    at(4_999);
    expect(await names()).toEqual(['one']);
    at(5_000);
    expect(await names()).toEqual(['one', 'two']);
    expect(bucket.count('list')).toBe(2);
  });

  it('with listTtlMs 0, lists on every call, one after the other', async () => {
    const { bucket, names } = setup({ listTtlMs: 0 });
    synced(bucket, 'one');
    await names();
    synced(bucket, 'two');
    expect(await names()).toEqual(['one', 'two']);
    expect(bucket.count('list')).toBe(2);
  });

  it('shares one list between concurrent calls, and lists again once it is over and stale', async () => {
    const { bucket, catalog, at } = setup();
    synced(bucket, 'one');
    const [a, b] = await Promise.all([catalog.list(), catalog.list()]);
    expect(a).toEqual([{ name: 'one', labels: { session: 'one' } }]);
    expect(b).toBe(a);
    expect(bucket.count('list')).toBe(1);
    synced(bucket, 'two');
    at(60_000);
    expect((await catalog.list()).map((p) => p.name)).toEqual(['one', 'two']);
    expect(bucket.count('list')).toBe(2);
  });

  it("uses the real clock when given none: a second call right after is served from the first list", async () => {
    const bucket = new MemoryObjectStore();
    synced(bucket, 'one');
    const catalog = new SessionCatalog(bucket, {});
    await catalog.list();
    synced(bucket, 'two');
    expect((await catalog.list()).map((p) => p.name)).toEqual(['one']);
    expect(bucket.count('list')).toBe(1);
  });
});

describe('SessionCatalog.store', () => {
  it("reads the session's own synced state from the bucket", async () => {
    const { bucket, catalog } = setup();
    await ingestOk(bucket, 'alpha', payloadOf({ available: true }), 5_000);
    await ingestOk(bucket, 'beta', payloadOf({ available: false, problem: 'missing' }), 7_000);
    const alpha = await catalog.store('alpha').read();
    expect(alpha.available).toBe(true);
    expect(alpha.lastSyncMs).toBe(5_000);
    const beta = await catalog.store('beta').read();
    expect(beta.available).toBe(false);
    expect(beta.lastSyncMs).toBe(7_000);
  });

  it('serves a valid name that has not synced yet as unavailable, not as an error', async () => {
    const { bucket, catalog } = setup();
    const reading = await catalog.store('later').read();
    expect(reading.available).toBe(false);
    expect(reading.problem).toContain('later');
    expect(bucket.calls.filter((c) => c.op === 'get').map((c) => c.key)).toEqual([beatKey('later'), legacyKey('later')]);
  });

  it('without a bucket, gives a store whose every read fails', async () => {
    const catalog = new SessionCatalog(undefined, {});
    const store = catalog.store('any');
    await expect(store.read()).rejects.toThrow(/no R2 bucket or KV namespace is bound/);
    expect(catalog.store('any')).toBe(store);
  });

  it('gives the same store for the same name, until forgotten', async () => {
    const { catalog } = setup();
    const alpha = catalog.store('alpha');
    const beta = catalog.store('beta');
    expect(catalog.store('alpha')).toBe(alpha);
    expect(beta).not.toBe(alpha);
    catalog.forget('alpha');
    const again = catalog.store('alpha');
    expect(again).not.toBe(alpha);
    expect(catalog.store('alpha')).toBe(again);
    expect(catalog.store('beta')).toBe(beta);
    // forgetting a name it never had is harmless
    catalog.forget('never');
    expect(catalog.store('beta')).toBe(beta);
  });

  it('keeps at most 1,024 stores, dropping the oldest first', () => {
    const { catalog } = setup();
    const names = Array.from({ length: 1_025 }, (_, i) => `n${i}`);
    const stores = names.map((name) => catalog.store(name));
    // the 1,025th pushed out the first only: the second and the last are still kept
    expect(catalog.store(names[1]!)).toBe(stores[1]);
    expect(catalog.store(names[1_024]!)).toBe(stores[1_024]);
    expect(catalog.store(names[0]!)).not.toBe(stores[0]);
  });

  it('keeps all 1,024 when there are exactly that many', () => {
    const { catalog } = setup();
    const names = Array.from({ length: 1_024 }, (_, i) => `n${i}`);
    const stores = names.map((name) => catalog.store(name));
    expect(names.every((name, i) => catalog.store(name) === stores[i])).toBe(true);
  });
});
