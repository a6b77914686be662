/**
 * FileSetCollector: one file set parsed across refreshes. Entries are `FileSetRead`s as a store
 * hands them over (plain data), plus one pass through the real fs store for the identity rule.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FileSetCollector } from '../src/file-set-collector.js';
import { readEfficiencyFile } from '../src/schemas/efficiency.js';
import { readPidFile } from '../src/schemas/pid.js';
import { emptyUsageTotals, foldUsage } from '../src/usage-totals.js';
import { FsStateStore } from '../src/stores/fs.js';
import type { FileSetEntryRead, FileSetRead } from '../src/stores/store.js';
import { cleanTrees, tempDir } from './support/loki-tree.js';

const stores: FsStateStore[] = [];
afterEach(async () => {
  for (const store of stores.splice(0)) store.close();
  await cleanTrees();
});

const entry = (name: string, text: string, version = `v:${name}:${text}`, mtimeMs = 1000): FileSetEntryRead => ({
  name,
  present: true,
  bytes: new TextEncoder().encode(text),
  mtimeMs,
  version,
});
const set = (files: FileSetEntryRead[], extra: Partial<FileSetRead> = {}): FileSetRead => ({ present: true, files, ...extra });

/** A collector over `sessions/<id>/loki.pid` (a pid per entry), counting parses and keeping logs. */
function collector() {
  const logs: string[] = [];
  let parses = 0;
  const c = new FileSetCollector<number>('sessions', (bytes) => (parses++, readPidFile(bytes)), (line) => logs.push(line));
  return { c, logs, parses: () => parses };
}

