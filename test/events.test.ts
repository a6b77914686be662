import { describe, expect, it } from 'vitest';
import { EventsScanner, LineCarry, MarkerState, indexOfSequence, scanEvents, type EventsScannerOptions } from '../src/events.js';

const enc = new TextEncoder();
const bytes = (text: string) => enc.encode(text);
/** Native search, as the fs store uses with Buffers. */
const bufferSearch: EventsScannerOptions = { search: (h, n, f) => Buffer.from(h.buffer, h.byteOffset, h.byteLength).indexOf(n, f) };

function scan(chunks: string[], options?: EventsScannerOptions) {
  const scanner = new EventsScanner(options);
  for (const chunk of chunks) scanner.feed(bytes(chunk));
  return scanner.summary();
}

const T0 = '2026-02-14T09:12:05Z';
/** The runner's pid that `session()` lines carry in `data.pid` (reported as `sessionPid`). */
const PID = 48211;
const session = (ts = T0) => `{"timestamp":"${ts}","type":"session_start","data":{"provider":"claude","pid":${PID}}}`;
const iterStart = (n: number | string, ts = '2026-02-14T09:12:09Z') =>
  `{"timestamp":"${ts}","type":"iteration_start","data":{"iteration":${typeof n === 'string' ? `"${n}"` : n},"provider":"claude"}}`;
const other = '{"timestamp":"2026-02-14T09:38:40Z","type":"iteration_complete","data":{"iteration":1,"status":"completed"}}';
const rollback = '{"event": "rollback", "checkpoint": "cp-1", "git_sha": "abc", "timestamp": "2026-02-14T09:40:00Z"}';

