/**
 * `FileSetTracker`: one directory of many small files (a `FileSetSpec`), kept current at the cost
 * of what changed. Every file set of the state directory (`metrics/efficiency/*.json`,
 * `proofs/<run>/proof.json`, `pids/*.json`, `sessions/<id>/loki.pid`) is read by it.
 *
 * Cost per refresh:
 * - one lstat of the directory, plus a stat of the names an inotify watcher (`fs.watch`) reported;
 * - the directory is re-listed when its own ino/mtime changes, and every entry re-stat'ed when the
 *   watcher is missing or broken, when the directory is replaced, and every `rescanIntervalMs`;
 * - two-level sets (`proofs/<run>/proof.json`): the watcher sees sub-directories come and go, not
 *   writes inside them, so a sub-directory still waiting for its file, and a file modified in the
 *   last `RECENT_MS` (upstream rewrites a receipt in place up to three times as a run ends), are
 *   re-checked on every refresh; an older file rewritten in place is seen at the next full re-stat.
 *
 * Sweeps over many entries use synchronous system calls in batches, yielding between batches: a
 * cold start over 10,000 files costs a few hundred thousand microseconds of syscalls, not 40,000
 * thread-pool round trips.
 */
import { closeSync, constants, existsSync, lstatSync, openSync, readdirSync, watch, type BigIntStats, type FSWatcher } from 'node:fs';
import { lstat } from 'node:fs/promises';
import { basename } from 'node:path';
import { ABSENT, type FileRead, type FileSetEntryRead, type FileSetRead, type FileSetSpec } from '../store.js';
import { isMissing, readSmallFileSync, reason, SYMLINK, type OpenedPathCheck } from './read-file.js';

export interface FileSetOptions {
  readonly maxFileBytes: number;
  readonly rescanIntervalMs: number;
  readonly watch: boolean;
  /** Checks each opened entry was reached through real directories (see `OpenedPathCheck`). */
  readonly guard?: OpenedPathCheck;
  /** `fs.watch`, replaceable so tests can make it fail as at the inotify watch limit (ENOSPC). */
  readonly watchFn?: typeof watch;
}

/** How a tracker learns of changes: an inotify watch, a full re-stat on every read (the watch failed, e.g. at the system's limit), or neither yet (no directory, or watching is off). */
export type WatchMode = 'inotify' | 'polling' | 'none';

/** What one tracker did (for tests and benchmarks). Monotonic. */
export interface FileSetCounters {
  /** lstat calls on entries (not counting the directory). */
  stats: number;
  /** Entries whose bytes were read. */
  reads: number;
  /** Full re-stats of the directory. */
  fullScans: number;
}

/** More changed names than this between two reads: re-stat everything instead. */
const MAX_DIRTY = 4096;
/** Sweeps of more entries than this open their files through the checked directory (see #openBase). */
const SWEEP_MIN = 16;
/** `/proc/<pid>/fd/` where this process can see its descriptors as paths (Linux), else undefined. */
const PROC_SELF_FD = existsSync(`/proc/${process.pid}/fd`) ? `/proc/${process.pid}/fd/` : undefined;

/** Entries handled between two yields to the event loop. */
const BATCH = 256;
/** Two-level entries still waiting for their file, re-checked per refresh (more wait for a full scan). */
const MAX_WAITING = 256;
/** Two-level entries modified this recently may still be being written: re-checked per refresh. */
const RECENT_MS = 15_000;

const yieldToLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

export class FileSetTracker {
  readonly #dir: string;
  readonly #spec: FileSetSpec;
  readonly #options: FileSetOptions;
  readonly counters: FileSetCounters = { stats: 0, reads: 0, fullScans: 0 };
  #files = new Map<string, FileSetEntryRead>();
  #sorted: readonly FileSetEntryRead[] | undefined;
  #dirIdentity: string | undefined;
  #dirIno: bigint | undefined;
  #watcher: FSWatcher | undefined;
  #dirty = new Set<string>();
  /** Two-level entries whose sub-directory exists without its file yet. */
  #waiting = new Set<string>();
  /** Two-level entries whose file changed within `RECENT_MS`. */
  #recent = new Set<string>();
  /** Two-level entries the listing just showed as real directories (no lstat needed before the open). */
  #listedDirs = new Set<string>();
  #needFull = true;
  #lastFullMs = 0;
  #closed = false;
  #watchFailed = false;

  constructor(dir: string, spec: FileSetSpec, options: FileSetOptions) {
    this.#dir = dir;
    this.#spec = spec;
    this.#options = options;
  }

