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
 *
 * Memory: an entry keeps its name, version, mtime and size, never its bytes past the next refresh
 * (see `HeldEntry`); a set holds at most `FileSetCaps` entries and bytes, and is reported bad past
 * them, not grown.
 */
import { closeSync, lstatSync, opendirSync, watch, type BigIntStats, type FSWatcher } from 'node:fs';
import { basename } from 'node:path';
import { ABSENT, type FileRead, type FileSetEntryRead, type FileSetRead, type FileSetSpec } from '../store.js';
import { isDirectory, isMissing, lstatIfThere, openCheckedDir, OVER_BUDGET, readSmallFileSync, reason, SYMLINK, type OpenedPathCheck } from './read-file.js';
import { capProblems, HeldEntry, type EntrySource, type FileSetCaps } from './set-entry.js';

export interface FileSetOptions {
  readonly caps: FileSetCaps;
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
  /** Entries whose bytes were asked for after the refresh that read them, and read again. */
  loads: number;
  /** Full re-stats of the directory. */
  fullScans: number;
}

/** More changed names than this between two reads: re-stat everything instead. */
const MAX_DIRTY = 4096;
/** Sweeps of more entries than this open their files through the checked directory (see openCheckedDir). */
const SWEEP_MIN = 16;

/** Entries handled between two yields to the event loop. */
const BATCH = 256;
/** Two-level entries still waiting for their file, re-checked per refresh (more wait for a full scan). */
const MAX_WAITING = 256;
/** Two-level entries modified this recently may still be being written: re-checked per refresh. */
const RECENT_MS = 15_000;

/** The listing of a set that has none: one array, so a missing set reads as unchanged (consumers memoise on identity). */
const NO_FILES: readonly FileSetEntryRead[] = Object.freeze([]);
const yieldToLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

