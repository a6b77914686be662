/**
 * src/stores/fs/read-file.ts, in-process and without timings: the reasons and versions a read
 * gives, the checked open (`OpenedPathCheck`, `openCheckedDir`), and bounded reads of a file that
 * holds more than its stat said. Files are real (temp dirs); a file that grows between its stat and
 * its read is made with `openHooks.beforeOpen` (the async read takes its size from the lstat before
 * the hook) or is a procfs file (its stat says 0 bytes, its read gives more: what a file still
 * being appended after the stat looks like to the synchronous read, which stats the open file).
 */
import { spawnSync } from 'node:child_process';
import fs, { appendFileSync } from 'node:fs';
import * as fsPromises from 'node:fs/promises';
import { syncBuiltinESMExports } from 'node:module';
import { closeSync, existsSync, fstatSync, lstatSync, openSync, readdirSync, readFileSync, statSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  errorCode,
  isDirectory,
  isMissing,
  NOT_REGULAR,
  OpenedPathCheck,
  openCheckedDir,
  openHooks,
  OVER_BUDGET,
  readSmallFile,
  readSmallFileSync,
  reason,
  representableMs,
  SWAPPED,
  SYMLINK,
  versionOf,
} from '../../src/stores/fs/read-file.js';
import { ABSENT, type FileRead } from '../../src/stores/store.js';
import { cleanTrees, tempDir } from '../support/loki-tree.js';

afterEach(async () => {
  delete openHooks.beforeOpen;
  await cleanTrees();
});

const text = (bytes: Uint8Array | undefined) => (bytes ? new TextDecoder().decode(bytes) : undefined);
const failing = (code: string) => Object.assign(new Error(`${code}: fake`), { code });
const bigLstat = (path: string) => lstatSync(path, { bigint: true });
/** The version the synchronous read gives a file (plain stats). */
const quickVersion = (path: string) => {
  const st = lstatSync(path);
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
};
const counting = () => {
  const counts = { stats: 0, reads: 0 };
  return { counts, onStat: () => void counts.stats++, onRead: () => void counts.reads++ };
};
/** A guard whose check always refuses (as a swapped parent directory would make it). */
const refusingGuard = (why = 'refused by the test') => ({ check: () => why }) as unknown as OpenedPathCheck;

const onLinux = process.platform === 'linux';
/** A procfs file: regular, stat size 0, and a read gives its (fixed) bytes. */
const PROC_FILE = '/proc/self/cmdline';
const procBytes = () => readFileSync(PROC_FILE);

describe('reasons for an I/O error', () => {
  it('names permission, symlink and directory errors in words, other codes by their code, others by their message', () => {
    expect(reason(failing('EACCES'))).toBe('permission denied');
    expect(reason(failing('EPERM'))).toBe('permission denied');
    expect(reason(failing('ELOOP'))).toBe(SYMLINK);
    expect(reason(failing('EISDIR'))).toBe(NOT_REGULAR);
    expect(reason(failing('EIO'))).toBe('EIO');
    expect(reason(failing('ENOSPC'))).toBe('ENOSPC');
    expect(reason(new Error('no code here'))).toBe('no code here');
    expect(reason(Object.assign(new Error('numeric code'), { code: 5 }))).toBe('numeric code');
    expect(reason('a string')).toBe('a string');
    expect(reason(undefined)).toBe('undefined');
  });

  it('a missing file is ENOENT or ENOTDIR (a parent that is a file), nothing else', () => {
    expect(isMissing(failing('ENOENT'))).toBe(true);
    expect(isMissing(failing('ENOTDIR'))).toBe(true);
    expect(isMissing(failing('EACCES'))).toBe(false);
    expect(isMissing(failing('ELOOP'))).toBe(false);
    expect(isMissing(new Error('ENOENT'))).toBe(false);
    expect(isMissing(null)).toBe(false);
    expect(errorCode(null)).toBeUndefined();
    expect(errorCode({ code: 'EIO' })).toBe('EIO');
  });

  it('a path under a regular file is missing, not an error', async () => {
    const root = await tempDir();
    writeFileSync(join(root, 'file'), 'x');
    const path = join(root, 'file', 'below.json');
    expect(readSmallFileSync(path, undefined, { maxBytes: 100, ...counting() })).toBe(ABSENT);
    expect(readSmallFileSync(path, { present: true, version: 'v' }, { maxBytes: 100, ...counting() })).toBe(ABSENT);
  });
});

