/**
 * Reading one small file of a `.loki` tree, read-only and without following symlinks: the pieces
 * every fs reader shares (documents, file sets, events).
 */
import { closeSync, constants, fstatSync, lstatSync, openSync, readSync, type BigIntStats, type Stats } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { ABSENT, type FileRead } from '../store.js';

export const OPEN_FLAGS = constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0) | (constants.O_NONBLOCK ?? 0);

export const SYMLINK = 'is a symbolic link (not followed)';
export const NOT_REGULAR = 'not a regular file';

export function errorCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

export const isMissing = (error: unknown) => {
  const code = errorCode(error);
  return code === 'ENOENT' || code === 'ENOTDIR';
};

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
export const mtimeMsOf = (st: BigIntStats) => Number(st.mtimeNs / 1000n) / 1000;

/** The facts a stat gives that decide whether, and as what version, a file is read. */
interface StatFacts {
  isSymbolicLink(): boolean;
  isFile(): boolean;
  readonly size: number;
  readonly mtimeMs: number;
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
  mtimeMs: st.mtimeMs,
  version: `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`,
});

/** What a stat says before any byte is read: a reason not to read, or undefined to go on. */
function refusal(st: StatFacts, maxBytes: number): FileRead | undefined {
  const { mtimeMs, version } = st;
  if (st.isSymbolicLink()) return { present: true, mtimeMs, error: SYMLINK, version: `symlink:${version}` };
  if (!st.isFile()) return { present: true, mtimeMs, error: NOT_REGULAR, version: `special:${version}` };
  if (st.size > maxBytes) return { present: true, mtimeMs, error: `too large (${st.size} bytes)`, version: `large:${version}` };
  return undefined;
}

const tooLarge = (st: StatFacts, maxBytes: number): FileRead => ({
  present: true,
  mtimeMs: st.mtimeMs,
  error: `too large (> ${maxBytes} bytes)`,
  version: `large:${st.version}`,
});

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
): Promise<FileRead> {
  const facts = bigFacts(st);
  const refused = refusal(facts, maxBytes);
  if (refused) return refused;
  const { version, mtimeMs } = facts;
  if (cached?.bytes !== undefined && cached.version === version) return cached;
  let handle: FileHandle | undefined;
  try {
    // O_NOFOLLOW: a symlink swapped in since the lstat fails with ELOOP; a directory fails to read.
    handle = await open(path, OPEN_FLAGS);
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

/**
 * The same, synchronously: for sweeps over thousands of tiny files, where a thread-pool round trip
 * per system call costs more than the call itself. Callers yield between batches so the event loop
 * is never held for long. A file seen before is lstat'ed first (one call when unchanged); a new one
 * is opened directly (O_NOFOLLOW refuses a symlink, fstat tells everything an lstat would).
 */
export function readSmallFileSync(path: string, maxBytes: number, cached: FileRead | undefined, onStat: () => void, onRead: () => void): FileRead {
  if (cached !== undefined) {
    let st: StatFacts;
    try {
      onStat();
      st = quickFacts(lstatSync(path));
    } catch (error) {
      return isMissing(error) ? ABSENT : { present: true, error: reason(error), version: `error:${reason(error)}` };
    }
    const refused = refusal(st, maxBytes);
    if (refused) return refused;
    if (cached.bytes !== undefined && cached.version === st.version) return cached;
  }
  let fd: number | undefined;
  try {
    onStat();
    fd = openSync(path, OPEN_FLAGS);
    // Plain (not bigint) stats: a sweep of thousands of files allocates far less.
    const st = quickFacts(fstatSync(fd));
    const refused = refusal(st, maxBytes);
    if (refused) return refused;
    const size = st.size;
    let buffer = new Uint8Array(Math.min(Math.max(size + 1, 64), maxBytes + 1));
    let length = 0;
    for (;;) {
      const got = readSync(fd, buffer, length, buffer.length - length, length);
      if (got === 0) break;
      length += got;
      if (length > maxBytes) return tooLarge(st, maxBytes);
      if (length < buffer.length) {
        if (length <= size) break; // EOF, as for the async read
        continue;
      }
      const grown = new Uint8Array(Math.min(buffer.length * 2, maxBytes + 1));
      grown.set(buffer);
      buffer = grown;
    }
    onRead();
    return { present: true, bytes: buffer.subarray(0, length), mtimeMs: st.mtimeMs, version: st.version };
  } catch (error) {
    if (isMissing(error)) return ABSENT;
    const why = reason(error);
    // ELOOP: the path is a symlink (O_NOFOLLOW), reported as such and never followed.
    return { present: true, error: why, version: `error:${why}` };
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
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
