/**
 * The session cap (sync/admission.ts) over the in-memory store with R2's semantics (strong: etags,
 * conditional writes) and KV's (neither). The same behaviour in real workerd: test/worker/session-cap.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { REGISTRY_KEY, SessionAdmission } from '../../src/sync/admission.js';
import { ingestShards } from '../../src/sync/ingest.js';
import { beatKey, bucketKey, bucketOf, legacyKey } from '../../src/sync/shards.js';
import { effPayload, nextNonce, options, upserts } from '../support/format3.js';
import { MemoryObjectStore } from '../support/object-store.js';

const names = (n: number, prefix = 's') => Array.from({ length: n }, (_, i) => `${prefix}${i}`);
const registry = (store: MemoryObjectStore) => (JSON.parse(store.text(REGISTRY_KEY) ?? 'null') as { sessions: string[] } | null)?.sessions;

describe('R2: the registry serialises creates', () => {
  it('a look (reserve false) in a new isolate refuses from the stored registry when it is full, with one read, and remembers it', async () => {
    const store = new MemoryObjectStore();
    await new SessionAdmission(store, { maxSessions: 3 }).admit('a');
    await new SessionAdmission(store, { maxSessions: 3 }).admit('b');
    // Room for one more: a look says yes (and writes nothing).
    const roomy = new SessionAdmission(store, { maxSessions: 3 });
    expect(await roomy.admit('c', false)).toBeUndefined();
    await roomy.admit('c');
    const from = store.calls.length;
    const fresh = new SessionAdmission(store, { maxSessions: 3, clock: () => 0 });
    expect(await fresh.admit('d', false)).toMatchObject({ status: 409, error: expect.stringMatching(/at most 3 sessions.*"d"/) });
    expect(store.calls.slice(from).map((c) => c.op)).toEqual(['get']);
    // A name in the registry is never refused; another new one is refused from memory, reading nothing.
    expect(await fresh.admit('b', false)).toBeUndefined();
    const after = store.calls.length;
    expect(await fresh.admit('e')).toMatchObject({ status: 409 });
    expect(store.calls.length).toBe(after);
  });

  it('12 concurrent admissions under a cap of 5 admit exactly 5, each written once into the registry', async () => {
    const store = new MemoryObjectStore();
    const admission = new SessionAdmission(store, { maxSessions: 5 });
    const answers = await Promise.all(names(12).map((name) => admission.admit(name)));
    const admitted = names(12).filter((_, i) => answers[i] === undefined);
    expect(admitted).toHaveLength(5);
    expect(answers.filter((a) => a !== undefined)).toEqual(Array.from({ length: 7 }, () => ({ status: 409, error: expect.stringMatching(/at most 5 sessions/) })));
    expect(registry(store)).toEqual(admitted.sort());
    // separate isolates (one admission each) are serialised by the store alone
    const shared = new MemoryObjectStore();
    const isolates = await Promise.all(names(12).map((name) => new SessionAdmission(shared, { maxSessions: 5 }).admit(name)));
    expect(isolates.filter((a) => a === undefined)).toHaveLength(5);
    expect(registry(shared)).toHaveLength(5);
  });

  it('builds the registry from one list when it is absent (sessions stored before it), and keeps them all', async () => {
    const store = new MemoryObjectStore();
    for (const name of names(4, 'old')) store.set(beatKey(name), '{}');
    store.set(legacyKey('older'), '{}');
    const admission = new SessionAdmission(store, { maxSessions: 3, clock: () => 0 });
    expect(await admission.admit('new')).toMatchObject({ status: 409 });
    expect(store.count('list')).toBe(1);
    expect(registry(store)).toEqual([...names(4, 'old'), 'older']);
    // Stored ones stay admitted (they sync without asking, but a retry of the name is fine too).
    expect(await admission.admit('old0')).toBeUndefined();
    expect(store.count('list')).toBe(1);
  });

  it('looking (reserve false) writes nothing; a full registry is remembered for the ttl, then read again', async () => {
    const store = new MemoryObjectStore();
    let now = 0;
    const admission = new SessionAdmission(store, { maxSessions: 2, clock: () => now, ttlMs: 60_000 });
    expect(await admission.admit('a', false)).toBeUndefined();
    expect(store.count('put')).toBe(0);
    for (const name of ['a', 'b']) expect(await admission.admit(name)).toBeUndefined();
    const from = store.calls.length;
    for (let i = 0; i < 10; i++) expect(await admission.admit(`c${i}`, i % 2 === 0)).toMatchObject({ status: 409 });
    expect(store.calls.slice(from).map((c) => c.op)).toEqual(['get']); // the registry, once
    // an admitted name is never refused from memory
    expect(await admission.admit('a')).toBeUndefined();
    now = 60_000;
    const later = store.calls.length;
    expect(await admission.admit('c0')).toMatchObject({ status: 409 });
    expect(store.calls.slice(later).map((c) => c.op)).toEqual(['get']);
  });

  it('an unreadable registry is rebuilt from the list over its own version', async () => {
    const store = new MemoryObjectStore();
    store.set(beatKey('kept'), '{}');
    store.set(REGISTRY_KEY, '{"sessions": 7');
    expect(await new SessionAdmission(store, { maxSessions: 5 }).admit('new')).toBeUndefined();
    expect(registry(store)).toEqual(['kept', 'new']);
  });

  it('tells a create that lost every round to retry (503), never passing the cap', async () => {
    const store = new MemoryObjectStore();
    // Another writer changes the registry between every read and write.
    const get = store.get.bind(store);
    store.get = async (key, etag) => {
      const read = await get(key, etag);
      if (key === REGISTRY_KEY) store.set(REGISTRY_KEY, JSON.stringify({ sessions: [] }));
      return read;
    };
    expect(await new SessionAdmission(store, { maxSessions: 5 }).admit('unlucky')).toEqual({ status: 503, error: expect.stringMatching(/retry/) });
    expect(registry(store)).toEqual([]);
  });
});

describe("R2: a new session's first head", () => {
  it('of two first syncs of one new session racing, one commits and the other gets 503 with its buckets removed', async () => {
    const store = new MemoryObjectStore();
    const [a, b] = await Promise.all([
      ingestShards(store, 'racing', effPayload({ upsert: await upserts(['iteration-1.json']) }), options(store, 1000, nextNonce())),
      ingestShards(store, 'racing', effPayload({ upsert: await upserts(['iteration-2.json']) }), options(store, 2000, nextNonce())),
    ]);
    expect([a.status, b.status].sort()).toEqual([200, 503]);
    // Only the winner's epoch (its time) holds a bucket.
    const winner = a.status === 200 ? 1000 : 2000;
    expect([...store.objects.keys()].filter((key) => key.includes('/sets/'))).toEqual([bucketKey('racing', 'efficiency', winner, bucketOf(a.status === 200 ? 'iteration-1.json' : 'iteration-2.json'))]);
  });
});

describe('KV: counted by a list and what this isolate admitted', () => {
  it('holds the cap within one isolate, also for concurrent creates, and lists at most once per ttl', async () => {
    const store = new MemoryObjectStore(false);
    let now = 0;
    const admission = new SessionAdmission(store, { maxSessions: 5, clock: () => now });
    const answers = await Promise.all(names(12).map((name) => admission.admit(name)));
    expect(answers.filter((a) => a === undefined)).toHaveLength(5);
    expect(store.count('put')).toBe(0); // nothing stored for the count
    const from = store.calls.length;
    for (let i = 0; i < 10; i++) expect(await admission.admit(`late${i}`)).toMatchObject({ status: 409 });
    expect(store.count('list', from)).toBe(0);
    // After the ttl one list; the sessions admitted here count although the list does not show them yet.
    now = 60_000;
    expect(await admission.admit('late')).toMatchObject({ status: 409 });
    expect(store.count('list', from)).toBe(1);
  });

  it('counts stored sessions other isolates created once the list shows them', async () => {
    const store = new MemoryObjectStore(false);
    let now = 0;
    const admission = new SessionAdmission(store, { maxSessions: 2, clock: () => now });
    expect(await admission.admit('here')).toBeUndefined();
    store.set(beatKey('elsewhere'), '{}');
    now = 60_000;
    expect(await admission.admit('third')).toMatchObject({ status: 409 });
  });

  it('a name it counts is admitted even when full; a look reserves nothing; what it admitted stops counting after two ttls unless listed', async () => {
    const store = new MemoryObjectStore(false);
    let now = 5_000_000;
    const admission = new SessionAdmission(store, { maxSessions: 2, clock: () => now });
    expect(await admission.admit('a', false)).toBeUndefined(); // a look: no place taken
    expect(await admission.admit('b')).toBeUndefined();
    expect(await admission.admit('c')).toBeUndefined();
    expect(await admission.admit('b')).toBeUndefined(); // full, but b is one of them
    expect(await admission.admit('a')).toMatchObject({ status: 409 });
    const from = store.calls.length;
    now += 59_999; // within the ttl: from memory, whatever the clock's origin
    expect(await admission.admit('d')).toMatchObject({ status: 409 });
    expect(store.count('list', from)).toBe(0);
    // b was stored (the list shows it), c not yet: one ttl on, c still counts (a KV list can lag)...
    store.set(beatKey('b'), '{}');
    now += 1; // 60,000 after c was admitted
    expect(await admission.admit('e')).toMatchObject({ status: 409 });
    expect(store.count('list', from)).toBe(1);
    // ...and after two ttls it no longer does.
    now += 60_000;
    expect(await admission.admit('f')).toBeUndefined();
    expect(store.count('list', from)).toBe(2);
  });
});

describe('what an admission costs', () => {
  it('R2: a new name is one read and one conditional write once the registry exists', async () => {
    const store = new MemoryObjectStore();
    const admission = new SessionAdmission(store, { maxSessions: 5 });
    await admission.admit('a');
    const from = store.calls.length;
    expect(await admission.admit('b')).toBeUndefined();
    expect(store.calls.slice(from).map((c) => c.op)).toEqual(['get', 'put']);
  });

  it('KV: names admitted one after another within the ttl cost one list in all', async () => {
    const store = new MemoryObjectStore(false);
    const admission = new SessionAdmission(store, { maxSessions: 5, clock: () => 1_000 });
    for (const name of ['a', 'b', 'c']) expect(await admission.admit(name)).toBeUndefined();
    expect(store.count('list')).toBe(1);
  });
});

describe('a create that keeps losing the race', () => {
  it('is told to retry (503) after 16 lost conditional writes, reading the registry before each', async () => {
    class AlwaysLate extends MemoryObjectStore {
      puts = 0;
      override put(key: string, text: string, ifMatch?: string | null): Promise<boolean> {
        if (key !== REGISTRY_KEY) return super.put(key, text, ifMatch);
        this.puts++;
        return Promise.resolve(false);
      }
    }
    const store = new AlwaysLate();
    expect(await new SessionAdmission(store, { maxSessions: 5 }).admit('a')).toEqual({ status: 503, error: 'many sessions are being created at once; retry' });
    expect(store.puts).toBe(16);
  });
});

describe('the registry object', () => {
  it('holds each admitted name once, sorted, whatever order they came in', async () => {
    const store = new MemoryObjectStore();
    const admission = new SessionAdmission(store, { maxSessions: 5 });
    for (const name of ['zeta', 'alpha', 'mid']) await admission.admit(name);
    await admission.admit('alpha');
    expect(registry(store)).toEqual(['alpha', 'mid', 'zeta']);
  });
});
