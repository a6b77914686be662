/**
 * `FileSetTracker` driven directly, with a fake `fs.watch` (`FileSetOptions.watchFn`) whose events
 * the test fires itself: what each kind of watcher event makes the next refresh do, the bounds on
 * what is re-checked per refresh (`#waiting`, `#recent`, the dirty names), and what a relist keeps.
 * Deterministic: no inotify, no timings; costs are read from the tracker's counters, and the clock
 * the "recently modified" rule reads is faked where it matters.
 */
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import { existsSync, lstatSync, mkdirSync, opendirSync, readdirSync, renameSync, rmSync, symlinkSync, unlinkSync, utimesSync, writeFileSync, type watch } from 'node:fs';
import { tmpdir } from 'node:os';
import { syncBuiltinESMExports } from 'node:module';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { FileSetTracker, type FileSetOptions } from '../../src/stores/fs/file-set.js';
import { OpenedPathCheck, openHooks, SYMLINK } from '../../src/stores/fs/read-file.js';
import { FILE_SET_CAPS } from '../../src/stores/fs/set-entry.js';
import { FILE_SETS, type FileSetRead } from '../../src/stores/store.js';
import { cleanTrees, tempDir } from '../support/loki-tree.js';

const trackers: FileSetTracker[] = [];
afterEach(async () => {
  vi.useRealTimers();
  delete openHooks.beforeOpen;
  for (const tracker of trackers.splice(0)) tracker.close();
  await cleanTrees();
});

const base = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
const text = (bytes: Uint8Array | undefined) => (bytes ? new TextDecoder().decode(bytes) : undefined);
const names = (set: FileSetRead) => set.files.map((f) => f.name);
const content = (set: FileSetRead, name: string) => text(set.files.find((f) => f.name === name)?.bytes);

type Listener = (event: string, filename: string | null | undefined) => void;
class FakeWatcher extends EventEmitter {
  closed = 0;
  constructor(readonly listener: Listener) {
    super();
  }
  close(): void {
    this.closed++;
  }
  unref(): this {
    return this;
  }
  /** An event as inotify would report it. */
  fire(filename: string | null | undefined, event = 'change'): void {
    this.listener(event, filename);
  }
}

/** A `watchFn` that hands out fake watchers (or throws, as at the inotify limit). */
function fakeWatch(fail = false) {
  const made: FakeWatcher[] = [];
  const fn = ((_dir: string, _options: unknown, listener: Listener) => {
    if (fail) throw Object.assign(new Error('ENOSPC: System limit for number of file watchers reached'), { code: 'ENOSPC' });
    const watcher = new FakeWatcher(listener);
    made.push(watcher);
    return watcher;
  }) as unknown as typeof watch;
  return { fn, made, get last() {
    return made[made.length - 1]!;
  } };
}

interface Made {
  readonly dir: string;
  readonly tracker: FileSetTracker;
  readonly watcher: ReturnType<typeof fakeWatch>;
}

/** A tracker over `<tmp>/<setDir>` (created), watched by a fake watcher, with no periodic full rescan. */
async function track(set: 'pids' | 'proofs', options: Partial<FileSetOptions> = {}, fail = false): Promise<Made> {
  const root = await tempDir('loki-fset-', base);
  const dir = join(root, set);
  mkdirSync(dir);
  const watcher = fakeWatch(fail);
  const tracker = new FileSetTracker(dir, FILE_SETS[set], { caps: FILE_SET_CAPS, rescanIntervalMs: 3_600_000, watch: true, watchFn: watcher.fn, ...options });
  trackers.push(tracker);
  return { dir, tracker, watcher };
}

/** Sets a file's mtime an hour back: written long ago, settled. */
const age = (path: string) => utimesSync(path, Date.now() / 1000 - 3600, Date.now() / 1000 - 3600);
function writeRun(dir: string, run: string, body?: string, settled = true) {
  mkdirSync(join(dir, run), { recursive: true });
  if (body === undefined) return;
  writeFileSync(join(dir, run, 'proof.json'), body);
  if (settled) age(join(dir, run, 'proof.json'));
}
let touches = 1_000_000;
/**
 * Gives the directory an mtime of its own. A change of the directory (an entry added or removed)
 * is seen through its mtime and ctime, which tmpfs and ext4 keep at a coarse clock tick: two changes
 * within one tick can leave them as they were (inotify reports such a change; the fake watcher here
 * does not). Set explicitly, the change is always seen.
 */
