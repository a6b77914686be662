/**
 * Shared harness of the fuzz suite (issue #5, "Hostile and broken input"): the seed trees, the
 * mutators, an exposition grammar check that runs on every generated output, the app driver, and
 * one batched run of prometheus_client's two parsers over a sample of distinct outputs.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, readdir, rename, stat, utimes, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import fc from 'fast-check';
import type { Hono } from 'hono';
import { SNAPSHOT_FAMILIES, TASK_STATUSES, type MetricFamily } from '../../src/catalogue.js';
import type { Format } from '../../src/render.js';
import { readEfficiencyFile } from '../../src/schemas/efficiency.js';
import { readEventLine } from '../../src/schemas/event-line.js';
import { decodeText, type ParseResult } from '../../src/schemas/parse.js';
import { DOCUMENT_PARSERS } from '../../src/sync/protocol.js';
import { DOCUMENTS, EFFICIENCY_DIR, EVENTS_FILE, type DocumentName } from '../../src/stores/store.js';
import { VERSION } from '../../src/version.js';
import { PROVENANCE_KINDS, RECEIPT_VERDICTS } from '../../src/receipts.js';
import { RUN_OUTCOMES } from '../../src/rules.js';
import { DURATION_BUCKETS_S, ITERATION_OUTCOMES, TOKEN_TYPES } from '../../src/usage.js';
import { EARLY_RUNNER_START_MS, materialize } from '../support/loki-tree.js';

// ---- time -------------------------------------------------------------------------------------

/** The fixed clock of every fuzzed app (the fixtures' sessions run on 2026-02-14). */
export const NOW = Date.parse('2026-02-14T11:47:55Z');
/** Every file's mtime: outside the heartbeat window, so liveness comes from the (live) pid only. */
export const OLD_MS = NOW - 3600_000;

// ---- sources ----------------------------------------------------------------------------------

/** Every `loki_source_ok` source, in exposition order. */
export const SOURCES = [
  'dashboard-state.json',
  'loki.pid',
  'state/agents.json',
  EFFICIENCY_DIR,
  EVENTS_FILE,
  'pricing.json',
  'metrics/budget.json',
  'signals/BUDGET_EXCEEDED',
  'state/orchestrator.json',
  'queue/current-task.json',
  'autonomy-state.json',
  'state/completion.json',
  'proofs',
  'pids',
  'sessions',
] as const;

/**
 * Every label value the exporter may print from a fixed set: names, the version, bucket bounds.
 * Only `model` carries text from files, bounded (see `labelAllowed`).
 */
export const ALLOWED_LABEL_VALUES: ReadonlySet<string> = new Set<string>([
  ...SOURCES,
  ...TASK_STATUSES,
  VERSION,
  ...RECEIPT_VERDICTS,
  ...PROVENANCE_KINDS,
  ...TOKEN_TYPES,
  ...ITERATION_OUTCOMES,
  ...['opus', 'sonnet', 'haiku', 'fable', 'gpt', 'gemini', 'other', 'unknown'],
  ...DURATION_BUCKETS_S.map((b) => `${b}.0`),
  '+Inf',
  ...RUN_OUTCOMES,
  'true',
  'false',
]);

/** A label value the exporter may print: from the fixed set, or one of the bounded file-derived labels. */
export function labelAllowed(allowed: ReadonlySet<string>, name: string, value: string): boolean {
  if (allowed.has(value)) return true;
  // `model`: a model id, lower-cased and cut to 64 characters (at most 16 distinct, the rest `other`).
  if (name === 'model') return value.length <= 64 && value === value.toLowerCase();
  return false;
}

export type TargetKind = 'json' | 'pid' | 'events';

/** One file of a seed tree that is fuzzed. */
export interface Target {
  readonly seed: 'running' | 'paused';
  /** Path under `.loki`. */
  readonly path: string;
  /** Its `loki_source_ok` source. */
  readonly source: (typeof SOURCES)[number];
  readonly kind: TargetKind;
  /** The collector's own validator (undefined for events.jsonl, whose content is never "bad"). */
  readonly parse?: (bytes: Uint8Array) => ParseResult<unknown>;
  readonly bytes: Uint8Array;
}