  /** How changes are seen now (for /health and the fleet's watch count). */
  get watchMode(): WatchMode {
    return this.#watcher ? 'inotify' : this.#watchFailed ? 'polling' : 'none';
  }

  async read(): Promise<FileSetRead> {
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
    if (this.#dirIno !== st.ino) {
      this.#closeWatcher();
      this.#needFull = true;
      this.#dirIno = st.ino;
    }
    // Watch before listing, so that a change during the listing is seen next time.
    this.#ensureWatcher();
    const now = Date.now();
    const full = this.#needFull || this.#watcher === undefined || now - this.#lastFullMs >= this.#options.rescanIntervalMs;
    const relist = full || identity !== this.#dirIdentity;

    const dirty = this.#dirty;
    this.#dirty = new Set();
    for (const name of this.#waiting) if (dirty.size < MAX_WAITING) dirty.add(name);
    for (const name of this.#recent) if (dirty.size < 2 * MAX_WAITING) dirty.add(name);
    try {
      if (relist) {
        // Cleared before the sweep, so a watcher event arriving between its batches asks for another.
        if (full) this.#needFull = false;
        const names = this.#listNames();
        for (const name of this.#files.keys()) if (!names.has(name)) this.#drop(name);
        for (const name of this.#waiting) if (!names.has(name)) this.#waiting.delete(name);
        for (const name of this.#recent) if (!names.has(name)) this.#recent.delete(name);
        await this.#refreshAll(full ? names : [...names].filter((name) => !this.#files.has(name) || dirty.has(name)));
        if (full) {
          this.#lastFullMs = now;
          this.counters.fullScans++;
        }
        this.#dirIdentity = identity;
      } else if (dirty.size > 0) {
        await this.#refreshAll([...dirty].filter((name) => this.#accepts(name)));
      }
    } catch (error) {
      // Listing failed: try everything again next time.
      for (const name of dirty) this.#dirty.add(name);
      this.#needFull = true;
      return { present: true, files: this.#list(), error: reason(error), ...this.#newest() };
    }
    return { present: true, files: this.#list(), ...this.#newest() };
  }

  /** The directory cannot be used (a parent is a symlink): nothing is listed or kept. */
  refuse(error: string): FileSetRead {
    this.#forget();
    return { present: true, files: [], error };
  }

  close(): void {
    this.#closed = true;
    this.#closeWatcher();
  }

  #accepts(name: string): boolean {
    return this.#spec.depth === 1 ? name.endsWith(this.#spec.suffix) && name !== this.#spec.suffix : !name.startsWith('.');
  }

  /** The entry names now in the directory: matching files, or sub-directories (symlinks kept, to be refused). */
  #listNames(): Set<string> {
    const names = new Set<string>();
    if (this.#spec.depth === 1) {
      for (const name of readdirSync(this.#dir)) if (this.#accepts(name)) names.add(name);
    } else {
      this.#listedDirs.clear();
      for (const entry of readdirSync(this.#dir, { withFileTypes: true })) {
        if (!this.#accepts(entry.name)) continue;
        if (entry.isDirectory()) this.#listedDirs.add(entry.name);
        if (entry.isDirectory() || entry.isSymbolicLink()) names.add(entry.name);
      }
    }
    return names;
  }

  async #refreshAll(names: Iterable<string>): Promise<void> {
    const list = [...names];
    // A sweep of a one-level set opens its files relative to the directory, opened and checked once.
    const base = this.#spec.depth === 1 && list.length > SWEEP_MIN ? this.#openBase() : undefined;
    let n = 0;
    try {
      for (const name of list) {
        this.#refresh(name, base);
        if (++n % BATCH === 0) await yieldToLoop();
      }
    } finally {
      this.#listedDirs.clear();
      if (base) closeSync(base.fd);
    }
  }

  /**
   * The set's directory as an open descriptor whose real path was checked, and the `/proc` path
   * through it: a file opened as `<that>/<name>` is looked up in that directory object, as openat()
   * would, so no directory above it can be swapped for a symlink in between, and no per-file check
   * of the opened path is needed. Linux only; elsewhere (or on any doubt) each file is checked.
   */
  #openBase(): { readonly fd: number; readonly prefix: string } | undefined {
    const guard = this.#options.guard;
    if (!guard || !PROC_SELF_FD) return undefined;
    let fd: number;
    try {
      fd = openSync(this.#dir, constants.O_RDONLY | (constants.O_DIRECTORY ?? 0) | (constants.O_NOFOLLOW ?? 0));
    } catch {
      return undefined;
    }
    if (guard.check(fd, this.#dir) !== undefined) {
      closeSync(fd);
      return undefined; // the per-file checks report it
    }
    return { fd, prefix: `${PROC_SELF_FD}${fd}` };
  }

  #refresh(name: string, base?: { readonly prefix: string }): void {
    const cached = this.#files.get(name);
    const next = this.#readEntry(name, cached, base);
    if (!next.present) {
      this.#drop(name);
      this.#recent.delete(name);
      if (this.#spec.depth === 2 && next !== ABSENT_ENTRY_DIR) this.#waiting.delete(name);
      return;
    }
    this.#waiting.delete(name);
    if (this.#spec.depth === 2) {
      const recent = next.mtimeMs !== undefined && Math.abs(Date.now() - next.mtimeMs) < RECENT_MS;
      if (recent && this.#recent.size < MAX_WAITING) this.#recent.add(name);
      else if (!recent) this.#recent.delete(name);
    }
    if (cached && cached.version === next.version && cached.error === next.error) return;
    this.#files.set(name, { ...next, name });
    this.#sorted = undefined;
  }

  #readEntry(name: string, cached: FileRead | undefined, base?: { readonly prefix: string }): FileRead {
    // Names come from a listing or the watcher: never a path (no `/`), so plain concatenation is safe.
    const entryPath = `${this.#dir}/${name}`;
    const onStat = () => this.counters.stats++;
    const onRead = () => this.counters.reads++;
    if (this.#spec.depth === 1) {
      const read = base
        ? readSmallFileSync(`${base.prefix}/${name}`, this.#options.maxFileBytes, cached, onStat, onRead)
        : readSmallFileSync(entryPath, this.#options.maxFileBytes, cached, onStat, onRead, this.#options.guard);
      // Regular files only: a directory named *.json is no entry.
      return read.error === 'not a regular file' && isDirectory(entryPath) ? ABSENT : read;
    }
    // Two levels: the sub-directory must be a real directory, or the path would follow a link out.
    // A listing has just said so for the names it showed; others (watcher reports) are checked.
    if (!this.#listedDirs.has(name)) {
      let st: BigIntStats;
      try {
        onStat();
        st = lstatSync(entryPath, { bigint: true });
      } catch (error) {
        return isMissing(error) ? ABSENT : { present: true, error: reason(error), version: `error:${reason(error)}` };
      }
      if (st.isSymbolicLink()) return { present: true, error: SYMLINK, version: `symlink:${st.ino}` };
      if (!st.isDirectory()) return ABSENT;
    }
    const read = readSmallFileSync(`${entryPath}/${this.#spec.leaf}`, this.#options.maxFileBytes, cached, onStat, onRead, this.#options.guard);
    if (read.present) return read;
    // The sub-directory is there, its file not yet: look again at every refresh.
    if (this.#waiting.size < MAX_WAITING) this.#waiting.add(name);
    return ABSENT_ENTRY_DIR;
  }

  #drop(name: string): void {
    if (this.#files.delete(name)) this.#sorted = undefined;
  }

  #list(): readonly FileSetEntryRead[] {
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
      const watcher = (this.#options.watchFn ?? watch)(this.#dir, { persistent: false }, (_event, filename) => {
        if (typeof filename === 'string' && filename !== '' && filename !== self && this.#accepts(filename) && this.#dirty.size < MAX_DIRTY) {
          this.#dirty.add(filename);
        } else if (filename === self || typeof filename !== 'string' || filename === '' || this.#dirty.size >= MAX_DIRTY) {
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
      this.#watchFailed = false;
    } catch {
      // No watcher (e.g. ENOSPC at the inotify watch limit): every read re-stats everything.
      this.#watcher = undefined;
      this.#watchFailed = true;
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
    this.#watchFailed = false;
    this.#files.clear();
    this.#sorted = undefined;
    this.#dirty.clear();
    this.#waiting.clear();
    this.#recent.clear();
    this.#dirIdentity = undefined;
    this.#dirIno = undefined;
    this.#needFull = true;
  }
}

/** A two-level entry whose sub-directory exists but whose file does not (yet). */
const ABSENT_ENTRY_DIR: FileRead = Object.freeze({ present: false, version: '' });

function isDirectory(path: string): boolean {
  try {
    return lstatSync(path).isDirectory();
  } catch {
    return false;
  }
}