describe('EventsScanner line counting', () => {
  it('counts complete non-blank lines only', () => {
    expect(scan([''])).toStrictEqual({ lines: 0 });
    expect(scan(['a\nb\n'])).toStrictEqual({ lines: 2 });
    expect(scan(['a\n\n   \n\t\nb\n'])).toStrictEqual({ lines: 2 });
    expect(scan(['\n\n\n'])).toStrictEqual({ lines: 0 });
    expect(scan(['  x\n'])).toStrictEqual({ lines: 1 });
    expect(scan([`${rollback}\n${other}\n`])).toStrictEqual({ lines: 2 });
  });

  it('treats CR as whitespace (CRLF lines, lone CR lines)', () => {
    expect(scan(['a\r\nb\r\n\r\n \r\n'])).toStrictEqual({ lines: 2 });
  });

  it('treats VT and FF as whitespace too, at the start of a line, after it, and in a partial line', () => {
    expect(scan(['\v\n\f\n \v\f\n\t\f\n'])).toStrictEqual({ lines: 0 });
    expect(scan(['\v', '\f', '\n'])).toStrictEqual({ lines: 0 });
    expect(scan(['\vx\n\fy\n'])).toStrictEqual({ lines: 2 });
  });

  it('carries a partial last line until its newline arrives, possibly chunks later', () => {
    const scanner = new EventsScanner();
    scanner.feed(bytes('one\ntw'));
    expect(scanner.summary().lines).toBe(1);
    scanner.feed(bytes('o and'));
    scanner.feed(bytes(' more'));
    expect(scanner.summary().lines).toBe(1);
    scanner.feed(bytes('\nthree\n'));
    expect(scanner.summary().lines).toBe(3);
    // A whitespace-only partial line stays uncounted when finished.
    scanner.feed(bytes('  '));
    scanner.feed(bytes(' \r\n'));
    expect(scanner.summary().lines).toBe(3);
  });

  it('gives the same summary wherever the text is split into two chunks', () => {
    // `_start_of_a_line` also leaves a partial line that starts with the marker tail `_start`.
    const text = `${session()}\n\n${iterStart(3)}\r\n  \n${rollback}\n_start_of_a_line\n${other}\n${iterStart('4')}\nhalf`;
    const whole = scan([text]);
    expect(whole).toStrictEqual({ lines: 6, sessionPid: PID, sessionStartMs: Date.parse(T0), iteration: 4 });
    for (let cut = 0; cut <= text.length; cut++) {
      expect(scan([text.slice(0, cut), text.slice(cut)]), `cut at ${cut}`).toStrictEqual(whole);
      expect(scan([text.slice(0, cut), text.slice(cut)], bufferSearch), `native, cut at ${cut}`).toStrictEqual(whole);
    }
  });

  it('gives the same summary fed one byte at a time', () => {
    const text = `${session()}\n${iterStart(2)}\n\n${other}\n`;
    expect(scan([...text])).toStrictEqual(scan([text]));
  });

  it('bounds the carried partial line: a huge line is counted but not kept', () => {
    const scanner = new EventsScanner({ maxCarryBytes: 1024 });
    const big = new Uint8Array(4096).fill(0x61);
    for (let i = 0; i < 100; i++) scanner.feed(big); // 400 KiB without a newline
    expect(scanner.summary().lines).toBe(0);
    scanner.feed(bytes('\n'));
    expect(scanner.summary().lines).toBe(1);
    // An oversized session_start line is counted but cannot be parsed.
    const padded = session().replace('"provider"', `"pad":"${'x'.repeat(2000)}","provider"`);
    scanner.feed(bytes(padded.slice(0, 10)));
    scanner.feed(bytes(`${padded.slice(10)}\n`));
    expect(scanner.summary()).toStrictEqual({ lines: 2 });
    // The default bound (64 KiB) still parses ordinary long lines split across chunks.
    const ok = new EventsScanner();
    ok.feed(bytes(padded.slice(0, 10)));
    ok.feed(bytes(`${padded.slice(10)}\n`));
    expect(ok.summary()).toStrictEqual({ lines: 1, sessionPid: PID, sessionStartMs: Date.parse(T0) });
  });

  it('bounds only partial lines: a complete line in one chunk is parsed whatever its length', () => {
    const scanner = new EventsScanner({ maxCarryBytes: 16 });
    scanner.feed(bytes(`${session()}\n${iterStart(4)}\n`));
    expect(scanner.summary()).toStrictEqual({ lines: 2, sessionPid: PID, sessionStartMs: Date.parse(T0), iteration: 4 });
    scanner.feed(bytes(`${other}\n${iterStart(5)}\n`)); // the first line of a later chunk too
    expect(scanner.summary()).toStrictEqual({ lines: 4, sessionPid: PID, sessionStartMs: Date.parse(T0), iteration: 5 });
    scanner.feed(bytes(`${session('2026-02-15T00:00:00Z')}\n`));
    expect(scanner.summary()).toStrictEqual({ lines: 5, sessionPid: PID, sessionStartMs: Date.parse('2026-02-15T00:00:00Z') });
  });

  it('keeps and parses a partial line of exactly maxCarryBytes, but not one byte more', () => {
    const line = session();
    const exact = new EventsScanner({ maxCarryBytes: line.length });
    exact.feed(bytes(line.slice(0, 20)));
    exact.feed(bytes(line.slice(20)));
    exact.feed(bytes('\n'));
    expect(exact.summary()).toStrictEqual({ lines: 1, sessionPid: PID, sessionStartMs: Date.parse(T0) });
    const over = new EventsScanner({ maxCarryBytes: line.length - 1 });
    over.feed(bytes(line));
    over.feed(bytes('\n'));
    expect(over.summary()).toStrictEqual({ lines: 1 });
  });

  it('never parses a piece of an oversized line as if it were the line', () => {
    const line = session();
    // The oversized start is dropped; the session_start that follows on the same line is its tail.
    const tail = new EventsScanner({ maxCarryBytes: 150 });
    tail.feed(bytes('x'.repeat(200)));
    tail.feed(bytes(line));
    tail.feed(bytes('\n'));
    expect(tail.summary()).toStrictEqual({ lines: 1 });
    // A line that starts as a whole session_start and then overflows: its kept head is not parsed.
    const head = new EventsScanner({ maxCarryBytes: 150 });
    head.feed(bytes(line));
    head.feed(bytes('x'.repeat(200)));
    head.feed(bytes('\n'));
    expect(head.summary()).toStrictEqual({ lines: 1 });
    // Bytes fed after the overflow are not kept either, however many small pieces follow.
    const pieces = new EventsScanner({ maxCarryBytes: 150 });
    pieces.feed(bytes(line));
    pieces.feed(bytes('x'.repeat(100)));
    for (const c of line) pieces.feed(bytes(c));
    pieces.feed(bytes('\n'));
    expect(pieces.summary()).toStrictEqual({ lines: 1 });
  });

  it('reset() drops the count and the partial line but remembers the session', () => {
    const scanner = new EventsScanner();
    scanner.feed(bytes(`${session()}\n${iterStart(5)}\npartial`));
    scanner.reset();
    expect(scanner.summary()).toStrictEqual({ lines: 0, sessionPid: PID, sessionStartMs: Date.parse(T0), iteration: 5 });
    scanner.feed(bytes(' line\n')); // the dropped partial line is not completed by this
    expect(scanner.summary().lines).toBe(1);
    scanner.feed(bytes(`${iterStart(6)}\n`));
    expect(scanner.summary()).toStrictEqual({ lines: 2, sessionPid: PID, sessionStartMs: Date.parse(T0), iteration: 6 });
  });
});

