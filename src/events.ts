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

export class EventsScanner {
  readonly #search: SequenceSearch;
  readonly #maxCarry: number;
  #lines = 0;
  #sessionStartMs: number | undefined;
  #sessionPid: number | undefined;
  #iteration: number | undefined;
  /** Whether a `session_start` was seen by this scanner (reset() keeps it, like the values). */
  #sawSessionStart = false;
  #sawIterationStart = false;

  // The partial last line: its first bytes (bounded), its full length, whether it has content.
  #carry = new Uint8Array(0);
  #carryLen = 0;
  #carryTotal = 0;
  #carryContent = false;

  constructor(options: EventsScannerOptions = {}) {
    this.#search = options.search ?? indexOfSequence;
    this.#maxCarry = options.maxCarryBytes ?? DEFAULT_MAX_CARRY_BYTES;
  }

  /** Feeds the next bytes of the file. The chunk is not retained (a caller may reuse its buffer). */
  feed(chunk: Uint8Array): void {
    const n = chunk.length;
    let pos = 0;
    if (this.#carryTotal > 0) {
      const nl = chunk.indexOf(NL);
      if (nl === -1) {
        this.#appendCarry(chunk, 0, n);
        return;
      }
      this.#appendCarry(chunk, 0, nl);
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
    if (pos > start) this.#scanMarkers(chunk, start, pos, this.#search);
    this.#appendCarry(chunk, pos, n);
  }

  /**
   * After rotation or truncation: the line count and any partial line are dropped; the session start
   * and iteration are remembered (the `session_start` may now be in `events.jsonl.1`).
   */
  reset(): void {
    this.#lines = 0;
    this.#dropCarry();
  }

  /**
   * Merges what an earlier file (e.g. `events.jsonl.1`, which precedes everything fed here) says:
   * its session start applies unless this scanner saw one; its iteration applies unless this
   * scanner saw a `session_start` or an `iteration_start`.
   */
  adoptEarlier(earlier: Pick<EventsState, 'sessionStartMs' | 'iteration' | 'sessionPid'>): void {
    if (this.#sawSessionStart) return;
    if (earlier.sessionStartMs !== undefined) {
      this.#sessionStartMs = earlier.sessionStartMs;
      this.#sessionPid = earlier.sessionPid;
    }
    if (!this.#sawIterationStart) this.#iteration = earlier.iteration;
  }

  /** Whether any valid `session_start` has been fed (ever, across resets). */
  get sawSessionStart(): boolean {
    return this.#sawSessionStart;
  }

  summary(): EventsState {
    return {
      lines: this.#lines,
      ...(this.#sessionStartMs !== undefined ? { sessionStartMs: this.#sessionStartMs } : {}),
      ...(this.#iteration !== undefined ? { iteration: this.#iteration } : {}),
      ...(this.#sessionPid !== undefined ? { sessionPid: this.#sessionPid } : {}),
    };
  }

  /**
   * The marker lines among the complete lines [from, to), applied as if in file order. Only the
   * outcome matters, so they are parsed from the end: the last valid `session_start` and the last
   * valid `iteration_start` after it, usually two parses per chunk however many markers it holds.
   * `from` is 0 or just after a newline, and `to` just after a newline or the end of `bytes`.
   */
  #scanMarkers(bytes: Uint8Array, from: number, to: number, search: SequenceSearch): void {
    const starts: number[] = [];
    const ends: number[] = [];
    const kinds: number[] = []; // bit 1: session_start bytes, bit 2: iteration_start bytes
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
        if (endsWithAt(bytes, at, SESSION)) kind |= 1;
        else if (endsWithAt(bytes, at, ITERATION)) kind |= 2;
        at = search(bytes, START, at + 1);
      }
      // A line with only other `_start`s (kind 0) is skipped by both loops below.
      starts.push(lineStart);
      ends.push(lineEnd);
      kinds.push(kind);
      hit = at; // the first `_start` past this line
    }
    // A line holding both markers may be parsed twice (rare; not worth a cache).
    const parse = (k: number) => parseLine(bytes.subarray(starts[k]!, ends[k]!));
    // The last valid session_start.
    let session = -1;
    let sessionMs: number | undefined;
    let sessionPid: number | undefined;
    for (let k = starts.length - 1; k >= 0 && session === -1; k--) {
      if ((kinds[k]! & 1) === 0) continue;
      const line = parse(k);
      if (line?.type === 'session_start' && line.timestampMs !== undefined) {
        session = k;
        sessionMs = line.timestampMs;
        sessionPid = line.pid;
      }
    }
    // The last valid iteration_start after it.
    let iteration: number | undefined;
    for (let k = starts.length - 1; k > session && iteration === undefined; k--) {
      if ((kinds[k]! & 2) === 0) continue;
      const line = parse(k);
      // Without a usable data.iteration, `iteration` stays undefined and the search goes on.
      if (line?.type === 'iteration_start') iteration = line.iteration;
    }
    if (session !== -1) {
      this.#sessionStartMs = sessionMs;
      this.#sessionPid = sessionPid;
      // Once set, #sawSessionStart makes adoptEarlier() ignore #sawIterationStart for good.
      this.#sawSessionStart = true;
      this.#iteration = undefined;
    }
    if (iteration !== undefined) {
      this.#iteration = iteration;
      this.#sawIterationStart = true;
    }
  }

  #appendCarry(chunk: Uint8Array, from: number, to: number): void {
    // An empty range (a chunk ending in a newline) changes nothing below.
    const len = to - from;
    if (!this.#carryContent && hasContent(chunk, from, to)) this.#carryContent = true;
    const kept = this.#carryLen;
    if (kept === this.#carryTotal && kept + len <= this.#maxCarry) {
      if (this.#carry.length < kept + len) {
        const grown = new Uint8Array(Math.min(this.#maxCarry, Math.max(kept + len, this.#carry.length * 2, 256)));
        grown.set(this.#carry.subarray(0, kept));
        this.#carry = grown;
      }
      this.#carry.set(chunk.subarray(from, to), kept);
      this.#carryLen = kept + len;
    } else {
      // Too long to parse: remember only that it exists and whether it has content. Nothing more
      // is kept (kept !== #carryTotal from now on), so #carryLen > 0 means the whole line is kept.
      this.#carryLen = 0;
    }
    this.#carryTotal += len;
  }

  #completeCarry(): void {
    if (this.#carryContent) this.#lines++;
    // Empty when the line was too long to keep: nothing to parse then.
    this.#scanMarkers(this.#carry.subarray(0, this.#carryLen), 0, this.#carryLen, indexOfSequence);
    this.#dropCarry();
  }

  #dropCarry(): void {
    this.#carryLen = 0;
    this.#carryTotal = 0;
    this.#carryContent = false;
    if (this.#carry.length > 4096) this.#carry = new Uint8Array(0);
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
