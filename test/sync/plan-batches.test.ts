/**
 * planUploads for a format 3 remote in detail: the order files and removals travel in, how a set
 * mostly emptied becomes a `clear`, what each upload's `applies` claims, and how the bucket limit
 * cuts batches (documents touch no bucket); carriesFiles, which tells a change from a heartbeat.
 */
import { describe, expect, it } from 'vitest';
import type { StateReading } from '../../src/stores/store.js';
import { applyToManifest, carriesFiles, LAYOUT2_LIMITS, LAYOUT3_LIMITS, planUploads, SyncMemory, type Upload } from '../../src/sync/plan.js';
import { bucketOf } from '../../src/sync/shards.js';
import type { Manifest } from '../../src/sync/protocol.js';
import { readingOf } from '../support/readings.js';

const EMPTY: Manifest = { documents: {}, sets: {} };
const eff = (...ks: number[]) => Object.fromEntries(ks.map((k) => [`iteration-${k}.json`, { iteration: k, cost_usd: 0.01 }]));
const upserted = (u: Upload) => Object.keys(u.payload.sets!.efficiency!.upsert);
/** The manifest a remote holds after taking every upload planned for `reading` from nothing. */
const synced = async (reading: StateReading): Promise<Manifest> => (await planUploads(reading, EMPTY, new SyncMemory(), LAYOUT3_LIMITS)).reduce(applyToManifest, EMPTY);

// Buckets (FNV-1a of the name, mod 1024) of the names used here.
const B26 = ['iteration-1.json', 'iteration-1022.json', 'iteration-162.json']; // in name order
describe('the names used here', () => {
  it('fall in the buckets the tests rely on', () => {
    expect(B26.map(bucketOf)).toEqual([26, 26, 26]);
    expect(['iteration-2.json', 'iteration-161.json', 'iteration-3.json', 'iteration-4.json'].map(bucketOf)).toEqual([181, 181, 1012, 111]);
  });
});

describe('planUploads for a format 3 remote: order', () => {
  it('sends files by bucket and, within a bucket, by name, whatever order they were read in', async () => {
    const reading = readingOf({ efficiency: eff(2, 162, 1022, 1) });
    const reversed: StateReading = { ...reading, efficiency: { ...reading.efficiency, files: [...reading.efficiency.files].reverse() } };
    const [upload] = await planUploads(reversed, EMPTY, new SyncMemory(), LAYOUT3_LIMITS);
    expect(upserted(upload!)).toEqual([...B26, 'iteration-2.json']);
  });

  it('sends removals by bucket and, within a bucket, by name, whatever order the manifest lists them in', async () => {
    const kept = eff(5, 6, 7, 8, 2, 161);
    const manifest = await synced(readingOf({ efficiency: kept }));
    const entry = manifest.sets.efficiency!['iteration-5.json']!;
    // The remote's manifest lists the gone names out of bucket and name order.
    const listed = { 'iteration-3.json': entry, 'iteration-162.json': entry, 'iteration-4.json': entry, 'iteration-1022.json': entry, 'iteration-1.json': entry };
    const remote: Manifest = { documents: {}, sets: { efficiency: { ...listed, ...manifest.sets.efficiency } } };
    const uploads = await planUploads(readingOf({ efficiency: kept }), remote, new SyncMemory(), LAYOUT3_LIMITS);
    expect(uploads).toHaveLength(1);
    expect(uploads[0]!.payload.sets!.efficiency).toMatchObject({ upsert: {}, remove: [...B26, 'iteration-4.json', 'iteration-3.json'] });
    expect(uploads[0]!.payload.sets!.efficiency!.clear).toBeUndefined();
  });
});

describe('planUploads for a format 3 remote: a set emptied', () => {
  it('clears a set when half of it is gone, re-sends what is left, and claims the rest gone in the first upload', async () => {
    const manifest = await synced(readingOf({ efficiency: eff(1, 2, 3, 4) }));
    const entries = manifest.sets.efficiency!;
    const uploads = await planUploads(readingOf({ efficiency: eff(1, 2) }), manifest, new SyncMemory(), LAYOUT3_LIMITS);
    expect(uploads).toHaveLength(1);
    const [first] = uploads;
    expect(first!.payload.sets!.efficiency).toMatchObject({ clear: true, remove: [] });
    expect(upserted(first!).sort()).toEqual(['iteration-1.json', 'iteration-2.json']);
    // The re-sent files keep their entries; the others are gone.
    expect(first!.applies.sets.efficiency).toEqual({
      'iteration-1.json': entries['iteration-1.json'],
      'iteration-2.json': entries['iteration-2.json'],
      'iteration-3.json': null,
      'iteration-4.json': null,
    });
    expect(applyToManifest(manifest, first!).sets.efficiency).toEqual({ 'iteration-1.json': entries['iteration-1.json'], 'iteration-2.json': entries['iteration-2.json'] });
    // Less than half gone: removals, no clear.
    const [fewer] = await planUploads(readingOf({ efficiency: eff(1, 2, 3) }), manifest, new SyncMemory(), LAYOUT3_LIMITS);
    expect(fewer!.payload.sets!.efficiency).toEqual({ present: true, upsert: {}, remove: ['iteration-4.json'] });
  });

  it('claims in each upload only the removals it carries', async () => {
    const all = eff(1, 2, 3, 4, 5, 6, 7, 8, 9, 10);
    const manifest = await synced(readingOf({ efficiency: all }));
    const left = eff(4, 5, 6, 7, 8, 9, 10);
    const uploads = await planUploads(readingOf({ efficiency: left }), manifest, new SyncMemory(), { ...LAYOUT3_LIMITS, files: 2 });
    expect(uploads).toHaveLength(2);
    const removes = uploads.map((u) => u.payload.sets!.efficiency!.remove);
    expect(removes.flat().sort()).toEqual(['iteration-1.json', 'iteration-2.json', 'iteration-3.json']);
    expect(removes.map((r) => r.length)).toEqual([2, 1]);
    for (const [i, upload] of uploads.entries()) {
      expect(upload.applies.sets.efficiency, `upload ${i}`).toEqual(Object.fromEntries(removes[i]!.map((name) => [name, null])));
    }
  });
});

