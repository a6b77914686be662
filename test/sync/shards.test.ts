/**
 * The format 3 layout (sync/shards.ts): bucket numbers, the used-bucket bitmap, undoing a bucket
 * write the head never committed, keeping a set's summary as records come and go, finding the
 * stored sessions, and document objects.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { EfficiencyRecord } from '../../src/schemas/efficiency.js';
import { MAX_BAD_NAMED } from '../../src/stores/store.js';
import { base64ToBytes, bytesToBase64, sha256Hex } from '../../src/sync/protocol.js';
import {
  applyRecord,
  BUCKETS,
  bucketOf,
  docContent,
  docObject,
  emptySetHead,
  markBucket,
  RECENT_COMMITS,
  sessionOfKey,
  settleBucket,
  listSessions,
  usedBuckets,
  type Bucket,
  type FileRecord,
} from '../../src/sync/shards.js';
import { efficiencyContribution, foldUsage } from '../../src/usage-totals.js';
import { MemoryObjectStore } from '../support/object-store.js';

/** FNV-1a, 32 bits, over UTF-16 code units, written here with BigInt arithmetic. */
function fnv1a(name: string): bigint {
  let hash = 0x811c9dc5n;
  for (let i = 0; i < name.length; i++) {
    hash ^= BigInt(name.charCodeAt(i));
    hash = (hash * 0x01000193n) % 2n ** 32n;
  }
  return hash;
}

describe('bucketOf', () => {
  it('is FNV-1a onto BUCKETS: published test vectors', () => {
    // FNV-1a 32-bit of "", "a" and "foobar": 0x811c9dc5, 0xe40c292c, 0xbf9cf968.
    expect(fnv1a('')).toBe(0x811c9dc5n);
    expect(fnv1a('a')).toBe(0xe40c292cn);
    expect(fnv1a('foobar')).toBe(0xbf9cf968n);
    expect(BUCKETS).toBe(1024);
    expect(bucketOf('')).toBe(0x1c5);
    expect(bucketOf('a')).toBe(0x12c);
    expect(bucketOf('foobar')).toBe(0x168);
  });

  it('agrees with an independent implementation on any name, and stays in [0, BUCKETS)', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.string({ unit: 'binary' }), fc.integer({ min: 0, max: 99_999 }).map((n) => `iteration-${n}.json`)), (name) => {
        const bucket = bucketOf(name);
        expect(bucket).toBe(Number(fnv1a(name) % BigInt(BUCKETS)));
        expect(Number.isInteger(bucket) && bucket >= 0 && bucket < BUCKETS).toBe(true);
        expect(bucketOf(name)).toBe(bucket);
      }),
      { numRuns: 200 },
    );
  });
});

describe('markBucket and usedBuckets', () => {
  const indices = fc.uniqueArray(fc.oneof(fc.constantFrom(0, 1, 3, 4, BUCKETS - 1), fc.integer({ min: 0, max: BUCKETS - 1 })), { maxLength: 80 });

  it('round-trips any set of buckets, in order, with no trailing zeros in the hex', () => {
    fc.assert(
      fc.property(indices, fc.array(fc.boolean(), { maxLength: 80 }), (used, drop) => {
        const set = emptySetHead();
        for (const b of used) markBucket(set, b, true);
        expect(usedBuckets(set)).toEqual([...used].sort((a, b) => a - b));
        expect(set.buckets).toMatch(/^([0-9a-f]*[1-9a-f])?$/);
        expect(set.buckets.length).toBeLessThanOrEqual(BUCKETS / 4);
        // unmarking some leaves the others, still without trailing zeros
        const gone = used.filter((_, i) => drop[i]);
        for (const b of gone) markBucket(set, b, false);
        expect(usedBuckets(set)).toEqual(used.filter((b) => !gone.includes(b)).sort((a, b) => a - b));
        expect(set.buckets).toMatch(/^([0-9a-f]*[1-9a-f])?$/);
        // marking twice or unmarking an unused bucket changes nothing
        const before = set.buckets;
        for (const b of used.filter((b) => !gone.includes(b))) markBucket(set, b, true);
        for (const b of gone) markBucket(set, b, false);
        expect(set.buckets).toBe(before);
      }),
    );
  });

  it('writes bucket b as bit b % 4 of hex digit b / 4', () => {
    const set = emptySetHead();
    markBucket(set, 0, true);
    expect(set.buckets).toBe('1');
    markBucket(set, 7, true);
    expect(set.buckets).toBe('18');
    markBucket(set, BUCKETS - 1, true);
    expect(set.buckets).toBe(`18${'0'.repeat(BUCKETS / 4 - 3)}8`);
    markBucket(set, BUCKETS - 1, false);
    markBucket(set, 0, false);
    expect(set.buckets).toBe('08');
  });
});

