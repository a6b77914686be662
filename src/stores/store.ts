/**
 * The storage adapter interface: what the collector needs from a `.loki` state directory,
 * expressed so that a remote store (R2/KV, one compact document per session) can answer a whole
 * scrape in a single read, and a local one can answer it without re-reading unchanged bytes.
 *
 * Implementations: `FsStateStore` (Node, files on disk). Only stores and runtime entry points
 * may know their runtime; everything above this interface is runtime-free.
 */

/** Small files read whole, by their path under the state directory. */
export const DOCUMENTS = [
  'dashboard-state.json',
  'loki.pid',
  'state/agents.json',
  'state/orchestrator.json',
  'queue/current-task.json',
  'pricing.json',
  'metrics/budget.json',
  'signals/BUDGET_EXCEEDED',
  'PAUSE',
  'STOP',
  // 9.x
  'autonomy-state.json',
  'state/completion.json',
] as const;
export type DocumentName = (typeof DOCUMENTS)[number];

export const EFFICIENCY_DIR = 'metrics/efficiency';
export const EVENTS_FILE = 'events.jsonl';

/**
 * Directories of many small files, read incrementally by one mechanism (`FileSetTracker` on disk,
 * one manifest section per set in sync). An entry is either a file directly in `dir` whose name
 * ends in `suffix` (`depth: 1`), or the file `leaf` inside each sub-directory (`depth: 2`); its
 * name is the file name or the sub-directory name respectively.
 */
export const FILE_SETS = {
  /** One per finished iteration; emptied at each run start. */
  efficiency: { dir: EFFICIENCY_DIR, depth: 1, suffix: '.json' },
  /** 9.20+: one receipt per run, `proofs/<run_id>/proof.json`. */
  proofs: { dir: 'proofs', depth: 2, leaf: 'proof.json' },
  /** 8.56+: the process registry, `pids/<pid>.json`. */
  pids: { dir: 'pids', depth: 1, suffix: '.json' },
  /** `LOKI_SESSION_ID` runs: `sessions/<id>/loki.pid`. */
  sessions: { dir: 'sessions', depth: 2, leaf: 'loki.pid' },
} as const satisfies Record<string, FileSetSpec>;
export type FileSetName = keyof typeof FILE_SETS;
export const FILE_SET_NAMES = Object.keys(FILE_SETS) as FileSetName[];

export type FileSetSpec =
  | { readonly dir: string; readonly depth: 1; readonly suffix: string }
  | { readonly dir: string; readonly depth: 2; readonly leaf: string };

/** The path of one entry of a set, relative to the state directory. */
export function fileSetPath(name: FileSetName, entry: string): string {
  const spec: FileSetSpec = FILE_SETS[name];
  return spec.depth === 1 ? `${spec.dir}/${entry}` : `${spec.dir}/${entry}/${spec.leaf}`;
}

/** One file as a store last saw it. */
export interface FileRead {
  readonly present: boolean;
  /**
   * Whole content when present and readable. A file-set entry of a local store keeps no bytes past
   * the next refresh: asked for later, they are read again, and may then be newer than `version`
   * (the next refresh shows the new version). Consumers keep what they parsed, not these.
   */
  readonly bytes?: Uint8Array;
  /** Modification time, ms since the epoch, when present. */
  readonly mtimeMs?: number;
  /** Why a present file could not be read (permission, a directory, too large, ...). */
  readonly error?: string;
  /**
   * Synced stores: `bytes` are the last good content, and the live file is currently invalid for
   * this reason. The value is served and the source reported bad, as a local reader would.
   */
  readonly stale?: string;
  /**
   * Changes whenever the content may have changed; two reads with the same version have the same
   * bytes, so callers may skip re-parsing. Absent files have version ''.
   */
  readonly version: string;
}

export interface FileSetEntryRead extends FileRead {
  /** The entry's name: `iteration-3.json` in `metrics/efficiency`, `<run_id>` in `proofs`. */
  readonly name: string;
}

/**
 * One file set as a store last saw it, entries sorted by name. A store hands back the same `files`
 * array while nothing in the set changed, so consumers may memoise on its identity.
 */
export interface FileSetRead {
  readonly present: boolean;
  readonly files: readonly FileSetEntryRead[];
  /** Newest file modification time (ms), when any file exists. */
  readonly mtimeMs?: number;
  /** Why the directory could not be listed. */
  readonly error?: string;
  /**
   * Synced stores: the set already summed where its files arrived (`files` is then empty), so a
   * scrape reads the sums, never the files.
   */
  readonly summary?: FileSetSummary;
}