describe('FileSetCollector', () => {
  it('parses every entry into values, in the order given, and reports the set as one source', () => {
    const { c } = collector();
    const result = c.update(set([entry('a', '11\n', 'v1', 2000), entry('b', '22\n', 'v2', 3000)], { mtimeMs: 3000 }));
    expect(result.values).toEqual([
      { name: 'a', value: 11 },
      { name: 'b', value: 22 },
    ]);
    expect(result.status).toEqual({ source: 'sessions', ok: true, present: true, mtimeMs: 3000 });
  });

  it('reports an absent set as present: false and ok, with no values', () => {
    const { c } = collector();
    // Strictly: no `mtimeMs` or `problem` keys at all (status objects are spread and checked with `in`).
    expect(c.update({ present: false, files: [] })).toStrictEqual({ values: [], status: { source: 'sessions', ok: true, present: false } });
  });

  it('returns the same result object, parsing nothing, while the store hands back the same files array', () => {
    const { c, parses } = collector();
    const files = [entry('a', '11'), entry('b', '22')];
    const first = c.update(set(files));
    expect(parses()).toBe(2);
    expect(c.update(set(files))).toBe(first); // a new FileSetRead, the same array
    expect(c.update(set(files))).toBe(first);
    expect(parses()).toBe(2);
    // A new array: a new result, but only changed versions are parsed again.
    const next = c.update(set([entry('a', '11'), entry('b', '23')]));
    expect(next).not.toBe(first);
    expect(next.values).toEqual([
      { name: 'a', value: 11 },
      { name: 'b', value: 23 },
    ]);
    expect(parses()).toBe(3);
  });

  it('returns a new result when only the directory error changes', () => {
    const { c } = collector();
    const files: FileSetEntryRead[] = [];
    const ok = c.update(set(files));
    const bad = c.update(set(files, { error: 'permission denied' }));
    expect(bad).not.toBe(ok);
    expect(bad.status).toMatchObject({ ok: false, problem: 'permission denied' });
  });

  it('reports a bad entry in the status, naming it, and leaves it out of the values', () => {
    const { c, logs } = collector();
    const result = c.update(set([entry('good', '11'), entry('torn', ''), entry('junk', 'abc')]));
    expect(result.values).toEqual([{ name: 'good', value: 11 }]);
    expect(result.status.ok).toBe(false);
    expect(result.status.present).toBe(true);
    expect(result.status.problem).toMatch(/^2 bad file\(s\)/);
    expect(result.status.problem).toContain('torn: empty file');
    expect(result.status.problem).toContain('junk: not a pid');
    expect(result.status.problem).not.toContain('good');
    // Each bad entry logs once, under its own path.
    expect(logs.sort()).toEqual([
      'loki-metrics: sessions/junk/loki.pid: not a pid (expected digits only)',
      'loki-metrics: sessions/torn/loki.pid: empty file (caught mid-write?)',
    ]);
  });

  it('reports an entry the store could not read (a symlink) as bad', () => {
    const { c } = collector();
    const link: FileSetEntryRead = { name: 'evil', present: true, error: 'is a symbolic link (not followed)', version: 'symlink:1' };
    const result = c.update(set([entry('a', '11'), link]));
    expect(result.values).toEqual([{ name: 'a', value: 11 }]);
    expect(result.status).toMatchObject({ ok: false, problem: expect.stringContaining('evil: is a symbolic link') });
  });

  it('keeps serving the last good value of an entry torn mid-write, reporting it', () => {
    const { c, logs } = collector();
    c.update(set([entry('a', '11', 'v1'), entry('b', '22', 'v1')]));
    const torn = c.update(set([entry('a', '', 'v2'), entry('b', '22', 'v1')]));
    expect(torn.values).toEqual([
      { name: 'a', value: 11 },
      { name: 'b', value: 22 },
    ]);
    expect(torn.status.ok).toBe(false);
    expect(torn.status.problem).toMatch(/^1 bad file\(s\): a: empty file.*last good value/);
    // Mended: the new value, ok again.
    const mended = c.update(set([entry('a', '12', 'v3'), entry('b', '22', 'v1')]));
    expect(mended.values[0]).toEqual({ name: 'a', value: 12 });
    expect(mended.status.ok).toBe(true);
    expect(logs).toEqual(['loki-metrics: sessions/a/loki.pid: empty file (caught mid-write?)', 'loki-metrics: sessions/a/loki.pid: ok again']);
  });

  it('drops entries that are gone, and does not resurrect their old value if they come back bad', () => {
    const { c, parses } = collector();
    c.update(set([entry('a', '11', 'v1'), entry('b', '22', 'v1')]));
    const gone = c.update(set([entry('b', '22', 'v1')]));
    expect(gone.values).toEqual([{ name: 'b', value: 22 }]);
    expect(gone.status.ok).toBe(true);
    // The entries still there keep their tracker: not parsed again, last good value kept.
    expect(parses()).toBe(2);
    expect(c.update(set([entry('b', '', 'v2')])).values).toEqual([{ name: 'b', value: 22 }]);
    const back = c.update(set([entry('a', '', 'v2'), entry('b', '22', 'v1')]));
    expect(back.values).toEqual([{ name: 'b', value: 22 }]);
    expect(back.status.problem).toBe('1 bad file(s): a: empty file (caught mid-write?)');
  });

  it('names at most three bad entries in the problem, counting them all', () => {
    const { c } = collector();
    const result = c.update(set(['e1', 'e2', 'e3', 'e4', 'e5'].map((name) => entry(name, 'x'))));
    expect(result.status.problem).toMatch(/^5 bad file\(s\): e1: .*; e2: .*; e3: [^;]*$/);
  });

  it('logs a directory-level error once per change, and its recovery once', () => {
    const { c, logs } = collector();
    c.update(set([entry('a', '11')]));
    expect(logs).toEqual([]);
    for (let i = 0; i < 3; i++) {
      const result = c.update({ present: true, files: [], error: 'not a directory' }); // a new array each time
      expect(result.status).toEqual({ source: 'sessions', ok: false, present: true, problem: 'not a directory' });
      expect(result.values).toEqual([]);
    }
    expect(logs).toEqual(['loki-metrics: sessions: not a directory']);
    c.update({ present: true, files: [], error: 'permission denied' });
    expect(logs).toHaveLength(2);
    expect(logs[1]).toBe('loki-metrics: sessions: permission denied');
    c.update(set([entry('a', '11')]));
    c.update(set([entry('a', '11')]));
    expect(logs).toEqual(['loki-metrics: sessions: not a directory', 'loki-metrics: sessions: permission denied', 'loki-metrics: sessions: ok again']);
  });

  it('keeps its result identity across warm reads of a real, unchanged directory', async () => {
    const dir = join(await tempDir(), '.loki');
    for (const [id, pid] of [
      ['s1', 101],
      ['s2', 202],
    ] as const) {
      await mkdir(join(dir, 'sessions', id), { recursive: true });
      await writeFile(join(dir, 'sessions', id, 'loki.pid'), `${pid}\n`);
    }
    const store = new FsStateStore(dir, { watch: false, rescanIntervalMs: 0 });
    stores.push(store);
    const { c, parses } = collector();
    const first = c.update((await store.read()).sessions);
    expect(first.values).toEqual([
      { name: 's1', value: 101 },
      { name: 's2', value: 202 },
    ]);
    expect(c.update((await store.read()).sessions)).toBe(first);
    expect(parses()).toBe(2);
    await writeFile(join(dir, 'sessions', 's2', 'loki.pid'), '203\n');
    const changed = c.update((await store.read()).sessions);
    expect(changed).not.toBe(first);
    expect(changed.values).toEqual([
      { name: 's1', value: 101 },
      { name: 's2', value: 203 },
    ]);
    expect(parses()).toBe(3);
  });

  it('never asks an entry whose version it has seen for its bytes (a local store would read the file again)', () => {
    const { c } = collector();
    const asked = new Map<string, number>();
    /** An entry whose bytes count how often they are asked for. */
    const counted = (name: string, text: string, version: string): FileSetEntryRead => ({
      name,
      present: true,
      version,
      get bytes() {
        asked.set(version, (asked.get(version) ?? 0) + 1);
        return new TextEncoder().encode(text);
      },
    });
    c.update(set([counted('a', '11', 'va1'), counted('b', '22', 'vb')]));
    expect([...asked.keys()]).toEqual(['va1', 'vb']);
    const atFirst = asked.get('vb');
    // A new array: a changed, b the same version (a new object, as a store may hand over).
    const after = c.update(set([counted('a', '12', 'va2'), counted('b', '22', 'vb')]));
    expect(after.values).toEqual([
      { name: 'a', value: 12 },
      { name: 'b', value: 22 },
    ]);
    expect(asked.get('va2')).toBeGreaterThan(0);
    expect(asked.get('vb')).toBe(atFirst);
    // A bad entry stays bad, and is not asked again either.
    c.update(set([counted('a', 'x', 'va3'), counted('b', '22', 'vb')]));
    const bad = asked.get('va3');
    expect(c.update(set([counted('a', 'x', 'va3'), counted('b', '22', 'vb')])).status.problem).toMatch(/^1 bad file\(s\): a: not a pid/);
    expect(asked.get('va3')).toBe(bad);
    expect(asked.get('vb')).toBe(atFirst);
  });

  it('keeps each entry\'s parsed value, not its file: an efficiency file\'s other fields are dropped', async () => {
    const dir = join(await tempDir(), '.loki');
    await mkdir(join(dir, 'metrics/efficiency'), { recursive: true });
    const record = { iteration: 1, model: 'opus', input_tokens: 10, output_tokens: 2, cost_usd: 0.5, status: 'completed' };
    const transcript = 'x'.repeat(100_000); // a field no metric reads
    await writeFile(join(dir, 'metrics/efficiency/iteration-1.json'), JSON.stringify({ ...record, transcript, phase: 'build' }));
    const store = new FsStateStore(dir, { watch: false });
    stores.push(store);
    const c = new FileSetCollector('efficiency', readEfficiencyFile, () => undefined);
    const result = c.update((await store.read()).efficiency);
    expect(result.status.ok).toBe(true);
    expect(result.values).toStrictEqual([{ name: 'iteration-1.json', value: record }]);
  });
  it('parses an entry of version \'\' (which promises nothing) at every update', () => {
    const { c, parses } = collector();
    expect(c.update(set([entry('a', '11', ''), entry('b', '22', 'vb')])).values[0]).toEqual({ name: 'a', value: 11 });
    expect(c.update(set([entry('a', '12', ''), entry('b', '22', 'vb')])).values[0]).toEqual({ name: 'a', value: 12 });
    expect(parses()).toBe(3);
  });

  it('looks again at an entry whose version is the same but whose error or staleness changed', () => {
    const { c } = collector();
    c.update(set([entry('a', '11', 'v1')]));
    const unreadable = c.update(set([{ ...entry('a', '11', 'v1'), error: 'permission denied' }]));
    expect(unreadable.status.problem).toBe('1 bad file(s): a: permission denied; serving last good value');
    expect(c.update(set([entry('a', '11', 'v1')])).status.ok).toBe(true);
    // A synced store: the last good bytes, the live file invalid.
    const stale = c.update(set([{ ...entry('a', '11', 'v1'), stale: 'not a pid (expected digits only)' }]));
    expect(stale.values).toEqual([{ name: 'a', value: 11 }]);
    expect(stale.status.problem).toBe('1 bad file(s): a: not a pid (expected digits only); serving last good value');
    expect(c.update(set([entry('a', '11', 'v1')])).status.ok).toBe(true);
  });
});