describe('settleBucket', () => {
  const HASH = 'a'.repeat(64);
  const rec = (m: number): FileRecord => ({ h: HASH, m, c: 1 });
  const head = { rev: 40, recent: Array.from({ length: RECENT_COMMITS }, (_, k): [number, string] => [40 - RECENT_COMMITS + 1 + k, `n${40 - RECENT_COMMITS + 1 + k}`]) };
  // a write that changed x, added y, removed z
  const written = (rev: number, nonce: string, undo = true): Bucket => ({
    rev,
    nonce,
    files: { x: rec(2), y: rec(3), w: rec(9) },
    ...(undo ? { undo: { x: rec(1), y: null, z: rec(5) } } : {}),
  });
  const undone = { rev: 0, nonce: '', files: { x: rec(1), z: rec(5), w: rec(9) } };

  it('keeps a write the head committed: its (rev, nonce) is among the recent commits', () => {
    const bucket = written(35, 'n35');
    expect(settleBucket(bucket, head)).toBe(bucket);
    expect(settleBucket(written(40, 'n40'), head)).toEqual(written(40, 'n40'));
  });

  it('undoes a write at a committed rev with another nonce: entries restored, added ones removed', () => {
    const bucket = written(35, 'other');
    const copy = structuredClone(bucket);
    expect(settleBucket(bucket, head)).toEqual(undone);
    expect(bucket).toEqual(copy); // the stored bucket is not changed in place
  });

  it('undoes a write past the head\'s revision', () => {
    expect(settleBucket(written(41, 'n41'), head)).toEqual(undone);
    expect(settleBucket(written(41, 'n41'), { rev: 0, recent: [] })).toEqual(undone);
  });

  it('keeps a write older than the remembered commits, and one without undo', () => {
    const old = written(40 - RECENT_COMMITS, 'whatever');
    expect(settleBucket(old, head)).toBe(old);
    const plain = written(41, 'n41', false);
    expect(settleBucket(plain, head)).toBe(plain);
  });
});