describe('readSmallFile (documents, async)', () => {
  it('refuses a symlink, a special file and an oversized file with versions of their own', async () => {
    const root = await tempDir();
    const target = join(root, 'target.json');
    writeFileSync(target, '{}');
    const link = join(root, 'link.json');
    symlinkSync(target, link);
    const big = join(root, 'big.json');
    writeFileSync(big, 'x'.repeat(11));
    const fifo = join(root, 'fifo');
    const onRead = () => {
      throw new Error('nothing may be read');
    };

    const linkSt = bigLstat(link);
    expect(await readSmallFile(link, linkSt, 100, undefined, onRead)).toEqual({
      present: true,
      mtimeMs: expect.any(Number),
      error: SYMLINK,
      version: `symlink:${versionOf(linkSt)}`,
    });
    const bigSt = bigLstat(big);
    expect(await readSmallFile(big, bigSt, 10, undefined, onRead)).toEqual({
      present: true,
      mtimeMs: expect.any(Number),
      error: 'too large (11 bytes)',
      version: `large:${versionOf(bigSt)}`,
    });
    const dirSt = bigLstat(root);
    expect(await readSmallFile(root, dirSt, 1 << 20, undefined, onRead)).toMatchObject({ error: NOT_REGULAR, version: `special:${versionOf(dirSt)}` });
    if (mkfifo(fifo)) {
      const fifoSt = bigLstat(fifo);
      expect(await readSmallFile(fifo, fifoSt, 100, undefined, onRead)).toMatchObject({ error: NOT_REGULAR, version: `special:${versionOf(fifoSt)}` });
    }
  });

  it('a file removed between its lstat and its open is absent; another error is reported with the version it had', async () => {
    const root = await tempDir();
    const path = join(root, 'doc.json');
    writeFileSync(path, '{"a":1}');
    const st = bigLstat(path);
    openHooks.beforeOpen = (p) => unlinkSync(p);
    expect(await readSmallFile(path, st, 100, undefined, () => undefined)).toBe(ABSENT);

    writeFileSync(path, '{"a":1}');
    const st2 = bigLstat(path);
    openHooks.beforeOpen = () => {
      throw failing('EIO');
    };
    let reads = 0;
    expect(await readSmallFile(path, st2, 100, undefined, () => reads++)).toEqual({
      present: true,
      mtimeMs: Number(st2.mtimeNs / 1000n) / 1000,
      error: 'EIO',
      version: `error:${versionOf(st2)}`,
    });
    expect(reads).toBe(0);
  });

  it('a path swapped since its lstat is refused with an error version (never the bytes)', async () => {
    const root = await tempDir();
    const path = join(root, 'doc.json');
    writeFileSync(path, '{}');
    const read = await readSmallFile(path, bigLstat(path), 100, undefined, () => undefined, refusingGuard('moved'));
    expect(read).toEqual({ present: true, error: 'moved', version: 'error:moved' });
  });

  it('a file that grew after its lstat is read whole, up to and including the limit', async () => {
    const root = await tempDir();
    const path = join(root, 'doc.json');
    writeFileSync(path, 'a'.repeat(100));
    const st = bigLstat(path);
    const grown = 'b'.repeat(1000);
    openHooks.beforeOpen = (p) => writeFileSync(p, grown); // 100 bytes at the lstat, 1,000 at the read
    let reads = 0;
    const read = await readSmallFile(path, st, 4096, undefined, () => reads++);
    expect(text(read.bytes)).toBe(grown);
    expect(read.version).toBe(versionOf(st)); // the version the lstat saw: the next refresh reads again
    expect(reads).toBe(1);

    // exactly at the limit: still read
    const st2 = bigLstat(path);
    openHooks.beforeOpen = (p) => writeFileSync(p, 'c'.repeat(1500));
    expect(text((await readSmallFile(path, st2, 1500, undefined, () => undefined)).bytes)).toBe('c'.repeat(1500));
    // with a limit no buffer could be allocated at: the buffer grows with the file, never to the limit
    const st3 = bigLstat(path);
    openHooks.beforeOpen = (p) => writeFileSync(p, 'd'.repeat(5000));
    expect(text((await readSmallFile(path, st3, 2 ** 40, undefined, () => undefined)).bytes)).toBe('d'.repeat(5000));
  });

  it('a file that grew past the limit after its lstat is refused as too large, having read at most one byte past it', async () => {
    const root = await tempDir();
    const path = join(root, 'doc.json');
    writeFileSync(path, '{}');
    const st = bigLstat(path);
    openHooks.beforeOpen = (p) => writeFileSync(p, 'x'.repeat(10_000));
    let reads = 0;
    expect(await readSmallFile(path, st, 1000, undefined, () => reads++)).toEqual({
      present: true,
      mtimeMs: expect.any(Number),
      error: 'too large (> 1000 bytes)',
      version: `large:${versionOf(st)}`,
    });
    expect(reads).toBe(1);
  });

  it.runIf(onLinux)('a procfs file (stat size 0) is read to its end, and refused past the limit', async () => {
    const bytes = procBytes();
    const st = bigLstat(PROC_FILE);
    expect(Buffer.from((await readSmallFile(PROC_FILE, st, bytes.length, undefined, () => undefined)).bytes!)).toEqual(bytes);
    expect(await readSmallFile(PROC_FILE, st, bytes.length - 1, undefined, () => undefined)).toMatchObject({ error: `too large (> ${bytes.length - 1} bytes)` });
  });

  it('keeps the cached read while the version is the same, and reads again when it is not', async () => {
    const root = await tempDir();
    const path = join(root, 'doc.json');
    writeFileSync(path, '{"a":1}');
    const st = bigLstat(path);
    let reads = 0;
    const first = await readSmallFile(path, st, 100, undefined, () => reads++);
    expect(await readSmallFile(path, st, 100, first, () => reads++)).toBe(first);
    expect(reads).toBe(1);
    const errorCached: FileRead = { present: true, error: 'EIO', version: versionOf(st) };
    expect(text((await readSmallFile(path, st, 100, errorCached, () => reads++)).bytes)).toBe('{"a":1}');
    expect(reads).toBe(2);
  });
});

