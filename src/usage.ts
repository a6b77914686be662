/**
 * Per-model telemetry from the efficiency files: tokens by type and cost by model, iterations by
 * outcome, iteration durations. Every value is a sum over the files now in `metrics/efficiency/`,
 * which Loki Mode empties at each run start: the counters reset there, and Prometheus's `rate()`
 * and `increase()` treat the drop as a counter reset, as they should.
 *
 * Label cardinality is bounded: a model id becomes a `family` (opus, sonnet, haiku, fable, gpt,
 * gemini, other, unknown) plus the id itself for the first `MAX_MODEL_IDS` distinct ids this
 * exporter sees (in iteration order, so the set is stable as a run appends files); later ids are
 * `model="other"` within their family.
 */
import { iterationCost, recordTokens, type PriceTable } from './pricing.js';
import type { EfficiencyRecord } from './schemas/efficiency.js';
import { iterationFromId } from './schemas/parse.js';

export const TOKEN_TYPES = ['input', 'output', 'cache_read', 'cache_creation'] as const;
export type TokenType = (typeof TOKEN_TYPES)[number];
export const ITERATION_OUTCOMES = ['completed', 'failed'] as const;
export type IterationOutcome = (typeof ITERATION_OUTCOMES)[number];

/** Raw model ids kept as label values; beyond this, `other`. */
export const MAX_MODEL_IDS = 16;
/** Longest model id kept as a label value (longer ids are cut). */
const MAX_MODEL_ID_LENGTH = 64;

/** Iteration duration buckets, seconds: from a quick fix to a long autonomous stretch. */
export const DURATION_BUCKETS_S = [1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400] as const;

export interface ModelLabels {
  readonly family: string;
  readonly model: string;
}

export interface ModelUsage extends ModelLabels {
  readonly tokens: Readonly<Record<TokenType, number>>;
  readonly costUsd: number;
}

export interface Histogram {
  /** Cumulative counts, one per bound of `DURATION_BUCKETS_S` (the +Inf bucket is `count`). */
  readonly buckets: readonly number[];
  readonly sum: number;
  readonly count: number;
}

export interface Usage {
  /** Total cost of the files now present (`loki_cost_usd`). */
  readonly costUsd: number;
  /** Every model label set this exporter has seen, with its current sums (0 after a run start). */
  readonly models: readonly ModelUsage[];
  readonly iterations: Readonly<Record<IterationOutcome, number>>;
  readonly durations: Histogram;
}

/** The coarse family of a model id, for a label that stays meaningful as ids change. */
export function modelFamily(id: string): string {
  if (id === '') return 'unknown';
  for (const family of ['opus', 'sonnet', 'haiku', 'fable', 'gemini'] as const) if (id.includes(family)) return family;
  if (/(^|[/_.-])(gpt|codex|o\d)([/_.-]|$)|gpt-|codex/.test(id)) return 'gpt';
  return 'other';
}

/**
 * Turns raw model ids into bounded label sets, remembering which ids got a label of their own. One
 * per collector: the memory is what keeps a series (at 0) across the run-start reset.
 */
export class ModelLabeler {
  /** Raw id as written → its labels (bounded: ids past the cap share their family's `other`). */
  readonly #byRaw = new Map<string, ModelLabels>();
  readonly #kept = new Map<string, ModelLabels>();
  /** `family\nmodel` → its one label set: an id spelled `other` and its family's overflow are one series. */
  readonly #sets = new Map<string, ModelLabels>();
  /** Every label set handed out: one object per (family, model), so sets and maps can key on it. */
  readonly #seen = new Set<ModelLabels>();

