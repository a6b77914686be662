import { describe, expect, it } from 'vitest';
import type { FileRead } from '../../src/stores/store.js';
import { applyToManifest, HashCache, LAYOUT3_LIMITS, planUploads, SyncMemory } from '../../src/sync/plan.js';
import { bucketOf } from '../../src/sync/shards.js';
import { bytesToBase64, MAX_DATE_MS, MAX_INGEST_BYTES, MAX_PROBLEM_CHARS, MAX_SYNC_FILE_BYTES, sha256Hex, type Manifest } from '../../src/sync/protocol.js';
import { DEAD_RUNNER, LIVE_RUNNER, readingOf } from '../support/readings.js';

const enc = new TextEncoder();
const hex = (text: string) => sha256Hex(enc.encode(text));
const EMPTY: Manifest = { documents: {}, sets: {} };
const noSetChanges = { present: false, upsert: {}, remove: [] };

describe('planUploads', () => {
  it('uploads nothing but the heartbeat when nothing changed since the manifest', async () => {
    const memory = new SyncMemory();
    const reading = readingOf({ documents: { 'loki.pid': { content: '1234', mtimeMs: 1000 } }, efficiency: { 'iteration-1.json': { cost_usd: 1 } } });
    const [first] = await planUploads(reading, EMPTY, memory);
    const manifest = applyToManifest(EMPTY, first!);
    const again = await planUploads(reading, manifest, memory);
    expect(again).toHaveLength(1);
    expect(again[0]!.payload.documents).toEqual({});
    expect(again[0]!.payload.efficiency).toEqual({ present: true, upsert: {}, remove: [] });
    expect(again[0]!.payload.sets).toEqual({ proofs: noSetChanges, pids: noSetChanges, sessions: noSetChanges });
    expect(again[0]!.applies).toEqual({ documents: {}, sets: {} });
    expect(applyToManifest(manifest, again[0]!)).toEqual(manifest);
  });

  it('ships a new or changed document with its content, hash and mtime', async () => {
    const hash = await hex('1234');
    const [upload] = await planUploads(readingOf({ documents: { 'loki.pid': { content: '1234', mtimeMs: 1000 } } }), EMPTY, new SyncMemory());
    expect(upload!.payload.documents).toEqual({ 'loki.pid': { mtimeMs: 1000, hash, b64: bytesToBase64(enc.encode('1234')) } });
    expect(upload!.applies).toEqual({ documents: { 'loki.pid': `${hash}@1000` }, sets: {} });
    // Same content, newer mtime (the heartbeat): shipped again.
    const manifest = applyToManifest(EMPTY, upload!);
    expect(manifest).toEqual({ documents: { 'loki.pid': `${hash}@1000` }, sets: {} });
    const [touched] = await planUploads(readingOf({ documents: { 'loki.pid': { content: '1234', mtimeMs: 2000 } } }), manifest, new SyncMemory());
    expect(touched!.applies.documents).toEqual({ 'loki.pid': `${hash}@2000` });
  });

  it('ships an invalid document as its problem, without content', async () => {
    const hash = await hex('abc');
    const [upload] = await planUploads(readingOf({ documents: { 'loki.pid': { content: 'abc', mtimeMs: 5 } } }), EMPTY, new SyncMemory());
    expect(upload!.payload.documents['loki.pid']).toEqual({ mtimeMs: 5, hash, problem: 'not a pid (expected digits only)' });
    const unreadable: FileRead = { present: true, mtimeMs: 7, error: 'x'.repeat(MAX_PROBLEM_CHARS + 10), version: '' };
    const [err] = await planUploads(readingOf({ documents: { PAUSE: unreadable } }), EMPTY, new SyncMemory());
    const problem = err!.payload.documents.PAUSE!.problem!;
    expect(problem).toHaveLength(MAX_PROBLEM_CHARS);
    expect(problem).toBe(`${'x'.repeat(MAX_PROBLEM_CHARS - 1)}…`);
    expect(err!.payload.documents.PAUSE!.b64).toBeUndefined();
    expect(err!.payload.documents.PAUSE!.hash).toBe(await hex(`error:${unreadable.error}`));
  });

  it('ships a file read with an error as that error even if bytes came with it, and one with neither as unreadable', async () => {
    const both: FileRead = { present: true, bytes: enc.encode('4242'), error: 'changed while read', mtimeMs: 1, version: '' };
    const neither: FileRead = { present: true, mtimeMs: 2, version: '' };
    const [upload] = await planUploads(readingOf({ documents: { 'loki.pid': both, STOP: neither } }), EMPTY, new SyncMemory());
    expect(upload!.payload.documents['loki.pid']).toEqual({ mtimeMs: 1, hash: await hex('4242'), problem: 'changed while read' });
    expect(upload!.payload.documents.STOP).toEqual({ mtimeMs: 2, hash: await hex('error:unreadable'), problem: 'unreadable' });
  });

  it('ships a file of up to MAX_SYNC_FILE_BYTES with its content, and a larger one as a problem', async () => {
    const largest = new Uint8Array(MAX_SYNC_FILE_BYTES).fill(0x20);
    const tooLarge = new Uint8Array(MAX_SYNC_FILE_BYTES + 1).fill(0x20);
    const reading = readingOf({
      documents: { STOP: { present: true, bytes: largest, version: '' }, PAUSE: { present: true, bytes: tooLarge, version: '' } },
    });
    const uploads = await planUploads(reading, EMPTY, new SyncMemory());
    const documents = Object.assign({}, ...uploads.map((u) => u.payload.documents));
    expect(documents.STOP.b64).toHaveLength(Math.ceil(MAX_SYNC_FILE_BYTES / 3) * 4);
    expect(documents.PAUSE).toEqual({ mtimeMs: 0, hash: await sha256Hex(tooLarge), problem: `too large to sync (${MAX_SYNC_FILE_BYTES + 1} bytes)` });
  });

  it('sends null for a document gone since the manifest, and nothing for one never synced', async () => {
    const manifest: Manifest = { documents: { PAUSE: 'a@1' }, sets: {} };
    const [upload] = await planUploads(readingOf(), manifest, new SyncMemory());
    expect(upload!.payload.documents).toEqual({ PAUSE: null });
    expect(upload!.applies.documents).toEqual({ PAUSE: null });
    expect(applyToManifest(manifest, upload!).documents).toEqual({});
  });

  it('upserts changed file-set entries and removes entries gone, in the first upload', async () => {
    const content = { cost_usd: 0.5 };
    const text = JSON.stringify(content);
    const hash = await hex(text);
    const manifest: Manifest = { documents: {}, sets: { efficiency: { 'iteration-1.json': 'old@1' }, pids: { '9.json': 'p@1' } } };
    const reading = readingOf({ efficiency: { 'iteration-2.json': content, 'not a name.json': content } });
    const [upload, extra] = await planUploads(reading, manifest, new SyncMemory());
    expect(extra).toBeUndefined();
    expect(upload!.payload.efficiency).toEqual({
      present: true,
      upsert: { 'iteration-2.json': { mtimeMs: 0, hash, b64: bytesToBase64(enc.encode(text)) } },
      remove: ['iteration-1.json'],
    });
    expect(upload!.payload.sets!.pids).toEqual({ present: false, upsert: {}, remove: ['9.json'] });
    expect(upload!.applies.sets).toEqual({ efficiency: { 'iteration-2.json': `${hash}@0`, 'iteration-1.json': null }, pids: { '9.json': null } });
    expect(applyToManifest(manifest, upload!)).toEqual({ documents: {}, sets: { efficiency: { 'iteration-2.json': `${hash}@0` }, pids: {} } });
  });

  it('ships the events summary as is (appended, rotated), times clamped to what Date holds', async () => {
    const memory = new SyncMemory();
    const events = { present: true, lines: 7, mtimeMs: 100, sessionStartMs: 50, iteration: 3, sessionPid: 42 };
    const [appended] = await planUploads(readingOf({ events }), EMPTY, memory);
    expect(appended!.payload.events).toEqual(events);
    const [rotated] = await planUploads(readingOf({ events: { present: true, lines: 0, mtimeMs: 200 } }), EMPTY, memory);
    expect(rotated!.payload.events).toEqual({ present: true, lines: 0, mtimeMs: 200 });
    const far = { present: true, lines: 1, mtimeMs: 1e17, sessionStartMs: -1e17, error: 'e'.repeat(400) };
    const [clamped] = await planUploads(readingOf({ events: far }), EMPTY, memory);
    expect(clamped!.payload.events).toEqual({
      present: true,
      lines: 1,
      mtimeMs: MAX_DATE_MS,
      sessionStartMs: -MAX_DATE_MS,
      error: `${'e'.repeat(MAX_PROBLEM_CHARS - 1)}…`,
    });
    const [negative] = await planUploads(readingOf({ events: { present: true, lines: 1, mtimeMs: -5 } }), EMPTY, memory);
    expect(negative!.payload.events.mtimeMs).toBe(0);
  });

  it('clamps a file mtime beyond Date to MAX_DATE_MS', async () => {
    const hash = await hex('');
    const [upload] = await planUploads(readingOf({ documents: { STOP: { content: '', mtimeMs: MAX_DATE_MS + 1 } } }), EMPTY, new SyncMemory());
    expect(upload!.payload.documents.STOP).toEqual({ mtimeMs: MAX_DATE_MS, hash, b64: '' });
    expect(upload!.applies.documents.STOP).toBe(`${hash}@${MAX_DATE_MS}`);
  });

  it('ships only the fields it has: no mtime, start time or error keys when unknown, and set errors capped', async () => {
    const reading = { ...readingOf({ runner: DEAD_RUNNER }), proofs: { present: true, error: 'e'.repeat(MAX_PROBLEM_CHARS + 1), files: [] } };
    const [upload] = await planUploads(reading, EMPTY, new SyncMemory());
    expect(upload!.payload.events).toStrictEqual({ present: false, lines: 0 });
    expect(upload!.payload.runner).toStrictEqual(DEAD_RUNNER);
    expect(upload!.payload.sets!.proofs).toStrictEqual({ present: true, error: `${'e'.repeat(MAX_PROBLEM_CHARS - 1)}…`, upsert: {}, remove: [] });
    expect(upload!.payload.sets!.pids).toStrictEqual(noSetChanges);
  });

  it('ships the runner verdict and the state directory problem', async () => {
    const [live] = await planUploads(readingOf({ runner: LIVE_RUNNER }), EMPTY, new SyncMemory());
    expect(live!.payload).toMatchObject({ available: true, pid: 4242, pidAlive: true, runner: LIVE_RUNNER });
    expect(live!.payload.problem).toBeUndefined();
    const [dead] = await planUploads({ ...readingOf({ runner: DEAD_RUNNER }), available: false, problem: 'p'.repeat(301) }, EMPTY, new SyncMemory());
    expect(dead!.payload).toMatchObject({ available: false, pid: null, pidAlive: false, runner: DEAD_RUNNER, problem: `${'p'.repeat(299)}…` });
    const [undecided] = await planUploads(readingOf({ runner: { decided: false, alive: true, pid: 7, startedMs: 1e17 } }), EMPTY, new SyncMemory());
    expect(undecided!.payload).toMatchObject({ pid: 7, pidAlive: false, runner: { decided: false, alive: true, pid: 7, startedMs: MAX_DATE_MS } });
  });

  it('splits big changes into batches under the ingest limit', async () => {
    const big = 'x'.repeat(1024 * 1024);
    const efficiency = Object.fromEntries([1, 2, 3, 4, 5].map((i) => [`iteration-${i}.json`, `{"note":"${big}"}`]));
    const uploads = await planUploads(readingOf({ efficiency }), { documents: {}, sets: { efficiency: { 'gone.json': 'g@1' } } }, new SyncMemory());
    // ~1.4 MB of base64 each, batches of at most MAX_INGEST_BYTES / 2: two per request.
    expect(uploads.map((u) => Object.keys(u.payload.efficiency!.upsert))).toEqual([
      ['iteration-1.json', 'iteration-2.json'],
      ['iteration-3.json', 'iteration-4.json'],
      ['iteration-5.json'],
    ]);
    expect(uploads.map((u) => u.payload.efficiency!.remove)).toEqual([['gone.json'], [], []]);
    expect(uploads[0]!.applies.sets.efficiency!['gone.json']).toBeNull();
    expect(uploads[2]!.applies.sets.efficiency).toEqual({ 'iteration-5.json': expect.stringMatching(/^[0-9a-f]{64}@0$/) });
    for (const u of uploads) expect(JSON.stringify(u.payload).length).toBeLessThan(MAX_INGEST_BYTES / 2);
  });
});

