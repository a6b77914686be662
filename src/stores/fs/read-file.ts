/**
 * Reading one small file of a `.loki` tree, read-only and without following symlinks: the pieces
 * every fs reader shares (documents, file sets, events).
 */
import { closeSync, constants, existsSync, fstatSync, lstatSync, openSync, readlinkSync, readSync, realpathSync, type BigIntStats, type Stats } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { ABSENT, type FileRead } from '../store.js';

export const OPEN_FLAGS = constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0) | (constants.O_NONBLOCK ?? 0);

export const SYMLINK = 'is a symbolic link (not followed)';
export const NOT_REGULAR = 'not a regular file';
export const SWAPPED = 'a parent directory was swapped for a symbolic link while opening (not followed)';

/** For tests only: called just before a file is opened, to provoke the races the checks guard against. */
export const openHooks: { beforeOpen?: (path: string) => void } = {};

/**
 * lstat and O_NOFOLLOW guard only a path's last component: a sub-directory (`state/`,
 * `proofs/<run>/`) swapped for a symlink between its check and the open (renameat2 can exchange it
 * and swap it back) would be followed. So after each open, the kernel's own name for the open file
 * (`/proc/self/fd/N`, one readlink) must be the expected path under the state directory's real
 * path: a symlink anywhere below the state directory shows as a different path. Without /proc
 * (not Linux) the check is skipped. Costs nothing on the warm path (no file is opened there).
 */
export class OpenedPathCheck {
  readonly #root: string;
  #realRoot: string | undefined;

  constructor(root: string) {
    // As `join` writes paths under it (the callers build theirs with join or `${dir}/${name}`).
    this.#root = join(root).replace(/(.)\/+$/, '$1');
  }

