/**
 * `EventsScanner` fuzzed directly: byte sequences (random, newline/whitespace-heavy, or real event
 * lines mixed with noise) cut into random chunks. It never throws, its line count equals a naive
 * count of complete `\n`-terminated lines holding a non-whitespace byte, and its session start and
 * iteration equal a naive replay of the marker lines, however the bytes are chunked.
 */
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { EventsScanner, type EventsScannerOptions } from '../../src/events.js';
import { CaseCounter, referenceLineCount, referenceMarkers, runs, utf8 } from './support.js';

const counter = new CaseCounter();
afterAll(() => console.log(counter.report('events-scanner.test.ts')));

const nativeSearch: EventsScannerOptions['search'] = (h, n, f) => Buffer.from(h.buffer, h.byteOffset, h.byteLength).indexOf(n, f);

/** Bytes where newlines, whitespace and markers are common enough to matter. */
const byteArb = fc.oneof(
  { weight: 3, arbitrary: fc.integer({ min: 0, max: 255 }) },
  { weight: 3, arbitrary: fc.constantFrom(10, 10, 13, 32, 9, 11, 12) },
  { weight: 1, arbitrary: fc.constantFrom(...utf8('x{}"_')) },
);
const randomBytes = fc.array(byteArb, { maxLength: 600 }).map((a) => new Uint8Array(a));

const ts = fc
  .date({ min: new Date('1970-01-01T00:00:00Z'), max: new Date('2100-01-01T00:00:00Z'), noInvalidDate: true })
  .map((d) => d.toISOString());
const eventLine = fc.oneof(
  fc.tuple(ts, fc.nat()).map(([t, pid]) => `{"timestamp":"${t}","type":"session_start","data":{"pid":${pid}}}`),
  fc.tuple(ts, fc.oneof(fc.nat({ max: 1e6 }).map(String), fc.nat({ max: 1e6 }).map((n) => `"${n}"`), fc.constantFrom('-1', '1.5', '"x"', 'null', '1e400', '1e13')))
    .map(([t, n]) => `{"timestamp":"${t}","type":"iteration_start","data":{"iteration":${n}}}`),
  fc.constantFrom(
    '{"type":"session_start"}', // no timestamp: not a valid session start
    '{"timestamp":"not a date","type":"session_start"}',
    '["session_start","iteration_start"]',
    '{"type":"iteration_complete","data":{"iteration":99}}',
    '{"timestamp":"2026-02-14T09:12:04Z","type":"session_start","note":"iteration_start"}',
    '{"timestamp":"2026-02-14T09:12:04Z","type":"iteration_start","data":{"iteration":3},"note":"session_start"}',
    '{"type":"session\\u005fstart","timestamp":"2026-02-14T09:12:04Z"}',
    '\ufeff{"timestamp":"2026-02-14T09:12:04Z","type":"session_start"}',
  ),
  fc.string({ unit: 'binary', maxLength: 50 }),
);
const separator = fc.constantFrom('\n', '\n', '\r\n', '\n\n', ' \n', '\t\r\n', '');
const structured = fc
  .array(fc.tuple(eventLine, separator), { maxLength: 30 })
  .map((parts) => utf8(parts.map(([l, s]) => l + s).join('')));

/** Cut points → chunks (possibly empty ones). */
function chunked(bytes: Uint8Array, cuts: readonly number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => (bytes.length === 0 ? 0 : c % (bytes.length + 1))))].sort((a, b) => a - b);
  const chunks: Uint8Array[] = [];
  let at = 0;
  for (const p of points) {
    chunks.push(bytes.subarray(at, p));
    at = p;
  }
  chunks.push(bytes.subarray(at));
  return chunks;
}

function scanChunks(chunks: readonly Uint8Array[], options: EventsScannerOptions) {
  const scanner = new EventsScanner(options);
  // Feed copies into one reused buffer, as the fs store does (the scanner must not retain chunks).
  const reused = new Uint8Array(Math.max(1, ...chunks.map((c) => c.length)));
  for (const c of chunks) {
    reused.set(c);
    scanner.feed(reused.subarray(0, c.length));
    reused.fill(0x78);
  }
  return scanner.summary();
}

const input = fc.tuple(fc.oneof(randomBytes, structured), fc.array(fc.nat(), { maxLength: 12 }), fc.boolean());

describe('EventsScanner under random chunking', () => {
  it('line count and markers equal the naive reference, whatever the chunks', () => {
    fc.assert(
      fc.property(input, ([bytes, cuts, native]) => {
        counter.hit('scanner-default-carry');
        const summary = scanChunks(chunked(bytes, cuts), native ? { search: nativeSearch } : {});
        expect(summary.lines).toBe(referenceLineCount(bytes));
        const { lines: _lines, ...markers } = summary;
        expect(markers).toEqual(referenceMarkers(bytes));
      }),
      runs(5000),
    );
  });

  it('with a tiny carry limit: the count stays exact; markers too when no line exceeds the limit', () => {
    fc.assert(
      fc.property(input, fc.integer({ min: 1, max: 64 }), ([bytes, cuts, native], maxCarryBytes) => {
        counter.hit('scanner-small-carry');
        const summary = scanChunks(chunked(bytes, cuts), { maxCarryBytes, ...(native ? { search: nativeSearch } : {}) });
        expect(summary.lines).toBe(referenceLineCount(bytes));
        let longest = 0;
        let start = 0;
        bytes.forEach((b, i) => {
          if (b === 10) {
            longest = Math.max(longest, i - start);
            start = i + 1;
          }
        });
        if (longest <= maxCarryBytes) {
          const { lines: _lines, ...markers } = summary;
          expect(markers).toEqual(referenceMarkers(bytes));
        }
      }),
      runs(3000),
    );
  });

  it('reset() drops the count and the partial line but keeps the markers', () => {
    fc.assert(
      fc.property(input, input, ([a, cutsA], [b, cutsB]) => {
        counter.hit('scanner-reset');
        const scanner = new EventsScanner();
        for (const c of chunked(a, cutsA)) scanner.feed(c);
        const before = scanner.summary();
        scanner.reset();
        for (const c of chunked(b, cutsB)) scanner.feed(c);
        const after = scanner.summary();
        expect(after.lines).toBe(referenceLineCount(b));
        const refB = referenceMarkers(b);
        if (refB.sessionStartMs !== undefined) {
          expect(after.sessionStartMs).toBe(refB.sessionStartMs);
          expect(after.iteration).toBe(refB.iteration);
        } else {
          expect(after.sessionStartMs).toBe(before.sessionStartMs);
          expect(after.iteration).toBe(refB.iteration ?? before.iteration);
        }
      }),
      runs(2000),
    );
  });
});
