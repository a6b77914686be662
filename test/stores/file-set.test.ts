/**
 * FileSetTracker through the real fs store: `proofs/<run>/proof.json` (two levels) and
 * `pids/<pid>.json` (one level). Costs are checked with the store's counters, never with timings.
 * Caps and memory: file-set-caps.test.ts.
 */
import { mkdir, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { FsStateStore } from '../../src/stores/fs.js';
import type { FileSetRead, StateReading } from '../../src/stores/store.js';
import { tempDir } from '../support/loki-tree.js';
import { emptyLokiDir, storesClosedAfterEach } from '../support/fs-stores.js';

const open = storesClosedAfterEach();

const lokiDir = () => emptyLokiDir('proofs', 'pids');

const SYMLINK = 'is a symbolic link (not followed)';
const text = (bytes: Uint8Array | undefined) => (bytes ? new TextDecoder().decode(bytes) : undefined);
const names = (set: FileSetRead) => set.files.map((f) => f.name);
const content = (set: FileSetRead, name: string) => text(set.files.find((f) => f.name === name)?.bytes);
const receipt = (headline: string) => JSON.stringify({ honesty: { headline } });

async function writeProof(dir: string, run: string, body: string) {
  await mkdir(join(dir, 'proofs', run), { recursive: true });
  await writeFile(join(dir, 'proofs', run, 'proof.json'), body);
}

/** Sets the receipts' mtimes an hour back: written long ago, settled. */
async function ageProofs(dir: string, runs: string[]) {
  const old = Date.now() / 1000 - 3600;
  for (const run of runs) await utimes(join(dir, 'proofs', run, 'proof.json'), old, old);
}

/** Polls `read()` until `check` passes (inotify delivers events asynchronously). */
async function eventually(store: FsStateStore, check: (r: StateReading) => boolean, ms = 1500): Promise<StateReading> {
  const until = Date.now() + ms;
  for (;;) {
    const reading = await store.read();
    if (check(reading) || Date.now() > until) return reading;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('proofs/<run>/proof.json (two levels)', () => {
  it('lists one entry per sub-directory with a proof.json, sorted by name', async () => {
    const dir = await lokiDir();
    await writeProof(dir, 'run-b', receipt('VERIFIED'));
    await writeProof(dir, 'run-10', receipt('NOT VERIFIED'));
    await writeProof(dir, 'run-a', receipt('VERIFIED WITH GAPS'));
    await writeFile(join(dir, 'proofs', 'stray.json'), '{}'); // a file directly under proofs/: no entry
    await mkdir(join(dir, 'proofs', '.hidden'));
    await writeFile(join(dir, 'proofs', '.hidden', 'proof.json'), '{}');
    await mkdir(join(dir, 'proofs', 'run-c', 'proof.json'), { recursive: true }); // not a regular file
    const r = (await open(dir).read()).proofs;
    expect(r.present).toBe(true);
    expect(r.error).toBeUndefined();
    expect(names(r)).toEqual(['run-10', 'run-a', 'run-b', 'run-c']);
    expect(content(r, 'run-a')).toBe(receipt('VERIFIED WITH GAPS'));
    expect(r.files.find((f) => f.name === 'run-c')).toMatchObject({ present: true, error: 'not a regular file' });
    expect(r.mtimeMs).toBe(Math.max(...r.files.map((f) => f.mtimeMs ?? 0)));
  });

  it('picks up a sub-directory whose proof.json appears later, without a directory change or a full scan', async () => {
    const dir = await lokiDir();
    await writeProof(dir, 'run-a', receipt('VERIFIED'));
    await mkdir(join(dir, 'proofs', 'run-b')); // created first, its receipt written later
    const store = open(dir, { watch: true });
    const first = await store.read();
    expect(names(first.proofs)).toEqual(['run-a']);
    const counters = store.counters.fileSets.proofs;
    expect(counters.fullScans).toBe(1);

    await writeFile(join(dir, 'proofs', 'run-b', 'proof.json'), receipt('NOT VERIFIED'));
    const second = await store.read();
    expect(names(second.proofs)).toEqual(['run-a', 'run-b']);
    expect(content(second.proofs, 'run-b')).toBe(receipt('NOT VERIFIED'));
    expect(counters.fullScans).toBe(1); // found by the per-refresh re-check, not a rescan

    // No longer waiting; once its receipt has settled (not modified in the last seconds), further
    // reads cost nothing.
    await ageProofs(dir, ['run-a', 'run-b']);
    await store.read();
    const stats = counters.stats;
    await store.read();
    await store.read();
    expect(counters.stats).toBe(stats);
  });

  it('reports a symlinked sub-directory as an error entry and never follows it', async () => {
    const dir = await lokiDir();
    await writeProof(dir, 'run-a', receipt('VERIFIED'));
    const outside = await tempDir();
    await writeFile(join(outside, 'proof.json'), receipt('SECRET'));
    await symlink(outside, join(dir, 'proofs', 'evil'));
    const store = open(dir);
    const r = (await store.read()).proofs;
    expect(names(r)).toEqual(['evil', 'run-a']);
    const evil = r.files.find((f) => f.name === 'evil');
    expect(evil).toMatchObject({ present: true, error: SYMLINK });
    expect(evil?.bytes).toBeUndefined();
    expect(store.counters.fileSets.proofs.reads).toBe(1); // run-a's receipt only
    // Still refused on later full scans.
    const again = open(dir, { rescanIntervalMs: 0 });
    await again.read();
    const later = (await again.read()).proofs;
    expect(later.files.find((f) => f.name === 'evil')).toMatchObject({ error: SYMLINK });
    expect(again.counters.fileSets.proofs.reads).toBe(1);
  });

  it('reports a proof.json that is a symlink without following it', async () => {
    const dir = await lokiDir();
    const outside = join(await tempDir(), 'secret.json');
    await writeFile(outside, receipt('SECRET'));
    await mkdir(join(dir, 'proofs', 'run-x'));
    await symlink(outside, join(dir, 'proofs', 'run-x', 'proof.json'));
    const store = open(dir);
    const r = (await store.read()).proofs;
    expect(r.files).toHaveLength(1);
    expect(r.files[0]).toMatchObject({ name: 'run-x', present: true, error: SYMLINK });
    expect(r.files[0]?.bytes).toBeUndefined();
    expect(store.counters.fileSets.proofs.reads).toBe(0);
  });

  it('refuses a symlinked proofs/ directory as a whole', async () => {
    const dir = join(await tempDir(), '.loki');
    await mkdir(dir);
    const outside = await tempDir();
    await mkdir(join(outside, 'run-a'));
    await writeFile(join(outside, 'run-a', 'proof.json'), receipt('VERIFIED'));
    await symlink(outside, join(dir, 'proofs'));
    const store = open(dir);
    const r = (await store.read()).proofs;
    expect(r.files).toEqual([]);
    expect(r.error).toContain(SYMLINK);
    expect(store.counters.fileSets.proofs.reads).toBe(0);
  });

  it('re-reads nothing on a warm read when nothing changed (watching)', async () => {
    const dir = await lokiDir();
    await writeProof(dir, 'run-a', receipt('VERIFIED'));
    await writeProof(dir, 'run-b', receipt('NOT VERIFIED'));
    await ageProofs(dir, ['run-a', 'run-b']); // settled receipts, not ones still being written
    const store = open(dir, { watch: true });
    const cold = (await store.read()).proofs;
    const before = { ...store.counters.fileSets.proofs };
    expect(before).toMatchObject({ reads: 2, fullScans: 1 }); // two receipts, one cold scan
    expect(before.stats).toBeGreaterThanOrEqual(2);
    for (let i = 0; i < 5; i++) {
      const warm = (await store.read()).proofs;
      expect(warm.files).toBe(cold.files); // the same array: consumers may memoise on it
    }
    expect(store.counters.fileSets.proofs).toEqual(before);
  });

  it('re-checks a receipt modified in the last seconds: a torn first read completes without a directory change', async () => {
    const dir = await lokiDir();
    await writeProof(dir, 'run-a', receipt('VERIFIED'));
    await ageProofs(dir, ['run-a']);
    const store = open(dir, { watch: true, rescanIntervalMs: 3600_000 });
    await store.read();
    // upstream creates the directory, then writes proof.json in place (up to three times)
    await writeProof(dir, 'run-b', '{"honesty": {"head');
    const torn = await eventually(store, (r) => names(r.proofs).includes('run-b'));
    expect(content(torn.proofs, 'run-b')).toBe('{"honesty": {"head');
    const { fullScans } = store.counters.fileSets.proofs;
    await writeFile(join(dir, 'proofs', 'run-b', 'proof.json'), receipt('NOT VERIFIED'));
    expect(content((await store.read()).proofs, 'run-b')).toBe(receipt('NOT VERIFIED'));
    expect(store.counters.fileSets.proofs.fullScans).toBe(fullScans); // no full rescan needed
  });

  it('sees a receipt rewritten in place at the next full rescan', async () => {
    const dir = await lokiDir();
    await writeProof(dir, 'run-a', receipt('VERIFIED WITH GAPS'));
    const store = open(dir, { watch: true, rescanIntervalMs: 0 });
    expect(content((await store.read()).proofs, 'run-a')).toBe(receipt('VERIFIED WITH GAPS'));
    const { fullScans, reads } = store.counters.fileSets.proofs;
    await writeFile(join(dir, 'proofs', 'run-a', 'proof.json'), receipt('NOT VERIFIED'));
    const r = (await store.read()).proofs;
    expect(content(r, 'run-a')).toBe(receipt('NOT VERIFIED'));
    expect(store.counters.fileSets.proofs.fullScans).toBe(fullScans + 1);
    expect(store.counters.fileSets.proofs.reads).toBe(reads + 1);
  });

  it('sees a receipt added and a run removed through the directory', async () => {
    const dir = await lokiDir();
    await writeProof(dir, 'run-a', receipt('VERIFIED'));
    const store = open(dir, { watch: true });
    expect(names((await store.read()).proofs)).toEqual(['run-a']);
    await writeProof(dir, 'run-b', receipt('VERIFIED'));
    expect(names((await eventually(store, (r) => r.proofs.files.length === 2)).proofs)).toEqual(['run-a', 'run-b']);
    await rm(join(dir, 'proofs', 'run-a'), { recursive: true });
    expect(names((await eventually(store, (r) => r.proofs.files.length === 1)).proofs)).toEqual(['run-b']);
  });

  it('with 2,000 receipts, a second read re-reads none', async () => {
    const dir = await lokiDir();
    const count = 2000;
    const runs = Array.from({ length: count }, (_, i) => `run-${String(i).padStart(4, '0')}`);
    await Promise.all(runs.map((run) => mkdir(join(dir, 'proofs', run))));
    await Promise.all(runs.map((run) => writeFile(join(dir, 'proofs', run, 'proof.json'), receipt('VERIFIED'))));
    await ageProofs(dir, runs);
    const store = open(dir, { watch: true });
    const cold = (await store.read()).proofs;
    expect(cold.files).toHaveLength(count);
    expect(names(cold)).toEqual(runs);
    expect(store.counters.fileSets.proofs.reads).toBe(count);
    const { stats, reads } = store.counters.fileSets.proofs;
    const warm = (await store.read()).proofs;
    expect(warm.files).toHaveLength(count);
    expect(store.counters.fileSets.proofs.reads).toBe(reads);
    expect(store.counters.fileSets.proofs.stats).toBe(stats);
  });

  for (const watch of [true, false]) {
    it(`reports proofs/ replaced by a file, and lists entries again once it is a directory (watch: ${watch})`, async () => {
      const dir = await lokiDir();
      await writeProof(dir, 'run-a', receipt('VERIFIED'));
      const store = open(dir, { watch });
      expect(names((await store.read()).proofs)).toEqual(['run-a']);
      await rm(join(dir, 'proofs'), { recursive: true });
      await writeFile(join(dir, 'proofs'), 'not a directory');
      expect((await store.read()).proofs).toEqual({ present: true, files: [], error: 'not a directory' });
      await rm(join(dir, 'proofs'));
      await writeProof(dir, 'run-z', receipt('NOT VERIFIED'));
      const back = (await store.read()).proofs;
      expect(back.error).toBeUndefined();
      expect(names(back)).toEqual(['run-z']);
      expect(content(back, 'run-z')).toBe(receipt('NOT VERIFIED'));
    });
  }

  it('reports a missing proofs/ as absent', async () => {
    const dir = await lokiDir();
    await rm(join(dir, 'proofs'), { recursive: true });
    expect((await open(dir).read()).proofs).toEqual({ present: false, files: [] });
  });
});

describe('pids/<pid>.json (one level)', () => {
  const entry = (pid: number, extra: Record<string, unknown> = {}) => JSON.stringify({ pid, label: 'x', started: '2026-02-14T08:00:00Z', ...extra });

  it('lists *.json regular files sorted by name; other names, directories and a bare ".json" are no entries', async () => {
    const dir = await lokiDir();
    await writeFile(join(dir, 'pids', '300.json'), entry(300));
    await writeFile(join(dir, 'pids', '1000.json'), entry(1000, { kind: 'wrapper' }));
    await writeFile(join(dir, 'pids', '20.json'), entry(20));
    await writeFile(join(dir, 'pids', 'notes.txt'), 'x');
    await writeFile(join(dir, 'pids', '.json'), '{}');
    await mkdir(join(dir, 'pids', 'dir.json'));
    const r = (await open(dir).read()).pids;
    expect(names(r)).toEqual(['1000.json', '20.json', '300.json']);
    expect(content(r, '1000.json')).toBe(entry(1000, { kind: 'wrapper' }));
  });

  it('reports a symlinked entry without following it', async () => {
    const dir = await lokiDir();
    const outside = join(await tempDir(), 'secret.json');
    await writeFile(outside, entry(1));
    await symlink(outside, join(dir, 'pids', '1.json'));
    await writeFile(join(dir, 'pids', '2.json'), entry(2));
    const store = open(dir);
    const r = (await store.read()).pids;
    expect(names(r)).toEqual(['1.json', '2.json']);
    expect(r.files[0]).toMatchObject({ present: true, error: SYMLINK });
    expect(r.files[0]?.bytes).toBeUndefined();
    expect(store.counters.fileSets.pids.reads).toBe(1);
  });

  it('re-reads nothing on a warm read when nothing changed (watching)', async () => {
    const dir = await lokiDir();
    for (const pid of [11, 22, 33]) await writeFile(join(dir, 'pids', `${pid}.json`), entry(pid));
    const store = open(dir, { watch: true });
    const cold = (await store.read()).pids;
    const before = { ...store.counters.fileSets.pids };
    expect(before).toMatchObject({ reads: 3, fullScans: 1 });
    expect(before.stats).toBeGreaterThanOrEqual(3);
    for (let i = 0; i < 5; i++) expect((await store.read()).pids.files).toBe(cold.files);
    expect(store.counters.fileSets.pids).toEqual(before);
  });

  it('sees an entry rewritten in place, and a new and a removed entry, through the watcher', async () => {
    const dir = await lokiDir();
    await writeFile(join(dir, 'pids', '11.json'), entry(11));
    await writeFile(join(dir, 'pids', '22.json'), entry(22));
    const store = open(dir, { watch: true });
    await store.read();
    await writeFile(join(dir, 'pids', '11.json'), entry(11, { kind: 'wrapper' }));
    const changed = await eventually(store, (r) => content(r.pids, '11.json') === entry(11, { kind: 'wrapper' }));
    expect(content(changed.pids, '11.json')).toBe(entry(11, { kind: 'wrapper' }));
    await writeFile(join(dir, 'pids', '33.json'), entry(33));
    await rm(join(dir, 'pids', '22.json'));
    const after = await eventually(store, (r) => names(r.pids).join() === '11.json,33.json');
    expect(names(after.pids)).toEqual(['11.json', '33.json']);
    expect(store.counters.fileSets.pids.fullScans).toBe(1);
  });

  it('sees an entry changed in place at the next full rescan without a watcher', async () => {
    const dir = await lokiDir();
    await writeFile(join(dir, 'pids', '11.json'), entry(11));
    const store = open(dir, { watch: false, rescanIntervalMs: 0 });
    await store.read();
    await writeFile(join(dir, 'pids', '11.json'), entry(12));
    expect(content((await store.read()).pids, '11.json')).toBe(entry(12));
    expect(store.counters.fileSets.pids.fullScans).toBe(2);
  });

  it('reports pids/ replaced by a file, and lists entries again once it is a directory', async () => {
    const dir = await lokiDir();
    await writeFile(join(dir, 'pids', '11.json'), entry(11));
    const store = open(dir, { watch: true });
    expect(names((await store.read()).pids)).toEqual(['11.json']);
    await rm(join(dir, 'pids'), { recursive: true });
    await writeFile(join(dir, 'pids'), '');
    expect((await store.read()).pids).toEqual({ present: true, files: [], error: 'not a directory' });
    await rm(join(dir, 'pids'));
    await mkdir(join(dir, 'pids'));
    await writeFile(join(dir, 'pids', '44.json'), entry(44));
    const back = (await store.read()).pids;
    expect(back.error).toBeUndefined();
    expect(names(back)).toEqual(['44.json']);
  });
});

describe('unchanged reads keep their identity (consumers memoise on it; issue 19, item 5)', () => {
  it('a missing set, and one that is not a directory, read as the very same listing each time', async () => {
    const dir = await lokiDir();
    const store = open(dir, { watch: false });
    const first = await store.read();
    const second = await store.read();
    expect(first.sessions.present).toBe(false);
    expect(second.sessions.files).toBe(first.sessions.files);
    await writeFile(join(dir, 'sessions'), 'not a directory');
    const third = await store.read();
    expect(third.sessions.error).toBe('not a directory');
    expect((await store.read()).sessions.files).toBe(third.sessions.files);
  });

  it('a set with nothing changed reads as the same listing, with the same newest mtime', async () => {
    const dir = await lokiDir();
    await writeFile(join(dir, 'pids', '101.json'), JSON.stringify({ pid: 101, kind: 'wrapper' }));
    await utimes(join(dir, 'pids', '101.json'), 1_700_000_000, 1_700_000_000);
    const store = open(dir, { watch: false });
    const first = (await store.read()).pids;
    const second = (await store.read()).pids;
    expect(second.files).toBe(first.files);
    expect(second.mtimeMs).toBe(1_700_000_000_000);
    await writeFile(join(dir, 'pids', '102.json'), JSON.stringify({ pid: 102, kind: 'runner' }));
    const third = (await store.read()).pids;
    expect(names(third)).toEqual(['101.json', '102.json']);
    expect(third.mtimeMs).toBeGreaterThan(1_700_000_000_000);
  });
});
