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
] as const;
export type DocumentName = (typeof DOCUMENTS)[number];

export const EFFICIENCY_DIR = 'metrics/efficiency';
export const EVENTS_FILE = 'events.jsonl';

/** One file as a store last saw it. */
export interface FileRead {
  readonly present: boolean;
  /** Whole content when present and readable. */
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

export interface EfficiencyFileRead extends FileRead {
  /** File name inside `metrics/efficiency`, e.g. `iteration-3.json`. */
  readonly name: string;
}

/** The `metrics/efficiency/*.json` files (non-recursive), sorted by name. */
export interface EfficiencyRead {
  readonly present: boolean;
  readonly files: readonly EfficiencyFileRead[];
  /** Newest file modification time (ms), when any file exists. */
  readonly mtimeMs?: number;
  /** Why the directory could not be listed. */
  readonly error?: string;
}

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
}

export interface StateReading {
  /** Whether the state directory itself could be read. */
  readonly available: boolean;
  /** Why it could not (missing, not a directory, permission). */
  readonly problem?: string;
  readonly documents: Readonly<Record<DocumentName, FileRead>>;
  readonly efficiency: EfficiencyRead;
  readonly events: EventsSummary;
  /**
   * Whether a process with this (already validated, positive) pid is alive on the machine that
   * runs Loki Mode. Locally: signal 0, EPERM counting as alive. Remote stores answer with the
   * fact the sync shipped.
   */
  isProcessAlive(pid: number): boolean;
  /** Remote stores: when the state was last synced (ms). Undefined for local stores. */
  readonly lastSyncMs?: number;
}

export interface StateStore {
  /** One refresh: everything a scrape needs. Must not throw for bad files; only for bugs. */
  read(): Promise<StateReading>;
  /** Release watchers and handles. */
  close?(): void | Promise<void>;
}

/** A FileRead for a file that does not exist. */
export const ABSENT: FileRead = Object.freeze({ present: false, version: '' });

/** Every document absent: what a reading of an unreadable state directory holds. */
export function absentDocuments(): Record<DocumentName, FileRead> {
  return Object.fromEntries(DOCUMENTS.map((name) => [name, ABSENT])) as Record<DocumentName, FileRead>;
}