describe('EventsScanner session tracking', () => {
  it('tracks the latest session_start and the latest iteration_start after it', () => {
    const t1 = '2026-02-14T10:00:00Z';
    expect(scan([`${session()}\n${iterStart(1)}\n${iterStart(2)}\n`])).toStrictEqual({ lines: 3, sessionPid: PID, sessionStartMs: Date.parse(T0), iteration: 2 });
    // A new session forgets the old iteration.
    expect(scan([`${session()}\n${iterStart(7)}\n${session(t1)}\n`])).toStrictEqual({ lines: 3, sessionPid: PID, sessionStartMs: Date.parse(t1) });
    expect(scan([`${session()}\n${iterStart(7)}\n${session(t1)}\n${iterStart('1')}\n`]).iteration).toBe(1);
  });

  it('applies many marker lines in one chunk as if in file order', () => {
    const t1 = '2026-02-14T10:00:00Z';
    const bad = '{"timestamp":"2026-02-14T11:00:00Z","type":"iteration_start","data":{"iteration":"x"}}';
    const mixed = '{"timestamp":"2026-02-14T11:00:00Z","type":"iteration_start","data":{"note":"session_start","iteration":6}}';
    for (const options of [undefined, bufferSearch]) {
      expect(scan([`${session()}\n${iterStart(3)}\n${session(t1)}\n${iterStart(1)}\n${bad}\n`], options)).toStrictEqual({
        lines: 5,
        sessionPid: PID, sessionStartMs: Date.parse(t1),
        iteration: 1,
      });
      expect(scan([`${iterStart(3)}\n${session(t1)}\n${bad}\n`], options)).toStrictEqual({ lines: 3, sessionPid: PID, sessionStartMs: Date.parse(t1) });
      expect(scan([`${session()}\n${mixed}\n`], options)).toStrictEqual({ lines: 2, sessionPid: PID, sessionStartMs: Date.parse(T0), iteration: 6 });
      // Iterations without any session_start are still tracked (the session may be in a rotated file).
      expect(scan([`${iterStart(3)}\n${iterStart(4)}\n`], options)).toStrictEqual({ lines: 2, iteration: 4 });
    }
  });

  it('recognises a marker by its bytes only (as documented): a type spelled with a JSON escape is not one', () => {
    const ts = '"timestamp":"2026-02-14T11:00:00Z"';
    const lines = [
      session(),
      iterStart(3),
      `{${ts},"type":"session\\u005fstart","data":{"note":"iteration_start"}}`,
      `{${ts},"type":"iteration\\u005fstart","data":{"iteration":7,"note":"session_start"}}`,
      `{${ts},"type":"iteration\\u005fstart","data":{"iteration":8,"note":"code_review_start"}}`,
    ];
    expect(JSON.parse(lines[2] as string).type).toBe('session_start'); // valid JSON, escaped name
    expect(scan([`${lines.join('\n')}\n`])).toStrictEqual({ lines: 5, sessionPid: PID, sessionStartMs: Date.parse(T0), iteration: 3 });
  });

  it('accepts string iteration numbers and Python timestamps (µs, +00:00)', () => {
    const py = '2026-02-14T09:12:05.123456+00:00';
    expect(scan([`${session(py)}\n${iterStart('12')}\n`])).toStrictEqual({ lines: 2, sessionPid: PID, sessionStartMs: Date.parse('2026-02-14T09:12:05.123Z'), iteration: 12 });
  });

  it('ignores marker lines that do not parse or validate', () => {
    const lines = [
      session(),
      iterStart(3),
      '{"timestamp":"2026-02-14T11:00:00Z","type":"session_start","data":{', // torn JSON
      '{"type":"session_start"}', // no timestamp
      '{"timestamp":"yesterday","type":"session_start"}',
      '{"timestamp":"2026-02-14T11:00:00Z","type":"iteration_start","data":{"iteration":"x"}}',
      '{"timestamp":"2026-02-14T11:00:00Z","type":"iteration_start","data":{"iteration":-1}}',
      'session_start iteration_start',
      '{"timestamp":"2026-02-14T11:00:00Z","type":"code_review_start","data":{"iteration":9}}',
      '{"timestamp":"2026-02-14T11:00:00Z","type":"phase_change","data":{"note":"session_start","iteration":0}}',
      '{"timestamp":"2026-02-14T11:00:00Z","type":"phase_change","data":{"note":"iteration_start","iteration":0}}',
      '{"timestamp":"2026-02-14T11:00:00Z","type":"iteration_start","data":{"provider":"claude"}}', // no iteration
    ];
    expect(scan([`${lines.join('\n')}\n`])).toStrictEqual({ lines: lines.length, sessionPid: PID, sessionStartMs: Date.parse(T0), iteration: 3 });
    // Fed in chunks of their own, after the valid ones: each leaves the state as it was.
    const scanner = new EventsScanner();
    for (const line of lines) scanner.feed(bytes(`${line}\n`));
    expect(scanner.summary()).toStrictEqual({ lines: lines.length, sessionPid: PID, sessionStartMs: Date.parse(T0), iteration: 3 });
  });

  it('counts but does not decode a marker line with invalid UTF-8', () => {
    const scanner = new EventsScanner();
    const line = bytes(`${session('2026-02-14T11:00:00Z')}\n`);
    line[60] = 0xff;
    scanner.feed(bytes(`${session()}\n`));
    scanner.feed(line);
    expect(scanner.summary()).toStrictEqual({ lines: 2, sessionPid: PID, sessionStartMs: Date.parse(T0) });
  });

  it('only parses a marker line once it is complete', () => {
    const scanner = new EventsScanner();
    const line = iterStart(8);
    scanner.feed(bytes(`${session()}\n${line.slice(0, -3)}`));
    expect(scanner.summary()).toStrictEqual({ lines: 1, sessionPid: PID, sessionStartMs: Date.parse(T0) });
    scanner.feed(bytes(`${line.slice(-3)}\n`));
    expect(scanner.summary()).toStrictEqual({ lines: 2, sessionPid: PID, sessionStartMs: Date.parse(T0), iteration: 8 });
  });

  it('adoptEarlier() merges an earlier (rotated) file', () => {
    const earlier = scanEvents(bytes(`${session()}\n${iterStart(2)}`)); // no final newline: still whole
    expect(earlier).toStrictEqual({ lines: 2, sessionPid: PID, sessionStartMs: Date.parse(T0), iteration: 2 });
    const live = new EventsScanner();
    live.feed(bytes(`${other}\n`));
    live.adoptEarlier(earlier);
    expect(live.summary()).toStrictEqual({ lines: 1, sessionPid: PID, sessionStartMs: Date.parse(T0), iteration: 2 });
    const withIteration = new EventsScanner();
    withIteration.feed(bytes(`${iterStart(3)}\n`));
    withIteration.adoptEarlier(earlier);
    expect(withIteration.summary()).toStrictEqual({ lines: 1, sessionPid: PID, sessionStartMs: Date.parse(T0), iteration: 3 });
    const withSession = new EventsScanner();
    withSession.feed(bytes(`${session('2026-02-15T00:00:00Z')}\n`));
    withSession.adoptEarlier(earlier);
    expect(withSession.summary()).toStrictEqual({ lines: 1, sessionPid: PID, sessionStartMs: Date.parse('2026-02-15T00:00:00Z') });
    // A summary that names no session start does not make the scanner forget the one it adopted.
    live.adoptEarlier({ iteration: 4 });
    expect(live.summary()).toStrictEqual({ lines: 1, sessionPid: PID, sessionStartMs: Date.parse(T0), iteration: 4 });
  });

  it('sawSessionStart: only a valid session_start sets it, and reset() keeps it', () => {
    const scanner = new EventsScanner();
    expect(scanner.sawSessionStart).toBe(false);
    scanner.feed(bytes(`${iterStart(3)}\n{"type":"session_start"}\n${session().slice(0, 30)}`));
    expect(scanner.sawSessionStart).toBe(false);
    scanner.adoptEarlier(scanEvents(bytes(session())));
    expect(scanner.sawSessionStart).toBe(false); // adopted, not seen
    scanner.reset();
    scanner.feed(bytes(`${session()}\n`));
    expect(scanner.sawSessionStart).toBe(true);
    scanner.reset();
    expect(scanner.sawSessionStart).toBe(true);
  });

  it('indexOfSequence finds byte sequences', () => {
    const hay = bytes('ab_st_start_start');
    const needle = bytes('_start');
    expect(indexOfSequence(hay, needle, 0)).toBe(5);
    expect(indexOfSequence(hay, needle, 6)).toBe(11);
    expect(indexOfSequence(hay, needle, 12)).toBe(-1);
    expect(indexOfSequence(bytes('_sta'), needle, 0)).toBe(-1);
    // A match that ends exactly at the end of the haystack.
    expect(indexOfSequence(needle, needle, 0)).toBe(0);
    expect(indexOfSequence(bytes('ab_start'), needle, 1)).toBe(2);
    expect(indexOfSequence(bytes('ab_start'), needle, 3)).toBe(-1);
    // The empty needle is found where the search starts, if that is inside (or at the end of) it.
    expect(indexOfSequence(hay, new Uint8Array(0), 3)).toBe(3);
    expect(indexOfSequence(hay, new Uint8Array(0), hay.length)).toBe(hay.length);
    expect(indexOfSequence(hay, new Uint8Array(0), hay.length + 1)).toBe(-1);
  });
});

