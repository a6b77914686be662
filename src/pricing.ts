import type { EfficiencyRecord } from './schemas/efficiency.js';
import type { PricingFile } from './schemas/pricing.js';

/** USD per million tokens. */
export interface Price {
  readonly input: number;
  readonly output: number;
}
export type PriceTable = ReadonlyMap<string, Price>;

/** Loki Mode v5.46.0's built-in prices (run.sh / dashboard), keyed by lower-case model key. */
export const BUILT_IN_PRICES: PriceTable = new Map<string, Price>([
  ['opus', { input: 5.0, output: 25.0 }],
  ['sonnet', { input: 3.0, output: 15.0 }],
  ['haiku', { input: 1.0, output: 5.0 }],
  ['gpt-5.3-codex', { input: 1.5, output: 12.0 }],
  ['gemini-3-pro', { input: 1.25, output: 10.0 }],
  ['gemini-3-flash', { input: 0.1, output: 0.4 }],
]);

const FALLBACK_MODEL = 'sonnet';

/**
 * Built-in prices with `pricing.json` applied: each model key in the file replaces the built-in
 * entry of that name (keys compared lower-case); a field the file leaves out keeps the built-in
 * value of that key, or sonnet's for a new key.
 */
export function priceTable(file: PricingFile | undefined): PriceTable {
  const models = file?.models;
  if (!models) return BUILT_IN_PRICES;
  const table = new Map(BUILT_IN_PRICES);
  for (const [rawKey, entry] of Object.entries(models)) {
    const key = rawKey.trim().toLowerCase();
    const base = BUILT_IN_PRICES.get(key) ?? BUILT_IN_PRICES.get(FALLBACK_MODEL)!;
    table.set(key, { input: entry.input ?? base.input, output: entry.output ?? base.output });
  }
  return table;
}

/**
 * The price for a model name: an exact key first, then its family for a full model id
 * (`claude-opus-4-6` → opus), then sonnet, as Loki Mode prices unknown models.
 */
export function priceFor(table: PriceTable, model: string | null | undefined): Price {
  const name = (model ?? '').trim().toLowerCase();
  const exact = table.get(name);
  if (exact) return exact;
  const family = modelFamily(name);
  return (family && table.get(family)) || table.get(FALLBACK_MODEL) || BUILT_IN_PRICES.get(FALLBACK_MODEL)!;
}

function modelFamily(name: string): string | undefined {
  if (name.includes('opus')) return 'opus';
  if (name.includes('haiku')) return 'haiku';
  if (name.includes('sonnet')) return 'sonnet';
  if (name.includes('gemini')) return name.includes('flash') ? 'gemini-3-flash' : 'gemini-3-pro';
  if (name.includes('codex')) return 'gpt-5.3-codex';
  return undefined;
}

/**
 * One efficiency file's cost: its `cost_usd` when present, else tokens × price. A `cost_usd` of 0
 * next to non-zero tokens is a tracker mismatch hiding real usage, so the tokens are priced then.
 */
export function iterationCost(record: EfficiencyRecord, table: PriceTable): number {
  const input = record.input_tokens ?? 0;
  const output = record.output_tokens ?? 0;
  const recorded = record.cost_usd;
  if (recorded !== undefined && recorded !== null && (recorded > 0 || input + output === 0)) return recorded;
  const price = priceFor(table, record.model);
  return (input / 1e6) * price.input + (output / 1e6) * price.output;
}