/** A file set summed: what the collector reports of it without its files. */
export interface FileSetSummary {
  /** Entries in the set. */
  readonly count: number;
  /** Entries whose live file is bad, and the first of them by name (at most `MAX_BAD_NAMED`). */
  readonly bad: number;
  readonly badEntries: readonly BadEntry[];
  /** The set's totals, as its collector folds them locally (efficiency: UsageTotals; proofs: ReceiptCounts). */
  readonly totals?: unknown;
}

/** A bad entry of a file set: why, and whether its last good value is still served. */
export interface BadEntry {
  readonly name: string;
  readonly problem: string;
  readonly stale: boolean;
}

/** Bad entries a summary names (the status shows three). */
export const MAX_BAD_NAMED = 32;

/**
 * What `events.jsonl` says, maintained incrementally (see `events.ts`): never the whole file.
 */
export interface EventsSummary {
  readonly present: boolean;
  readonly mtimeMs?: number;
  readonly error?: string;
  /** Complete (newline-terminated) non-blank lines in the live file. Drops only on rotation. */
  readonly lines: number;
  /** Timestamp (ms) of the latest valid `session_start`, remembered across rotation. */
  readonly sessionStartMs?: number;
  /** `data.iteration` of the latest valid `iteration_start` after that `session_start`. */
  readonly iteration?: number;
  /** `data.pid` of that `session_start` (the runner that wrote it), when it names one. */
  readonly sessionPid?: number;
}

/**
 * Liveness decided where the runner's processes are (the sync client), shipped with synced state.
 * Local stores leave it out: the collector probes the processes itself.
 */
export interface RunnerVerdict {
  /** Whether the pids decided (the runner's pid namespace is visible); else the heartbeat rule applies. */
  readonly decided: boolean;
  /** Whether the runner is alive (meaningful when `decided`). */
  readonly alive: boolean;
  /** The live runner's pid and when it started (ms), when known. */
  readonly pid?: number;
  readonly startedMs?: number;
}

export type FileSets = { readonly [K in FileSetName]: FileSetRead };

export interface StateReading extends FileSets {
  /** Whether the state directory itself could be read. */
  readonly available: boolean;
  /** Why it could not (missing, not a directory, permission). */
  readonly problem?: string;
  readonly documents: Readonly<Record<DocumentName, FileRead>>;
  readonly events: EventsSummary;
  /**
   * Whether a process with this (already validated, positive) pid is alive on the machine that
   * runs Loki Mode. Locally: signal 0, EPERM counting as alive; with `startedByMs`, where the
   * platform shows a process's start (Linux `/proc`), one that started after it counts as dead (it
   * reused the number). Remote stores answer with the fact the sync shipped.
   */
  isProcessAlive(pid: number, startedByMs?: number): boolean;
  /**
   * Whether this store sees every process of the machine that runs Loki Mode even when none of the
   * pids the state names is alive: a local store in the host's pid namespace (or on a system without
   * pid namespaces). False inside a container, and for synced state.
   */
  readonly hostPidNamespace: boolean;
  /** Synced stores: the verdict the sync client made next to the runner. */
  readonly runner?: RunnerVerdict;
  /** Remote stores: when the state was last synced (ms). Undefined for local stores. */
  readonly lastSyncMs?: number;
}

export interface StateStore {
  /** One refresh: everything a scrape needs. Must not throw for bad files; only for bugs. */
  read(): Promise<StateReading>;
  /** Release watchers and handles. */
  close?(): void | Promise<void>;
  /**
   * Bytes this store keeps between reads (synced stores: the head and the documents), so a process
   * holding many can bound them by size (fleet.ts). Stores that keep nothing of note leave it out.
   */
  retainedBytes?(): number;
}

/** A FileRead for a file that does not exist. */
export const ABSENT: FileRead = Object.freeze({ present: false, version: '' });

/** A file set that does not exist. */
export const ABSENT_SET: FileSetRead = Object.freeze({ present: false, files: Object.freeze([]) as readonly FileSetEntryRead[] });

/** Every file set absent. */
export function absentFileSets(): FileSets {
  return Object.fromEntries(FILE_SET_NAMES.map((name) => [name, ABSENT_SET])) as unknown as FileSets;
}

/** Every document absent: what a reading of an unreadable state directory holds. */
export function absentDocuments(): Record<DocumentName, FileRead> {
  return Object.fromEntries(DOCUMENTS.map((name) => [name, ABSENT])) as Record<DocumentName, FileRead>;
}

/** A reading of a state directory that could not be read at all, for `problem`. */
export function unreadableReading(problem: string): StateReading {
  return {
    available: false,
    problem,
    documents: absentDocuments(),
    ...absentFileSets(),
    events: { present: false, lines: 0 },
    isProcessAlive: () => false,
    hostPidNamespace: false,
  };
}