describe('FileSetCollector over a synced set (a summary, no files)', () => {
  const summary = (bad: number, totals?: unknown) => ({
    count: 4,
    bad,
    badEntries: Array.from({ length: bad }, (_, i) => ({ name: `e${i}`, problem: 'not a pid (expected digits only)', stale: false })),
    ...(totals !== undefined ? { totals } : {}),
  });

  it('reports the summary\'s bad entries, and a new result when only the summary changed', () => {
    const { c, parses } = collector();
    const files: FileSetEntryRead[] = [];
    const clean = c.update(set(files, { summary: summary(0) }));
    // No fold and no totals: no `totals` key at all.
    expect(clean).toStrictEqual({ values: [], status: { source: 'sessions', ok: true, present: true } });
    const bad = c.update(set(files, { summary: summary(1) }));
    expect(bad.status).toEqual({ source: 'sessions', ok: false, present: true, problem: '1 bad file(s): e0: not a pid (expected digits only)' });
    expect(parses()).toBe(0);
  });

  it('takes the totals as handed over, or folds nothing when none came', () => {
    const c = new FileSetCollector('efficiency', readEfficiencyFile, () => undefined, foldUsage);
    const handed = { ...emptyUsageTotals(), outcomes: [3, 1] };
    expect(c.update(set([], { summary: summary(0, handed) })).totals).toBe(handed);
    expect(c.update(set([], { summary: summary(0) })).totals).toEqual(emptyUsageTotals());
  });
});