  label(raw: string | null | undefined): ModelLabels {
    const key = raw ?? '';
    let labels = this.#byRaw.get(key);
    if (!labels) {
      labels = this.#labelFor(key.trim().toLowerCase().slice(0, MAX_MODEL_ID_LENGTH));
      if (this.#byRaw.size < 4 * MAX_MODEL_IDS) this.#byRaw.set(key, labels);
    }
    this.#seen.add(labels);
    return labels;
  }

  #labelFor(id: string): ModelLabels {
    const kept = this.#kept.get(id);
    if (kept) return kept;
    const family = modelFamily(id);
    if (this.#kept.size < MAX_MODEL_IDS) {
      const labels = this.#set(family, id === '' ? 'unknown' : id);
      this.#kept.set(id, labels);
      return labels;
    }
    return this.#set(family, 'other');
  }

  #set(family: string, model: string): ModelLabels {
    const key = `${family}\n${model}`;
    let labels = this.#sets.get(key);
    if (!labels) this.#sets.set(key, (labels = { family, model }));
    return labels;
  }

  /** Every label set handed out so far, sorted by family then model. */
  all(): ModelLabels[] {
    return [...this.#seen].sort((a, b) => (a.family === b.family ? compare(a.model, b.model) : compare(a.family, b.family)));
  }
}

const compare = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/**
 * Outcome of one iteration: 9.x writes `status` (`completed`, `failed`); a word of failure at its
 * start (failed, error, timeout, crashed, aborted, killed) is a failure, anything else completed. A
 * record without one (5.4x) describes an iteration that finished, as only finished ones write it.
 */
export function iterationOutcome(record: EfficiencyRecord): IterationOutcome {
  const status = (record.status ?? '').trim().toLowerCase();
  return /^(fail|error|crash|timeout|timed[_ -]?out|abort|kill)/.test(status) ? 'failed' : 'completed';
}

/** Files in iteration order (the name's number; other names after, by name). */
function inIterationOrder(entries: readonly { name: string; value: EfficiencyRecord }[]) {
  const keyed = entries.map((e) => ({ e, key: iterationFromId(e.name) ?? e.value.iteration ?? Number.MAX_SAFE_INTEGER }));
  keyed.sort((a, b) => a.key - b.key || compare(a.e.name, b.e.name));
  return keyed.map((k) => k.e);
}

export function summariseUsage(
  entries: readonly { name: string; value: EfficiencyRecord }[],
  prices: PriceTable,
  labeler: ModelLabeler,
): Usage {
  const sums = new Map<ModelLabels, { tokens: Record<TokenType, number>; costUsd: number }>();
  const iterations: Record<IterationOutcome, number> = { completed: 0, failed: 0 };
  const buckets = DURATION_BUCKETS_S.map(() => 0);
  let sum = 0;
  let count = 0;
  let total = 0;
  for (const { value: record } of inIterationOrder(entries)) {
    const labels = labeler.label(record.model);
    let s = sums.get(labels);
    if (!s) sums.set(labels, (s = { tokens: { input: 0, output: 0, cache_read: 0, cache_creation: 0 }, costUsd: 0 }));
    const t = recordTokens(record);
    for (const type of TOKEN_TYPES) s.tokens[type] += t[type];
    const cost = iterationCost(record, prices);
    s.costUsd += cost;
    total += cost;
    iterations[iterationOutcome(record)]++;
    const ms = record.duration_ms;
    if (ms !== undefined && ms !== null) {
      const seconds = ms / 1000;
      DURATION_BUCKETS_S.forEach((bound, i) => {
        if (seconds <= bound) buckets[i]!++;
      });
      sum += seconds;
      count++;
    }
  }
  const models = labeler.all().map((labels): ModelUsage => {
    const s = sums.get(labels);
    return {
      ...labels,
      tokens: s?.tokens ?? { input: 0, output: 0, cache_read: 0, cache_creation: 0 },
      costUsd: roundUsd(s?.costUsd ?? 0),
    };
  });
  return { costUsd: roundUsd(total), models, iterations, durations: { buckets, sum: Math.round(sum * 1000) / 1000, count } };
}

/** Round money to micro-dollars so float noise (3.5313000000000003) never reaches the output. */
export const roundUsd = (usd: number) => Math.round(usd * 1e6) / 1e6;
