import { capText, escapeForLog } from './log.js';
import type { ParseResult } from './schemas/parse.js';
import type { SourceStatus } from './snapshot.js';
import { SourceTracker, type Log } from './source-tracker.js';
import { FILE_SETS, fileSetPath, type BadEntry, type FileSetEntryRead, type FileSetName, type FileSetRead, type FileSetSummary } from './stores/store.js';

/** One valid entry of a file set. */
export interface FileSetValue<T> {
  readonly name: string;
  readonly value: T;
}

export interface FileSetResult<T, A = unknown> {
  /** Valid entries (or their last good value while torn), in the store's order (by name). */
  readonly values: readonly FileSetValue<T>[];
  /** The set as one source: bad entries are counted and named here, each also logged once. */
  readonly status: SourceStatus;
  /** The values folded by the collector's `fold` (or the store's summary of them). */
  readonly totals?: A;
}

/** Gives the event loop back once a slice of work has taken its time (see `timeSlicer`). */
export interface Slicer {
  /** Called after each unit of work; resolves at once, or after a turn of the event loop. */
  step(): Promise<void> | void;
}

/** How long a slice of parsing may hold the event loop. */
export const SLICE_MS = 5;

/**
 * A slicer that yields (a macrotask, so timers and I/O of other requests run) once `sliceMs` has
 * passed since the last yield, looking at the clock every 16 steps.
 */
export function timeSlicer(sliceMs = SLICE_MS, clock: () => number = () => performance.now(), yieldToLoop: () => Promise<void> = macrotask): Slicer {
  let since = clock();
  let steps = 0;
  return {
    step() {
      if (++steps % 16 !== 0 || clock() - since < sliceMs) return undefined;
      return yieldToLoop().then(() => {
        since = clock();
      });
    },
  };
}

// setImmediate on Node; a zero timeout where there is none (a Worker, whose synced sets are never parsed here).
const macrotask = (): Promise<void> => new Promise((resolve) => ((globalThis as { setImmediate?: (f: () => void) => void }).setImmediate ?? setTimeout)(() => resolve()));

/** One entry across refreshes: its tracker, and what it gave for the version last seen. */
interface Kept<T> {
  readonly tracker: SourceTracker<T>;
  tracked?: { readonly value: T | undefined; readonly problem?: string };
  version?: string;
  error?: string | undefined;
  stale?: string | undefined;
}

/**
 * Parses one file set across refreshes: a `SourceTracker` per entry (parse on change, last good
 * value while torn, one log line per change of state), and nothing at all while the store hands
 * back the same entries array (a warm refresh over 10,000 unchanged receipts costs one comparison).
 * The result keeps its identity while unchanged, so consumers can memoise on it in turn.
 *
 * What it keeps per entry is the parsed value (what the set's schema outputs: an efficiency record
 * without the fields no metric reads), never the bytes; and it never asks an entry whose version it
 * has seen for its bytes (a local store keeps none between refreshes and would read them again).
 */
export class FileSetCollector<T, A = never> {
  readonly #name: FileSetName;
  readonly #parse: (bytes: Uint8Array) => ParseResult<T>;
  readonly #log: Log;
  readonly #fold: ((values: readonly FileSetValue<T>[]) => A) | undefined;
  readonly #trackers = new Map<string, Kept<T>>();
  #memo: { files: unknown; summary: unknown; error: string | undefined; result: FileSetResult<T, A> } | undefined;
  #loggedError: string | undefined;

  /** `fold` sums the values into the set's totals (what a synced store hands over ready-made). */
  constructor(name: FileSetName, parse: (bytes: Uint8Array) => ParseResult<T>, log: Log, fold?: (values: readonly FileSetValue<T>[]) => A) {
    this.#name = name;
    this.#parse = parse;
    this.#log = log;
    this.#fold = fold;
  }