describe('applyRecord: a set summary kept up to date', () => {
  const HASH = 'c'.repeat(64);
  const records = fc.uniqueArray(
    fc.record({
      name: fc.integer({ min: 0, max: 60 }).map((n) => `iteration-${n}.json`),
      m: fc.integer({ min: 0, max: 12 }),
      bad: fc.boolean(),
      stale: fc.boolean(),
      value: fc.record({ input_tokens: fc.nat(1000), cost_usd: fc.option(fc.constantFrom(0, 0.5), { nil: undefined }), iteration: fc.nat(12) }),
    }),
    { selector: (r) => r.name, maxLength: 30 },
  );
  const recordOf = (r: { name: string; m: number; bad: boolean; stale: boolean; value: EfficiencyRecord }): FileRecord => ({
    h: HASH,
    m: r.m,
    ...(r.bad ? { p: `bad ${r.name}` } : {}),
    ...(!r.bad || r.stale ? { c: efficiencyContribution(r.name, r.value) } : {}),
  });

  it('counts, names the bad, keeps the newest mtimes and totals as the records present say', () => {
    fc.assert(
      fc.property(records, fc.array(fc.boolean(), { maxLength: 30 }), (all, removed) => {
        const set = emptySetHead();
        for (const r of all) applyRecord('efficiency', set, r.name, recordOf(r), 1);
        const gone = all.filter((_, i) => removed[i]);
        for (const r of gone) applyRecord('efficiency', set, r.name, recordOf(r), -1);
        const left = all.filter((r) => !gone.includes(r));
        expect(set.count).toBe(left.length);
        const bad = left.filter((r) => r.bad).sort((a, b) => (a.name < b.name ? -1 : 1));
        expect(set.bad).toBe(bad.length);
        expect(set.badEntries).toEqual(bad.map((r) => ({ name: r.name, problem: `bad ${r.name}`, stale: r.stale })));
        expect(set.mtimes[0]?.[0]).toBe(left.length > 0 ? Math.max(...left.map((r) => r.m)) : undefined);
        const folded = foldUsage(left.filter((r) => !r.bad || r.stale).map((r) => ({ name: r.name, value: r.value })));
        if (folded.models.length > 0) expect(set.totals).toMatchObject({ outcomes: folded.outcomes, slots: folded.slots, iterations: folded.iterations });
      }),
    );
  });

  it('counts receipts by verdict and provenance', () => {
    const set = emptySetHead();
    applyRecord('proofs', set, 'r1', { h: HASH, m: 1, c: { v: 0, a: 1, g: 0 } }, 1);
    applyRecord('proofs', set, 'r2', { h: HASH, m: 2, c: { v: 3, a: 0, g: 1 } }, 1);
    applyRecord('proofs', set, 'r1', { h: HASH, m: 1, c: { v: 0, a: 1, g: 0 } }, -1);
    expect(set.totals).toEqual({ total: 1, byVerdict: { verified: 0, with_gaps: 0, not_verified: 0, unknown: 1 }, withProvenance: { attestation: 0, gpg: 1 } });
    applyRecord('pids', set, '1.json', { h: HASH, m: 3, c: 1 }, 1);
    expect(set.count).toBe(2);
  });

  // Known limitation (docs/worker.md, "Storage"): applyRecord/insertBad (shards.ts) keep only the first MAX_BAD_NAMED bad entries by name;
  // when named ones become good or go, the bad entries past the cap are not known any more, so the
  // head names fewer than the bad files left (the status shows the first 3 by name, as Node does).
  // Fix: when a named entry is removed while `bad > badEntries.length`, the names cannot be
  // recovered from the head: keep more than are shown (e.g. bounded but refilled from the buckets
  // the ingest reads), or name the shown ones from the buckets on ingest.
  it.fails('still names the bad entries left after the first MAX_BAD_NAMED of more became good', () => {
    const set = emptySetHead();
    const names = Array.from({ length: MAX_BAD_NAMED + 3 }, (_, k) => `iteration-${String(k).padStart(3, '0')}.json`);
    for (const name of names) applyRecord('efficiency', set, name, { h: HASH, m: 1, p: 'torn' }, 1);
    for (const name of names.slice(0, MAX_BAD_NAMED)) applyRecord('efficiency', set, name, { h: HASH, m: 1, p: 'torn' }, -1);
    expect(set.bad).toBe(3);
    expect(set.badEntries.map((b) => b.name)).toEqual(names.slice(MAX_BAD_NAMED));
  });
});