const TRACKED_DOCUMENTS = DOCUMENTS.filter((d) => d !== 'PAUSE' && d !== 'STOP');

/** The fixture's files that the exporter reads, with their bytes as materialised. */
export async function targetsOf(seed: 'running' | 'paused', dir: string): Promise<Target[]> {
  const targets: Target[] = [];
  for (const path of await listFiles(dir)) {
    const bytes = new Uint8Array(await readFile(join(dir, path)));
    if ((TRACKED_DOCUMENTS as readonly string[]).includes(path)) {
      const name = path as DocumentName;
      targets.push({ seed, path, source: name as (typeof SOURCES)[number], kind: name === 'loki.pid' ? 'pid' : 'json', parse: DOCUMENT_PARSERS[name], bytes });
    } else if (path === EVENTS_FILE) {
      targets.push({ seed, path, source: EVENTS_FILE, kind: 'events', bytes });
    } else if (path.startsWith(`${EFFICIENCY_DIR}/`) && path.endsWith('.json')) {
      targets.push({ seed, path, source: EFFICIENCY_DIR, kind: 'json', parse: readEfficiencyFile, bytes });
    }
  }
  return targets;
}

export async function listFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => relative(dir, join(e.parentPath ?? (e as unknown as { path: string }).path, e.name)))
    .sort();
}

/** A fixture copied to a temp dir with a live pid and every mtime at OLD_MS, plus its targets. */
export async function seedTree(seed: 'running' | 'paused'): Promise<{ dir: string; targets: Target[] }> {
  const dir = await materialize(seed, { pid: 'alive', mtimeMs: OLD_MS });
  return { dir, targets: await targetsOf(seed, dir) };
}

let tmpCounter = 0;
/**
 * Writes `bytes` to `dir/path` with mtime OLD_MS (`loki.pid`: the mtime it has, which is when the
 * live runner wrote it, as materialised: an earlier one would make that runner a reused pid). `fresh`
 * writes a new inode and renames it into place, so a warm store sees a new version even when size and
 * (coarse) timestamps collide.
 */
export async function put(dir: string, path: string, bytes: Uint8Array, fresh = false): Promise<void> {
  const target = join(dir, path);
  const pidFileMs = path === 'loki.pid' ? ((await stat(target).catch(() => undefined))?.mtimeMs ?? EARLY_RUNNER_START_MS) : undefined;
  const at = (pidFileMs ?? OLD_MS) / 1000;
  if (fresh) {
    const tmp = join(dirname(dir), `.fuzz-${process.pid}-${tmpCounter++}`);
    await writeFile(tmp, bytes);
    await utimes(tmp, at, at);
    await rename(tmp, target);
  } else {
    await writeFile(target, bytes);
    await utimes(target, at, at);
  }
}

/** The log prefix the collector uses for a target. */
export const logName = (t: Pick<Target, 'path'>) => t.path;

// ---- mutations --------------------------------------------------------------------------------

export interface Mutation {
  readonly kind: string;
  readonly bytes: Uint8Array;
  /** Known-bad by construction, independently of the validator (checks the oracle is not vacuous). */
  readonly mustBeBad: boolean;
}

const enc = new TextEncoder();
const dec = new TextDecoder();
export const utf8 = (text: string) => enc.encode(text);

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

type JsonPath = readonly (string | number)[];

function pathsOf(value: unknown, prefix: JsonPath = [], out: JsonPath[] = []): JsonPath[] {
  out.push(prefix);
  if (Array.isArray(value)) value.forEach((v, i) => pathsOf(v, [...prefix, i], out));
  else if (value !== null && typeof value === 'object') for (const [k, v] of Object.entries(value)) pathsOf(v, [...prefix, k], out);
  return out;
}

function getAt(value: unknown, path: JsonPath): unknown {
  let v = value;
  for (const key of path) v = (v as Record<string | number, unknown>)[key];
  return v;
}

function setAt(value: unknown, path: JsonPath, replacement: unknown): unknown {
  if (path.length === 0) return replacement;
  const copy = structuredClone(value);
  let v = copy as Record<string | number, unknown>;
  for (const key of path.slice(0, -1)) v = v[key] as Record<string | number, unknown>;
  v[path[path.length - 1]!] = replacement;
  return copy;
}

