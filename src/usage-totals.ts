/**
 * The efficiency files as running totals: what each file adds (its contribution), and sums that a
 * file can be added to and taken out of exactly. Locally the totals are folded from every file on
 * each change; the Worker keeps them up to date as files arrive and go (sync/shards.ts), so a scrape
 * there reads the sums, never the files. Both go through these functions, so both report the same.
 *
 * Exact: every sum is of whole numbers (tokens, nano-dollars of recorded cost, milliseconds), so
 * adding and removing in any order gives the same result, bit for bit. Token-priced cost is not
 * summed per file but per model (tokens × the price at scrape time), so a new `pricing.json`
 * re-prices everything without touching the files.
 */
import { recordTokens } from './pricing.js';
import type { EfficiencyRecord } from './schemas/efficiency.js';
import { iterationFromId } from './schemas/parse.js';

export const ITERATION_OUTCOMES = ['completed', 'failed'] as const;
export type IterationOutcome = (typeof ITERATION_OUTCOMES)[number];

/** Iteration duration buckets, seconds: from a quick fix to a long autonomous stretch. */
export const DURATION_BUCKETS_S = [1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400] as const;

/** Distinct model ids summed on their own; later ids are summed per family (`overflowKey`). */
export const MAX_MODEL_KEYS = 256;
/** Longest model id kept for pricing and labels (a longer one is cut). */
export const MAX_MODEL_KEY_LENGTH = 256;
/** Highest iteration numbers remembered, so the highest one survives removals. */
const TOP_ITERATIONS = 16;

/** input, output, cache_read, cache_creation: the order of `TOKEN_TYPES`. */
export type Quad = [number, number, number, number];

/** One efficiency file's share of the totals (stored per file by the Worker: short keys). */
export interface EfficiencyContribution {
  /** Model key: the id trimmed, lower-case, cut to MAX_MODEL_KEY_LENGTH ('' when none). */
  readonly m: string;
  /** Iteration order: the number in the file name, else the `iteration` field, else last. */
  readonly o: number;
  /** Token counts, whole numbers. */
  readonly t: Quad;
  /** 1 when the cost comes from the tokens and the price table, 0 when from `cost_usd`. */
  readonly p: 0 | 1;
  /** Recorded cost in nano-dollars (0 when priced by tokens). */
  readonly u: number;
  /** 1 for a failed iteration. */
  readonly f: 0 | 1;
  /** Duration in whole ms and its histogram slot (DURATION_BUCKETS_S index, or its length for +Inf). */
  readonly d?: number;
  readonly s?: number;
  /** The `iteration` field (0 when absent). */
  readonly i: number;
}

export interface ModelTotals {
  /** Model key, or `overflowKey(family)` for ids past MAX_MODEL_KEYS. */
  readonly key: string;
  /** The family whose ids past MAX_MODEL_KEYS this entry sums (absent for a model's own entry). */
  readonly overflow?: string;
  /** Files. */
  n: number;
  /** Where the model first appears in iteration order: (order, file name). */
  first: number;
  firstName: string;
  /** All tokens (`loki_model_tokens_total`). */
  tokens: Quad;
  /** Tokens of the files priced by tokens. */
  priced: Quad;
  /** Recorded cost, nano-dollars. */
  nanoUsd: number;
}

export interface UsageTotals {
  models: ModelTotals[];
  /** Files by outcome: completed, failed. */
  outcomes: [number, number];
  /** Files with a duration per histogram slot (not cumulative; the last slot is +Inf). */
  slots: number[];
  durationMs: number;
  durations: number;
  /** The highest `iteration` values with their file counts, highest first. */
  iterations: [number, number][];
}

export function emptyUsageTotals(): UsageTotals {
  return { models: [], outcomes: [0, 0], slots: new Array<number>(DURATION_BUCKETS_S.length + 1).fill(0), durationMs: 0, durations: 0, iterations: [] };
}

/**
 * Outcome of one iteration: 9.x writes `status` (`completed`, `failed`); a word of failure at its
 * start (failed, error, timeout, crashed, aborted, killed) is a failure, anything else completed. A
 * record without one (5.4x) describes an iteration that finished, as only finished ones write it.
 */
export function iterationOutcome(record: EfficiencyRecord): IterationOutcome {
  const status = (record.status ?? '').trim().toLowerCase();
  return /^(fail|error|crash|timeout|timed[_ -]?out|abort|kill)/.test(status) ? 'failed' : 'completed';
}

/** The coarse family of a model id, for a label that stays meaningful as ids change. */
export function modelFamily(id: string): string {
  if (id === '') return 'unknown';
  for (const family of ['opus', 'sonnet', 'haiku', 'fable', 'gemini'] as const) if (id.includes(family)) return family;
  if (/(^|[/_.-])(gpt|codex|o\d)([/_.-]|$)|gpt-|codex/.test(id)) return 'gpt';
  return 'other';
}

/** The model key of a raw id: how labels and prices look it up. */
export const modelKey = (raw: string | null | undefined) => (raw ?? '').trim().toLowerCase().slice(0, MAX_MODEL_KEY_LENGTH);