describe('planUploads: the bucket limit', () => {
  it('cuts a batch before a file in a new bucket would pass the limit, never for a bucket it already holds', async () => {
    // Buckets 26, 181, 181: exactly two buckets, with a document, which touches none.
    const reading = readingOf({ efficiency: eff(1, 2, 161), documents: { 'loki.pid': { content: '4242' } } });
    const two = await planUploads(reading, EMPTY, new SyncMemory(), { ...LAYOUT3_LIMITS, buckets: 2 });
    expect(two.map((u) => [Object.keys(u.payload.documents), upserted(u)])).toEqual([[['loki.pid'], ['iteration-1.json', 'iteration-161.json', 'iteration-2.json']]]);
    const one = await planUploads(reading, EMPTY, new SyncMemory(), { ...LAYOUT3_LIMITS, buckets: 1 });
    expect(one.map((u) => [Object.keys(u.payload.documents), upserted(u)])).toEqual([
      [['loki.pid'], ['iteration-1.json']],
      [[], ['iteration-161.json', 'iteration-2.json']],
    ]);
  });

  it('never cuts documents by buckets, not even under a limit that allows none', async () => {
    const reading = readingOf({ efficiency: eff(1, 2), documents: { 'loki.pid': { content: '4242' }, PAUSE: { content: '' } } });
    const uploads = await planUploads(reading, EMPTY, new SyncMemory(), { ...LAYOUT3_LIMITS, buckets: 0 });
    // A file goes alone when its bucket does not fit (a batch holds at least one file).
    expect(uploads.map((u) => [Object.keys(u.payload.documents).sort(), upserted(u)])).toEqual([
      [['PAUSE', 'loki.pid'], []],
      [[], ['iteration-1.json']],
      [[], ['iteration-2.json']],
    ]);
  });

  it('does not count buckets for a format 2 remote, which stores no buckets', async () => {
    const uploads = await planUploads(readingOf({ efficiency: eff(1, 2, 3) }), EMPTY, new SyncMemory(), { ...LAYOUT2_LIMITS, buckets: 1 });
    expect(uploads.map((u) => Object.keys(u.payload.efficiency!.upsert))).toEqual([['iteration-1.json', 'iteration-2.json', 'iteration-3.json']]);
  });
});

describe('carriesFiles', () => {
  const upload = (applies: Upload['applies']): Upload => ({ payload: {} as never, applies });
  it('is true when an upload changes a document or any file of a set, false for a heartbeat', () => {
    expect(carriesFiles(upload({ documents: {}, sets: {} }))).toBe(false);
    expect(carriesFiles(upload({ documents: {}, sets: { efficiency: {}, proofs: {} } }))).toBe(false);
    expect(carriesFiles(upload({ documents: { 'loki.pid': 'h@1' }, sets: {} }))).toBe(true);
    expect(carriesFiles(upload({ documents: { PAUSE: null }, sets: { efficiency: {} } }))).toBe(true);
    expect(carriesFiles(upload({ documents: {}, sets: { efficiency: {}, pids: { '1.json': null } } }))).toBe(true);
    expect(carriesFiles(upload({ documents: {}, sets: { proofs: { r: 'h@1' } } }))).toBe(true);
  });

  it('tells what planUploads made: a first sync carries files, the next one with nothing changed does not', async () => {
    const reading = readingOf({ efficiency: eff(1), documents: { 'loki.pid': { content: '4242', mtimeMs: 5 } } });
    const memory = new SyncMemory();
    const first = await planUploads(reading, EMPTY, memory, LAYOUT3_LIMITS);
    expect(first.map(carriesFiles)).toEqual([true]);
    const again = await planUploads(reading, first.reduce(applyToManifest, EMPTY), memory, LAYOUT3_LIMITS);
    expect(again.map(carriesFiles)).toEqual([false]);
    const onlyASet = await planUploads(readingOf({ efficiency: eff(1, 2), documents: { 'loki.pid': { content: '4242', mtimeMs: 5 } } }), first.reduce(applyToManifest, EMPTY), memory, LAYOUT3_LIMITS);
    expect(onlyASet.map(carriesFiles)).toEqual([true]);
  });
});