describe('planUploads batching', () => {
  it('fills a batch up to exactly half the ingest limit before starting the next', async () => {
    // Each file ships as base64 plus 200 bytes of overhead: two of these make exactly MAX_INGEST_BYTES / 2.
    const b64Length = MAX_INGEST_BYTES / 4 - 200;
    const note = (fill: string) => `{"note":"${fill.repeat((b64Length / 4) * 3 - 11)}"}`;
    expect(bytesToBase64(enc.encode(note('a')))).toHaveLength(b64Length);
    const exact = await planUploads(readingOf({ efficiency: { 'iteration-1.json': note('a'), 'iteration-2.json': note('b') } }), EMPTY, new SyncMemory());
    expect(exact.map((u) => Object.keys(u.payload.efficiency!.upsert))).toEqual([['iteration-1.json', 'iteration-2.json']]);
    const over = await planUploads(readingOf({ efficiency: { 'iteration-1.json': note('a'), 'iteration-2.json': `${note('b')} ` } }), EMPTY, new SyncMemory());
    expect(over.map((u) => Object.keys(u.payload.efficiency!.upsert))).toEqual([['iteration-1.json'], ['iteration-2.json']]);
  });
});

describe('HashCache', () => {
  it('reuses a hash while the store version is unchanged, and rehashes for version ""', async () => {
    const cache = new HashCache();
    const a = await cache.hash('f', { present: true, bytes: enc.encode('a'), version: 'v1' });
    expect(a).toBe(await hex('a'));
    expect(await cache.hash('f', { present: true, bytes: enc.encode('b'), version: 'v1' })).toBe(a);
    expect(await cache.hash('f', { present: true, bytes: enc.encode('b'), version: 'v2' })).toBe(await hex('b'));
    expect(await cache.hash('g', { present: true, bytes: enc.encode('c'), version: '' })).toBe(await hex('c'));
    expect(await cache.hash('g', { present: true, bytes: enc.encode('d'), version: '' })).toBe(await hex('d'));
    expect(await cache.hash('h', { present: true, version: '' })).toBe(await hex('error:unreadable'));
  });
});

