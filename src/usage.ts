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
import { escapeForLog } from './log.js';
import { priceFor, type PriceTable } from './pricing.js';
import type { EfficiencyRecord } from './schemas/efficiency.js';
import { DURATION_BUCKETS_S, foldUsage, ITERATION_OUTCOMES, modelFamily, type IterationOutcome, type UsageTotals } from './usage-totals.js';

export { DURATION_BUCKETS_S, ITERATION_OUTCOMES, iterationOutcome, modelFamily, type IterationOutcome } from './usage-totals.js';

export const TOKEN_TYPES = ['input', 'output', 'cache_read', 'cache_creation'] as const;
export type TokenType = (typeof TOKEN_TYPES)[number];

/** Raw model ids kept as label values; beyond this, `other`. */
export const MAX_MODEL_IDS = 16;
/** Longest model id kept as a label value (longer ids are cut). */
const MAX_MODEL_ID_LENGTH = 64;

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
      // Control characters (ESC, BEL, CR, NUL, U+2028, ...) reach no label value raw: a dashboard
      // or terminal showing it would act on them. They are written as escapes (`\x1b`).
      labels = this.#labelFor(escapeForLog(key.trim().toLowerCase()).slice(0, MAX_MODEL_ID_LENGTH));
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

  /** The label set shared by every id of `family` past the cap (the Worker's ids past MAX_MODEL_KEYS). */
  overflow(family: string): ModelLabels {
    const labels = this.#set(family, 'other');
    this.#seen.add(labels);
    return labels;
  }

  /** Every label set handed out so far, sorted by family then model. */
  all(): ModelLabels[] {
    return [...this.#seen].sort((a, b) => (a.family === b.family ? compare(a.model, b.model) : compare(a.family, b.family)));
  }
}

const compare = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** Every file of the set, summed: `usageFromTotals` over `foldUsage`. */
export function summariseUsage(entries: readonly { name: string; value: EfficiencyRecord }[], prices: PriceTable, labeler: ModelLabeler): Usage {
  return usageFromTotals(foldUsage(entries), prices, labeler);
}

const ZERO_TOKENS: Readonly<Record<TokenType, number>> = Object.freeze({ input: 0, output: 0, cache_read: 0, cache_creation: 0 });

/**
 * The families' values from the totals: models in the order they first appear in the iteration
 * order (which decides the first MAX_MODEL_IDS ids that get a label of their own), each priced once.
 */
export function usageFromTotals(totals: UsageTotals, prices: PriceTable, labeler: ModelLabeler): Usage {
  const sums = new Map<ModelLabels, { tokens: Record<TokenType, number>; costUsd: number }>();
  let total = 0;
  const models = [...totals.models].sort((a, b) => a.first - b.first || compare(a.firstName, b.firstName));
  for (const m of models) {
    const labels = m.overflow !== undefined ? labeler.overflow(m.overflow) : labeler.label(m.key);
    let s = sums.get(labels);
    if (!s) sums.set(labels, (s = { tokens: { ...ZERO_TOKENS }, costUsd: 0 }));
    TOKEN_TYPES.forEach((type, k) => (s.tokens[type] += m.tokens[k]!));
    // Ids past the cap are priced by their family's name (an exact pricing.json key no longer applies).
    const p = priceFor(prices, m.overflow ?? m.key);
    const cost = m.nanoUsd / 1e9 + (m.priced[0] * p.input + m.priced[1] * p.output + m.priced[2] * p.cacheRead + m.priced[3] * p.cacheWrite) / 1e6;
    s.costUsd += cost;
    total += cost;
  }
  const buckets: number[] = [];
  let cumulative = 0;
  for (let i = 0; i < DURATION_BUCKETS_S.length; i++) buckets.push((cumulative += totals.slots[i]!));
  return {
    costUsd: roundUsd(total),
    models: labeler.all().map((labels): ModelUsage => {
      const s = sums.get(labels);
      return { ...labels, tokens: s?.tokens ?? { ...ZERO_TOKENS }, costUsd: roundUsd(s?.costUsd ?? 0) };
    }),
    iterations: Object.fromEntries(ITERATION_OUTCOMES.map((outcome, k) => [outcome, totals.outcomes[k]!])) as Record<IterationOutcome, number>,
    durations: { buckets, sum: totals.durationMs / 1000, count: totals.durations },
  };
}

/** Round money to micro-dollars so float noise (3.5313000000000003) never reaches the output. */
export const roundUsd = (usd: number) => Math.round(usd * 1e6) / 1e6;