const typeOf = (v: unknown) => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v);

const SENTINEL = '__fuzz_sentinel_7f3a__';

/** `doc` with the value at `path` replaced by the raw JSON (or not-JSON) text `raw`. */
function withRaw(doc: unknown, path: JsonPath, raw: string, indent: number | undefined): string {
  if (path.length === 0) return raw;
  return JSON.stringify(setAt(doc, path, SENTINEL), null, indent).split(JSON.stringify(SENTINEL)).join(raw);
}

/** Literals JSON and JS disagree on, huge and tiny numbers, numeric strings, prototype keys. */
const RAW_LITERALS = [
  'NaN', 'Infinity', '-Infinity', '+1', '1e400', '-1e400', '1e-400', '-0', '-1', '0.0', '01', '.5', '5.', '0x10',
  '123456789012345678901234567890', '1e12', '1000000000001', '1e9', '1000000001', '9007199254740993',
  '"NaN"', '"Infinity"', '"1e400"', '" 42 "', '"-1"', '"1e3"', '"0x10"', '"١٢٣"', '""', '"\\u0000"', '"\\ud800"',
  'true', 'false', 'null', 'undefined', '[]', '{}', '[null]', '[{}]', '{"__proto__":{"pending":[1,2,3],"inProgress":[1]}}',
  '{"__proto__":null}', '{"constructor":{"prototype":{"polluted":1}}}', '{"toString":1,"valueOf":2}',
  '{"models":{"__proto__":{"input":1}}}', '"2026-02-14T09:12:04Z"', '"9999-12-31T23:59:59Z"', '"0000-01-01T00:00Z"',
  '"2026-13-45T99:99:99Z"', '{"iteration":"7"}', '{"iteration":1e400}',
];

/** A raw JSON-ish value: a literal, a number spelling, a deep nest (up to 10,000 levels). */
const rawValue: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...RAW_LITERALS) },
  { weight: 2, arbitrary: fc.double().map((d) => String(d)) },
  { weight: 1, arbitrary: fc.bigInt().map(String) },
  { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v) ?? 'null') },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 40 }).map((s) => JSON.stringify(s)) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 10_000 }).map((n) => '['.repeat(n) + ']'.repeat(n)) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 10_000 }).map((n) => '{"a":'.repeat(n) + '1' + '}'.repeat(n)) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 10_000 }).map((n) => '['.repeat(n)) },
);

/** A JSON value whose type differs from `old`'s. */
function otherType(old: unknown, v: unknown): unknown {
  if (typeOf(v) !== typeOf(old)) return v;
  return Array.isArray(v) ? { v } : [v];
}

/** Byte sequences never valid in UTF-8, wherever they are inserted. */
const INVALID_UTF8: readonly number[][] = [[0xff], [0xfe], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xf5, 0x80, 0x80, 0x80], [0xc1, 0xbf]];

type Post = 'none' | 'bom' | 'crlf' | 'invalid-utf8' | 'nul';

function post(bytes: Uint8Array, kind: Post, at: number, seq: number): Uint8Array {
  const i = bytes.length === 0 ? 0 : at % (bytes.length + 1);
  switch (kind) {
    case 'none':
      return bytes;
    case 'bom':
      return concat(new Uint8Array([0xef, 0xbb, 0xbf]), bytes);
    case 'crlf': {
      const out: number[] = [];
      for (const b of bytes) {
        if (b === 10) out.push(13);
        out.push(b);
      }
      return new Uint8Array(out);
    }
    case 'invalid-utf8':
      return concat(bytes.subarray(0, i), new Uint8Array(INVALID_UTF8[seq % INVALID_UTF8.length]!), bytes.subarray(i));
    case 'nul':
      return concat(bytes.subarray(0, i), new Uint8Array([0]), bytes.subarray(i));
  }
}

const postArb = fc.tuple(
  fc.constantFrom<Post>('none', 'none', 'none', 'bom', 'crlf', 'invalid-utf8', 'nul'),
  fc.nat(),
  fc.nat(),
);