const touchDir = (dir: string) => {
  touches += 1;
  utimesSync(dir, touches, touches);
};
/** The version a set gives an entry's file (plain stats, as the sweep reads them). */
const versionOf = (path: string) => {
  const st = lstatSync(path);
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
};
/** What the next read costs in entry stats, and what it gives. */
async function cost(tracker: FileSetTracker): Promise<{ stats: number; reads: number; full: number; read: FileSetRead }> {
  const before = { ...tracker.counters };
  const read = await tracker.read();
  return { stats: tracker.counters.stats - before.stats, reads: tracker.counters.reads - before.reads, full: tracker.counters.fullScans - before.fullScans, read };
}

describe('watch mode', () => {
  it('is none before a read and without watching, inotify with a watcher, polling when the watch fails', async () => {
    const watched = await track('pids');
    expect(watched.tracker.watchMode).toBe('none');
    await watched.tracker.read();
    expect(watched.tracker.watchMode).toBe('inotify');
    expect(watched.watcher.made).toHaveLength(1);

    const off = await track('pids', { watch: false });
    await off.tracker.read();
    expect(off.tracker.watchMode).toBe('none');
    expect(off.watcher.made).toHaveLength(0);

    const failed = await track('pids', {}, true);
    expect((await cost(failed.tracker)).full).toBe(1);
    expect(failed.tracker.watchMode).toBe('polling');
    // without a watcher every read is a full re-stat
    expect((await cost(failed.tracker)).full).toBe(1);
  });
});

describe('watcher events', () => {
  it('a name the set accepts: only that entry is re-checked at the next refresh (a rewrite in place is seen)', async () => {
    const { dir, tracker, watcher } = await track('pids');
    for (const pid of [1, 2, 3]) writeFileSync(join(dir, `${pid}.json`), `{"pid":${pid}}`);
    await tracker.read();
    writeFileSync(join(dir, '2.json'), '{"pid":22}');
    watcher.last.fire('2.json');
    const next = await cost(tracker);
    expect(next).toMatchObject({ stats: 2, reads: 1, full: 0 }); // its lstat (changed), then its open
    expect(content(next.read, '2.json')).toBe('{"pid":22}');
    expect((await cost(tracker)).stats).toBe(0); // and once only
  });

  it('names the set does not accept are ignored: no re-check, no full rescan', async () => {
    const { dir, tracker, watcher } = await track('pids');
    writeFileSync(join(dir, '1.json'), '{}');
    await tracker.read();
    for (const name of ['notes.txt', '.json', '1.json.tmp']) watcher.last.fire(name);
    expect(await cost(tracker)).toMatchObject({ stats: 0, full: 0 });
    expect(watcher.last.closed).toBe(0);
  });

  for (const set of ['pids', 'proofs'] as const) {
    it(`an event without a name asks for a full rescan, on the same watcher (${set})`, async () => {
      const { tracker, watcher } = await track(set);
      await tracker.read();
      for (const filename of ['', null, undefined]) {
        watcher.last.fire(filename);
        expect(watcher.last.closed).toBe(0);
        expect((await cost(tracker)).full).toBe(1);
        expect((await cost(tracker)).full).toBe(0);
      }
      expect(watcher.made).toHaveLength(1);
      expect(tracker.watchMode).toBe('inotify');
    });

    it(`an event naming the directory itself (moved or deleted): the watcher is closed, the next read watches anew and re-stats all (${set})`, async () => {
      const { dir, tracker, watcher } = await track(set);
      await tracker.read();
      const first = watcher.last;
      first.fire(set);
      expect(first.closed).toBe(1);
      expect(tracker.watchMode).toBe('none');
      const next = await cost(tracker);
      expect(next.full).toBe(1);
      expect(watcher.made).toHaveLength(2);
      expect(tracker.watchMode).toBe('inotify');
      // a late event of the old watcher leaves the new one alone
      first.fire(set);
      first.emit('error', new Error('late'));
      expect(watcher.last.closed).toBe(0);
      expect(tracker.watchMode).toBe('inotify');
      expect(dir.endsWith(set)).toBe(true);
    });
  }

  it('a watcher error closes it; the next read watches anew and re-stats everything', async () => {
    const { tracker, watcher } = await track('pids');
    await tracker.read();
    const first = watcher.last;
    first.emit('error', Object.assign(new Error('EMFILE'), { code: 'EMFILE' }));
    expect(first.closed).toBe(1);
    expect(tracker.watchMode).toBe('none');
    expect((await cost(tracker)).full).toBe(1);
    expect(watcher.made).toHaveLength(2);
    expect(watcher.last.closed).toBe(0);
    expect(tracker.watchMode).toBe('inotify');
  });

  it('up to 4,096 changed names are re-checked one by one; one more asks for a full rescan instead', async () => {
    const { tracker, watcher } = await track('pids');
    await tracker.read();
    for (let i = 0; i < 4096; i++) watcher.last.fire(`${i}.json`);
    expect(await cost(tracker)).toMatchObject({ stats: 4096, full: 0 });
    for (let i = 0; i < 4097; i++) watcher.last.fire(`${i}.json`);
    expect(await cost(tracker)).toMatchObject({ full: 1 });
    expect(watcher.last.closed).toBe(0);
  });
});

