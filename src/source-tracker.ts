import { escapeForLog } from './log.js';
import type { ParseResult } from './schemas/parse.js';
import type { SourceStatus } from './snapshot.js';
import type { FileRead } from './stores/store.js';

export type Log = (line: string) => void;

/** What one source gives the collector after a refresh. */
export interface TrackedValue<T> {
  /** The current value, or the last good one while the file is torn; undefined when absent. */
  readonly value: T | undefined;
  readonly status: SourceStatus;
}

/**
 * One state file across refreshes: parses only when the store's `version` changes, keeps the last
 * good value while the file is torn or invalid (writers rewrite in place, so that is routine), and
 * logs one line per change of state rather than one per scrape.
 */
export class SourceTracker<T> {
  private version: string | undefined;
  private parsed: ParseResult<T> | undefined;
  private lastGood: T | undefined;
  private lastProblem: string | undefined;

  constructor(
    readonly source: string,
    private readonly parse: (bytes: Uint8Array) => ParseResult<T>,
    private readonly log: Log,
  ) {}

  update(read: FileRead): TrackedValue<T> {
    const { value, problem } = this.next(read);
    if (!read.present) return { value, status: { source: this.source, ok: true, present: false } };
    const status: SourceStatus = {
      source: this.source,
      ok: problem === undefined,
      present: true,
      ...(read.mtimeMs !== undefined ? { mtimeMs: read.mtimeMs } : {}),
      ...(problem !== undefined
        ? { problem: this.lastGood !== undefined ? `${problem}; serving last good value` : problem }
        : {}),
    };
    return { value, status };
  }

  /**
   * The same without a status object: the value to serve and why the file is bad, if it is. For
   * file sets, where thousands of entries are tracked and only the bad ones are named.
   */
  next(read: FileRead): { readonly value: T | undefined; readonly problem?: string } {
    if (!read.present) {
      // A deleted file (loki.pid at a normal end) must not keep serving its old value.
      this.version = undefined;
      this.parsed = undefined;
      this.lastGood = undefined;
      this.report(undefined);
      return { value: undefined };
    }
    let problem: string | undefined;
    if (read.error !== undefined || read.bytes === undefined) {
      problem = read.error ?? 'unreadable';
      this.version = undefined;
      this.parsed = undefined;
    } else {
      if (read.version === '' || read.version !== this.version) {
        this.parsed = this.parse(read.bytes);
        this.version = read.version;
      }
      const parsed = this.parsed!;
      if (parsed.ok) this.lastGood = parsed.value;
      problem = read.stale ?? (parsed.ok ? undefined : parsed.problem);
    }
    this.report(problem);
    return problem === undefined ? { value: this.lastGood } : { value: this.lastGood, problem };
  }

  private report(problem: string | undefined): void {
    if (problem === this.lastProblem) return;
    if (problem !== undefined) this.log(`loki-metrics: ${escapeForLog(this.source)}: ${escapeForLog(problem)}`);
    // Here the file was bad before (the problem changed, to none).
    else this.log(`loki-metrics: ${escapeForLog(this.source)}: ok again`);
    this.lastProblem = problem;
  }
}