function lastContentIndex(bytes: Uint8Array): number {
  for (let i = bytes.length - 1; i >= 0; i--) if (![32, 9, 10, 13].includes(bytes[i]!)) return i;
  return -1;
}

/** Mutations of one JSON document (a whole file, or one events line). */
function jsonMutations(seed: Uint8Array): fc.Arbitrary<Mutation> {
  const text = dec.decode(seed);
  const doc = JSON.parse(text) as unknown;
  const paths = pathsOf(doc);
  const pick = fc.nat().map((n) => paths[n % paths.length]!);
  const indent = fc.constantFrom<number | undefined>(undefined, 2);
  const last = lastContentIndex(seed);
  return fc.oneof(
    {
      weight: 3,
      arbitrary: fc.tuple(pick, fc.jsonValue({ maxDepth: 3 }), indent).map(([path, v, ind]) => ({
        kind: 'wrong-type',
        bytes: utf8(JSON.stringify(setAt(doc, path, otherType(getAt(doc, path), v)), null, ind)),
        mustBeBad: false,
      })),
    },
    {
      weight: 3,
      arbitrary: fc.tuple(pick, rawValue, indent).map(([path, raw, ind]) => ({ kind: 'raw-value', bytes: utf8(withRaw(doc, path, raw, ind)), mustBeBad: false })),
    },
    {
      weight: 2,
      arbitrary: fc.nat({ max: seed.length }).map((k) => ({ kind: 'truncate', bytes: seed.slice(0, k), mustBeBad: k <= last })),
    },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 300 }).map((b) => ({ kind: 'random-bytes', bytes: b, mustBeBad: false })) },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 200 }).map((s) => ({ kind: 'random-text', bytes: utf8(s), mustBeBad: false })) },
  );
}

function pidMutations(seed: Uint8Array): fc.Arbitrary<Mutation> {
  return fc.oneof(
    fc.nat({ max: seed.length }).map((k) => ({ kind: 'truncate', bytes: seed.slice(0, k), mustBeBad: k === 0 })),
    fc.constantFrom('0', '-1', '4194305', '4194304', '99999999999', '1e3', '0x10', '+5', ' 12 ', '١٢٣', '12\n34', 'NaN', '').map((s) => ({
      kind: 'pid-literal',
      bytes: utf8(s),
      mustBeBad: s === '' || s === '0' || s === '-1' || s === '4194305' || s === '99999999999' || s === '12\n34',
    })),
    fc.bigInt({ min: -(10n ** 12n), max: 10n ** 12n }).map((n) => ({ kind: 'pid-number', bytes: utf8(`${n}\n`), mustBeBad: n < 1n || n > 4194304n })),
    fc.uint8Array({ maxLength: 40 }).map((b) => ({ kind: 'random-bytes', bytes: b, mustBeBad: false })),
  );
}

/** Line-level mutations of events.jsonl: one line mutated as JSON, random lines, truncation. */
function eventsMutations(seed: Uint8Array): fc.Arbitrary<Mutation> {
  const lines = dec.decode(seed).split('\n');
  const jsonLines = lines.map((l, i) => ({ l, i })).filter(({ l }) => l.trim() !== '');
  const lineArb = fc.nat().chain((n) => {
    const { l, i } = jsonLines[n % jsonLines.length]!;
    return jsonMutations(utf8(l)).map((m) => ({ i, m }));
  });
  const join = (parts: string[]) => utf8(parts.join('\n'));
  return fc.oneof(
    {
      weight: 4,
      arbitrary: lineArb.map(({ i, m }) => {
        const before = utf8(lines.slice(0, i).join('\n') + (i > 0 ? '\n' : ''));
        const after = utf8((i < lines.length - 1 ? '\n' : '') + lines.slice(i + 1).join('\n'));
        return { kind: `line-${m.kind}`, bytes: concat(before, m.bytes.filter((b) => b !== 10), after), mustBeBad: false };
      }),
    },
    { weight: 2, arbitrary: fc.nat({ max: seed.length }).map((k) => ({ kind: 'truncate', bytes: seed.slice(0, k), mustBeBad: false })) },
    {
      weight: 2,
      arbitrary: fc
        .array(fc.oneof(fc.constantFrom(...jsonLines.map((x) => x.l)), fc.string({ unit: 'binary', maxLength: 60 }), fc.constantFrom('', ' ', '\t\r', '\r', '\x0b\x0c')), { maxLength: 40 })
        .map((parts) => ({ kind: 'shuffled-lines', bytes: join(parts), mustBeBad: false })),
    },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 600 }).map((b) => ({ kind: 'random-bytes', bytes: b, mustBeBad: false })) },
    {
      weight: 1,
      arbitrary: fc.uint8Array({ maxLength: 200 }).map((b) => ({ kind: 'appended-bytes', bytes: concat(seed, b), mustBeBad: false })),
    },
  );
}