describe('what a relist re-checks and keeps', () => {
  it('a new file in the directory: only the new entry is read, the others are not re-stat\'ed', async () => {
    const { dir, tracker } = await track('pids');
    for (const pid of [1, 2, 3]) writeFileSync(join(dir, `${pid}.json`), `{"pid":${pid}}`);
    expect(await cost(tracker)).toMatchObject({ stats: 3, reads: 3, full: 1 });
    writeFileSync(join(dir, '4.json'), '{"pid":4}');
    touchDir(dir);
    const next = await cost(tracker);
    expect(next).toMatchObject({ stats: 1, reads: 1, full: 0 });
    expect(names(next.read)).toEqual(['1.json', '2.json', '3.json', '4.json']);
  });

  it('a new file and a changed one reported by the watcher: both, and only them', async () => {
    const { dir, tracker, watcher } = await track('pids');
    for (const pid of [1, 2, 3]) writeFileSync(join(dir, `${pid}.json`), `{"pid":${pid}}`);
    await tracker.read();
    writeFileSync(join(dir, '2.json'), '{"pid":22}');
    watcher.last.fire('2.json');
    writeFileSync(join(dir, '4.json'), '{"pid":4}');
    touchDir(dir);
    const next = await cost(tracker);
    expect(next).toMatchObject({ stats: 3, reads: 2, full: 0 }); // 2.json: lstat and open; 4.json: open
    expect(content(next.read, '2.json')).toBe('{"pid":22}');
    expect(content(next.read, '4.json')).toBe('{"pid":4}');
  });

  it('a run directory waiting for its receipt, then removed: no longer re-checked', async () => {
    const { dir, tracker } = await track('proofs');
    writeRun(dir, 'run-a', '{}');
    writeRun(dir, 'run-w');
    const cold = await cost(tracker);
    expect(cold).toMatchObject({ stats: 2, reads: 1 }); // each listed run: one open, no lstat of its directory
    expect((await cost(tracker)).stats).toBe(2); // run-w: its directory and its file, looked for again
    rmSync(join(dir, 'run-w'), { recursive: true });
    touchDir(dir);
    expect((await cost(tracker)).stats).toBe(0); // relisted: gone
    expect((await cost(tracker)).stats).toBe(0);
  });

  it('a receipt written in the last seconds is re-checked at each refresh until it settles; removed, it no longer is', async () => {
    const { dir, tracker } = await track('proofs');
    writeRun(dir, 'run-a', '{}');
    writeRun(dir, 'run-r', '{"honesty": {"head', false); // being written now
    await tracker.read();
    writeFileSync(join(dir, 'run-r', 'proof.json'), '{"honesty": {"headline": "VERIFIED"}}'); // in place: no event on proofs/
    const next = await cost(tracker);
    // read by this refresh (not only re-read when asked for: an entry's bytes are re-read then, whatever its version)
    expect(next).toMatchObject({ reads: 1, full: 0 });
    expect(next.read.files.find((f) => f.name === 'run-r')?.version).toBe(versionOf(join(dir, 'run-r', 'proof.json')));
    expect(content(next.read, 'run-r')).toBe('{"honesty": {"headline": "VERIFIED"}}');
    rmSync(join(dir, 'run-r'), { recursive: true });
    touchDir(dir);
    expect(names(await tracker.read())).toEqual(['run-a']);
    expect((await cost(tracker)).stats).toBe(0);
  });

  it('a file left out at the cap of bytes and then removed: the set is no longer reported at its cap', async () => {
    const { dir, tracker } = await track('pids', { caps: { ...FILE_SET_CAPS, bytes: 100 } });
    writeFileSync(join(dir, '1.json'), 'a'.repeat(60));
    await tracker.read();
    writeFileSync(join(dir, '2.json'), 'b'.repeat(60));
    touchDir(dir);
    const capped = await tracker.read();
    expect(names(capped)).toEqual(['1.json']);
    expect(capped.error).toMatch(/more than 100 bytes of files/);
    unlinkSync(join(dir, '2.json'));
    touchDir(dir);
    const after = await tracker.read();
    expect(after.error).toBeUndefined();
    expect(names(after)).toEqual(['1.json']);
  });

  it('an error entry dropped keeps the byte count of the set right: the cap still holds', async () => {
    const { dir, tracker } = await track('pids', { caps: { ...FILE_SET_CAPS, bytes: 100 } });
    const outside = join(await tempDir('loki-out-', base), 'x.json');
    writeFileSync(outside, '{}');
    symlinkSync(outside, join(dir, '1.json'));
    expect((await tracker.read()).files[0]).toMatchObject({ name: '1.json', error: SYMLINK });
    unlinkSync(join(dir, '1.json'));
    touchDir(dir);
    expect((await tracker.read()).files).toEqual([]);
    writeFileSync(join(dir, '2.json'), 'b'.repeat(60));
    writeFileSync(join(dir, '3.json'), 'c'.repeat(60));
    touchDir(dir);
    const r = await tracker.read();
    expect(r.files).toHaveLength(1);
    expect(text(r.files[0]!.bytes)).toMatch(/^(b{60}|c{60})$/);
    expect(r.error).toMatch(/more than 100 bytes of files/);
  });
});