describe('LineCarry alone', () => {
  const dec = new TextDecoder();
  const kept = (carry: LineCarry) => dec.decode(carry.line);
  function carryOf(maxBytes: number, ...pieces: string[]) {
    const carry = new LineCarry(maxBytes);
    for (const piece of pieces) carry.append(bytes(piece), 0, piece.length);
    return carry;
  }

  it('keeps a line of exactly maxBytes, however it is appended', () => {
    expect(kept(carryOf(5, 'abcde'))).toBe('abcde');
    expect(kept(carryOf(5, 'ab', 'cde'))).toBe('abcde');
    expect(kept(carryOf(5, 'a', 'b', 'c', 'd', 'e'))).toBe('abcde');
  });

  it('drops a line of maxBytes + 1 (nothing to parse) but still carries it, with its content', () => {
    for (const carry of [carryOf(5, 'abcdef'), carryOf(5, 'abc', 'def'), carryOf(5, 'abcde', 'f')]) {
      expect(kept(carry)).toBe('');
      expect(carry.pending).toBe(true);
      expect(carry.hasContent).toBe(true);
    }
  });

  it('once a line overflowed, keeps nothing more of it, not even bytes that would fit alone', () => {
    const carry = carryOf(4, 'abcdef');
    carry.append(bytes('x'), 0, 1);
    expect(kept(carry)).toBe('');
    expect(carry.pending).toBe(true);
  });

  it('has content once any byte, kept or dropped, is not whitespace (space, tab, CR, VT, FF)', () => {
    const carry = carryOf(16, ' \t\r\v\f');
    expect(carry.pending).toBe(true);
    expect(carry.hasContent).toBe(false);
    carry.append(bytes('x'), 0, 1);
    expect(carry.hasContent).toBe(true);
    carry.append(bytes('  '), 0, 2);
    expect(carry.hasContent).toBe(true); // whitespace after content does not undo it
    // Content past the bound (not kept) still counts, and whitespace past it still does not.
    expect(carryOf(2, '    ', 'y').hasContent).toBe(true);
    expect(carryOf(2, '    ', '\t').hasContent).toBe(false);
  });

  it('copies [from, to) of the chunk, across buffer growth, and does not retain the chunk', () => {
    const carry = new LineCarry(1000);
    const chunk = bytes('--abc--');
    carry.append(chunk, 2, 5);
    chunk.fill(0x78);
    expect(kept(carry)).toBe('abc');
    const long = 'y'.repeat(300); // past the first 256-byte buffer
    carry.append(bytes(long), 0, long.length);
    expect(kept(carry)).toBe(`abc${long}`);
  });

  it('an empty range leaves nothing pending; clear() forgets the line, its content and an overflow', () => {
    const carry = new LineCarry(4);
    carry.append(bytes('abc'), 3, 3);
    expect(carry.pending).toBe(false);
    carry.append(bytes('abcdef'), 0, 6);
    carry.clear();
    expect(carry.pending).toBe(false);
    expect(carry.hasContent).toBe(false);
    expect(kept(carry)).toBe('');
    carry.append(bytes('zz'), 0, 2); // a new line that fits is kept again
    expect(kept(carry)).toBe('zz');
  });
});