/** Every mutation of a target, followed by an optional byte-level transform. */
export function mutationOf(target: Pick<Target, 'kind' | 'bytes'>): fc.Arbitrary<Mutation> {
  const base = target.kind === 'pid' ? pidMutations(target.bytes) : target.kind === 'events' ? eventsMutations(target.bytes) : jsonMutations(target.bytes);
  return fc.tuple(base, postArb).map(([m, [kind, at, seq]]) => ({
    kind: kind === 'none' ? m.kind : `${m.kind}+${kind}`,
    bytes: post(m.bytes, kind, at, seq),
    mustBeBad: m.mustBeBad || (kind === 'invalid-utf8' && target.kind !== 'events'),
  }));
}

// ---- events reference -------------------------------------------------------------------------

const isSpace = (b: number) => b === 32 || b === 9 || b === 13 || b === 11 || b === 12;

/** Complete `\n`-terminated lines with at least one non-whitespace byte: the spec, naively. */
export function referenceLineCount(bytes: Uint8Array): number {
  let count = 0;
  let content = false;
  for (const b of bytes) {
    if (b === 10) {
      if (content) count++;
      content = false;
    } else if (!isSpace(b)) content = true;
  }
  return count;
}

function includesBytes(hay: Uint8Array, needle: Uint8Array): boolean {
  return Buffer.from(hay.buffer, hay.byteOffset, hay.byteLength).indexOf(needle) !== -1;
}
const SESSION_START = utf8('session_start');
const ITERATION_START = utf8('iteration_start');

/**
 * The marker rules, naively: over complete lines in order, a valid `session_start` (one whose bytes
 * name it) sets the start and forgets the iteration; a valid `iteration_start` sets the iteration.
 */
export function referenceMarkers(bytes: Uint8Array): { sessionStartMs?: number; iteration?: number; sessionPid?: number } {
  let sessionStartMs: number | undefined;
  let sessionPid: number | undefined;
  let iteration: number | undefined;
  let start = 0;
  for (let i = 0; i < bytes.length; i++) {
    if (bytes[i] !== 10) continue;
    const line = bytes.subarray(start, i);
    start = i + 1;
    const s = includesBytes(line, SESSION_START);
    const it = includesBytes(line, ITERATION_START);
    if (!s && !it) continue;
    const text = decodeText(line);
    if (!text.ok) continue;
    const parsed = readEventLine(text.value);
    if (!parsed.ok) continue;
    if (s && parsed.value.type === 'session_start' && parsed.value.timestampMs !== undefined) {
      sessionStartMs = parsed.value.timestampMs;
      sessionPid = parsed.value.pid;
      iteration = undefined;
    } else if (it && parsed.value.type === 'iteration_start' && parsed.value.iteration !== undefined) {
      iteration = parsed.value.iteration;
    }
  }
  return {
    ...(sessionStartMs !== undefined ? { sessionStartMs } : {}),
    ...(iteration !== undefined ? { iteration } : {}),
    ...(sessionPid !== undefined ? { sessionPid } : {}),
  };
}

// ---- the exposition grammar -------------------------------------------------------------------

