import { capText, escapeForLog } from './log.js';
import type { ParseResult } from './schemas/parse.js';
import type { SourceStatus } from './snapshot.js';
import { SourceTracker, type Log } from './source-tracker.js';
import { FILE_SETS, fileSetPath, type FileSetName, type FileSetRead } from './stores/store.js';

/** One valid entry of a file set. */
export interface FileSetValue<T> {
  readonly name: string;
  readonly value: T;
}

export interface FileSetResult<T> {
  /** Valid entries (or their last good value while torn), in the store's order (by name). */
  readonly values: readonly FileSetValue<T>[];
  /** The set as one source: bad entries are counted and named here, each also logged once. */
  readonly status: SourceStatus;
}

/**
 * Parses one file set across refreshes: a `SourceTracker` per entry (parse on change, last good
 * value while torn, one log line per change of state), and nothing at all while the store hands
 * back the same entries array (a warm refresh over 10,000 unchanged receipts costs one comparison).
 * The result keeps its identity while unchanged, so consumers can memoise on it in turn.
 */
export class FileSetCollector<T> {
  readonly #name: FileSetName;
  readonly #parse: (bytes: Uint8Array) => ParseResult<T>;
  readonly #log: Log;
  readonly #trackers = new Map<string, SourceTracker<T>>();
  #memo: { files: unknown; error: string | undefined; result: FileSetResult<T> } | undefined;
  #loggedError: string | undefined;

  constructor(name: FileSetName, parse: (bytes: Uint8Array) => ParseResult<T>, log: Log) {
    this.#name = name;
    this.#parse = parse;
    this.#log = log;
  }

  update(read: FileSetRead): FileSetResult<T> {
    if (this.#memo?.files !== read.files || this.#memo.error !== read.error) {
      this.#memo = { files: read.files, error: read.error, result: this.#collect(read) };
    }
    return this.#memo.result;
  }

  #collect(read: FileSetRead): FileSetResult<T> {
    // The directory itself (a symlink, not a directory, unlistable): its entries log for themselves.
    if (read.error !== this.#loggedError) this.#log(`loki-metrics: ${FILE_SETS[this.#name].dir}: ${escapeForLog(read.error ?? 'ok again')}`);
    this.#loggedError = read.error;
    const seen = new Set<string>();
    const values: FileSetValue<T>[] = [];
    const bad: string[] = [];
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
        bad.push(`${capText(escapeForLog(file.name), 80)}: ${escapeForLog(tracked.problem)}${tracked.value !== undefined ? '; serving last good value' : ''}`);
      }
    }
    if (this.#trackers.size > seen.size) {
      for (const name of this.#trackers.keys()) if (!seen.has(name)) this.#trackers.delete(name);
    }
    const problem = read.error ?? (bad.length ? `${bad.length} bad file(s): ${bad.slice(0, 3).join('; ')}` : undefined);
    return {
      values,
      status: {
        source: FILE_SETS[this.#name].dir,
        ok: problem === undefined,
        present: read.present,
        ...(read.mtimeMs !== undefined ? { mtimeMs: read.mtimeMs } : {}),
        ...(problem !== undefined ? { problem } : {}),
      },
    };
  }
}
