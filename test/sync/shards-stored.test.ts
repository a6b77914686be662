/**
 * The format 3 objects as read back (sync/shards.ts): what a stored head and a bucket read for the
 * manifest must hold to be taken, which keys name a session, which bucket writes count as
 * committed at the edges of the rule, and the cap on named bad entries.
 */
import { describe, expect, it } from 'vitest';
import { MAX_BAD_NAMED } from '../../src/stores/store.js';
import { applyRecord, emptyHead, emptySetHead, HeadSchema, ManifestBucketSchema, parseStored, sessionOfKey, settleBucket, type Bucket, type FileRecord, type Head } from '../../src/sync/shards.js';
import { efficiencyContribution, MAX_MODEL_KEY_LENGTH, MAX_MODEL_KEYS } from '../../src/usage-totals.js';

const HASH = 'a'.repeat(64);
const stored = (value: unknown) => ({ text: JSON.stringify(value) });
/** A head with one document and the efficiency set made of `records` (name → record), as ingest keeps it. */
function headWith(records: Record<string, FileRecord> = {}, change: (head: Head) => void = () => {}): Head {
  const head = emptyHead(false);
  head.rev = 3;
  head.nonce = 'n3';
  head.recent = [[2, 'n2'], [3, 'n3']];
  head.docs['loki.pid'] = { h: HASH, m: 1, g: HASH, t: '4242' };
  const set = (head.sets.efficiency = { ...emptySetHead(7), present: true });
  for (const [name, record] of Object.entries(records)) applyRecord('efficiency', set, name, record, 1);
  change(head);
  return head;
}
const readHead = (head: unknown) => parseStored(HeadSchema, stored(head));

describe('sessionOfKey', () => {
  it('names nothing outside sessions/, even a key of the same shape under another nine-letter prefix', () => {
    expect(sessionOfKey('sessions/s1/beat.json')).toBe('s1');
    expect(sessionOfKey('archives/s1/beat.json')).toBeUndefined();
    expect(sessionOfKey('registry/s1/state.json')).toBeUndefined();
  });
});

describe('a stored head read back', () => {
  it('is taken as written, its recent commits included', () => {
    const head = headWith({ 'iteration-1.json': { h: HASH, m: 5, c: efficiencyContribution('iteration-1.json', { model: 'sonnet', input_tokens: 10 }) } });
    expect(readHead(head)).toEqual(head);
    expect(readHead(head)!.recent).toEqual([[2, 'n2'], [3, 'n3']]);
  });

  it('is refused when a hash is not exactly 64 hex digits', () => {
    for (const h of [`x${HASH}`, `${HASH}x`]) {
      expect(readHead(headWith({}, (head) => (head.docs['loki.pid']!.h = h))), h).toBeUndefined();
      expect(readHead(headWith({}, (head) => (head.docs['loki.pid']!.g = h))), h).toBeUndefined();
    }
  });

  it('is refused when the used-bucket bitmap holds anything but hex digits', () => {
    expect(readHead(headWith({}, (head) => (head.sets.efficiency!.buckets = 'f1')))).toBeDefined();
    for (const buckets of ['zz', 'f1z', 'zf1']) expect(readHead(headWith({}, (head) => (head.sets.efficiency!.buckets = buckets))), buckets).toBeUndefined();
  });

  it('keeps totals with a model id cut to MAX_MODEL_KEY_LENGTH, and with MAX_MODEL_KEYS models of their own', () => {
    const long = { 'iteration-1.json': { h: HASH, m: 1, c: efficiencyContribution('iteration-1.json', { model: 'm'.repeat(MAX_MODEL_KEY_LENGTH + 50), input_tokens: 10 }) } };
    const head = headWith(long);
    expect((head.sets.efficiency!.totals as { models: { key: string }[] }).models[0]!.key).toHaveLength(MAX_MODEL_KEY_LENGTH);
    expect(readHead(head)).toEqual(head);
    const many = Object.fromEntries(
      Array.from({ length: MAX_MODEL_KEYS }, (_, i) => [`iteration-${i}.json`, { h: HASH, m: 1, c: efficiencyContribution(`iteration-${i}.json`, { model: `model-${i}`, input_tokens: 10 }) }]),
    );
    const wide = headWith(many);
    expect((wide.sets.efficiency!.totals as { models: unknown[] }).models).toHaveLength(MAX_MODEL_KEYS);
    expect(readHead(wide)).toEqual(wide);
  });
});