describe('a file appended to between two reads of one read', () => {
  it('the async read goes on to EOF once the file is past its lstat size, taking what was appended meanwhile', async () => {
    const root = await tempDir();
    const path = join(root, 'doc.json');
    writeFileSync(path, 'a'.repeat(100));
    const st = bigLstat(path);
    openHooks.beforeOpen = (p) => writeFileSync(p, 'b'.repeat(150)); // past the lstat's 100 bytes
    const probe = await fsPromises.open(path, 'r');
    const proto = Object.getPrototypeOf(probe) as { read: (...args: unknown[]) => Promise<{ bytesRead: number }> };
    await probe.close();
    const realRead = proto.read;
    let calls = 0;
    proto.read = async function (this: unknown, ...args: unknown[]) {
      const result = await realRead.apply(this, args);
      // after the read that reached EOF past the lstat's size, a writer appends
      if (++calls === 2) appendFileSync(path, 'c'.repeat(10));
      return result;
    };
    try {
      const read = await readSmallFile(path, st, 4096, undefined, () => undefined);
      expect(text(read.bytes)).toBe('b'.repeat(150) + 'c'.repeat(10));
    } finally {
      proto.read = realRead;
    }
  });

  it('the synchronous read likewise, once the file is past its fstat size', async () => {
    const root = await tempDir();
    const path = join(root, 'e.json');
    writeFileSync(path, 'a'.repeat(100));
    const real = fs.readSync;
    let calls = 0;
    fs.readSync = ((...args: Parameters<typeof fs.readSync>) => {
      calls++;
      // grown after the fstat, before the first read: that read fills its buffer of size + 1 bytes
      if (calls === 1) appendFileSync(path, 'b'.repeat(50));
      const got = (real as (...a: unknown[]) => number)(...args);
      // and again after the read that reached EOF past the fstat's size
      if (calls === 2) appendFileSync(path, 'c'.repeat(10));
      return got;
    }) as typeof fs.readSync;
    syncBuiltinESMExports();
    let read: FileRead;
    try {
      read = readSmallFileSync(path, undefined, { maxBytes: 4096, ...counting() });
    } finally {
      fs.readSync = real;
      syncBuiltinESMExports();
    }
    expect(text(read.bytes)).toBe('a'.repeat(100) + 'b'.repeat(50) + 'c'.repeat(10));
  });
});