  /**
   * Parses, ahead of `update`, the entries whose version is new, giving the event loop back every
   * few milliseconds (`slicer`): a cold read of 20,000 files in one project then never holds another
   * project's scrape for the whole of it. `update` afterwards finds them parsed. Optional: `update`
   * alone gives the same result.
   */
  async prepare(read: FileSetRead, slicer: Slicer): Promise<void> {
    if (read.summary || this.#memo?.files === read.files) return;
    for (const file of read.files) {
      const kept = this.#trackers.get(file.name);
      if (kept?.tracked && file.version !== '' && kept.version === file.version && kept.error === file.error && kept.stale === file.stale) continue;
      this.#track(file);
      const turn = slicer.step();
      if (turn) await turn;
    }
  }

  update(read: FileSetRead): FileSetResult<T, A> {
    if (this.#memo?.files !== read.files || this.#memo.summary !== read.summary || this.#memo.error !== read.error) {
      this.#memo = { files: read.files, summary: read.summary, error: read.error, result: this.#collect(read) };
    }
    return this.#memo.result;
  }

  #collect(read: FileSetRead): FileSetResult<T, A> {
    // The directory itself (a symlink, not a directory, unlistable): its entries log for themselves.
    if (read.error !== this.#loggedError) this.#log(`loki-metrics: ${FILE_SETS[this.#name].dir}: ${escapeForLog(read.error ?? 'ok again')}`);
    this.#loggedError = read.error;
    if (read.summary) return this.#summarised(read, read.summary);
    const seen = new Set<string>();
    const values: FileSetValue<T>[] = [];
    const bad: BadEntry[] = [];
    for (const file of read.files) {
      seen.add(file.name);
      const tracked = this.#track(file);
      if (tracked.value !== undefined) values.push({ name: file.name, value: tracked.value });
      if (tracked.problem !== undefined) {
        bad.push({ name: file.name, problem: tracked.problem, stale: tracked.value !== undefined });
      }
    }
    if (this.#trackers.size > seen.size) {
      for (const name of this.#trackers.keys()) if (!seen.has(name)) this.#trackers.delete(name);
    }
    return { values, status: this.#status(read, bad.length, bad), ...(this.#fold ? { totals: this.#fold(values) } : {}) };
  }

  /** The entry's value and problem: parsed when its version is new, else as last time. */
  #track(file: FileSetEntryRead): NonNullable<Kept<T>['tracked']> {
    let kept = this.#trackers.get(file.name);
    if (!kept) {
      kept = { tracker: new SourceTracker(fileSetPath(this.#name, file.name), this.#parse, this.#log) };
      this.#trackers.set(file.name, kept);
    }
    // Version '' promises nothing (as in SourceTracker): looked at every time.
    if (kept.tracked && file.version !== '' && kept.version === file.version && kept.error === file.error && kept.stale === file.stale) {
      return kept.tracked;
    }
    kept.tracked = kept.tracker.next(file);
    kept.version = file.version;
    kept.error = file.error;
    kept.stale = file.stale;
    return kept.tracked;
  }

  /** A synced set: its sums as the store kept them, its status from the bad entries it names. */
  #summarised(read: FileSetRead, summary: FileSetSummary): FileSetResult<T, A> {
    const totals = summary.totals !== undefined ? (summary.totals as A) : this.#fold?.([]);
    return { values: [], status: this.#status(read, summary.bad, summary.badEntries), ...(totals !== undefined ? { totals } : {}) };
  }

  #status(read: FileSetRead, badCount: number, bad: readonly BadEntry[]): SourceStatus {
    const named = bad.slice(0, 3).map((b) => `${capText(escapeForLog(b.name), 80)}: ${escapeForLog(b.problem)}${b.stale ? '; serving last good value' : ''}`);
    const problem = read.error ?? (badCount > 0 ? `${badCount} bad file(s): ${named.join('; ')}` : undefined);
    return {
        source: FILE_SETS[this.#name].dir,
        ok: problem === undefined,
        present: read.present,
        ...(read.mtimeMs !== undefined ? { mtimeMs: read.mtimeMs } : {}),
        ...(problem !== undefined ? { problem } : {}),
    };
  }
}
