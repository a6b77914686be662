/**
 * `FsStateStore`: a `.loki` directory on local disk. Strictly read-only: files are opened with
 * O_RDONLY (plus O_NOFOLLOW), nothing under the directory is ever created, changed or removed.
 *
 * Cost per refresh, for a long-running session:
 * - documents: one lstat each; bytes are re-read only when (ino, size, mtime, ctime) changed;
 * - `metrics/efficiency/`: one lstat of the directory plus a stat of the names an inotify watcher
 *   (`fs.watch`) reported changed. The directory is re-listed when its own ino/mtime changes, and
 *   fully re-stat'ed when the watcher is missing or broken, when the directory is replaced, and every
 *   `rescanIntervalMs` as a safety net;
 * - `events.jsonl`: a stat, a 64-byte read to recognise the file, and the appended bytes only.
 */
import { constants, watch, type BigIntStats, type FSWatcher } from 'node:fs';
import { lstat, open, readdir, stat, type FileHandle } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { EventsScanner, type SequenceSearch } from '../events.js';
import {
  ABSENT,
  absentDocuments,
  DOCUMENTS,
  EFFICIENCY_DIR,
  EVENTS_FILE,
  type DocumentName,
  type EfficiencyFileRead,
  type EfficiencyRead,
  type EventsSummary,
  type FileRead,
  type StateReading,
  type StateStore,
} from './store.js';

export interface FsStateStoreOptions {
  /** Larger documents and efficiency files are reported as errors, not read. Default 16 MiB. */
  readonly maxFileBytes?: number;
  /** Full re-stat of the efficiency directory at least this often. Default 60 s. */
  readonly rescanIntervalMs?: number;
  /** Watch the efficiency directory with inotify. Without it, every read re-stats every file. */
  readonly watch?: boolean;
}

/** What the store did, for tests and benchmarks. Monotonic. */
export interface FsStoreCounters {
  /** Bytes read from `events.jsonl` and `events.jsonl.1` (the fingerprint reads excluded). */
  eventBytesRead: number;
  /** lstat calls on efficiency files (not counting the directory). */
  efficiencyStats: number;
  /** Efficiency files whose bytes were read. */
  efficiencyReads: number;
  /** Full re-stats of the efficiency directory. */
  efficiencyFullScans: number;
  /** Documents whose bytes were read. */
  documentReads: number;
}

const DEFAULT_MAX_FILE_BYTES = 16 * 1024 * 1024;
const DEFAULT_RESCAN_MS = 60_000;
const EVENTS_CHUNK_BYTES = 1024 * 1024;
const FINGERPRINT_BYTES = 64;
/** More changed names than this between two reads: re-stat everything instead. */
const MAX_DIRTY = 4096;
const OPEN_FLAGS = constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0) | (constants.O_NONBLOCK ?? 0);

const SYMLINK = 'is a symbolic link (not followed)';
/** The sub-directories documents live in; each is checked for being a symlink on every read. */
const SUBDIRS = [...new Set(DOCUMENTS.filter((name) => name.includes('/')).map((name) => name.slice(0, name.indexOf('/'))))];
const NOT_REGULAR = 'not a regular file';

/** Native sequence search for the Buffers this store feeds the scanner. */
const bufferSearch: SequenceSearch = (haystack, needle, from) => (haystack as Buffer).indexOf(needle, from);

function errorCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

const isMissing = (error: unknown) => {
  const code = errorCode(error);
  return code === 'ENOENT' || code === 'ENOTDIR';
};

/** A short reason for an I/O error. */
function reason(error: unknown): string {
  const code = errorCode(error);
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  if (code === 'ELOOP') return SYMLINK;
  if (code === 'EISDIR') return NOT_REGULAR;
  if (code) return code;
  return error instanceof Error ? error.message : String(error);
}