describe('two-level entries', () => {
  it('a symlinked run directory reported by the watcher is refused with a version of its own', async () => {
    const { dir, tracker, watcher } = await track('proofs');
    await tracker.read();
    const outside = await tempDir('loki-out-', base);
    writeFileSync(join(outside, 'proof.json'), '"outside"');
    symlinkSync(outside, join(dir, 'evil'));
    watcher.last.fire('evil');
    const r = await tracker.read();
    expect(r.files).toEqual([{ name: 'evil', present: true, error: SYMLINK, version: `symlink:${lstatSync(join(dir, 'evil')).ino}` }]);
    expect(tracker.counters.reads).toBe(0);
  });

  it('a name reported by the watcher that cannot be stat\'ed (not for being missing) is an error entry', async () => {
    const { tracker, watcher } = await track('proofs');
    await tracker.read();
    const long = 'n'.repeat(300); // longer than NAME_MAX
    watcher.last.fire(long);
    expect((await tracker.read()).files).toEqual([{ name: long, present: true, error: 'ENAMETOOLONG', version: 'error:ENAMETOOLONG' }]);
  });

  it('a regular file in proofs/ reported by the watcher is no entry, and not looked for again', async () => {
    const { dir, tracker, watcher } = await track('proofs');
    writeRun(dir, 'run-a', '{}');
    writeFileSync(join(dir, 'stray'), 'x'); // never listed: not a directory
    await tracker.read();
    watcher.last.fire('stray'); // e.g. rewritten
    const r = await cost(tracker);
    expect(names(r.read)).toEqual(['run-a']);
    expect((await cost(tracker)).stats).toBe(0);
  });

  it('an entry whose bytes are asked for after the next refresh is read again from its receipt, guarded', async () => {
    const { dir, tracker } = await track('proofs');
    writeRun(dir, 'run-a', '{"v":1}');
    const first = await tracker.read();
    await tracker.read(); // releases what the first one held
    const { stats, loads } = { ...tracker.counters };
    expect(text(first.files[0]!.bytes)).toBe('{"v":1}');
    expect(tracker.counters.loads).toBe(loads + 1);
    expect(tracker.counters.stats).toBe(stats + 1);
  });

  it('a one-level entry asked for later is re-read through the guard: a swapped directory serves nothing', async () => {
    const root = await tempDir('loki-fset-', base);
    const dir = join(root, 'pids');
    const outside = join(root, 'outside');
    mkdirSync(dir);
    mkdirSync(outside);
    writeFileSync(join(dir, '1.json'), '{"inside":1}');
    writeFileSync(join(outside, '1.json'), '"outside"');
    const tracker = new FileSetTracker(dir, FILE_SETS.pids, { caps: FILE_SET_CAPS, rescanIntervalMs: 3_600_000, watch: false, guard: new OpenedPathCheck(root) });
    trackers.push(tracker);
    const first = await tracker.read();
    await tracker.read();
    renameSync(dir, `${dir}.moved`);
    symlinkSync(outside, dir);
    expect(first.files[0]!.bytes).toBeUndefined();
  });

  it('more than 256 run directories waiting for their receipts: 256 are re-checked per refresh, the rest at a full rescan', async () => {
    const { dir, tracker } = await track('proofs');
    const runs = Array.from({ length: 300 }, (_, i) => `run-${String(i).padStart(3, '0')}`);
    for (const run of runs) writeRun(dir, run);
    await tracker.read();
    expect((await cost(tracker)).stats).toBe(2 * 256); // each: its directory's lstat and its file's open
    for (const run of runs) writeRun(dir, run, '{}');
    const found = await cost(tracker);
    expect(found.read.files).toHaveLength(256);
    const after = await cost(tracker);
    expect(after.stats).toBe(0); // no longer waiting; the other 44 are found by the next full rescan
    expect(after.read.files).toHaveLength(256);
  });

  it('watcher names come first: waiting entries fill the re-checks only up to 256 in all', async () => {
    const { dir, tracker, watcher } = await track('proofs');
    for (let i = 0; i < 256; i++) writeRun(dir, `run-${String(i).padStart(3, '0')}`);
    await tracker.read();
    for (let i = 0; i < 10; i++) watcher.last.fire(`gone-${i}`);
    // 10 names (an lstat each: missing) and 246 waiting entries (their directory and their file)
    expect((await cost(tracker)).stats).toBe(10 + 2 * 246);
  });

  it('recently modified receipts: at most 256 are re-checked per refresh, and they stay re-checked while recent', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const now = Math.floor(Date.now() / 1000) * 1000;
    vi.setSystemTime(now);
    const { dir, tracker } = await track('proofs');
    for (let i = 0; i < 300; i++) {
      writeRun(dir, `run-${String(i).padStart(3, '0')}`, '{}', false);
      utimesSync(join(dir, `run-${String(i).padStart(3, '0')}`, 'proof.json'), (now - 1000) / 1000, (now - 1000) / 1000);
    }
    await tracker.read();
    // each: its directory's lstat and its file's lstat (unchanged: not read)
    expect(await cost(tracker)).toMatchObject({ stats: 2 * 256, reads: 0 });
    expect(await cost(tracker)).toMatchObject({ stats: 2 * 256, reads: 0 });
  });

  it('recent means modified less than 15 s ago: at exactly 15 s a receipt has settled', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const now = Math.floor(Date.now() / 1000) * 1000;
    vi.setSystemTime(now);
    const { dir, tracker } = await track('proofs');
    writeRun(dir, 'run-a', '{}', false);
    utimesSync(join(dir, 'run-a', 'proof.json'), (now - 15_000) / 1000, (now - 15_000) / 1000);
    writeRun(dir, 'run-b', '{}', false);
    utimesSync(join(dir, 'run-b', 'proof.json'), (now - 14_000) / 1000, (now - 14_000) / 1000);
    await tracker.read();
    expect((await cost(tracker)).stats).toBe(2); // run-b only
    vi.setSystemTime(now + 1000); // run-b now 15 s old: settled after this refresh
    expect((await cost(tracker)).stats).toBe(2);
    expect((await cost(tracker)).stats).toBe(0);
  });

  it('with 512 names from the watcher, no recent receipt is added to the re-checks', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const now = Math.floor(Date.now() / 1000) * 1000;
    vi.setSystemTime(now);
    const { dir, tracker, watcher } = await track('proofs');
    writeRun(dir, 'run-r', '{}', false);
    await tracker.read();
    for (let i = 0; i < 512; i++) watcher.last.fire(`gone-${i}`);
    expect((await cost(tracker)).stats).toBe(512);
    expect((await cost(tracker)).stats).toBe(2); // run-r, still recent
  });

  it('a relist with more than 512 names from the watcher keeps a recent receipt re-checked', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const now = Math.floor(Date.now() / 1000) * 1000;
    vi.setSystemTime(now);
    const { dir, tracker, watcher } = await track('proofs');
    writeRun(dir, 'run-r', '{"v":1}', false);
    await tracker.read();
    for (let i = 0; i < 600; i++) watcher.last.fire(`gone-${i}`);
    writeRun(dir, 'run-new'); // a directory change: relisted
    touchDir(dir);
    await tracker.read();
    writeFileSync(join(dir, 'run-r', 'proof.json'), '{"v":22}'); // in place
    const next = await cost(tracker);
    expect(next.reads).toBe(1);
    expect(next.read.files.find((f) => f.name === 'run-r')?.version).toBe(versionOf(join(dir, 'run-r', 'proof.json')));
  });
});

