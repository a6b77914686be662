/**
 * `FsStateStore`: a `.loki` directory on local disk. Strictly read-only: files are opened with
 * O_RDONLY (plus O_NOFOLLOW), nothing under the directory is ever created, changed or removed.
 *
 * Cost per refresh, for a long-running session (the lstats are synchronous, as the sweeps' reads are:
 * see `lstatIfThere`; a refresh with nothing changed takes about 0.1 ms of them and no other I/O):
 * - the directory and its sub-directories: one stat each;
 * - documents: one lstat each; bytes are re-read only when (ino, size, mtime, ctime) changed;
 * - each file set (`metrics/efficiency/`, `proofs/`, `pids/`, `sessions/`): see `FileSetTracker`,
 *   which keeps no entry's bytes past the next refresh and caps each set (`FILE_SET_CAPS`);
 * - `events.jsonl`: see `EventsTracker`.
 */
import { statSync } from 'node:fs';
import { join } from 'node:path';
import {
  ABSENT,
  absentDocuments,
  DOCUMENTS,
  FILE_SET_NAMES,
  FILE_SETS,
  type DocumentName,
  type FileRead,
  type FileSetName,
  type FileSetRead,
  type FileSets,
  type StateReading,
  type StateStore,
} from './store.js';
import { EventsTracker } from './fs/events.js';
import { FileSetTracker, type FileSetCounters, type FileSetOptions } from './fs/file-set.js';
import { FILE_SET_CAPS, type FileSetCaps } from './fs/set-entry.js';
import { inHostPidNamespace, isProcessAlive } from './fs/processes.js';
import { errorCode, isMissing, lstatIfThere, OpenedPathCheck, readSmallFile, reason, SYMLINK } from './fs/read-file.js';

export { isProcessAlive } from './fs/processes.js';
export { FILE_SET_CAPS, type FileSetCaps } from './fs/set-entry.js';

export interface FsStateStoreOptions {
  /** Larger documents and set entries are reported as errors, not read. Default 16 MiB (set entries: at most `fileSetCaps.entryBytes`). */
  readonly maxFileBytes?: number;
  /** What each file set may hold; default `FILE_SET_CAPS`. */
  readonly fileSetCaps?: Partial<FileSetCaps>;
  /** Full re-stat of each file set at least this often. Default 60 s. */
  readonly rescanIntervalMs?: number;
  /** Watch file-set directories with inotify. Without it, every read re-stats every entry. */
  readonly watch?: boolean;
  /** Overrides the detection of the host's pid namespace (tests; see `StateReading.hostPidNamespace`). */
  readonly hostPidNamespace?: boolean;
  /** `fs.watch`, replaceable so tests can make it fail as at the inotify limit. */
  readonly watchFn?: FileSetOptions['watchFn'];
}

/** How many file-set directories are watched by inotify, and how many fell back to re-stating on every read. */
export interface WatchStatus {
  readonly inotify: number;
  readonly polling: number;
}

/** What the store did, for tests and benchmarks. Monotonic. */
export interface FsStoreCounters {
  /** Bytes read from `events.jsonl` and `events.jsonl.1` (the fingerprint reads excluded). */
  eventBytesRead: number;
  /** Documents whose bytes were read. */
  documentReads: number;
  /** Per file set: entries stat'ed and read, full re-stats. */
  readonly fileSets: Readonly<Record<FileSetName, FileSetCounters>>;
}

const DEFAULT_MAX_FILE_BYTES = 16 * 1024 * 1024;
const DEFAULT_RESCAN_MS = 60_000;

/** The sub-directories documents and file sets live in; each is checked for being a symlink on every read. */
const SUBDIRS = [
  ...new Set(
    [...DOCUMENTS, ...FILE_SET_NAMES.map((name) => `${FILE_SETS[name].dir}/`)]
      .filter((path) => path.includes('/'))
      .map((path) => path.slice(0, path.indexOf('/'))),
  ),
];
const topDir = (path: string) => (path.includes('/') ? path.slice(0, path.indexOf('/')) : undefined);

export class FsStateStore implements StateStore {
  readonly #dir: string;
  readonly #maxFileBytes: number;
  readonly #hostPidNamespace: boolean;
  readonly #documents = new Map<DocumentName, FileRead>();
  readonly #sets: Readonly<Record<FileSetName, FileSetTracker>>;
  readonly #events: EventsTracker;
  readonly #guard: OpenedPathCheck;
  #queue: Promise<unknown> = Promise.resolve();
  /** What the store did (for tests and benchmarks). */
  readonly counters: FsStoreCounters;