const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
const LNAME = '[a-zA-Z_][a-zA-Z0-9_]*';
const LVALUE = '(?:[^"\\\\\\n]|\\\\[\\\\"n])*';
const VALUE = '(?:[+-]?(?:\\d+(?:\\.\\d*)?|\\.\\d+)(?:[eE][+-]?\\d+)?|NaN|[+-]Inf)';
const SAMPLE = new RegExp(`^(${NAME})(\\{(?:${LNAME}="${LVALUE}"(?:,${LNAME}="${LVALUE}")*)?\\})? (${VALUE})$`);
const LABEL = new RegExp(`(${LNAME})="(${LVALUE})"`, 'g');
const HELP: Record<Format, RegExp> = {
  openmetrics: new RegExp(`^# HELP (${NAME}) ((?:[^"\\\\\\n]|\\\\[\\\\"n])*)$`),
  prometheus: new RegExp(`^# HELP (${NAME}) ((?:[^\\\\\\n]|\\\\[\\\\n])*)$`),
};
const TYPE: Record<Format, RegExp> = {
  openmetrics: new RegExp(`^# TYPE (${NAME}) (gauge|counter|info|stateset|histogram|gaugehistogram|summary|unknown)$`),
  prometheus: new RegExp(`^# TYPE (${NAME}) (gauge|counter|histogram|summary|untyped)$`),
};

const unescapeLabel = (v: string) => v.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));

function metaName(family: MetricFamily, format: Format): string {
  if (format === 'prometheus') return family.name;
  const suffix = family.type === 'counter' ? '_total' : family.type === 'info' ? '_info' : '';
  return suffix && family.name.endsWith(suffix) ? family.name.slice(0, -suffix.length) : family.name;
}

function sampleNameOk(meta: string, type: string, name: string, format: Format): boolean {
  if (format === 'prometheus') return type === 'histogram' ? [`${meta}_bucket`, `${meta}_sum`, `${meta}_count`].includes(name) : name === meta;
  if (type === 'counter') return name === `${meta}_total` || name === `${meta}_created`;
  if (type === 'info') return name === `${meta}_info`;
  if (type === 'histogram') return [`${meta}_bucket`, `${meta}_sum`, `${meta}_count`, `${meta}_created`].includes(name);
  return name === meta;
}

export interface Exposition {
  /** `name{labels}` as printed → value. */
  readonly samples: Map<string, number>;
  readonly labelValues: Set<string>;
}

export interface ExpositionOptions {
  readonly families?: readonly MetricFamily[];
  /** Every label value must be one of these (no value from a file can reach a label). */
  readonly allowedLabelValues?: ReadonlySet<string> | null;
}

/**
 * Every line is `# HELP`, `# TYPE`, `# EOF` (OpenMetrics, last) or a sample with a valid number
 * spelling; samples belong to the family typed above them; every expected family is present.
 * Throws with the offending line.
 */
export function checkExposition(text: string, format: Format, options: ExpositionOptions = {}): Exposition {
  // By default every family of a state snapshot: the process families come only with a process sampler.
  const families = options.families ?? SNAPSHOT_FAMILIES;
  const allowed = options.allowedLabelValues === undefined ? ALLOWED_LABEL_VALUES : options.allowedLabelValues;
  const fail = (why: string, line?: string): never => {
    throw new Error(`${format} exposition broken: ${why}${line !== undefined ? `\n  line: ${JSON.stringify(line)}` : ''}`);
  };
  if (!text.endsWith('\n')) fail('does not end with a newline');
  const lines = text.slice(0, -1).split('\n');
  if (format === 'openmetrics') {
    if (lines[lines.length - 1] !== '# EOF') fail('does not end with # EOF');
    lines.pop();
  }
  const samples = new Map<string, number>();
  const labelValues = new Set<string>();
  const typed = new Map<string, string>();
  let helped: string | undefined;
  let current: { meta: string; type: string } | undefined;
  for (const line of lines) {
    if (line.startsWith('#')) {
      const help = HELP[format].exec(line);
      if (help) {
        if (typed.has(help[1]!)) fail('HELP after its family', line);
        helped = help[1]!;
        continue;
      }
      const type = TYPE[format].exec(line);
      if (type) {
        if (typed.has(type[1]!)) fail('family typed twice', line);
        if (helped !== type[1]) fail('TYPE without its HELP', line);
        typed.set(type[1]!, type[2]!);
        current = { meta: type[1]!, type: type[2]! };
        continue;
      }
      fail('bad comment line', line);
    }
    const m = SAMPLE.exec(line);
    if (!m) fail('not a sample line', line);
    const [, name, labels = '', value] = m!;
    if (!current || !sampleNameOk(current.meta, current.type, name!, format)) fail(`sample outside its family (${current?.meta})`, line);
    const inner = labels.slice(1, -1);
    const rebuilt: string[] = [];
    for (const lm of inner.matchAll(LABEL)) {
      const v = unescapeLabel(lm[2]!);
      labelValues.add(v);
      if (allowed && !labelAllowed(allowed, lm[1]!, v)) fail(`label value not from the fixed set: ${JSON.stringify(v)}`, line);
      rebuilt.push(lm[0]);
    }
    if (rebuilt.join(',') !== inner) fail('labels do not split cleanly', line);
    const key = `${name}${labels}`;
    if (samples.has(key)) fail('duplicate sample', line);
    samples.set(key, value === '+Inf' ? Infinity : value === '-Inf' ? -Infinity : Number(value));
  }
  for (const family of families) {
    const meta = metaName(family, format);
    if (!typed.has(meta)) fail(`family ${meta} missing`);
  }
  return { samples, labelValues };
}