describe('system calls per file (sweeps read thousands)', () => {
  it('a file as large as its stat said is read with one read call, async or not', async () => {
    const root = await tempDir();
    const path = join(root, 'doc.json');
    for (const size of [0, 10, 63, 64, 100, 5000]) {
      writeFileSync(path, 'x'.repeat(size));
      const probe = await fsPromises.open(path, 'r');
      const proto = Object.getPrototypeOf(probe) as { read: (...args: unknown[]) => Promise<{ bytesRead: number }> };
      await probe.close();
      const realRead = proto.read;
      let asyncCalls = 0;
      proto.read = function (this: unknown, ...args: unknown[]) {
        asyncCalls++;
        return realRead.apply(this, args);
      };
      try {
        expect((await readSmallFile(path, bigLstat(path), 1 << 20, undefined, () => undefined)).bytes).toHaveLength(size);
      } finally {
        proto.read = realRead;
      }
      const real = fs.readSync;
      let syncCalls = 0;
      fs.readSync = ((...args: unknown[]) => (syncCalls++, (real as (...a: unknown[]) => number)(...args))) as typeof fs.readSync;
      syncBuiltinESMExports();
      try {
        expect(readSmallFileSync(path, undefined, { maxBytes: 1 << 20, ...counting() }).bytes).toHaveLength(size);
      } finally {
        fs.readSync = real;
        syncBuiltinESMExports();
      }
      expect({ size, asyncCalls, syncCalls }).toEqual({ size, asyncCalls: 1, syncCalls: 1 });
    }
  });
});