export class FileSetTracker {
  readonly #dir: string;
  readonly #spec: FileSetSpec;
  readonly #options: FileSetOptions;
  readonly counters: FileSetCounters = { stats: 0, reads: 0, loads: 0, fullScans: 0 };
  #files = new Map<string, FileSetEntryRead>();
  /** Sum of the held entries' sizes: what `FileSetCaps.bytes` bounds. */
  #size = 0;
  /** Entries left out, unread, because the set was at its cap of bytes. */
  #overBytes = new Set<string>();
  /** Whether the last listing had more entries than `FileSetCaps.entries`. */
  #overCount = false;
  /** Entries holding bytes until the next refresh. */
  #holding: HeldEntry[] = [];
  readonly #source: EntrySource = {
    load: (entry) => this.#load(entry),
    holding: (entry) => void this.#holding.push(entry),
  };
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
  #newestOf: { readonly files: readonly FileSetEntryRead[]; readonly newest: { mtimeMs?: number } } | undefined;

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
    this.#release();
    let st: BigIntStats | undefined;
    try {
      st = lstatIfThere(this.#dir);
    } catch (error) {
      this.#forget();
      return { present: true, files: NO_FILES, error: reason(error) };
    }
    if (st === undefined) return this.#forget(), { present: false, files: NO_FILES };
    if (st.isSymbolicLink()) return this.#forget(), { present: true, files: NO_FILES, error: SYMLINK };
    if (!st.isDirectory()) return this.#forget(), { present: true, files: NO_FILES, error: 'not a directory' };

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
        for (const name of this.#overBytes) if (!names.has(name)) this.#overBytes.delete(name);
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
    const capped = capProblems(this.#options.caps, this.#overCount, this.#overBytes.size > 0);
    return { present: true, files: this.#list(), ...(capped !== undefined ? { error: capped } : {}), ...this.#newest() };
  }

  /** Bytes the entries hold now: those read by the last refresh, or asked for since. */
  retainedBytes(): number {
    let bytes = 0;
    for (const entry of this.#holding) bytes += entry.heldBytes;
    return bytes;
  }

  /** The directory cannot be used (a parent is a symlink): nothing is listed or kept. */
  refuse(error: string): FileSetRead {
    this.#release();
    this.#forget();
    return { present: true, files: NO_FILES, error };
  }

  close(): void {
    this.#closed = true;
    this.#closeWatcher();
    this.#release();
  }

  #release(): void {
    for (const entry of this.#holding) entry.release();
    this.#holding = [];
  }

  #accepts(name: string): boolean {
    return this.#spec.depth === 1 ? name.endsWith(this.#spec.suffix) && name !== this.#spec.suffix : !name.startsWith('.');
  }

  /**
   * The entry names now in the directory: matching files, or sub-directories (symlinks kept, to be
   * refused). Read as a stream, and no further than one name past `FileSetCaps.entries`: a
   * directory of a million files costs no more memory than one at the cap.
   */
  #listNames(): Set<string> {
    const names = new Set<string>();
    const max = this.#options.caps.entries;
    const twoLevel = this.#spec.depth === 2;
    if (twoLevel) this.#listedDirs.clear();
    this.#overCount = false;
    const dir = opendirSync(this.#dir, { bufferSize: 256 });
    try {
      for (let entry = dir.readSync(); entry !== null; entry = dir.readSync()) {
        if (!this.#accepts(entry.name) || (twoLevel && !entry.isDirectory() && !entry.isSymbolicLink())) continue;
        if (names.size >= max) {
          this.#overCount = true;
          break;
        }
        names.add(entry.name);
        if (twoLevel && entry.isDirectory()) this.#listedDirs.add(entry.name);
      }
    } finally {
      dir.closeSync();
    }
    return names;
  }

  async #refreshAll(names: Iterable<string>): Promise<void> {
    const list = [...names];
    // A sweep of a one-level set opens its files relative to the directory, opened and checked once.
    const base = this.#spec.depth === 1 && list.length > SWEEP_MIN ? openCheckedDir(this.#dir, this.#options.guard) : undefined;
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

  #refresh(name: string, base?: { readonly prefix: string }): void {
    const cached = this.#files.get(name);
    // A new name from the watcher while the set is full: not grown (its listing reports the cap).
    if (cached === undefined && this.#files.size >= this.#options.caps.entries) return;
    const next = this.#readEntry(name, cached, base);
    if (next.error === OVER_BUDGET) {
      this.#drop(name);
      this.#overBytes.add(name);
      return;
    }
    this.#overBytes.delete(name);
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
    this.#drop(name);
    const entry = next.bytes !== undefined ? new HeldEntry(name, next.version, next.mtimeMs, next.bytes, this.#source) : { ...next, name };
    this.#files.set(name, entry);
    this.#sorted = undefined;
    if (entry instanceof HeldEntry) this.#size += entry.size;
  }

  #readEntry(name: string, cached: FileRead | undefined, base?: { readonly prefix: string }): FileRead {
    // Names come from a listing or the watcher: never a path (no `/`), so plain concatenation is safe.
    const entryPath = `${this.#dir}/${name}`;
    const { caps, guard } = this.#options;
    const options = {
      maxBytes: caps.entryBytes,
      // What the set may still take: its cap, less what its other entries hold.
      budget: caps.bytes - (this.#size - (cached instanceof HeldEntry ? cached.size : 0)),
      onStat: () => this.counters.stats++,
      onRead: () => this.counters.reads++,
    };
    if (this.#spec.depth === 1) {
      const read = base ? readSmallFileSync(`${base.prefix}/${name}`, cached, options) : readSmallFileSync(entryPath, cached, { ...options, guard });
      // Regular files only: a directory named *.json is no entry.
      return read.error === 'not a regular file' && isDirectory(entryPath) ? ABSENT : read;
    }
    // Two levels: the sub-directory must be a real directory, or the path would follow a link out.
    // A listing has just said so for the names it showed; others (watcher reports) are checked.
    if (!this.#listedDirs.has(name)) {
      let st: BigIntStats;
      try {
        options.onStat();
        st = lstatSync(entryPath, { bigint: true });
      } catch (error) {
        return isMissing(error) ? ABSENT : { present: true, error: reason(error), version: `error:${reason(error)}` };
      }
      if (st.isSymbolicLink()) return { present: true, error: SYMLINK, version: `symlink:${st.ino}` };
      if (!st.isDirectory()) return ABSENT;
    }
    const read = readSmallFileSync(`${entryPath}/${this.#spec.leaf}`, cached, { ...options, guard });
    if (read.present) return read;
    // The sub-directory is there, its file not yet: look again at every refresh.
    if (this.#waiting.size < MAX_WAITING) this.#waiting.add(name);
    return ABSENT_ENTRY_DIR;
  }

  /** An entry's bytes asked for after its refresh: read again, as the sweep would (no set budget: held briefly). */
  #load(entry: HeldEntry): Uint8Array | undefined {
    const path = this.#spec.depth === 1 ? `${this.#dir}/${entry.name}` : `${this.#dir}/${entry.name}/${this.#spec.leaf}`;
    const { caps, guard } = this.#options;
    const onStat = () => this.counters.stats++;
    const onRead = () => this.counters.loads++;
    return readSmallFileSync(path, undefined, { maxBytes: caps.entryBytes, onStat, onRead, ...(guard ? { guard } : {}) }).bytes;
  }

  #drop(name: string): void {
    const entry = this.#files.get(name);
    if (entry === undefined) return;
    if (entry instanceof HeldEntry) this.#size -= entry.size;
    this.#files.delete(name);
    this.#sorted = undefined;
  }

  #list(): readonly FileSetEntryRead[] {
    if (!this.#sorted) {
      this.#sorted = [...this.#files.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    }
    return this.#sorted;
  }

  /** The newest entry's mtime, found once per listing (a refresh with nothing changed walks nothing). */
  #newest(): { mtimeMs?: number } {
    const files = this.#list();
    if (this.#newestOf?.files !== files) {
      let newest: number | undefined;
      for (const file of files) if (file.mtimeMs !== undefined && (newest === undefined || file.mtimeMs > newest)) newest = file.mtimeMs;
      this.#newestOf = { files, newest: newest !== undefined ? { mtimeMs: newest } : {} };
    }
    return this.#newestOf.newest;
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
    this.#size = 0;
    this.#overBytes.clear();
    this.#overCount = false;
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
