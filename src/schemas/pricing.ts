import * as v from 'valibot';
import { MAX_USD, jsonObject, nonNegativeNumber, parseJsonFile } from './parse.js';

const usd = v.optional(nonNegativeNumber(MAX_USD));

/**
 * `pricing.json`: USD per million tokens by model key; rewritten in place at every run.sh start.
 * Cache prices are optional (`cache_read`, `cache_write`; `cache_creation` is read as `cache_write`).
 */
const PriceSchema = v.pipe(
  jsonObject(v.looseObject({ input: usd, output: usd, cache_read: usd, cache_write: usd, cache_creation: usd })),
  v.transform(({ cache_creation, ...entry }) => ({
    ...entry,
    ...(entry.cache_write === undefined && cache_creation !== undefined ? { cache_write: cache_creation } : {}),
  })),
);

export const PricingSchema = jsonObject(v.looseObject({ models: v.optional(v.nullable(jsonObject(v.record(v.string(), PriceSchema)))) }));
export type PricingFile = v.InferOutput<typeof PricingSchema>;

export const readPricing = (bytes: Uint8Array) => parseJsonFile(PricingSchema, bytes);
