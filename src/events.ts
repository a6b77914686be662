/**
 * Incremental `events.jsonl` scanner (state-files.md §1.5, §3.2–3.3). Runtime-free: bytes in
 * (`Uint8Array`), a running summary out. It never holds the file: a store feeds it the bytes appended
 * since the last refresh, in chunks of any size, and it keeps only a bounded partial last line.
 *
 * What it maintains:
 * - `lines`: complete (`\n`-terminated) lines with at least one non-whitespace byte (space, tab,
 *   CR, VT, FF are whitespace, so CRLF lines and blank lines behave). A trailing line with no `\n` yet
 *   is carried and counted when its `\n` arrives, possibly chunks later.
 * - `sessionStartMs`: timestamp of the latest valid `session_start` line.
 * - `iteration`: `data.iteration` of the latest valid `iteration_start` after it (a new
 *   `session_start` forgets it).
 *
 * Only lines containing the bytes `session_start` or `iteration_start` are decoded and parsed; every
 * other line costs one newline search and, usually, one byte test.
 *
 * `EventsScanner` counts the lines; `LineCarry` holds the partial last line and `MarkerState` keeps
 * what the marker lines say, each testable alone.
 */
import { readEventLine, type EventLine } from './schemas/event-line.js';
import { decodeText } from './schemas/parse.js';

export interface EventsState {
  /** Complete non-blank lines fed since construction or the last `reset()`. */
  readonly lines: number;
  readonly sessionStartMs?: number;
  readonly iteration?: number;
  /** `data.pid` of the latest valid `session_start`, when it names one. */
  readonly sessionPid?: number;
}

/**
 * Finds `needle` in `haystack` at or after `from`; -1 if absent. The default is pure JS; a Node store
 * feeding `Buffer`s can pass `(h, n, f) => (h as Buffer).indexOf(n, f)` (native, much faster).
 */
export type SequenceSearch = (haystack: Uint8Array, needle: Uint8Array, from: number) => number;

export interface EventsScannerOptions {
  /** Used on the chunks given to `feed()` (never on the scanner's own copies). */
  readonly search?: SequenceSearch;
  /** How much of a partial last line is kept for parsing once it completes. Default 64 KiB. */
  readonly maxCarryBytes?: number;
}

export const DEFAULT_MAX_CARRY_BYTES = 64 * 1024;

const NL = 10;
const encoder = new TextEncoder();
/** Shared tail of both markers; the bytes before it decide which marker (if any) it belongs to. */
const START = encoder.encode('_start');
const SESSION = encoder.encode('session');
const ITERATION = encoder.encode('iteration');

/** One marker line's fields, or undefined when it is not valid UTF-8 / JSON / an event. */
function parseLine(line: Uint8Array): EventLine | undefined {
  const text = decodeText(line);
  if (!text.ok) return undefined;
  const parsed = readEventLine(text.value);
  return parsed.ok ? parsed.value : undefined;
}

const isSpace = (b: number) => b === 32 || b === 9 || b === 13 || b === 11 || b === 12;

/** Whether bytes [from, to) hold any non-whitespace byte. */
function hasContent(bytes: Uint8Array, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (!isSpace(bytes[i]!)) return true;
  return false;
}

/** Pure sequence search: the first byte via `indexOf` (native), then a compare. */
export const indexOfSequence: SequenceSearch = (haystack, needle, from) => {
  const first = needle[0];
  if (first === undefined) return from <= haystack.length ? from : -1;
  const last = haystack.length - needle.length;
  let i = from;
  while (i <= last) {
    i = haystack.indexOf(first, i);
    if (i === -1 || i > last) return -1;
    let j = 1;
    while (j < needle.length && haystack[i + j] === needle[j]) j++;
    if (j === needle.length) return i;
    i++;
  }
  return -1;
};

/**
 * Whether `needle` ends exactly at `end` (exclusive). No line bound is needed: the byte before a
 * line is a newline or outside the array (`undefined`), and neither matches a letter of the needle.
 */
function endsWithAt(bytes: Uint8Array, end: number, needle: Uint8Array): boolean {
  const start = end - needle.length;
  for (let i = 0; i < needle.length; i++) if (bytes[start + i] !== needle[i]) return false;
  return true;
}

/**
 * The partial last line carried between chunks: its first bytes (at most `maxBytes`), its full
 * length and whether it has content. A line that outgrows the bound is still counted but never
 * parsed: a kept head or tail of it could look like a marker line it is not.
 */
export class LineCarry {
  readonly #max: number;
  #bytes = new Uint8Array(0);
  #kept = 0;
  #total = 0;
  #content = false;

  constructor(maxBytes: number) {
    this.#max = maxBytes;
  }

  /** Whether a partial line (at least one byte of it) is being carried. */
  get pending(): boolean {
    return this.#total > 0;
  }

  /** Whether the line so far has a non-whitespace byte, kept or not. */
  get hasContent(): boolean {
    return this.#content;
  }