  constructor(dir: string, options: FsStateStoreOptions = {}) {
    this.#dir = dir;
    this.#maxFileBytes = options.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES;
    this.#hostPidNamespace = options.hostPidNamespace ?? inHostPidNamespace();
    this.#guard = new OpenedPathCheck(dir);
    const caps = { ...FILE_SET_CAPS, ...options.fileSetCaps };
    const setOptions = {
      guard: this.#guard,
      caps: { ...caps, entryBytes: Math.min(caps.entryBytes, this.#maxFileBytes) },
      rescanIntervalMs: options.rescanIntervalMs ?? DEFAULT_RESCAN_MS,
      watch: options.watch ?? true,
      ...(options.watchFn ? { watchFn: options.watchFn } : {}),
    };
    this.#sets = Object.fromEntries(
      FILE_SET_NAMES.map((name) => [name, new FileSetTracker(join(dir, FILE_SETS[name].dir), FILE_SETS[name], setOptions)]),
    ) as Record<FileSetName, FileSetTracker>;
    this.counters = {
      eventBytesRead: 0,
      documentReads: 0,
      fileSets: Object.fromEntries(FILE_SET_NAMES.map((name) => [name, this.#sets[name].counters])) as Record<FileSetName, FileSetCounters>,
    };
    this.#events = new EventsTracker(dir, this.counters);
  }

  /** One refresh. Calls are serialised: incremental state is never touched by two at once. */
  read(): Promise<StateReading> {
    const next = this.#queue.then(() => this.#read());
    this.#queue = next.catch(() => undefined);
    return next;
  }

  close(): void {
    for (const name of FILE_SET_NAMES) this.#sets[name].close();
  }

  /**
   * Bytes of file content this store holds now: the documents' (kept between reads), and the file-set
   * entries' read by the last refresh (held until the next one; see `HeldEntry`).
   */
  retainedBytes(): number {
    let bytes = 0;
    for (const read of this.#documents.values()) bytes += read.bytes?.length ?? 0;
    for (const name of FILE_SET_NAMES) bytes += this.#sets[name].retainedBytes();
    return bytes;
  }

  /** The inotify watches this store holds now, and the directories it polls because a watch failed. */
  watchStatus(): WatchStatus {
    let inotify = 0;
    let polling = 0;
    for (const name of FILE_SET_NAMES) {
      const mode = this.#sets[name].watchMode;
      if (mode === 'inotify') inotify++;
      else if (mode === 'polling') polling++;
    }
    return { inotify, polling };
  }

  async #read(): Promise<StateReading> {
    const processes = { isProcessAlive, hostPidNamespace: this.#hostPidNamespace };
    const problem = this.#dirProblem();
    if (problem !== undefined) {
      this.#documents.clear();
      return {
        available: false,
        problem,
        documents: absentDocuments(),
        ...(await this.#readSets(new Set())),
        events: this.#events.unavailable(),
        ...processes,
      };
    }
    // lstat and O_NOFOLLOW guard only a path's last component, so the sub-directories are checked
    // too: a symlinked `state/` or `metrics/` must not pull in files from outside the state directory.
    const linked = this.#symlinkedSubdirs();
    const [documents, sets, events] = await Promise.all([this.#readDocuments(linked), this.#readSets(linked), this.#events.read()]);
    return { available: true, documents, ...sets, events, ...processes };
  }

  async #readSets(linked: ReadonlySet<string>): Promise<FileSets> {
    const reads = await Promise.all(
      FILE_SET_NAMES.map((name): Promise<FileSetRead> | FileSetRead => {
        const sub = topDir(FILE_SETS[name].dir);
        return sub !== undefined && linked.has(sub) ? this.#sets[name].refuse(`${sub}/ ${SYMLINK}`) : this.#sets[name].read();
      }),
    );
    return Object.fromEntries(FILE_SET_NAMES.map((name, i) => [name, reads[i]!])) as unknown as FileSets;
  }

  #symlinkedSubdirs(): Set<string> {
    const linked = new Set<string>();
    for (const sub of SUBDIRS) {
      try {
        if (lstatIfThere(join(this.#dir, sub))?.isSymbolicLink()) linked.add(sub);
      } catch {
        // unreadable: the files under it report that themselves
      }
    }
    return linked;
  }

  #dirProblem(): string | undefined {
    try {
      const st = statSync(this.#dir);
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
        const sub = topDir(name);
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
      const st = lstatIfThere(path);
      read = st === undefined ? ABSENT : await readSmallFile(path, st, this.#maxFileBytes, cached, () => this.counters.documentReads++, this.#guard);
    } catch (error) {
      read = isMissing(error) ? ABSENT : { present: true, error: reason(error), version: `error:${reason(error)}` };
    }
    if (read.bytes !== undefined) this.#documents.set(name, read);
    else this.#documents.delete(name);
    return read;
  }
}