// ---- driving the app --------------------------------------------------------------------------

export const ACCEPT: Record<Format, string> = {
  prometheus: 'text/plain;version=0.0.4;q=1',
  openmetrics: 'application/openmetrics-text;version=1.0.0',
};
const CONTENT_TYPE: Record<Format, string> = {
  prometheus: 'text/plain; version=0.0.4; charset=utf-8',
  openmetrics: 'application/openmetrics-text; version=1.0.0; charset=utf-8',
};

export interface HealthSource {
  source: string;
  ok: boolean;
  present: boolean;
  problem?: string;
}
export interface Health {
  status: string;
  up: boolean;
  sources: HealthSource[];
}

export interface Scrape {
  readonly prometheus: string;
  readonly openmetrics: string;
  readonly prom: Exposition;
  readonly om: Exposition;
  readonly health: Health;
}

/**
 * `/metrics` in both formats and `/health`, concurrently (the app's single-flight cache makes them
 * one refresh): each 200 with the right type, both outputs well-formed and carrying the same samples.
 */
export async function scrape(app: Hono, query = '', options: ExpositionOptions = {}): Promise<Scrape> {
  const get = async (path: string, headers: Record<string, string> = {}) => {
    const res = await app.request(`${path}${query}`, { headers });
    const body = await res.text();
    if (res.status !== 200) throw new Error(`${path} (${headers.Accept ?? ''}) answered ${res.status}: ${body.slice(0, 200)}`);
    return { body, type: res.headers.get('Content-Type') };
  };
  const [p, o, h] = await Promise.all([get('/metrics', { Accept: ACCEPT.prometheus }), get('/metrics', { Accept: ACCEPT.openmetrics }), get('/health')]);
  const texts: Record<Format, string> = { prometheus: p.body, openmetrics: o.body };
  if (p.type !== CONTENT_TYPE.prometheus) throw new Error(`0.0.4 Content-Type ${p.type}`);
  if (o.type !== CONTENT_TYPE.openmetrics) throw new Error(`OpenMetrics Content-Type ${o.type}`);
  const health = JSON.parse(h.body) as Health;
  const prom = checkExposition(texts.prometheus, 'prometheus', options);
  const om = checkExposition(texts.openmetrics, 'openmetrics', options);
  // Same samples in both formats.
  if (prom.samples.size !== om.samples.size) throw new Error('the two formats carry different sample sets');
  for (const [key, value] of prom.samples) {
    if (measuresExporter(key)) continue;
    const other = om.samples.get(key);
    if (other === undefined || !(Object.is(other, value) || (Number.isNaN(other) && Number.isNaN(value)) || other === value)) {
      throw new Error(`${key}: ${value} in 0.0.4 but ${other} in OpenMetrics`);
    }
  }
  return { prometheus: texts.prometheus, openmetrics: texts.openmetrics, prom, om, health };
}

/** Samples measuring the exporter itself (its refresh's duration, its process): they differ between any two scrapes. */
export const measuresExporter = (key: string): boolean => /^(loki_exporter_scrape_duration_seconds|process_|nodejs_)/.test(key);