describe('readSmallFileSync (file-set entries)', () => {
  it('refuses an entry over its set budget as OVER_BUDGET, with a version of its own, unread', async () => {
    const root = await tempDir();
    const path = join(root, 'e.json');
    writeFileSync(path, 'x'.repeat(50));
    const { counts, onStat, onRead } = counting();
    const version = quickVersion(path);
    expect(readSmallFileSync(path, undefined, { maxBytes: 100, budget: 49, onStat, onRead })).toEqual({
      present: true,
      mtimeMs: expect.any(Number),
      error: OVER_BUDGET,
      version: `budget:${version}`,
    });
    // seen before: decided by the lstat alone
    expect(readSmallFileSync(path, { present: true, version: 'old' }, { maxBytes: 100, budget: 49, onStat, onRead })).toMatchObject({
      error: OVER_BUDGET,
      version: `budget:${version}`,
    });
    expect(counts.reads).toBe(0);
    expect(text(readSmallFileSync(path, undefined, { maxBytes: 100, budget: 50, onStat, onRead }).bytes)).toBe('x'.repeat(50));
  });

  it('refuses symlinks, special files and oversized files with versions of their own', async () => {
    const root = await tempDir();
    const target = join(root, 'target.json');
    writeFileSync(target, '{}');
    const link = join(root, 'link.json');
    symlinkSync(target, link);
    const cached: FileRead = { present: true, version: 'old' };
    const opts = { maxBytes: 1, ...counting() };
    // a new name is opened directly: O_NOFOLLOW refuses the link
    expect(readSmallFileSync(link, undefined, opts)).toEqual({ present: true, error: SYMLINK, version: `error:${SYMLINK}` });
    // one seen before is lstat'ed first
    expect(readSmallFileSync(link, cached, opts)).toMatchObject({ error: SYMLINK, version: `symlink:${quickVersion(link)}` });
    expect(readSmallFileSync(target, cached, opts)).toMatchObject({ error: 'too large (2 bytes)', version: `large:${quickVersion(target)}` });
    expect(readSmallFileSync(root, cached, opts)).toMatchObject({ error: NOT_REGULAR, version: `special:${quickVersion(root)}` });
    const fifo = join(root, 'fifo');
    if (mkfifo(fifo)) {
      // O_NONBLOCK: opening a FIFO without a writer does not hang; its fstat refuses it
      expect(readSmallFileSync(fifo, undefined, opts)).toMatchObject({ error: NOT_REGULAR, version: `special:${quickVersion(fifo)}` });
      expect(readSmallFileSync(fifo, cached, opts)).toMatchObject({ error: NOT_REGULAR, version: `special:${quickVersion(fifo)}` });
    }
  });

  it('an lstat that fails for another reason than a missing file is an error read, its version naming the error', async () => {
    const root = await tempDir();
    const path = join(root, `${'n'.repeat(300)}.json`); // a name longer than NAME_MAX
    expect(readSmallFileSync(path, { present: true, version: 'old' }, { maxBytes: 100, ...counting() })).toEqual({
      present: true,
      error: 'ENAMETOOLONG',
      version: 'error:ENAMETOOLONG',
    });
    expect(readSmallFileSync(path, undefined, { maxBytes: 100, ...counting() })).toEqual({
      present: true,
      error: 'ENAMETOOLONG',
      version: 'error:ENAMETOOLONG',
    });
  });

  it('an open that fails is reported by its reason, a swap by the guard, each with its own version', async () => {
    const root = await tempDir();
    const path = join(root, 'e.json');
    writeFileSync(path, '{}');
    openHooks.beforeOpen = () => {
      throw failing('EIO');
    };
    expect(readSmallFileSync(path, undefined, { maxBytes: 100, ...counting() })).toEqual({ present: true, error: 'EIO', version: 'error:EIO' });
    delete openHooks.beforeOpen;
    expect(readSmallFileSync(path, undefined, { maxBytes: 100, ...counting(), guard: refusingGuard('moved') })).toEqual({
      present: true,
      error: 'moved',
      version: 'error:moved',
    });
  });

  it('re-uses a good cached read of the same version without opening the file; never an error read', async () => {
    const root = await tempDir();
    const path = join(root, 'e.json');
    writeFileSync(path, '{"a":1}');
    const { counts, onStat, onRead } = counting();
    const first = readSmallFileSync(path, undefined, { maxBytes: 100, onStat, onRead });
    expect(first.version).toBe(quickVersion(path));
    expect(readSmallFileSync(path, first, { maxBytes: 100, onStat, onRead })).toBe(first);
    expect(counts).toEqual({ stats: 2, reads: 1 });
    const errorCached: FileRead = { present: true, error: 'EIO', version: quickVersion(path) };
    expect(text(readSmallFileSync(path, errorCached, { maxBytes: 100, onStat, onRead }).bytes)).toBe('{"a":1}');
    expect(counts.reads).toBe(2);
  });

  it.runIf(onLinux)('a file holding more than its stat said (procfs) is read to its end within the limit, the buffer growing with it', () => {
    const bytes = procBytes();
    expect(bytes.length).toBeGreaterThan(64); // more than the first buffer: it has to grow
    const read = (maxBytes: number, budget?: number) =>
      readSmallFileSync(PROC_FILE, undefined, { maxBytes, ...(budget !== undefined ? { budget } : {}), ...counting() });
    expect(Buffer.from(read(bytes.length).bytes!)).toEqual(bytes);
    expect(Buffer.from(read(2 ** 40).bytes!)).toEqual(bytes);
    expect(Buffer.from(read(2 ** 40, bytes.length).bytes!)).toEqual(bytes);
  });

  it.runIf(onLinux)('past the limit: too large when the entry cap is the limit, over budget when the set budget is', () => {
    const bytes = procBytes();
    const { counts, onStat, onRead } = counting();
    const version = quickVersion(PROC_FILE);
    expect(readSmallFileSync(PROC_FILE, undefined, { maxBytes: 10, onStat, onRead })).toEqual({
      present: true,
      mtimeMs: expect.any(Number),
      error: 'too large (> 10 bytes)',
      version: `large:${version}`,
    });
    expect(readSmallFileSync(PROC_FILE, undefined, { maxBytes: 10, budget: 10, onStat, onRead })).toMatchObject({ error: 'too large (> 10 bytes)' });
    expect(readSmallFileSync(PROC_FILE, undefined, { maxBytes: 10, budget: 11, onStat, onRead })).toMatchObject({ error: 'too large (> 10 bytes)' });
    expect(readSmallFileSync(PROC_FILE, undefined, { maxBytes: 10, budget: 9, onStat, onRead })).toMatchObject({ error: OVER_BUDGET, version: `budget:${version}` });
    expect(readSmallFileSync(PROC_FILE, undefined, { maxBytes: bytes.length, budget: bytes.length - 1, onStat, onRead })).toMatchObject({ error: OVER_BUDGET });
    expect(counts.reads).toBe(5); // each was read, never past one byte over its limit
  });
});