  /** The line so far when it fits the bound, else empty. A view: valid until the next append or clear. */
  get line(): Uint8Array {
    return this.#bytes.subarray(0, this.#kept);
  }

  /** Adds bytes [from, to) of `chunk` (copied: the chunk is not retained). */
  append(chunk: Uint8Array, from: number, to: number): void {
    // An empty range (a chunk ending in a newline) changes nothing below.
    const len = to - from;
    if (!this.#content && hasContent(chunk, from, to)) this.#content = true;
    const kept = this.#kept;
    if (kept === this.#total && kept + len <= this.#max) {
      if (this.#bytes.length < kept + len) {
        const grown = new Uint8Array(Math.min(this.#max, Math.max(kept + len, this.#bytes.length * 2, 256)));
        grown.set(this.#bytes.subarray(0, kept));
        this.#bytes = grown;
      }
      this.#bytes.set(chunk.subarray(from, to), kept);
      this.#kept = kept + len;
    } else {
      // Too long to parse: remember only that it exists and whether it has content. Nothing more
      // is kept (#kept !== #total from now on), so #kept > 0 means the whole line is kept.
      this.#kept = 0;
    }
    this.#total += len;
  }

  /** Forgets the line (completed or dropped). */
  clear(): void {
    this.#kept = 0;
    this.#total = 0;
    this.#content = false;
    // One huge line should not pin its buffer for the life of the scanner.
    if (this.#bytes.length > 4096) this.#bytes = new Uint8Array(0);
  }
}

const SESSION_BIT = 1;
const ITERATION_BIT = 2;

/** Candidate marker lines, in file order: bounds and which marker bytes each holds (the bits above). */
interface MarkerLines {
  readonly starts: number[];
  readonly ends: number[];
  readonly kinds: number[];
}

/**
 * The lines among the complete lines [from, to) holding `session_start` or `iteration_start`
 * bytes. `from` is 0 or just after a newline, and `to` just after a newline or the end of `bytes`.
 */
function findMarkerLines(bytes: Uint8Array, from: number, to: number, search: SequenceSearch): MarkerLines {
  const found: MarkerLines = { starts: [], ends: [], kinds: [] };
  let hit = search(bytes, START, from);
  while (hit !== -1 && hit < to) {
    // bytes[hit] is `_`, so the search may start at hit; the line cannot start before `from`
    // (the byte before it is a newline), and only a carried line (no newline) ends at `to`.
    const lineStart = bytes.lastIndexOf(NL, hit) + 1;
    let lineEnd = bytes.indexOf(NL, hit);
    if (lineEnd === -1) lineEnd = to;
    let kind = 0;
    let at = hit;
    while (at !== -1 && at < lineEnd) {
      if (endsWithAt(bytes, at, SESSION)) kind |= SESSION_BIT;
      else if (endsWithAt(bytes, at, ITERATION)) kind |= ITERATION_BIT;
      at = search(bytes, START, at + 1);
    }
    // A line with only other `_start`s (kind 0) is never parsed.
    found.starts.push(lineStart);
    found.ends.push(lineEnd);
    found.kinds.push(kind);
    hit = at; // the first `_start` past this line
  }
  return found;
}

/**
 * What the marker lines fed so far say: the latest valid `session_start` (its time and pid) and the
 * latest valid `iteration_start` after it. Fed complete lines only, in file order.
 */
export class MarkerState {
  #sessionStartMs: number | undefined;
  #sessionPid: number | undefined;
  #iteration: number | undefined;
  /** Whether a valid `session_start` was fed (ever: the scanner's reset() keeps markers). */
  #sawSessionStart = false;
  #sawIterationStart = false;

  get sessionStartMs(): number | undefined {
    return this.#sessionStartMs;
  }

  get sessionPid(): number | undefined {
    return this.#sessionPid;
  }

  get iteration(): number | undefined {
    return this.#iteration;
  }

  get sawSessionStart(): boolean {
    return this.#sawSessionStart;
  }

  /**
   * The marker lines among the complete lines [from, to) (bounds as for `findMarkerLines`), applied
   * as if in file order. Only the outcome matters, so they are parsed from the end: the last valid
   * `session_start` and the last valid `iteration_start` after it, usually two parses per chunk
   * however many markers it holds.
   */
  scan(bytes: Uint8Array, from: number, to: number, search: SequenceSearch): void {
    const found = findMarkerLines(bytes, from, to, search);
    const session = this.#applyLastSession(bytes, found);
    this.#applyLastIteration(bytes, found, session);
  }

  /** See `EventsScanner.adoptEarlier`. */
  adoptEarlier(earlier: Pick<EventsState, 'sessionStartMs' | 'iteration' | 'sessionPid'>): void {
    if (this.#sawSessionStart) return;
    if (earlier.sessionStartMs !== undefined) {
      this.#sessionStartMs = earlier.sessionStartMs;
      this.#sessionPid = earlier.sessionPid;
    }
    if (!this.#sawIterationStart) this.#iteration = earlier.iteration;
  }

  /** Applies the last valid `session_start` among `found`; its index, or -1 if none. */
  #applyLastSession(bytes: Uint8Array, found: MarkerLines): number {
    for (let k = found.kinds.length - 1; k >= 0; k--) {
      if ((found.kinds[k]! & SESSION_BIT) === 0) continue;
      const line = parseLine(bytes.subarray(found.starts[k]!, found.ends[k]!));
      if (line?.type === 'session_start' && line.timestampMs !== undefined) {
        this.#sessionStartMs = line.timestampMs;
        this.#sessionPid = line.pid; // a session without a pid forgets the old session's
        // Once set, #sawSessionStart makes adoptEarlier() ignore #sawIterationStart for good.
        this.#sawSessionStart = true;
        this.#iteration = undefined; // a new session has had no iteration yet
        return k;
      }
    }
    return -1;
  }

  /** Applies the last valid `iteration_start` among `found` after index `after`. */
  #applyLastIteration(bytes: Uint8Array, found: MarkerLines, after: number): void {
    // A line holding both markers may be parsed twice (rare; not worth a cache).
    for (let k = found.kinds.length - 1; k > after; k--) {
      if ((found.kinds[k]! & ITERATION_BIT) === 0) continue;
      const line = parseLine(bytes.subarray(found.starts[k]!, found.ends[k]!));
      // Without a usable data.iteration the line says nothing: the search goes on.
      if (line?.type === 'iteration_start' && line.iteration !== undefined) {
        this.#iteration = line.iteration;
        this.#sawIterationStart = true;
        return;
      }
    }
  }
}

export class EventsScanner {
  readonly #search: SequenceSearch;
  readonly #carry: LineCarry;
  readonly #markers = new MarkerState();
  #lines = 0;

  constructor(options: EventsScannerOptions = {}) {
    this.#search = options.search ?? indexOfSequence;
    this.#carry = new LineCarry(options.maxCarryBytes ?? DEFAULT_MAX_CARRY_BYTES);
  }

  /** Feeds the next bytes of the file. The chunk is not retained (a caller may reuse its buffer). */
  feed(chunk: Uint8Array): void {
    const n = chunk.length;
    let pos = 0;
    if (this.#carry.pending) {
      const nl = chunk.indexOf(NL);
      if (nl === -1) {
        this.#carry.append(chunk, 0, n);
        return;
      }
      this.#carry.append(chunk, 0, nl);
      this.#completeCarry();
      pos = nl + 1;
    }
    const start = pos;
    // Count complete lines: the hot loop.
    let lines = 0;
    let nl: number;
    while ((nl = chunk.indexOf(NL, pos)) !== -1) {
      if (nl > pos && (!isSpace(chunk[pos]!) || hasContent(chunk, pos + 1, nl))) lines++;
      pos = nl + 1;
    }
    this.#lines += lines;
    // Marker lines among [start, pos), in file order (the guard only saves a search of a chunk
    // holding no complete line, e.g. one piece of a huge line).
    if (pos > start) this.#markers.scan(chunk, start, pos, this.#search);
    this.#carry.append(chunk, pos, n);
  }

  /**
   * After rotation or truncation: the line count and any partial line are dropped; the session start
   * and iteration are remembered (the `session_start` may now be in `events.jsonl.1`).
   */
  reset(): void {
    this.#lines = 0;
    this.#carry.clear();
  }

  /**
   * Merges what an earlier file (e.g. `events.jsonl.1`, which precedes everything fed here) says:
   * its session start applies unless this scanner saw one; its iteration applies unless this
   * scanner saw a `session_start` or an `iteration_start`.
   */
  adoptEarlier(earlier: Pick<EventsState, 'sessionStartMs' | 'iteration' | 'sessionPid'>): void {
    this.#markers.adoptEarlier(earlier);
  }

  /** Whether any valid `session_start` has been fed (ever, across resets). */
  get sawSessionStart(): boolean {
    return this.#markers.sawSessionStart;
  }

  summary(): EventsState {
    const { sessionStartMs, iteration, sessionPid } = this.#markers;
    return {
      lines: this.#lines,
      ...(sessionStartMs !== undefined ? { sessionStartMs } : {}),
      ...(iteration !== undefined ? { iteration } : {}),
      ...(sessionPid !== undefined ? { sessionPid } : {}),
    };
  }

  /** The carried line got its newline: count it, and parse it if it was kept whole. */
  #completeCarry(): void {
    if (this.#carry.hasContent) this.#lines++;
    const line = this.#carry.line; // empty when too long to keep: nothing to parse then
    this.#markers.scan(line, 0, line.length, indexOfSequence);
    this.#carry.clear();
  }
}

/**
 * The whole of one buffer (e.g. `events.jsonl.1` read at cold start), as a summary. The last line is
 * included even without its `\n` (a rotated file is complete).
 */
export function scanEvents(bytes: Uint8Array, options?: EventsScannerOptions): EventsState {
  const scanner = new EventsScanner(options);
  scanner.feed(bytes);
  scanner.feed(NEWLINE);
  return scanner.summary();
}

const NEWLINE = new Uint8Array([NL]);
