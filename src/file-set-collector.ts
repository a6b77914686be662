import { capText, escapeForLog } from './log.js';
import type { ParseResult } from './schemas/parse.js';
import type { SourceStatus } from './snapshot.js';
import { SourceTracker, type Log } from './source-tracker.js';
import { FILE_SETS, fileSetPath, type BadEntry, type FileSetName, type FileSetRead, type FileSetSummary } from './stores/store.js';

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

/**
 * Parses one file set across refreshes: a `SourceTracker` per entry (parse on change, last good
 * value while torn, one log line per change of state), and nothing at all while the store hands
 * back the same entries array (a warm refresh over 10,000 unchanged receipts costs one comparison).
 * The result keeps its identity while unchanged, so consumers can memoise on it in turn.
 */
export class FileSetCollector<T, A = never> {
  readonly #name: FileSetName;
  readonly #parse: (bytes: Uint8Array) => ParseResult<T>;
  readonly #log: Log;
  readonly #fold: ((values: readonly FileSetValue<T>[]) => A) | undefined;
  readonly #trackers = new Map<string, SourceTracker<T>>();
  #memo: { files: unknown; summary: unknown; error: string | undefined; result: FileSetResult<T, A> } | undefined;
  #loggedError: string | undefined;

  /** `fold` sums the values into the set's totals (what a synced store hands over ready-made). */
  constructor(name: FileSetName, parse: (bytes: Uint8Array) => ParseResult<T>, log: Log, fold?: (values: readonly FileSetValue<T>[]) => A) {
    this.#name = name;
    this.#parse = parse;
    this.#log = log;
    this.#fold = fold;
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
      let tracker = this.#trackers.get(file.name);
      if (!tracker) {
        tracker = new SourceTracker(fileSetPath(this.#name, file.name), this.#parse, this.#log);
        this.#trackers.set(file.name, tracker);
      }
      const tracked = tracker.next(file);
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