/** The key of the entry ids past MAX_MODEL_KEYS are summed under, one per family (told apart by `overflow`, not by the key). */
export const overflowKey = (family: string) => `\u0000${family}`;

export function efficiencyContribution(name: string, record: EfficiencyRecord): EfficiencyContribution {
  const raw = recordTokens(record);
  const t: Quad = [Math.round(raw.input), Math.round(raw.output), Math.round(raw.cache_read), Math.round(raw.cache_creation)];
  const recorded = record.cost_usd;
  const anyTokens = raw.input + raw.output + raw.cache_read + raw.cache_creation > 0;
  // `cost_usd` when present, unless it is 0 next to real tokens (9.x writes 0 when nothing was measured).
  const useRecorded = recorded !== undefined && recorded !== null && (recorded > 0 || !anyTokens);
  const ms = record.duration_ms;
  const slot = ms === undefined || ms === null ? undefined : durationSlot(ms / 1000);
  return {
    m: modelKey(record.model),
    o: iterationFromId(name) ?? record.iteration ?? Number.MAX_SAFE_INTEGER,
    t,
    p: useRecorded ? 0 : 1,
    u: useRecorded ? Math.round(recorded * 1e9) : 0,
    f: iterationOutcome(record) === 'failed' ? 1 : 0,
    ...(slot !== undefined ? { d: Math.round(ms!), s: slot } : {}),
    i: record.iteration ?? 0,
  };
}

/** The first histogram slot whose bound holds `seconds` (the +Inf slot past the last bound). */
function durationSlot(seconds: number): number {
  const i = DURATION_BUCKETS_S.findIndex((bound) => seconds <= bound);
  return i === -1 ? DURATION_BUCKETS_S.length : i;
}

/**
 * Adds (`sign` 1) or takes out (-1) one file's contribution. A model key seen once keeps its entry
 * (at 0) until the set is emptied, so a removal always finds the entry its addition used.
 */
export function applyEfficiency(totals: UsageTotals, name: string, c: EfficiencyContribution, sign: 1 | -1): void {
  let model = totals.models.find((m) => m.key === c.m && m.overflow === undefined);
  if (!model) {
    const own = totals.models.length < MAX_MODEL_KEYS;
    const family = modelFamily(c.m);
    model = own ? undefined : totals.models.find((m) => m.overflow === family);
    if (!model) {
      if (sign < 0) return; // nothing of it was ever added
      model = {
        key: own ? c.m : overflowKey(family),
        ...(own ? {} : { overflow: family }),
        n: 0,
        first: c.o,
        firstName: name,
        tokens: [0, 0, 0, 0],
        priced: [0, 0, 0, 0],
        nanoUsd: 0,
      };
      totals.models.push(model);
    }
  }
  model.n += sign;
  if (sign > 0 && (c.o < model.first || (c.o === model.first && name < model.firstName))) {
    model.first = c.o;
    model.firstName = name;
  }
  for (let k = 0; k < 4; k++) {
    model.tokens[k]! += sign * c.t[k]!;
    if (c.p === 1) model.priced[k]! += sign * c.t[k]!;
  }
  model.nanoUsd += sign * c.u;
  totals.outcomes[c.f]! += sign;
  if (c.s !== undefined) {
    totals.slots[c.s]! += sign;
    totals.durationMs += sign * (c.d ?? 0);
    totals.durations += sign;
  }
  countTop(totals.iterations, c.i, sign);
  // An emptied set starts over: what was seen before stays in the collector's labels, not here.
  if (totals.models.every((m) => m.n <= 0)) Object.assign(totals, emptyUsageTotals());
}

/**
 * Keeps the `TOP_ITERATIONS` highest values with their counts, highest first. Values below the kept
 * ones are not remembered: were every kept one removed while lower ones remain, the highest would be
 * unknown (Loki Mode removes efficiency files only all at once, at a run start).
 */
export function countTop(top: [number, number][], value: number, sign: 1 | -1, keep = TOP_ITERATIONS): void {
  const at = top.findIndex(([v]) => v <= value);
  if (at !== -1 && top[at]![0] === value) {
    top[at]![1] += sign;
    if (top[at]![1] <= 0) top.splice(at, 1);
    return;
  }
  if (sign < 0) return;
  if (at === -1) {
    if (top.length < keep) top.push([value, 1]);
    return;
  }
  top.splice(at, 0, [value, 1]);
  if (top.length > keep) top.pop();
}

/** Folds every file (the local exporter, on each change of the set). */
export function foldUsage(entries: readonly { name: string; value: EfficiencyRecord }[]): UsageTotals {
  const totals = emptyUsageTotals();
  for (const { name, value } of entries) applyEfficiency(totals, name, efficiencyContribution(name, value), 1);
  return totals;
}

/** The highest `iteration` field among the files (0 when none). */
export const maxIteration = (totals: UsageTotals) => totals.iterations[0]?.[0] ?? 0;
