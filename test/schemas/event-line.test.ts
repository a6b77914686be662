import { describe, expect, it } from 'vitest';
import { readEventLine } from '../../src/schemas/event-line.js';

describe('readEventLine', () => {
  it('reads run.sh lines, with numbers as numbers or strings', () => {
    expect(readEventLine('{"timestamp":"2026-02-14T09:12:05Z","type":"session_start","data":{"provider":"claude","pid":48211}}')).toEqual({
      ok: true,
      value: { type: 'session_start', timestampMs: Date.parse('2026-02-14T09:12:05Z'), pid: 48211 },
    });
    expect(readEventLine('{"timestamp":"2026-02-14T09:12:09Z","type":"iteration_start","data":{"iteration":"3","provider":"claude"}}')).toEqual({
      ok: true,
      value: { type: 'iteration_start', timestampMs: Date.parse('2026-02-14T09:12:09Z'), iteration: 3 },
    });
    expect(readEventLine('{"type":"iteration_start","data":{"iteration":4}}')).toStrictEqual({ ok: true, value: { type: 'iteration_start', iteration: 4 } });
  });

  it("reads session_start's data.pid when it is a usable pid, and keeps the line when it is not", () => {
    const line = (pid: string) => `{"timestamp":"2026-02-14T09:12:05Z","type":"session_start","data":{"pid":${pid}}}`;
    const at = Date.parse('2026-02-14T09:12:05Z');
    expect(readEventLine(line('"4242"'))).toEqual({ ok: true, value: { type: 'session_start', timestampMs: at, pid: 4242 } });
    for (const bad of ['0', '-1', '"abc"', '1.5', '99999999', 'null', '{}']) {
      expect(readEventLine(line(bad)), bad).toEqual({ ok: true, value: { type: 'session_start', timestampMs: at } });
    }
  });

  it('reads Python timestamps (µs, +00:00) and rollback lines without type or data', () => {
    const py = readEventLine('{"timestamp":"2026-02-14T09:12:05.123456+00:00","type":"session_start","data":{}}');
    expect(py).toEqual({ ok: true, value: { type: 'session_start', timestampMs: Date.parse('2026-02-14T09:12:05.123Z') } });
    const rollback = readEventLine('{"event": "rollback", "checkpoint": "cp-1", "timestamp": "2026-02-14T09:40:00Z"}');
    // Strictly: no `type` key at all (nor `timestampMs` below) when the line has none.
    expect(rollback).toStrictEqual({ ok: true, value: { timestampMs: Date.parse('2026-02-14T09:40:00Z') } });
  });

  it('rejects invalid lines', () => {
    for (const text of [
      '',
      '{"type":"session_start"',
      '[1]',
      'null',
      '"text"',
      '{"timestamp":"yesterday","type":"session_start"}',
      '{"timestamp":"2026-02-14T09:12:05","type":"session_start"}', // no zone
      '{"type":3}',
      '{"type":"iteration_start","data":{"iteration":"x"}}',
      '{"type":"iteration_start","data":{"iteration":-2}}',
      '{"type":"iteration_start","data":{"iteration":1.5}}',
      '{"type":"iteration_start","data":"x"}',
    ]) {
      expect(readEventLine(text).ok, text).toBe(false);
    }
  });

  it('names a torn line and a wrong-typed field', () => {
    expect(readEventLine('{"type":"session_start"')).toEqual({ ok: false, problem: 'not valid JSON' });
    expect(readEventLine('{"type":"iteration_start","data":{"iteration":"x"}}')).toEqual({ ok: false, problem: 'data.iteration: Expected a numeric string' });
    expect(readEventLine('null')).toEqual({ ok: false, problem: 'Invalid type: Expected Object' });
  });
});