describe('the directory itself', () => {
  it('a symlink is refused without following it; an lstat error is reported', async () => {
    const root = await tempDir('loki-fset-', base);
    mkdirSync(join(root, 'real'));
    writeFileSync(join(root, 'real', '1.json'), '{}');
    symlinkSync(join(root, 'real'), join(root, 'pids'));
    const linked = new FileSetTracker(join(root, 'pids'), FILE_SETS.pids, { caps: FILE_SET_CAPS, rescanIntervalMs: 0, watch: false });
    trackers.push(linked);
    expect(await linked.read()).toEqual({ present: true, files: [], error: SYMLINK });
    const long = new FileSetTracker(join(root, 'n'.repeat(300)), FILE_SETS.pids, { caps: FILE_SET_CAPS, rescanIntervalMs: 0, watch: false });
    trackers.push(long);
    expect(await long.read()).toEqual({ present: true, files: [], error: 'ENAMETOOLONG' });
  });

  /** A directory this process may stat but not list (/proc/1/map_files needs CAP_SYS_ADMIN, which root in a container lacks). */
  const UNLISTABLE = '/proc/1/map_files';
  const unlistable = (() => {
    try {
      if (!lstatSync(UNLISTABLE).isDirectory()) return false;
      const listing = opendirSync(UNLISTABLE);
      try {
        listing.readSync();
      } finally {
        listing.closeSync();
      }
      return false;
    } catch (error) {
      return (error as { code?: string }).code === 'EACCES' || (error as { code?: string }).code === 'EPERM';
    }
  })();

  it.runIf(unlistable)('a directory that cannot be listed: reported by its reason as present, never thrown', async () => {
    const watcher = fakeWatch();
    const tracker = new FileSetTracker(UNLISTABLE, FILE_SETS.pids, { caps: FILE_SET_CAPS, rescanIntervalMs: 3_600_000, watch: true, watchFn: watcher.fn });
    trackers.push(tracker);
    expect(await tracker.read()).toEqual({ present: true, files: [], error: 'permission denied' });
    expect(await tracker.read()).toEqual({ present: true, files: [], error: 'permission denied' });
    expect(tracker.counters.fullScans).toBe(0);
  });

  it('replaced by another directory (a new inode): the old watcher is closed, a new one watches, everything is re-stat\'ed', async () => {
    const { dir, tracker, watcher } = await track('pids');
    writeFileSync(join(dir, '1.json'), '{"old":1}');
    await tracker.read();
    const first = watcher.last;
    renameSync(dir, `${dir}.old`);
    mkdirSync(dir);
    writeFileSync(join(dir, '2.json'), '{"new":2}');
    const next = await cost(tracker);
    expect(first.closed).toBe(1);
    expect(watcher.made).toHaveLength(2);
    expect(next.full).toBe(1);
    expect(names(next.read)).toEqual(['2.json']);
  });

  it('removed: absent, nothing kept, the watcher closed; back: watched anew and listed in full', async () => {
    const { dir, tracker, watcher } = await track('pids');
    writeFileSync(join(dir, '1.json'), '{}');
    await tracker.read();
    rmSync(dir, { recursive: true });
    expect(await tracker.read()).toEqual({ present: false, files: [] });
    expect(watcher.last.closed).toBe(1);
    expect(tracker.watchMode).toBe('none');
    mkdirSync(dir);
    writeFileSync(join(dir, '1.json'), '{}');
    const back = await cost(tracker);
    expect(back.full).toBe(1);
    expect(names(back.read)).toEqual(['1.json']);
    expect(watcher.made).toHaveLength(2);
  });

  it('a listing that fails: the entries known are kept, the error reported, and the next read lists in full', async () => {
    const { dir, tracker } = await track('pids');
    writeFileSync(join(dir, '1.json'), '{}');
    await tracker.read();
    writeFileSync(join(dir, '2.json'), '{}');
    touchDir(dir);
    const real = fs.opendirSync;
    fs.opendirSync = (() => {
      throw Object.assign(new Error('EIO: i/o error, opendir'), { code: 'EIO' });
    }) as typeof fs.opendirSync;
    syncBuiltinESMExports();
    let failed: FileSetRead;
    try {
      failed = await tracker.read();
    } finally {
      fs.opendirSync = real;
      syncBuiltinESMExports();
    }
    expect(failed).toMatchObject({ present: true, error: 'EIO' });
    expect(names(failed)).toEqual(['1.json']);
    const next = await cost(tracker);
    expect(next.full).toBe(1);
    expect(next.read.error).toBeUndefined();
    expect(names(next.read)).toEqual(['1.json', '2.json']);
  });

  it('refuse(): nothing listed or kept, the reason given', async () => {
    const { dir, tracker } = await track('pids');
    writeFileSync(join(dir, '1.json'), '{}');
    expect((await tracker.read()).files).toHaveLength(1);
    expect(tracker.refuse('pids/ is not ours')).toEqual({ present: true, files: [], error: 'pids/ is not ours' });
    expect(tracker.retainedBytes()).toBe(0);
    expect((await cost(tracker)).full).toBe(1); // forgotten: the next read starts over
  });
});