  /** undefined when `fd` was reached through real directories (or this cannot be told), else why not. */
  check(fd: number, path: string): string | undefined {
    let actual: string;
    try {
      actual = readlinkSync(`${PROC_FDS}${fd}`);
    } catch {
      return undefined;
    }
    const under = path.startsWith(`${this.#root}/`) ? path.slice(this.#root.length + 1) : relative(this.#root, path);
    if (this.#realRoot !== undefined && matches(actual, this.#realRoot, under)) return undefined;
    // First use, or the state directory itself was moved or re-pointed (it may be a symlink).
    try {
      this.#realRoot = realpathSync(this.#root);
    } catch {
      return SWAPPED;
    }
    return matches(actual, this.#realRoot, under) ? undefined : SWAPPED;
  }
}

/** `/proc/<pid>/fd/`: about half the cost of `/proc/self/fd/` (no `self` link to resolve). */
const PROC_FDS = `/proc/${process.pid}/fd/`;
const DELETED = ' (deleted)';
function matches(actual: string, realRoot: string, under: string): boolean {
  // `actual` = realRoot + '/' + under, compared without building the string.
  const at = realRoot.endsWith(sep) ? realRoot.length : realRoot.length + 1;
  if (!actual.startsWith(realRoot) || (at > realRoot.length && actual[realRoot.length] !== sep)) return false;
  const rest = actual.length - at;
  if (rest === under.length) return actual.endsWith(under);
  // A file unlinked since the open is still the one that was in the right place.
  return rest === under.length + DELETED.length && actual.endsWith(DELETED) && actual.startsWith(under, at);
}

export function errorCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

export const isMissing = (error: unknown) => {
  const code = errorCode(error);
  return code === 'ENOENT' || code === 'ENOTDIR';
};

/**
 * `path`'s lstat, or undefined when there is nothing there (missing, or under a non-directory);
 * other errors are thrown. Synchronous, as the sweeps' reads are: a refresh with nothing changed is
 * a couple of dozen of these, a few microseconds each on a local disk, where each through the
 * thread pool costs tens (hundreds after an idle spell, as threads wake). No exception is made for
 * a missing file, so absent documents cost no more than present ones.
 */
export function lstatIfThere(path: string): BigIntStats | undefined {
  try {
    return lstatSync(path, { bigint: true, throwIfNoEntry: false });
  } catch (error) {
    if (isMissing(error)) return undefined;
    throw error;
  }
}

/** A short reason for an I/O error. */
export function reason(error: unknown): string {
  const code = errorCode(error);
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  if (code === 'ELOOP') return SYMLINK;
  if (code === 'EISDIR') return NOT_REGULAR;
  if (code) return code;
  return error instanceof Error ? error.message : String(error);
}

export const versionOf = (st: BigIntStats) => `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
/** Largest time a JS Date can hold (ms either side of the epoch). */
export const MAX_DATE_MS = 8.64e15;
/** An mtime as ms, or undefined when a Date cannot represent it (`touch -d @99999999999999`): unknown. */
export const representableMs = (ms: number): number | undefined => (Number.isFinite(ms) && Math.abs(ms) <= MAX_DATE_MS ? ms : undefined);
export const mtimeMsOf = (st: BigIntStats) => representableMs(Number(st.mtimeNs / 1000n) / 1000);

/** The facts a stat gives that decide whether, and as what version, a file is read. */
interface StatFacts {
  isSymbolicLink(): boolean;
  isFile(): boolean;
  readonly size: number;
  readonly mtimeMs: number | undefined;
  readonly version: string;
}

/** Exact (nanosecond) facts, for documents read one at a time. */
const bigFacts = (st: BigIntStats): StatFacts => ({
  isSymbolicLink: () => st.isSymbolicLink(),
  isFile: () => st.isFile(),
  size: Number(st.size),
  mtimeMs: mtimeMsOf(st),
  version: versionOf(st),
});

/** Plain facts (sub-microsecond float times: enough to see any change), for sweeps of thousands. */
const quickFacts = (st: Stats): StatFacts => ({
  isSymbolicLink: () => st.isSymbolicLink(),
  isFile: () => st.isFile(),
  size: st.size,
  mtimeMs: representableMs(st.mtimeMs),
  version: `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`,
});

/** What a stat says before any byte is read: a reason not to read, or undefined to go on. */
function refusal(st: StatFacts, maxBytes: number, budget = Infinity): FileRead | undefined {
  const { mtimeMs, version } = st;
  if (st.isSymbolicLink()) return { present: true, mtimeMs, error: SYMLINK, version: `symlink:${version}` };
  if (!st.isFile()) return { present: true, mtimeMs, error: NOT_REGULAR, version: `special:${version}` };
  if (st.size > maxBytes) return { present: true, mtimeMs, error: `too large (${st.size} bytes)`, version: `large:${version}` };
  if (st.size > budget) return overBudget(st);
  return undefined;
}

const tooLarge = (st: StatFacts, maxBytes: number): FileRead => ({
  present: true,
  mtimeMs: st.mtimeMs,
  error: `too large (> ${maxBytes} bytes)`,
  version: `large:${st.version}`,
});

/**
 * The error of a file left unread because its set already holds its cap of bytes (see
 * `SyncReadOptions.budget`): the caller leaves such a file out of the set rather than reporting it.
 */
export const OVER_BUDGET = 'not read: its set is at its cap of bytes';
const overBudget = (st: StatFacts): FileRead => ({ present: true, mtimeMs: st.mtimeMs, error: OVER_BUDGET, version: `budget:${st.version}` });

/**
 * One small file read whole, re-using `cached` when the version is unchanged. Never throws. `st` is
 * its lstat: the version is taken before the bytes, so a write racing the read only costs a re-read
 * next time (the version will differ), never a stale cache.
 */
export async function readSmallFile(
  path: string,
  st: BigIntStats,
  maxBytes: number,
  cached: FileRead | undefined,
  onRead: () => void,
  guard?: OpenedPathCheck,
): Promise<FileRead> {
  const facts = bigFacts(st);
  const refused = refusal(facts, maxBytes);
  if (refused) return refused;
  const { version, mtimeMs } = facts;
  if (cached?.bytes !== undefined && cached.version === version) return cached;
  let handle: FileHandle | undefined;
  try {
    // O_NOFOLLOW: a symlink swapped in since the lstat fails with ELOOP; a directory fails to read.
    openHooks.beforeOpen?.(path);
    handle = await open(path, OPEN_FLAGS);
    const swapped = guard?.check(handle.fd, path);
    if (swapped !== undefined) return { present: true, error: swapped, version: `error:${swapped}` };
    const bytes = await readAll(handle, Number(st.size), maxBytes);
    onRead();
    if (bytes === undefined) return tooLarge(facts, maxBytes);
    return { present: true, bytes, mtimeMs, version };
  } catch (error) {
    if (isMissing(error)) return ABSENT;
    return { present: true, mtimeMs, error: reason(error), version: `error:${version}` };
  } finally {
    await handle?.close().catch(() => undefined);
  }
}

/** How `readSmallFileSync` may read one file. */
export interface SyncReadOptions {
  /** A larger file is refused: `too large (N bytes)`. */
  readonly maxBytes: number;
  /**
   * Bytes its set may still take (its cap, less what its other files hold): a file within
   * `maxBytes` but larger than this is refused with `OVER_BUDGET`. Default: no such limit.
   */
  readonly budget?: number;
  readonly onStat: () => void;
  readonly onRead: () => void;
  readonly guard?: OpenedPathCheck;
}

/**
 * The same, synchronously: for sweeps over thousands of tiny files, where a thread-pool round trip
 * per system call costs more than the call itself. Callers yield between batches so the event loop
 * is never held for long. A file seen before is lstat'ed first (one call when unchanged); a new one
 * is opened directly (O_NOFOLLOW refuses a symlink, fstat tells everything an lstat would). Sizes
 * are checked before any byte is read, and the read itself stops one byte past the limit: a file
 * that grows after the stat costs at most that much.
 */
export function readSmallFileSync(path: string, cached: FileRead | undefined, options: SyncReadOptions): FileRead {
  const { maxBytes, budget = Infinity, onStat, onRead, guard } = options;
  if (cached !== undefined) {
    let st: StatFacts;
    try {
      onStat();
      st = quickFacts(lstatSync(path));
    } catch (error) {
      return isMissing(error) ? ABSENT : { present: true, error: reason(error), version: `error:${reason(error)}` };
    }
    const refused = refusal(st, maxBytes, budget);
    if (refused) return refused;
    // Its bytes need not be at hand (a set keeps none between refreshes): the version says they are the same.
    if (cached.present && cached.error === undefined && cached.version === st.version) return cached;
  }
  let fd: number | undefined;
  try {
    onStat();
    openHooks.beforeOpen?.(path);
    fd = openSync(path, OPEN_FLAGS);
    const swapped = guard?.check(fd, path);
    if (swapped !== undefined) return { present: true, error: swapped, version: `error:${swapped}` };
    // Plain (not bigint) stats: a sweep of thousands of files allocates far less.
    const st = quickFacts(fstatSync(fd));
    const refused = refusal(st, maxBytes, budget);
    if (refused) return refused;
    const bytes = readBoundedSync(fd, st.size, Math.min(maxBytes, budget));
    onRead();
    if (bytes === undefined) return budget >= maxBytes ? tooLarge(st, maxBytes) : overBudget(st);
    return { present: true, bytes, mtimeMs: st.mtimeMs, version: st.version };
  } catch (error) {
    if (isMissing(error)) return ABSENT;
    const why = reason(error);
    // ELOOP: the path is a symlink (O_NOFOLLOW), reported as such and never followed.
    return { present: true, error: why, version: `error:${why}` };
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** Reads `fd` to EOF (it may have grown since the stat), giving up one byte past `limit`: never holds more. */
function readBoundedSync(fd: number, size: number, limit: number): Uint8Array | undefined {
  let buffer = new Uint8Array(Math.min(Math.max(size + 1, 64), limit + 1));
  let length = 0;
  for (;;) {
    const got = readSync(fd, buffer, length, buffer.length - length, length);
    if (got === 0) break;
    length += got;
    if (length > limit) return undefined;
    if (length < buffer.length) {
      if (length <= size) break; // EOF, as for the async read
      continue;
    }
    const grown = new Uint8Array(Math.min(buffer.length * 2, limit + 1));
    grown.set(buffer);
    buffer = grown;
  }
  return buffer.subarray(0, length);
}

/** Reads to EOF (the file may have grown since the stat), giving up past `maxBytes`. */
async function readAll(handle: FileHandle, sizeHint: number, maxBytes: number): Promise<Uint8Array | undefined> {
  let buffer = new Uint8Array(Math.min(Math.max(sizeHint + 1, 64), maxBytes + 1));
  let length = 0;
  for (;;) {
    const { bytesRead } = await handle.read(buffer, length, buffer.length - length, length);
    if (bytesRead === 0) break;
    length += bytesRead;
    if (length > maxBytes) return undefined;
    if (length < buffer.length) {
      // A short read of a regular file is normally EOF; only a file that grew needs another look.
      if (length <= sizeHint) break;
      continue;
    }
    const grown = new Uint8Array(Math.min(buffer.length * 2, maxBytes + 1));
    grown.set(buffer);
    buffer = grown;
  }
  return buffer.slice(0, length);
}

/** `/proc/<pid>/fd/` where this process can see its descriptors as paths (Linux), else undefined. */
const PROC_SELF_FD = existsSync(PROC_FDS) ? PROC_FDS : undefined;

/**
 * A directory as an open descriptor whose real path was checked, and the `/proc` path through it:
 * a file opened as `<that>/<name>` is looked up in that directory object, as openat() would, so no
 * directory above it can be swapped for a symlink in between, and no per-file check of the opened
 * path is needed. Linux only; elsewhere (or on any doubt) undefined, and each file is checked.
 * The caller closes `fd`.
 */
export function openCheckedDir(dir: string, guard: OpenedPathCheck | undefined): { readonly fd: number; readonly prefix: string } | undefined {
  if (!guard || !PROC_SELF_FD) return undefined;
  let fd: number;
  try {
    fd = openSync(dir, constants.O_RDONLY | (constants.O_DIRECTORY ?? 0) | (constants.O_NOFOLLOW ?? 0));
  } catch {
    return undefined;
  }
  if (guard.check(fd, dir) !== undefined) {
    closeSync(fd);
    return undefined; // the per-file checks report it
  }
  return { fd, prefix: `${PROC_SELF_FD}${fd}` };
}

/** Whether `path` is a directory (not following a symlink). */
export function isDirectory(path: string): boolean {
  try {
    return lstatSync(path).isDirectory();
  } catch {
    return false;
  }
}
