import type { EfficiencyRecord } from './schemas/efficiency.js';
import type { PricingFile } from './schemas/pricing.js';

/** USD per million tokens. */
export interface Price {
  readonly input: number;
  readonly output: number;
  /** Reading from the prompt cache. */
  readonly cacheRead: number;
  /** Writing to the prompt cache. */
  readonly cacheWrite: number;
}
export type PriceTable = ReadonlyMap<string, Price>;

/** Cache prices as a share of the input price where nothing says otherwise (Anthropic's, and upstream's dashboard's). */
export const CACHE_READ_FACTOR = 0.1;
export const CACHE_WRITE_FACTOR = 1.25;

/** A price from input and output alone, cache prices derived from input. */
export function price(input: number, output: number, cache: { read?: number; write?: number } = {}): Price {
  return {
    input,
    output,
    cacheRead: cache.read ?? input * CACHE_READ_FACTOR,
    cacheWrite: cache.write ?? input * CACHE_WRITE_FACTOR,
  };
}

/**
 * Loki Mode's built-in prices, keyed by lower-case model key: 9.22's table (fable, claude, codex, the
 * gpt-5.6 tiers), plus the Gemini models
 * 5.4x priced (9.x dropped them; 5.4x runs still report them). `pricing.json`, which run.sh writes
 * at every start, overrides them.
 */
export const BUILT_IN_PRICES: PriceTable = new Map<string, Price>([
  ['opus', price(5.0, 25.0)],
  ['sonnet', price(3.0, 15.0)],
  ['haiku', price(1.0, 5.0)],
  ['fable', price(10.0, 50.0)],
  ['gpt-5.3-codex', price(1.75, 14.0)],
  // as 9.22's run.sh budget table and dashboard publish them (its loki-ts table disagrees)
  ['gpt-5.6-sol', price(2.5, 20.0)],
  ['gpt-5.6-terra', price(1.5, 12.0)],
  ['gpt-5.6-luna', price(0.5, 4.0)],
  ['gemini-3-pro', price(1.25, 10.0)],
  ['gemini-3-flash', price(0.1, 0.4)],
]);

const FALLBACK_MODEL = 'sonnet';

/**
 * Built-in prices with `pricing.json` applied: each model key in the file replaces the built-in
 * entry of that name (keys compared lower-case); a field the file leaves out keeps the built-in
 * price of that key as `priceFor` finds it (a full model id: its family's; an unknown model:
 * sonnet's). Cache prices the file leaves out follow the entry's input price.
 */
export function priceTable(file: PricingFile | undefined): PriceTable {
  const models = file?.models;
  if (!models) return BUILT_IN_PRICES;
  const table = new Map(BUILT_IN_PRICES);
  for (const [rawKey, entry] of Object.entries(models)) {
    const key = rawKey.trim().toLowerCase();
    const base = lookUp(BUILT_IN_PRICES, key);
    const input = entry.input ?? base.input;
    table.set(key, price(input, entry.output ?? base.output, { read: entry.cache_read, write: entry.cache_write }));
  }
  return table;
}

/**
 * The price for a model name: an exact key first, then its family for a full model id
 * (`claude-opus-4-6` → opus), then sonnet, as Loki Mode prices unknown models.
 */
export function priceFor(table: PriceTable, model: string | null | undefined): Price {
  // Thousands of efficiency files name a handful of models: remember each answer per table.
  let known = resolved.get(table);
  if (!known) resolved.set(table, (known = new Map()));
  const key = model ?? '';
  let found = known.get(key);
  if (!found) {
    found = lookUp(table, key);
    if (known.size < 1024) known.set(key, found);
  }
  return found;
}

const resolved = new WeakMap<PriceTable, Map<string, Price>>();

function lookUp(table: PriceTable, model: string): Price {
  const name = model.trim().toLowerCase();
  const exact = table.get(name);
  if (exact) return exact;
  const key = priceKey(name);
  return (key && table.get(key)) || table.get(FALLBACK_MODEL) || BUILT_IN_PRICES.get(FALLBACK_MODEL)!;
}

/** The built-in key that prices a full model id. */
function priceKey(name: string): string | undefined {
  if (name.includes('opus')) return 'opus';
  if (name.includes('haiku')) return 'haiku';
  if (name.includes('sonnet')) return 'sonnet';
  if (name.includes('fable')) return 'fable';
  if (name.includes('gemini')) return name.includes('flash') ? 'gemini-3-flash' : 'gemini-3-pro';
  if (name.includes('codex')) return 'gpt-5.3-codex';
  for (const tier of ['sol', 'terra', 'luna']) if (name.includes(`gpt-5.6-${tier}`)) return `gpt-5.6-${tier}`;
  return undefined;
}

/** The four token counts of one efficiency record (absent = 0). */
export function recordTokens(record: EfficiencyRecord): { input: number; output: number; cache_read: number; cache_creation: number } {
  return {
    input: record.input_tokens ?? 0,
    output: record.output_tokens ?? 0,
    cache_read: record.cache_read_tokens ?? 0,
    cache_creation: record.cache_creation_tokens ?? 0,
  };
}

/**
 * One efficiency file's cost: its `cost_usd` when present, else tokens × price (cache tokens at the
 * model's cache prices). A `cost_usd` of 0 next to non-zero tokens is a tracker mismatch hiding real
 * usage (9.x writes 0 whenever nothing was measured), so the tokens are priced then.
 */
export function iterationCost(record: EfficiencyRecord, table: PriceTable): number {
  const t = recordTokens(record);
  const recorded = record.cost_usd;
  const anyTokens = t.input + t.output + t.cache_read + t.cache_creation > 0;
  if (recorded !== undefined && recorded !== null && (recorded > 0 || !anyTokens)) return recorded;
  const p = priceFor(table, record.model);
  return (t.input * p.input + t.output * p.output + t.cache_read * p.cacheRead + t.cache_creation * p.cacheWrite) / 1e6;
}