describe('OpenedPathCheck', () => {
  /** Opens `opened`, and asks the check whether it is `asked`. */
  function checkOpened(check: OpenedPathCheck, opened: string, asked = opened, beforeCheck?: () => void): string | undefined {
    const fd = openSync(opened, 'r');
    try {
      beforeCheck?.();
      return check.check(fd, asked);
    } finally {
      closeSync(fd);
    }
  }

  it.runIf(onLinux)('a file unlinked since it was opened in the right place is accepted; one opened elsewhere is not', async () => {
    const root = await tempDir();
    const check = new OpenedPathCheck(root);
    writeFileSync(join(root, 'a'), 'x');
    writeFileSync(join(root, 'ab'), 'x');
    writeFileSync(join(root, 'b'), 'x');
    writeFileSync(join(root, 'bbbbbbbbbbb'), 'x');
    expect(checkOpened(check, join(root, 'a'))).toBeUndefined();
    expect(checkOpened(check, join(root, 'a'), join(root, 'a'), () => unlinkSync(join(root, 'a')))).toBeUndefined();
    // another file, unlinked: " (deleted)" does not make it the right one
    expect(checkOpened(check, join(root, 'b'), join(root, 'a'), () => unlinkSync(join(root, 'b')))).toBe(SWAPPED);
    expect(checkOpened(check, join(root, 'ab'), join(root, 'a'), () => unlinkSync(join(root, 'ab')))).toBe(SWAPPED);
    // not deleted: a longer name that starts with the expected one, or one as long as "<name> (deleted)"
    writeFileSync(join(root, 'ab'), 'x');
    expect(checkOpened(check, join(root, 'ab'), join(root, 'a'))).toBe(SWAPPED);
    expect(checkOpened(check, join(root, 'bbbbbbbbbbb'), join(root, 'a'))).toBe(SWAPPED);
  });

  it.runIf(onLinux)('a state directory at the root of the file system (real path `/`) accepts its own files', async () => {
    const root = await tempDir();
    writeFileSync(join(root, 'a'), 'x');
    expect(checkOpened(new OpenedPathCheck('/'), join(root, 'a'))).toBeUndefined();
  });

  it.runIf(onLinux)('a state directory that cannot be resolved refuses; a descriptor /proc cannot name is not judged', async () => {
    const root = await tempDir();
    writeFileSync(join(root, 'a'), 'x');
    const gone = new OpenedPathCheck(join(root, 'no-such-dir'));
    expect(checkOpened(gone, join(root, 'a'), join(root, 'no-such-dir', 'a'))).toBe(SWAPPED);
    const check = new OpenedPathCheck(root);
    expect(check.check(2 ** 30, join(root, 'a'))).toBeUndefined();
  });
});

describe('openCheckedDir and isDirectory', () => {
  it.runIf(onLinux)('opens a real directory once, checked, as a /proc path files can be opened through', async () => {
    const root = await tempDir();
    await mkdir(join(root, 'sub'));
    writeFileSync(join(root, 'sub', 'e.json'), '{"ok":1}');
    const guard = new OpenedPathCheck(root);
    const opened = openCheckedDir(join(root, 'sub'), guard);
    expect(opened).toBeDefined();
    try {
      expect(fstatSync(opened!.fd).isDirectory()).toBe(true);
      expect(opened!.prefix).toBe(`/proc/${process.pid}/fd/${opened!.fd}`);
      expect(readFileSync(`${opened!.prefix}/e.json`, 'utf8')).toBe('{"ok":1}');
    } finally {
      closeSync(opened!.fd);
    }
  });

  it.runIf(onLinux)('gives nothing without a guard, for a missing path, a file, a symlink or a directory the guard refuses', async () => {
    const root = await tempDir();
    await mkdir(join(root, 'sub'));
    writeFileSync(join(root, 'file'), 'x');
    symlinkSync(join(root, 'sub'), join(root, 'link'));
    const guard = new OpenedPathCheck(root);
    const before = openFds();
    expect(openCheckedDir(join(root, 'sub'), undefined)).toBeUndefined();
    expect(openCheckedDir(join(root, 'missing'), guard)).toBeUndefined();
    expect(openCheckedDir(join(root, 'file'), guard)).toBeUndefined();
    expect(openCheckedDir(join(root, 'link'), guard)).toBeUndefined();
    expect(openCheckedDir(join(root, 'sub'), refusingGuard())).toBeUndefined();
    expect(openFds()).toBe(before); // nothing left open
  });

  it('isDirectory: true for a directory only, never following a symlink, false when missing', async () => {
    const root = await tempDir();
    await mkdir(join(root, 'sub'));
    writeFileSync(join(root, 'file'), 'x');
    symlinkSync(join(root, 'sub'), join(root, 'link'));
    expect(isDirectory(join(root, 'sub'))).toBe(true);
    expect(isDirectory(join(root, 'file'))).toBe(false);
    expect(isDirectory(join(root, 'link'))).toBe(false);
    expect(isDirectory(join(root, 'missing'))).toBe(false);
  });
});