const versionOf = (st: BigIntStats) => `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
const mtimeMsOf = (st: BigIntStats) => Number(st.mtimeNs / 1000n) / 1000;

interface CachedFile {
  readonly read: FileRead;
}

/**
 * One small file read whole, re-using `cached` when the version is unchanged. Never throws. `st` is
 * its lstat: the version is taken before the bytes, so a write racing the read only costs a re-read
 * next time (the version will differ), never a stale cache.
 */
async function readSmallFile(
  path: string,
  st: BigIntStats,
  maxBytes: number,
  cached: FileRead | undefined,
  onRead: () => void,
): Promise<FileRead> {
  const mtimeMs = mtimeMsOf(st);
  const version = versionOf(st);
  if (st.isSymbolicLink()) return { present: true, mtimeMs, error: SYMLINK, version: `symlink:${version}` };
  if (!st.isFile()) return { present: true, mtimeMs, error: NOT_REGULAR, version: `special:${version}` };
  if (st.size > BigInt(maxBytes)) return { present: true, mtimeMs, error: `too large (${st.size} bytes)`, version: `large:${version}` };
  if (cached?.bytes !== undefined && cached.version === version) return cached;
  let handle: FileHandle | undefined;
  try {
    // O_NOFOLLOW: a symlink swapped in since the lstat fails with ELOOP; a directory fails to read.
    handle = await open(path, OPEN_FLAGS);
    const bytes = await readAll(handle, Number(st.size), maxBytes);
    onRead();
    if (bytes === undefined) return { present: true, mtimeMs, error: `too large (> ${maxBytes} bytes)`, version: `large:${version}` };
    return { present: true, bytes, mtimeMs, version };
  } catch (error) {
    if (isMissing(error)) return ABSENT;
    return { present: true, mtimeMs, error: reason(error), version: `error:${version}` };
  } finally {
    await handle?.close().catch(() => undefined);
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

// ---- efficiency ---------------------------------------------------------------------------------

class EfficiencyTracker {
  readonly #dir: string;
  readonly #options: Required<FsStateStoreOptions>;
  readonly #counters: FsStoreCounters;
  #files = new Map<string, EfficiencyFileRead>();
  #sorted: readonly EfficiencyFileRead[] | undefined;
  #dirIdentity: string | undefined;
  #dirIno: bigint | undefined;
  #watcher: FSWatcher | undefined;
  #dirty = new Set<string>();
  #needFull = true;
  #lastFullMs = 0;
  #closed = false;

  constructor(dir: string, options: Required<FsStateStoreOptions>, counters: FsStoreCounters) {
    this.#dir = dir;
    this.#options = options;
    this.#counters = counters;
  }

  async read(): Promise<EfficiencyRead> {
    let st: BigIntStats;
    try {
      st = await lstat(this.#dir, { bigint: true });
    } catch (error) {
      this.#forget();
      if (isMissing(error)) return { present: false, files: [] };
      return { present: true, files: [], error: reason(error) };
    }
    if (st.isSymbolicLink()) return this.#forget(), { present: true, files: [], error: SYMLINK };
    if (!st.isDirectory()) return this.#forget(), { present: true, files: [], error: 'not a directory' };

    const identity = `${st.dev}:${st.ino}:${st.mtimeNs}:${st.ctimeNs}`;
    const replaced = this.#dirIno !== st.ino;
    if (replaced) {
      this.#closeWatcher();
      this.#needFull = true;
      this.#dirIno = st.ino;
    }
    // Watch before listing, so that a change during the listing is seen next time.
    this.#ensureWatcher();
    const watching = this.#watcher !== undefined;
    const now = Date.now();
    const full = this.#needFull || !watching || now - this.#lastFullMs >= this.#options.rescanIntervalMs;
    const relist = full || identity !== this.#dirIdentity;

    const dirty = this.#dirty;
    this.#dirty = new Set();
    try {
      if (relist) {
        const entries = await readdir(this.#dir);
        const names = new Set(entries.filter((name) => name.endsWith('.json')));
        for (const name of this.#files.keys()) {
          if (!names.has(name)) {
            this.#files.delete(name);
            this.#sorted = undefined;
          }
        }
        const toStat = full ? names : [...names].filter((name) => !this.#files.has(name) || dirty.has(name));
        await this.#refreshAll(toStat);
        if (full) {
          this.#needFull = false;
          this.#lastFullMs = now;
          this.#counters.efficiencyFullScans++;
        }
        this.#dirIdentity = identity;
      } else if (dirty.size > 0) {
        await this.#refreshAll([...dirty].filter((name) => name.endsWith('.json')));
      }
    } catch (error) {
      // Listing failed: try everything again next time.
      for (const name of dirty) this.#dirty.add(name);
      this.#needFull = true;
      return { present: true, files: this.#list(), error: reason(error), ...this.#newest() };
    }
    return { present: true, files: this.#list(), ...this.#newest() };
  }

  /** The directory cannot be used (its parent is a symlink): nothing is listed or kept. */
  refuse(error: string): EfficiencyRead {
    this.#forget();
    return { present: true, files: [], error };
  }

  close(): void {
    this.#closed = true;
    this.#closeWatcher();
  }

  async #refreshAll(names: Iterable<string>): Promise<void> {
    const list = [...names];
    // A few at a time: fast on a cold start of thousands of files, without a burst of open handles.
    const width = 16;
    let next = 0;
    const worker = async () => {
      while (next < list.length) {
        const name = list[next++]!;
        await this.#refresh(name);
      }
    };
    await Promise.all(Array.from({ length: Math.min(width, list.length) }, worker));
  }

  async #refresh(name: string): Promise<void> {
    const path = join(this.#dir, name);
    const cached = this.#files.get(name);
    let next: FileRead;
    try {
      this.#counters.efficiencyStats++;
      const st = await lstat(path, { bigint: true });
      if (st.isDirectory()) next = ABSENT; // regular files only: a directory named *.json is no file
      else next = await readSmallFile(path, st, this.#options.maxFileBytes, cached, () => this.#counters.efficiencyReads++);
    } catch (error) {
      next = isMissing(error) ? ABSENT : { present: true, error: reason(error), version: `error:${reason(error)}` };
    }
    if (!next.present) {
      if (cached) {
        this.#files.delete(name);
        this.#sorted = undefined;
      }
      return;
    }
    if (cached && cached.version === next.version && cached.error === next.error) return;
    this.#files.set(name, { ...next, name });
    this.#sorted = undefined;
  }

  #list(): readonly EfficiencyFileRead[] {
    if (!this.#sorted) {
      this.#sorted = [...this.#files.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    }
    return this.#sorted;
  }

  #newest(): { mtimeMs?: number } {
    let newest: number | undefined;
    for (const file of this.#list()) if (file.mtimeMs !== undefined && (newest === undefined || file.mtimeMs > newest)) newest = file.mtimeMs;
    return newest !== undefined ? { mtimeMs: newest } : {};
  }

  #ensureWatcher(): void {
    if (!this.#options.watch || this.#closed || this.#watcher) return;
    try {
      const self = basename(this.#dir);
      const watcher = watch(this.#dir, { persistent: false }, (_event, filename) => {
        if (typeof filename === 'string' && filename.endsWith('.json') && this.#dirty.size < MAX_DIRTY) this.#dirty.add(filename);
        else if (filename === self || typeof filename !== 'string' || filename === '' || this.#dirty.size >= MAX_DIRTY) {
          // The directory itself went away (or an event without a name): watch anew, re-stat all.
          this.#needFull = true;
          if (filename === self && this.#watcher === watcher) this.#closeWatcher();
        }
      });
      // After an error the next read re-creates the watcher and re-stats everything.
      watcher.on('error', () => {
        this.#needFull = true;
        if (this.#watcher === watcher) this.#closeWatcher();
      });
      watcher.unref?.();
      this.#watcher = watcher;
    } catch {
      // No watcher (e.g. inotify limits): every read re-stats everything.
      this.#watcher = undefined;
    }
  }

  #closeWatcher(): void {
    const watcher = this.#watcher;
    this.#watcher = undefined;
    try {
      watcher?.close();
    } catch {
      /* already closed */
    }
  }

  /** The directory is gone (or unusable): drop everything, watch again when it is back. */
  #forget(): void {
    this.#closeWatcher();
    this.#files.clear();
    this.#sorted = undefined;
    this.#dirty.clear();
    this.#dirIdentity = undefined;
    this.#dirIno = undefined;
    this.#needFull = true;
  }
}

// ---- events -------------------------------------------------------------------------------------

interface LiveFile {
  readonly dev: bigint;
  readonly ino: bigint;
  offset: number;
  fingerprint: Uint8Array;
}

class EventsTracker {
  readonly #path: string;
  readonly #rotatedPath: string;
  readonly #counters: FsStoreCounters;
  readonly #scanner = new EventsScanner({ search: bufferSearch });
  #file: LiveFile | undefined;
  #buffer: Buffer | undefined;
  #cold = true;

  constructor(dir: string, counters: FsStoreCounters) {
    this.#path = join(dir, EVENTS_FILE);
    this.#rotatedPath = `${this.#path}.1`;
    this.#counters = counters;
  }

  async read(): Promise<EventsSummary> {
    const result = await this.#readLive();
    if (this.#cold) {
      this.#cold = false;
      if (!this.#scanner.sawSessionStart) await this.#adoptRotated();
    }
    return { ...result, ...this.#scanner.summary() };
  }

  async #readLive(): Promise<Omit<EventsSummary, 'lines'>> {
    let st: BigIntStats;
    try {
      st = await lstat(this.#path, { bigint: true });
    } catch (error) {
      if (isMissing(error)) {
        this.#forget();
        return { present: false };
      }
      return { present: true, error: reason(error) };
    }
    const mtimeMs = mtimeMsOf(st);
    if (st.isSymbolicLink()) return this.#forget(), { present: true, mtimeMs, error: SYMLINK };
    if (!st.isFile()) return this.#forget(), { present: true, mtimeMs, error: NOT_REGULAR };
    let handle: FileHandle | undefined;
    try {
      handle = await open(this.#path, OPEN_FLAGS);
      const fst = await handle.stat({ bigint: true });
      if (!fst.isFile()) return this.#forget(), { present: true, mtimeMs, error: NOT_REGULAR };
      const size = Number(fst.size);
      await this.#catchUp(handle, fst.dev, fst.ino, size);
      return { present: true, mtimeMs: mtimeMsOf(fst) };
    } catch (error) {
      if (isMissing(error)) {
        this.#forget();
        return { present: false };
      }
      return { present: true, mtimeMs, error: reason(error) };
    } finally {
      await handle?.close().catch(() => undefined);
    }
  }

  /** Feeds the scanner what is new in the open file, starting over if it is another file now. */
  async #catchUp(handle: FileHandle, dev: bigint, ino: bigint, size: number): Promise<void> {
    const head = new Uint8Array(Math.min(FINGERPRINT_BYTES, size));
    if (head.length > 0) {
      let got = 0;
      while (got < head.length) {
        const { bytesRead } = await handle.read(head, got, head.length - got, got);
        if (bytesRead === 0) break;
        got += bytesRead;
      }
      if (got < head.length) size = got; // shrank while we looked
    }
    let file = this.#file;
    const same =
      file !== undefined &&
      file.dev === dev &&
      file.ino === ino &&
      size >= file.offset &&
      file.fingerprint.every((byte, i) => head[i] === byte);
    if (!same) {
      if (file !== undefined) this.#scanner.reset();
      file = { dev, ino, offset: 0, fingerprint: new Uint8Array(0) };
      this.#file = file;
    }
    if (!file) return;
    try {
      // The offset moves with every chunk fed, so a read error part-way never feeds a chunk twice.
      await this.#feed(handle, file.offset, size, this.#scanner, (pos) => (file.offset = pos));
    } finally {
      const known = Math.min(file.offset, FINGERPRINT_BYTES);
      if (file.fingerprint.length < known) file.fingerprint = head.slice(0, known);
    }
  }

  /** Feeds [from, to) to `scanner` in chunks, reporting the position after each chunk fed. */
  async #feed(handle: FileHandle, from: number, to: number, scanner: EventsScanner, fed: (pos: number) => void = () => undefined): Promise<void> {
    const buffer = (this.#buffer ??= Buffer.allocUnsafe(EVENTS_CHUNK_BYTES));
    let pos = from;
    while (pos < to) {
      const { bytesRead } = await handle.read(buffer, 0, Math.min(buffer.length, to - pos), pos);
      if (bytesRead === 0) break;
      scanner.feed(buffer.subarray(0, bytesRead));
      pos += bytesRead;
      fed(pos);
      this.#counters.eventBytesRead += bytesRead;
    }
  }

  /** Cold start without a `session_start` in the live file: take it from `events.jsonl.1`. */
  async #adoptRotated(): Promise<void> {
    let handle: FileHandle | undefined;
    try {
      const st = await lstat(this.#rotatedPath, { bigint: true });
      if (!st.isFile()) return;
      handle = await open(this.#rotatedPath, OPEN_FLAGS);
      const fst = await handle.stat({ bigint: true });
      if (!fst.isFile()) return;
      const scanner = new EventsScanner({ search: bufferSearch });
      await this.#feed(handle, 0, Number(fst.size), scanner);
      scanner.feed(Buffer.from('\n')); // the rotated file is complete
      this.#scanner.adoptEarlier(scanner.summary());
    } catch {
      // An unreadable backup just leaves the session start unknown.
    } finally {
      await handle?.close().catch(() => undefined);
    }
  }

  #forget(): void {
    if (this.#file !== undefined) this.#scanner.reset();
    this.#file = undefined;
  }

  /** The state directory is unreadable: lines 0, the session start remembered. */
  unavailable(): EventsSummary {
    this.#forget();
    return { present: false, ...this.#scanner.summary() };
  }
}

// ---- the store ----------------------------------------------------------------------------------

/** Signal 0: alive unless the kernel says there is no such process (EPERM = someone else's). */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return errorCode(error) === 'EPERM';
  }
}

export class FsStateStore implements StateStore {
  readonly #dir: string;
  readonly #options: Required<FsStateStoreOptions>;
  readonly #documents = new Map<DocumentName, FileRead>();
  readonly #efficiency: EfficiencyTracker;
  readonly #events: EventsTracker;
  #queue: Promise<unknown> = Promise.resolve();
  /** What the store did (for tests and benchmarks). */
  readonly counters: FsStoreCounters = {
    eventBytesRead: 0,
    efficiencyStats: 0,
    efficiencyReads: 0,
    efficiencyFullScans: 0,
    documentReads: 0,
  };

  constructor(dir: string, options: FsStateStoreOptions = {}) {
    this.#dir = dir;
    this.#options = {
      maxFileBytes: options.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES,
      rescanIntervalMs: options.rescanIntervalMs ?? DEFAULT_RESCAN_MS,
      watch: options.watch ?? true,
    };
    this.#efficiency = new EfficiencyTracker(join(dir, EFFICIENCY_DIR), this.#options, this.counters);
    this.#events = new EventsTracker(dir, this.counters);
  }

  /** One refresh. Calls are serialised: incremental state is never touched by two at once. */
  read(): Promise<StateReading> {
    const next = this.#queue.then(() => this.#read());
    this.#queue = next.catch(() => undefined);
    return next;
  }

  close(): void {
    this.#efficiency.close();
  }

  async #read(): Promise<StateReading> {
    const problem = await this.#dirProblem();
    if (problem !== undefined) {
      const documents = absentDocuments();
      this.#documents.clear();
      return {
        available: false,
        problem,
        documents,
        efficiency: await this.#efficiency.read(),
        events: this.#events.unavailable(),
        isProcessAlive,
      };
    }
    // lstat and O_NOFOLLOW guard only a path's last component, so the sub-directories are checked
    // too: a symlinked `state/` or `metrics/` must not pull in files from outside the state directory.
    const linked = await this.#symlinkedSubdirs();
    const [documents, efficiency, events] = await Promise.all([
      this.#readDocuments(linked),
      linked.has('metrics') ? this.#efficiency.refuse(`metrics/ ${SYMLINK}`) : this.#efficiency.read(),
      this.#events.read(),
    ]);
    return { available: true, documents, efficiency, events, isProcessAlive };
  }

  async #symlinkedSubdirs(): Promise<Set<string>> {
    const linked = new Set<string>();
    await Promise.all(
      SUBDIRS.map(async (sub) => {
        try {
          if ((await lstat(join(this.#dir, sub))).isSymbolicLink()) linked.add(sub);
        } catch {
          // missing or unreadable: the files under it report that themselves
        }
      }),
    );
    return linked;
  }

  async #dirProblem(): Promise<string | undefined> {
    try {
      const st = await stat(this.#dir);
      return st.isDirectory() ? undefined : 'not a directory';
    } catch (error) {
      const code = errorCode(error);
      // No absolute path: this text reaches /health and, through sync, the Worker.
      if (code === 'ENOENT') return 'missing';
      if (code === 'ENOTDIR') return 'not a directory';
      return reason(error);
    }
  }

  async #readDocuments(linked: ReadonlySet<string>): Promise<Record<DocumentName, FileRead>> {
    const reads = await Promise.all(
      DOCUMENTS.map((name) => {
        const sub = name.includes('/') ? name.slice(0, name.indexOf('/')) : undefined;
        if (sub === undefined || !linked.has(sub)) return this.#readDocument(name);
        this.#documents.delete(name);
        const error = `${sub}/ ${SYMLINK}`;
        return { present: true, error, version: `error:${error}` } satisfies FileRead;
      }),
    );
    return Object.fromEntries(DOCUMENTS.map((name, i) => [name, reads[i]!])) as Record<DocumentName, FileRead>;
  }

  async #readDocument(name: DocumentName): Promise<FileRead> {
    const path = join(this.#dir, name);
    const cached = this.#documents.get(name);
    let read: FileRead;
    try {
      const st = await lstat(path, { bigint: true });
      read = await readSmallFile(path, st, this.#options.maxFileBytes, cached, () => this.counters.documentReads++);
    } catch (error) {
      read = isMissing(error) ? ABSENT : { present: true, error: reason(error), version: `error:${reason(error)}` };
    }
    if (read.bytes !== undefined) this.#documents.set(name, read);
    else this.#documents.delete(name);
    return read;
  }
}
