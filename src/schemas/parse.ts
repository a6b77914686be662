import * as v from 'valibot';
import { capText, escapeForLog } from '../log.js';

/** What parsing one source file gives: its value, or one short reason it was rejected. */
export type ParseResult<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly problem: string };

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Bytes → text, rejecting invalid UTF-8 (the reference reader crashed on it). A BOM is dropped. */
export function decodeText(bytes: Uint8Array): ParseResult<string> {
  try {
    return { ok: true, value: utf8.decode(bytes) };
  } catch {
    return { ok: false, problem: 'invalid UTF-8' };
  }
}

/** Bytes → JSON value, naming the usual ways a file written in place goes wrong. */
export function decodeJson(bytes: Uint8Array): ParseResult<unknown> {
  const text = decodeText(bytes);
  if (!text.ok) return text;
  if (text.value.trim() === '') return { ok: false, problem: 'empty file (caught mid-write?)' };
  try {
    return { ok: true, value: JSON.parse(text.value) };
  } catch {
    return { ok: false, problem: 'not valid JSON (torn mid-write?)' };
  }
}

/** Longest path segment kept in a problem (record keys come from the file). */
const MAX_KEY_CHARS = 40;

/**
 * One concise line for the first valibot issue: `tasks.pending: Invalid type: Expected Array`. It
 * names the field and what was expected, never the value received (a file may hold a secret in a
 * wrong-typed field, and problems reach logs, /health and the Worker). Escaped and capped.
 */
export function describeIssues(issues: readonly v.BaseIssue<unknown>[]): string {
  const first = issues[0];
  if (!first) return 'invalid';
  const path =
    first.path
      ?.map((item) => {
        const key = String(item.key);
        return key.length > MAX_KEY_CHARS ? `${key.slice(0, MAX_KEY_CHARS - 1)}…` : key;
      })
      .join('.') ?? '';
  const more = issues.length > 1 ? ` (+${issues.length - 1} more)` : '';
  return capText(escapeForLog(`${path ? `${path}: ` : ''}${withoutValue(first)}${more}`));
}

/**
 * The issue's message without the value: valibot's default ones end in `but received <value>`, or,
 * for checks that expect nothing in particular (integer, finite), are `Invalid integer: Received <value>`.
 */
function withoutValue(issue: v.BaseIssue<unknown>): string {
  const message = issue.message;
  const cut = message.search(/ but received |: Received /);
  // Otherwise the schema's own (static) text: custom messages never quote the input.
  return cut >= 0 ? message.slice(0, cut) : message;
}

/** Validate a decoded value against a schema, as a ParseResult. */
export function validate<S extends v.GenericSchema>(schema: S, input: unknown): ParseResult<v.InferOutput<S>> {
  const result = v.safeParse(schema, input);
  return result.success ? { ok: true, value: result.output } : { ok: false, problem: describeIssues(result.issues) };
}

/**
 * `schema` (an object or record schema), refusing arrays first: valibot's object and record
 * schemas take any `typeof === 'object'` value, so `[]` would pass as an empty file and
 * `[[1],[2]]` as two agents. Every object-shaped schema goes through this.
 */
export function jsonObject<S extends v.GenericSchema>(schema: S, message = 'Invalid type: Expected Object, not an Array') {
  return v.pipe(v.unknown(), v.check((input) => !Array.isArray(input), message), schema);
}

/** Bytes → JSON → schema. */
export function parseJsonFile<S extends v.GenericSchema>(schema: S, bytes: Uint8Array): ParseResult<v.InferOutput<S>> {
  const json = decodeJson(bytes);
  return json.ok ? validate(schema, json.value) : json;
}

// ---- shared field schemas -------------------------------------------------------------------

/** Upper bound for counts (tasks, tokens per file, iterations): beyond it a value is garbage. */
export const MAX_COUNT = 1e12;
/** Upper bound for a money amount in USD. */
export const MAX_USD = 1e9;

/**
 * A non-negative finite number, given as a JSON number or as a numeric string (run.sh writes
 * decimals as strings in events, and third-party files do so too). Booleans, NaN, "" are rejected.
 */
export function nonNegativeNumber(max: number) {
  return v.pipe(
    // The conversion comes after the union: inside the string branch, a failed regex would make the
    // union report "Expected (number | string)" for a string, hiding which rule it broke.
    v.union([v.number(), v.pipe(v.string(), v.trim(), v.regex(/^\d+(\.\d+)?([eE][+-]?\d+)?$/, 'Expected a numeric string'))]),
    // JSON's -0 (or -0.0) is 0: no sample or total ever reads -0.
    v.transform((n) => Number(n) + 0),
    v.finite('Expected a finite number'),
    v.minValue(0),
    v.maxValue(max),
  );
}

/** A non-negative integer, as a number or an all-digit string. */
export function nonNegativeInteger(max: number) {
  return v.pipe(nonNegativeNumber(max), v.integer('Expected an integer'));
}

/** Any ISO-8601 date-time (shell `...Z`, Python µs or `+00:00`), as epoch ms. */
export const isoTimestampMs = v.pipe(
  v.string(),
  v.regex(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$/i, 'Expected an ISO-8601 timestamp with a zone'),
  v.transform((text) => Date.parse(text)),
  v.finite('Expected a valid date'),
);

/** The iteration number inside an `iteration-N` task id or file name. */
export function iterationFromId(id: string): number | undefined {
  const match = /^iteration-0*(\d{1,9})(\.json)?$/.exec(id);
  return match ? Number(match[1]) : undefined;
}