describe('MarkerState alone', () => {
  const T1 = '2026-02-14T10:00:00Z';
  function fed(...scans: string[]) {
    const markers = new MarkerState();
    for (const text of scans) {
      const b = bytes(text);
      markers.scan(b, 0, b.length, indexOfSequence);
    }
    return markers;
  }
  const state = (m: MarkerState) => ({ sessionStartMs: m.sessionStartMs, sessionPid: m.sessionPid, iteration: m.iteration, sawSessionStart: m.sawSessionStart });

  it('a session_start forgets the iteration, in the same scan or a later one', () => {
    const expected = { sessionStartMs: Date.parse(T0), sessionPid: PID, iteration: undefined, sawSessionStart: true };
    expect(state(fed(`${iterStart(4)}\n${session()}\n`))).toStrictEqual(expected);
    expect(state(fed(`${iterStart(4)}\n`, `${session()}\n`))).toStrictEqual(expected);
    expect(fed(`${session()}\n${iterStart(4)}\n${session(T1)}\n`).iteration).toBeUndefined();
    expect(fed(`${session()}\n${iterStart(4)}\n`, `${session(T1)}\n${iterStart(5)}\n`).iteration).toBe(5);
  });

  it('an iteration_start needs a valid number: an invalid one neither sets nor hides an earlier one', () => {
    const invalid = [iterStart('x'), iterStart(-1), iterStart(1.5), '{"timestamp":"2026-02-14T11:00:00Z","type":"iteration_start","data":{}}'];
    for (const bad of invalid) {
      expect(fed(`${bad}\n`).iteration, bad).toBeUndefined();
      expect(fed(`${iterStart(3)}\n${bad}\n`).iteration, bad).toBe(3);
      expect(fed(`${iterStart(3)}\n`, `${bad}\n`).iteration, bad).toBe(3);
      // Nor does it count as seen: an earlier file's iteration is still adopted.
      const markers = fed(`${bad}\n`);
      markers.adoptEarlier({ iteration: 2 });
      expect(markers.iteration, bad).toBe(2);
    }
  });

  it('a session_start needs a timestamp', () => {
    const markers = fed(`${iterStart(3)}\n{"type":"session_start","data":{"pid":5}}\n`);
    expect(state(markers)).toStrictEqual({ sessionStartMs: undefined, sessionPid: undefined, iteration: 3, sawSessionStart: false });
  });

  it("the pid is the latest valid session_start's: a session without one forgets the old one", () => {
    expect(fed(`${session()}\n`).sessionPid).toBe(PID);
    const noPid = `{"timestamp":"${T1}","type":"session_start","data":{"provider":"claude"}}`;
    const markers = fed(`${session()}\n`, `${noPid}\n`);
    expect(state(markers)).toStrictEqual({ sessionStartMs: Date.parse(T1), sessionPid: undefined, iteration: undefined, sawSessionStart: true });
    // Another event's pid is not the session's.
    const iterWithPid = '{"timestamp":"2026-02-14T11:00:00Z","type":"iteration_start","data":{"iteration":1,"pid":99}}';
    expect(fed(`${session()}\n${iterWithPid}\n`).sessionPid).toBe(PID);
  });

  it('adoptEarlier(): the pid comes only with a session start', () => {
    const markers = new MarkerState();
    markers.adoptEarlier({ sessionPid: 9 });
    expect(markers.sessionPid).toBeUndefined();
    markers.adoptEarlier({ sessionStartMs: 5, sessionPid: 9 });
    expect(state(markers)).toStrictEqual({ sessionStartMs: 5, sessionPid: 9, iteration: undefined, sawSessionStart: false });
  });

  it('scans only the lines in [from, to)', () => {
    const b = bytes(`${iterStart(1)}\n${other}\n${session()}\n${iterStart(2)}\n`);
    const from = iterStart(1).length + 1;
    const scanned = (to: number) => {
      const markers = new MarkerState();
      markers.scan(b, from, to, indexOfSequence);
      return state(markers);
    };
    const none = { sessionStartMs: undefined, sessionPid: undefined, iteration: undefined, sawSessionStart: false };
    expect(scanned(from + other.length + 1)).toStrictEqual(none);
    expect(scanned(from + other.length + 1 + session().length + 1)).toStrictEqual({ ...none, sessionStartMs: Date.parse(T0), sessionPid: PID, sawSessionStart: true });
  });
});