describe('a bucket read for the manifest', () => {
  const bucket = (files: unknown) => ({ rev: 1, nonce: 'n1', files });
  it('is taken with its files\' manifest entries valid, whatever else a record holds', () => {
    expect(parseStored(ManifestBucketSchema, stored(bucket({ 'iteration-1.json': { h: HASH, m: 5, c: { any: 1 } } })))).toEqual(bucket({ 'iteration-1.json': { h: HASH, m: 5, c: { any: 1 } } }));
  });

  it('is refused when a record\'s hash or time is not one, or the bucket is not one', () => {
    expect(parseStored(ManifestBucketSchema, stored(bucket({ 'iteration-1.json': { h: 'x', m: 5 } })))).toBeUndefined();
    expect(parseStored(ManifestBucketSchema, stored(bucket({ 'iteration-1.json': { h: HASH, m: -1 } })))).toBeUndefined();
    expect(parseStored(ManifestBucketSchema, stored(bucket({ 'iteration-1.json': { m: 5 } })))).toBeUndefined();
    expect(parseStored(ManifestBucketSchema, stored({ files: 5 }))).toBeUndefined();
    expect(parseStored(ManifestBucketSchema, stored({ nonce: 'n1', files: {} }))).toBeUndefined();
  });
});

describe('settleBucket at the edges of the rule', () => {
  const rec = (m: number): FileRecord => ({ h: HASH, m });
  const written = (rev: number, nonce: string): Bucket => ({ rev, nonce, files: { x: rec(2) }, undo: { x: rec(1) } });
  const undone = { rev: 0, nonce: '', files: { x: rec(1) } };
  it('takes a write as committed only by the commit with both its rev and its nonce', () => {
    const head = { rev: 6, recent: [[5, 'n5'], [6, 'n6']] as [number, string][] };
    expect(settleBucket(written(6, 'n5'), head)).toEqual(undone);
    expect(settleBucket(written(6, 'n6'), head)).toEqual(written(6, 'n6'));
  });

  it('takes a write at the head\'s own revision as committed when no remembered commit names that revision', () => {
    expect(settleBucket(written(6, 'n6'), { rev: 6, recent: [[4, 'n4']] })).toEqual(written(6, 'n6'));
    expect(settleBucket(written(7, 'n7'), { rev: 6, recent: [[4, 'n4']] })).toEqual(undone);
  });
});

describe('applyRecord: the named bad entries', () => {
  it('names exactly MAX_BAD_NAMED bad files, the first by name, and counts them all', () => {
    const set = emptySetHead();
    const names = Array.from({ length: MAX_BAD_NAMED + 1 }, (_, i) => `iteration-${String(i).padStart(3, '0')}.json`);
    for (const name of names.slice(0, MAX_BAD_NAMED)) applyRecord('efficiency', set, name, { h: HASH, m: 1, p: 'bad' }, 1);
    expect(set.badEntries.map((b) => b.name)).toEqual(names.slice(0, MAX_BAD_NAMED));
    applyRecord('efficiency', set, names[MAX_BAD_NAMED]!, { h: HASH, m: 1, p: 'bad' }, 1);
    expect(set.bad).toBe(MAX_BAD_NAMED + 1);
    expect(set.badEntries.map((b) => b.name)).toEqual(names.slice(0, MAX_BAD_NAMED));
  });
});
