/**
 * The shared parsing helpers: bytes → text → JSON → schema, the one-line problem texts, and the
 * field schemas every state file uses (counts, money, timestamps, iteration ids).
 */
import * as v from 'valibot';
import { describe, expect, it } from 'vitest';
import {
  decodeJson,
  decodeText,
  describeIssues,
  isoTimestampMs,
  iterationFromId,
  MAX_COUNT,
  nonNegativeInteger,
  nonNegativeNumber,
  parseJsonFile,
  validate,
} from '../../src/schemas/parse.js';

const enc = new TextEncoder();
const problemOf = <T>(result: { ok: true; value: T } | { ok: false; problem: string }) => (result.ok ? 'accepted' : result.problem);

describe('decodeText / decodeJson', () => {
  it('drops a BOM, refuses invalid UTF-8, and names empty and torn files', () => {
    expect(decodeText(new Uint8Array([0xef, 0xbb, 0xbf, 0x35]))).toEqual({ ok: true, value: '5' });
    expect(decodeText(new Uint8Array([0x35, 0xc3]))).toEqual({ ok: false, problem: 'invalid UTF-8' });
    expect(decodeJson(new Uint8Array([0xff]))).toEqual({ ok: false, problem: 'invalid UTF-8' });
    expect(decodeJson(enc.encode(''))).toEqual({ ok: false, problem: 'empty file (caught mid-write?)' });
    expect(decodeJson(enc.encode(' \n\t'))).toEqual({ ok: false, problem: 'empty file (caught mid-write?)' });
    expect(decodeJson(enc.encode('{"a": '))).toEqual({ ok: false, problem: 'not valid JSON (torn mid-write?)' });
    expect(decodeJson(enc.encode(' {"a": [1]}\n'))).toEqual({ ok: true, value: { a: [1] } });
  });

  it('parseJsonFile passes decoding problems through and validates the rest', () => {
    const schema = v.object({ n: nonNegativeInteger(10) });
    expect(parseJsonFile(schema, enc.encode(''))).toEqual({ ok: false, problem: 'empty file (caught mid-write?)' });
    expect(parseJsonFile(schema, enc.encode('{"n": "7"}'))).toEqual({ ok: true, value: { n: 7 } });
    expect(parseJsonFile(schema, enc.encode('{"n": 11}'))).toEqual({ ok: false, problem: 'n: Invalid value: Expected <=10' });
  });
});

describe('describeIssues', () => {
  const issuesOf = (schema: v.GenericSchema, input: unknown) => {
    const result = v.safeParse(schema, input);
    if (result.success) throw new Error('accepted');
    return result.issues;
  };

  it('names the field path and what was expected, never the value received', () => {
    const schema = v.object({ tasks: v.object({ pending: v.array(v.unknown()) }) });
    expect(describeIssues(issuesOf(schema, { tasks: { pending: 'sk-secret' } }))).toBe('tasks.pending: Invalid type: Expected Array');
    // No path: the message alone.
    expect(describeIssues(issuesOf(v.number(), 'sk-secret'))).toBe('Invalid type: Expected number');
    // A custom message is kept whole.
    expect(describeIssues(issuesOf(v.pipe(v.string(), v.check(() => false, 'Expected a thing')), 'x'))).toBe('Expected a thing');
    expect(describeIssues([])).toBe('invalid');
  });

  it('counts the other issues after the first', () => {
    const schema = v.object({ a: v.number(), b: v.number(), c: v.number() });
    expect(describeIssues(issuesOf(schema, { a: 'x', b: 'y', c: 'z' }))).toBe('a: Invalid type: Expected number (+2 more)');
    expect(describeIssues(issuesOf(schema, { a: 'x', b: 1, c: 2 }))).toBe('a: Invalid type: Expected number');
  });

  it('caps a long key from the file at 40 characters and escapes control characters', () => {
    const schema = v.record(v.string(), v.number());
    const key40 = 'k'.repeat(40);
    expect(describeIssues(issuesOf(schema, { [key40]: 'x' }))).toBe(`${key40}: Invalid type: Expected number`);
    expect(describeIssues(issuesOf(schema, { ['k'.repeat(41)]: 'x' }))).toBe(`${'k'.repeat(39)}…: Invalid type: Expected number`);
    expect(describeIssues(issuesOf(schema, { 'a\nb': 'x' }))).toBe('a\\nb: Invalid type: Expected number');
  });
});