describe('sessionOfKey and listSessions', () => {
  it('names the session of a beat or a format 1-2 document, nothing else', () => {
    expect(sessionOfKey('sessions/a/beat.json')).toBe('a');
    expect(sessionOfKey('sessions/a.b-c/state.json')).toBe('a.b-c');
    for (const key of ['sessions/a/head.json', 'sessions//beat.json', 'sessions/beat.json', 'data/a/docs/loki.pid', 'x/sessions/a/beat.json', 'sessions/a/b/beat.json', 'sessions/a/beat.json.tmp']) {
      expect(sessionOfKey(key), key).toBeUndefined();
    }
  });

  it('lists beats and legacy documents once each, ignoring other keys, at most `atMost`', async () => {
    const store = new MemoryObjectStore();
    for (const key of ['sessions/a/beat.json', 'sessions/a/head.json', 'sessions/a/state.json', 'sessions/b/state.json', 'sessions/c/head.json', 'data/d/docs/loki.pid', 'data/e/sets/pids/1/2.json']) {
      store.set(key, '{}');
    }
    expect((await listSessions(store, 100)).sort()).toEqual(['a', 'b']);
    expect(await listSessions(store, 1)).toHaveLength(1);
    expect(await listSessions(store, 0)).toEqual([]);
  });

  it('pages through more than 1,000 keys, and stops listing once it has `atMost`', async () => {
    const store = new MemoryObjectStore(false);
    const names = Array.from({ length: 700 }, (_, k) => `s${String(k).padStart(4, '0')}`);
    for (const name of names) {
      store.set(`sessions/${name}/beat.json`, '{}');
      store.set(`sessions/${name}/head.json`, '{}');
      if (Number(name.slice(1)) % 2 === 0) store.set(`sessions/${name}/state.json`, '{}');
    }
    const all = await listSessions(store, 10_000);
    expect(all.sort()).toEqual(names);
    expect(store.count('list')).toBe(2); // 1,750 keys
    const from = store.calls.length;
    expect(await listSessions(store, 50)).toHaveLength(50);
    expect(store.count('list', from)).toBe(1);
  });
});

describe('document objects', () => {
  const cases: [string, Uint8Array][] = [
    ['UTF-8 text', new TextEncoder().encode('{"mode": "autonomous", "note": "héllo ✓ 𝄞"}\n')],
    ['a byte-order mark', new Uint8Array([0xef, 0xbb, 0xbf, 0x7b, 0x7d])],
    ['nothing', new Uint8Array()],
    ['bytes that are not UTF-8', new Uint8Array([0xff, 0xfe, 0x00, 0x80, 0x41, 0xc3])],
  ];

  it.each(cases)('round-trips %s', async (_what, bytes) => {
    const hash = await sha256Hex(bytes);
    const text = docObject(hash, bytes, bytesToBase64(bytes));
    expect(text.startsWith(`${hash}\n`)).toBe(true);
    expect(docContent({ text }, hash)).toEqual(bytes);
    // stored as it is when it is text: no JSON escaping, no base64
    expect(text.length).toBeLessThanOrEqual(hash.length + 6 + Math.max(bytes.length, Math.ceil(bytes.length / 3) * 4));
  });

  it('stores text as text and other bytes as base64', async () => {
    const text = new TextEncoder().encode('plain');
    expect(docObject('h', text, bytesToBase64(text))).toBe('h\ntext\nplain');
    const binary = new Uint8Array([0xff, 0x00]);
    expect(docObject('h', binary, bytesToBase64(binary))).toBe(`h\nb64\n${bytesToBase64(binary)}`);
    expect(base64ToBytes(docObject('h', binary, bytesToBase64(binary)).split('\n')[2]!)).toEqual(binary);
  });

  it('gives nothing for another hash, a garbled object, or no object', async () => {
    const bytes = new TextEncoder().encode('1234');
    const hash = await sha256Hex(bytes);
    const text = docObject(hash, bytes, bytesToBase64(bytes));
    expect(docContent({ text }, 'f'.repeat(64))).toBeUndefined();
    expect(docContent({ text: `${hash}\nzip\n1234` }, hash)).toBeUndefined();
    expect(docContent({ text: `${hash}\nb64\n!!not base64!!` }, hash)).toBeUndefined();
    expect(docContent({ text: `${hash}text\n1234` }, hash)).toBeUndefined();
    expect(docContent({ text: hash }, hash)).toBeUndefined();
    expect(docContent(null, hash)).toBeUndefined();
    expect(docContent('unchanged', hash)).toBeUndefined();
  });
});