/** Makes a FIFO with mkfifo(1); false where there is none. */
function mkfifo(path: string): boolean {
  const made = spawnSync('mkfifo', [path]);
  return made.status === 0 && existsSync(path) && statSync(path).isFIFO();
}

/** How many descriptors this process has open (Linux). */
const openFds = () => readdirSync(`/proc/${process.pid}/fd`).length;

describe('edges', () => {
  it.runIf(onLinux)('readSmallFile closes what it opened, read or refused', async () => {
    const root = await tempDir();
    const path = join(root, 'doc.json');
    writeFileSync(path, '{"a":1}');
    const opened = () => readdirSync(`/proc/${process.pid}/fd`).filter((fd) => {
      try {
        return fs.readlinkSync(`/proc/${process.pid}/fd/${fd}`) === path;
      } catch {
        return false;
      }
    }).length;
    for (let i = 0; i < 5; i++) await readSmallFile(path, bigLstat(path), 100, undefined, () => undefined);
    for (let i = 0; i < 5; i++) await readSmallFile(path, bigLstat(path), 100, undefined, () => undefined, refusingGuard());
    expect(opened()).toBe(0);
  });

  it('a file exactly at the limit is read with one read call', async () => {
    const root = await tempDir();
    const path = join(root, 'doc.json');
    writeFileSync(path, 'x'.repeat(100));
    const real = fs.readSync;
    let syncCalls = 0;
    fs.readSync = ((...args: unknown[]) => (syncCalls++, (real as (...a: unknown[]) => number)(...args))) as typeof fs.readSync;
    syncBuiltinESMExports();
    try {
      expect(readSmallFileSync(path, undefined, { maxBytes: 100, ...counting() }).bytes).toHaveLength(100);
    } finally {
      fs.readSync = real;
      syncBuiltinESMExports();
    }
    const probe = await fsPromises.open(path, 'r');
    const proto = Object.getPrototypeOf(probe) as { read: (...args: unknown[]) => Promise<{ bytesRead: number }> };
    await probe.close();
    const realRead = proto.read;
    let asyncCalls = 0;
    proto.read = function (this: unknown, ...args: unknown[]) {
      asyncCalls++;
      return realRead.apply(this, args);
    };
    try {
      expect((await readSmallFile(path, bigLstat(path), 100, undefined, () => undefined)).bytes).toHaveLength(100);
    } finally {
      proto.read = realRead;
    }
    expect({ syncCalls, asyncCalls }).toEqual({ syncCalls: 1, asyncCalls: 1 });
  });

  it('mtimes up to ±8.64e15 ms are representable, beyond not', () => {
    expect(representableMs(8.64e15)).toBe(8.64e15);
    expect(representableMs(-8.64e15)).toBe(-8.64e15);
    expect(representableMs(8.64e15 + 1)).toBeUndefined();
    expect(representableMs(Number.NaN)).toBeUndefined();
  });

  it.runIf(onLinux)('a state directory given with trailing slashes checks the same', async () => {
    const root = await tempDir();
    writeFileSync(join(root, 'a'), 'x');
    for (const given of [`${root}/`, `${root}//`]) {
      const check = new OpenedPathCheck(given);
      const fd = openSync(join(root, 'a'), 'r');
      try {
        expect(check.check(fd, join(root, 'a'))).toBeUndefined();
        expect(check.check(fd, `${root}/a`)).toBeUndefined();
      } finally {
        closeSync(fd);
      }
    }
  });

  it.runIf(onLinux)('a sibling whose name extends the state directory\'s is not under it', async () => {
    const parent = await tempDir();
    const root = join(parent, 'r');
    await mkdir(root);
    writeFileSync(join(parent, 'rXa'), 'x'); // `<parent>/r` + `X` + `a`
    const check = new OpenedPathCheck(root);
    const fd = openSync(join(parent, 'rXa'), 'r');
    try {
      expect(check.check(fd, join(root, 'a'))).toBe(SWAPPED);
    } finally {
      closeSync(fd);
    }
  });
});