describe('listing, caps and identity details', () => {
  it('rescanIntervalMs 0: every read is a full re-stat, even with the clock standing still', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(Math.floor(Date.now() / 1000) * 1000);
    const { tracker } = await track('pids', { rescanIntervalMs: 0 });
    expect((await cost(tracker)).full).toBe(1);
    expect((await cost(tracker)).full).toBe(1);
  });

  it('the watcher is asked not to keep the process alive', async () => {
    const seen: unknown[] = [];
    const root = await tempDir('loki-fset-', base);
    mkdirSync(join(root, 'pids'));
    const watchFn = ((_dir: string, options: unknown, listener: Listener) => (seen.push(options), new FakeWatcher(listener))) as unknown as typeof watch;
    const tracker = new FileSetTracker(join(root, 'pids'), FILE_SETS.pids, { caps: FILE_SET_CAPS, rescanIntervalMs: 3_600_000, watch: true, watchFn });
    trackers.push(tracker);
    await tracker.read();
    expect(seen).toEqual([{ persistent: false }]);
  });

  it('closed: no watcher is made again by a later read', async () => {
    const { tracker, watcher } = await track('pids');
    await tracker.read();
    tracker.close();
    expect(watcher.last.closed).toBe(1);
    await tracker.read();
    expect(watcher.made).toHaveLength(1);
    expect(tracker.watchMode).toBe('none');
  });

  it('a failed watch is forgotten with the directory: polling while it is there, none once it is gone', async () => {
    const { dir, tracker } = await track('pids', {}, true);
    await tracker.read();
    expect(tracker.watchMode).toBe('polling');
    rmSync(dir, { recursive: true });
    await tracker.read();
    expect(tracker.watchMode).toBe('none');
  });

  it('no error key when the set is within its caps, and no mtime key when no entry has one', async () => {
    const { dir, tracker } = await track('pids');
    symlinkSync('/nonexistent', join(dir, '1.json')); // an error entry without an mtime (refused at its open)
    const r = await tracker.read();
    expect(r.files).toHaveLength(1);
    expect(Object.keys(r).sort()).toEqual(['files', 'present']);
  });

  it('the newest mtime is the largest of the entries that have one, wherever they sort', async () => {
    const { dir, tracker } = await track('pids');
    writeFileSync(join(dir, '1.json'), '{}');
    utimesSync(join(dir, '1.json'), 2_000_000, 2_000_000);
    writeFileSync(join(dir, '2.json'), '{}');
    utimesSync(join(dir, '2.json'), 1_000_000, 1_000_000);
    symlinkSync('/nonexistent', join(dir, '3.json')); // sorts last, no mtime
    expect((await tracker.read()).mtimeMs).toBe(2_000_000_000);
  });

  it('two-level: a regular file among the run directories takes no place under the entry cap', async () => {
    const { dir, tracker } = await track('proofs', { caps: { ...FILE_SET_CAPS, entries: 2 } });
    writeRun(dir, 'run-a', '{}');
    writeRun(dir, 'run-b', '{}');
    writeFileSync(join(dir, 'stray'), 'x');
    const r = await tracker.read();
    expect(r.error).toBeUndefined();
    expect(names(r)).toEqual(['run-a', 'run-b']);
  });

  it('at its entry cap, a set does not grow by a name the watcher reports', async () => {
    const { dir, tracker, watcher } = await track('pids', { caps: { ...FILE_SET_CAPS, entries: 2 } });
    for (const pid of [1, 2, 3]) writeFileSync(join(dir, `${pid}.json`), '{}');
    const first = await tracker.read();
    expect(first.files).toHaveLength(2);
    const left = ['1.json', '2.json', '3.json'].find((n) => !names(first).includes(n))!;
    watcher.last.fire(left);
    const next = await tracker.read();
    expect(names(next)).toEqual(names(first));
  });

  it('at its entry cap, an entry it holds is still read again when the watcher reports it rewritten', async () => {
    const { dir, tracker, watcher } = await track('pids', { caps: { ...FILE_SET_CAPS, entries: 2 } });
    for (const pid of [1, 2]) {
      writeFileSync(join(dir, `${pid}.json`), '{"pid":1}');
      age(join(dir, `${pid}.json`)); // settled: not looked at again unless reported
    }
    const versionOf = (set: FileSetRead) => set.files.find((f) => f.name === '1.json')?.version;
    const before = versionOf(await tracker.read());
    writeFileSync(join(dir, '1.json'), '{"pid":11}'); // in place: the directory does not change
    age(join(dir, '1.json'));
    watcher.last.fire('1.json');
    // A new version is what makes the collector parse the entry again.
    const after = await tracker.read();
    expect(versionOf(after)).not.toBe(before);
    expect(content(after, '1.json')).toBe('{"pid":11}');
  });

  it('a sweep leaves no descriptor open (the checked directory, the listing)', async () => {
    const root = await tempDir('loki-fset-', base);
    const dir = join(root, 'pids');
    mkdirSync(dir);
    for (let i = 0; i < 40; i++) writeFileSync(join(dir, `${i}.json`), '{}');
    const tracker = new FileSetTracker(dir, FILE_SETS.pids, { caps: FILE_SET_CAPS, rescanIntervalMs: 0, watch: false, guard: new OpenedPathCheck(root) });
    trackers.push(tracker);
    const fds = () => readdirSync(`/proc/${process.pid}/fd`).length;
    await tracker.read();
    const before = fds();
    for (let i = 0; i < 3; i++) expect((await tracker.read()).files).toHaveLength(40);
    expect(fds()).toBe(before);
  });

  it('re-checking an entry that is still waiting keeps the listing (the same array)', async () => {
    const { dir, tracker } = await track('proofs');
    writeRun(dir, 'run-a', '{}');
    writeRun(dir, 'run-w');
    const first = await tracker.read();
    const second = await tracker.read();
    expect(tracker.counters.stats).toBeGreaterThan(2); // run-w was looked at again
    expect(second.files).toBe(first.files);
  });
});