export const sourceOk = (s: Scrape, source: string) => s.prom.samples.get(`loki_source_ok{source="${source}"}`);
export const value = (s: Scrape, key: string) => s.prom.samples.get(key);

// ---- the reference parsers, batched -----------------------------------------------------------

const PYTHON = '/usr/bin/python3';
const INSTALL = 'apt-get install -y python3-prometheus-client';

const BATCH_SCRIPT = String.raw`
import json, sys
try:
    from prometheus_client.openmetrics.parser import text_string_to_metric_families as om
    from prometheus_client.parser import text_string_to_metric_families as prom
except ImportError as e:
    print('MISSING prometheus_client: ' + str(e), file=sys.stderr)
    sys.exit(97)
out = []
for item in json.load(sys.stdin):
    try:
        fams = list((om if item['format'] == 'openmetrics' else prom)(item['text']))
        labels = sorted({k + '=' + v for f in fams for s in f.samples for k, v in s.labels.items()})
        out.append({'families': len(fams), 'samples': sum(len(f.samples) for f in fams), 'labels': labels})
    except Exception as e:
        out.append({'error': type(e).__name__ + ': ' + str(e)})
print(json.dumps(out))
`;

export interface PythonVerdict {
  readonly error?: string;
  readonly families?: number;
  readonly samples?: number;
  /** `name=value` of every label printed. */
  readonly labels?: string[];
}

/** Distinct outputs kept for the one python run at the end of a file. */
export class OutputSample {
  readonly items: { format: Format; text: string }[] = [];
  readonly #seen = new Set<string>();
  #offered = 0;
  constructor(readonly cap: number) {}

  /** Keeps the first `cap / 2` distinct outputs and then every 7th distinct one, up to `cap`. */
  add(format: Format, text: string): void {
    if (this.items.length >= this.cap || this.#seen.has(text)) return;
    this.#seen.add(text);
    this.#offered++;
    if (this.items.length < this.cap / 2 || this.#offered % 7 === 0) this.items.push({ format, text });
  }

  addScrape(s: Scrape): void {
    this.add('prometheus', s.prometheus);
    this.add('openmetrics', s.openmetrics);
  }
}

/** Parses every item with prometheus_client in ONE process. */
export function pythonParseAll(items: readonly { format: Format; text: string }[]): PythonVerdict[] {
  if (!existsSync(PYTHON)) throw new Error(`${PYTHON} is missing; install it with: ${INSTALL}`);
  const r = spawnSync(PYTHON, ['-c', BATCH_SCRIPT], { input: JSON.stringify(items), encoding: 'utf8', timeout: 60_000, maxBuffer: 256 * 1024 * 1024 });
  if (r.error) throw new Error(`${PYTHON} could not run (${r.error.message})`);
  if (r.status === 97) throw new Error(`${PYTHON} lacks prometheus_client (${r.stderr.trim()}); install it with: ${INSTALL}`);
  if (r.status !== 0) throw new Error(`${PYTHON} failed (${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout) as PythonVerdict[];
}

/** fast-check settings shared by the suite; FUZZ_SEED / FUZZ_SCALE override for a deeper run. */
export function runs(n: number): { numRuns: number; seed?: number } {
  const scale = Number(process.env.FUZZ_SCALE ?? '1');
  const seed = process.env.FUZZ_SEED !== undefined ? Number(process.env.FUZZ_SEED) : undefined;
  return { numRuns: Math.max(1, Math.round(n * (Number.isFinite(scale) && scale > 0 ? scale : 1))), ...(seed !== undefined ? { seed } : {}) };
}

/** Cases actually executed, per property, printed at the end of each file. */
export class CaseCounter {
  readonly counts = new Map<string, number>();
  hit(name: string): void {
    this.counts.set(name, (this.counts.get(name) ?? 0) + 1);
  }
  report(file: string): string {
    const total = [...this.counts.values()].reduce((a, b) => a + b, 0);
    return `${file}: ${total} generated cases (${[...this.counts].map(([k, v]) => `${k} ${v}`).join(', ')})`;
  }
}