describe('applyToManifest', () => {
  it('sets, replaces and deletes entries, keeping sets the upload does not touch', () => {
    const manifest: Manifest = { documents: { a: '1@1', b: '2@2' }, sets: { pids: { 'x.json': 'x@1' }, proofs: { r: 'r@1' } } };
    const next = applyToManifest(manifest, {
      payload: {} as never,
      applies: { documents: { a: null, b: '3@3', c: '4@4' }, sets: { pids: { 'x.json': null, 'y.json': 'y@1' } } },
    });
    expect(next).toEqual({ documents: { b: '3@3', c: '4@4' }, sets: { pids: { 'y.json': 'y@1' }, proofs: { r: 'r@1' } } });
    // A set the upload touches keeps its other entries.
    const more = applyToManifest(next, { payload: {} as never, applies: { documents: {}, sets: { proofs: { s: 's@1' } } } });
    expect(more.sets.proofs).toEqual({ r: 'r@1', s: 's@1' });
    expect(manifest.documents).toEqual({ a: '1@1', b: '2@2' });
  });
});

describe('planUploads for a format 3 remote', () => {
  it('sends files in bucket order, so a first upload writes each bucket about once, not once per batch', async () => {
    const files = Object.fromEntries(Array.from({ length: 2000 }, (_, i) => [`iteration-${i + 1}.json`, { iteration: i + 1, cost_usd: 0.01 }]));
    const uploads = await planUploads(readingOf({ efficiency: files }), EMPTY, new SyncMemory(), LAYOUT3_LIMITS);
    const perUpload = uploads.map((u) => new Set(Object.keys(u.payload.sets!.efficiency!.upsert).map(bucketOf)));
    const used = new Set(Object.keys(files).map(bucketOf));
    const touches = perUpload.reduce((sum, buckets) => sum + buckets.size, 0);
    // Each batch shares at most one bucket with the next (where a bucket's files span two batches).
    expect(touches).toBeLessThanOrEqual(used.size + uploads.length);
    expect(uploads.length).toBe(Math.ceil(2000 / LAYOUT3_LIMITS.files));
    // Removals too: most of a set gone is a clear; some gone are removed in bucket order.
    const manifest = uploads.reduce(applyToManifest, EMPTY);
    const kept = Object.fromEntries(Object.entries(files).slice(0, 1500));
    const removing = await planUploads(readingOf({ efficiency: kept }), manifest, new SyncMemory(), LAYOUT3_LIMITS);
    const removed = removing.flatMap((u) => u.payload.sets!.efficiency!.remove);
    expect(removed).toHaveLength(500);
    expect(removed.map(bucketOf)).toEqual([...removed.map(bucketOf)].sort((a, b) => a - b));
  });
});