describe('EventsScanner at volume', () => {
  it('counts ~110 MB / 1M lines fed as 4 MiB Buffers exactly (timings: npm run bench)', () => {
    const lines: string[] = [];
    for (let i = 0; i < 1000; i++) {
      const type = i % 50 === 0 ? 'iteration_start' : i % 7 === 0 ? 'phase_change' : 'iteration_complete';
      lines.push(`{"timestamp":"2026-02-14T09:12:09Z","type":"${type}","data":{"iteration":${i},"status":"completed","provider":"claude"}}`);
    }
    const block = Buffer.from(`${session()}\n${lines.join('\n')}\n`);
    const chunk = Buffer.alloc(4 * 1024 * 1024);
    const perChunk = Math.floor(chunk.length / block.length);
    for (let i = 0; i < perChunk; i++) block.copy(chunk, i * block.length);
    const used = chunk.subarray(0, perChunk * block.length);
    const rounds = Math.ceil(110e6 / used.length);
    const scanner = new EventsScanner({ search: (h, n, f) => (h as Buffer).indexOf(n, f) });
    scanner.feed(used); // warm up
    scanner.reset();
    for (let r = 0; r < rounds; r++) scanner.feed(used);
    expect(scanner.summary().lines).toBe(rounds * perChunk * 1001);
    expect(scanner.summary().iteration).toBe(950);
  });
});