describe('nonNegativeNumber / nonNegativeInteger', () => {
  const number = (input: unknown, max = MAX_COUNT) => problemOf(validate(nonNegativeNumber(max), input));

  it('takes JSON numbers and numeric strings (trimmed), up to and including the maximum', () => {
    expect(validate(nonNegativeNumber(100), 0)).toEqual({ ok: true, value: 0 });
    // toEqual tells -0 from 0; the fuzz run found an event's `"iteration": -0` reported as -0 by the reference.
    expect(validate(nonNegativeNumber(100), -0)).toEqual({ ok: true, value: 0 });
    expect(validate(nonNegativeInteger(100), JSON.parse('-0.0'))).toEqual({ ok: true, value: 0 });
    expect(validate(nonNegativeNumber(100), 100)).toEqual({ ok: true, value: 100 });
    expect(validate(nonNegativeNumber(100), ' 42 ')).toEqual({ ok: true, value: 42 });
    expect(validate(nonNegativeNumber(100), '12.75')).toEqual({ ok: true, value: 12.75 });
    expect(validate(nonNegativeNumber(100), '1e1')).toEqual({ ok: true, value: 10 });
    expect(validate(nonNegativeNumber(100), '25E-1')).toEqual({ ok: true, value: 2.5 });
    expect(validate(nonNegativeNumber(100), '5e+1')).toEqual({ ok: true, value: 50 });
  });

  it.each([
    ['-1', 'Expected a numeric string'],
    ['', 'Expected a numeric string'],
    ['1.', 'Expected a numeric string'],
    ['.5', 'Expected a numeric string'],
    ['0x10', 'Expected a numeric string'],
    ['1 2', 'Expected a numeric string'],
    ['x12', 'Expected a numeric string'],
    ['12x', 'Expected a numeric string'],
    ['1e', 'Expected a numeric string'],
    ['1.5.5', 'Expected a numeric string'],
    [true, 'Invalid type: Expected (number | string)'],
    [-0.5, 'Invalid value: Expected >=0'],
    [101, 'Invalid value: Expected <=100'],
    ['101', 'Invalid value: Expected <=100'],
    [Infinity, 'Expected a finite number (+1 more)'],
  ])('refuses %j', (input, problem) => {
    expect(number(input, 100)).toBe(problem);
  });

  it('refuses a numeric string too big to be finite, and quotes no value for checks that expect nothing in particular', () => {
    expect(number('1e400', Infinity)).toBe('Expected a finite number');
    const secretish = v.pipe(v.number(), v.integer());
    expect(problemOf(validate(secretish, 123456.5))).toBe('Invalid integer');
  });

  it('nonNegativeInteger refuses fractions, as numbers or strings', () => {
    expect(validate(nonNegativeInteger(10), '7')).toEqual({ ok: true, value: 7 });
    expect(problemOf(validate(nonNegativeInteger(10), 1.5))).toBe('Expected an integer');
    expect(problemOf(validate(nonNegativeInteger(10), '2.5'))).toBe('Expected an integer');
  });
});

describe('isoTimestampMs', () => {
  it.each([
    ['2026-02-14T09:12:04Z', Date.UTC(2026, 1, 14, 9, 12, 4)],
    ['2026-02-14T09:12Z', Date.UTC(2026, 1, 14, 9, 12)],
    ['2026-02-14t09:12:04z', Date.UTC(2026, 1, 14, 9, 12, 4)],
    ['2026-02-14T09:12:04.123456+00:00', Date.UTC(2026, 1, 14, 9, 12, 4, 123)],
    ['2026-02-14T11:12:04+0200', Date.UTC(2026, 1, 14, 9, 12, 4)],
    ['2026-02-14T04:12:04-05:00', Date.UTC(2026, 1, 14, 9, 12, 4)],
  ])('reads %s', (text, ms) => {
    expect(validate(isoTimestampMs, text)).toEqual({ ok: true, value: ms });
  });

  it.each([
    ['2026-02-14T09:12:04', 'Expected an ISO-8601 timestamp with a zone'],
    ['2026-02-14 09:12:04Z', 'Expected an ISO-8601 timestamp with a zone'],
    ['x2026-02-14T09:12:04Z', 'Expected an ISO-8601 timestamp with a zone'],
    ['2026-02-14T09:12:04Zx', 'Expected an ISO-8601 timestamp with a zone'],
    ['2026-02-14T09:12:04.Z', 'Expected an ISO-8601 timestamp with a zone'],
    ['2026-02-14T09:12:4Z', 'Expected an ISO-8601 timestamp with a zone'],
    ['2026-02-14T09:12:04+2', 'Expected an ISO-8601 timestamp with a zone'],
    ['2026-13-45T09:12:04Z', 'Expected a valid date'],
  ])('refuses %s', (text, problem) => {
    expect(problemOf(validate(isoTimestampMs, text))).toBe(problem);
  });
});

describe('iterationFromId', () => {
  it.each([
    ['iteration-6', 6],
    ['iteration-006.json', 6],
    ['iteration-0', 0],
    ['iteration-123456789', 123456789],
    ['iteration-00001234567890', undefined],
    ['iteration-', undefined],
    ['iteration-6.jsonx', undefined],
    ['xiteration-6', undefined],
    ['iteration-6x', undefined],
    ['iteration-x', undefined],
  ])('%s → %s', (id, n) => {
    expect(iterationFromId(id)).toBe(n);
  });
});
