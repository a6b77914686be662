import * as v from 'valibot';
import { MAX_USD, nonNegativeNumber, parseJsonFile } from './parse.js';

/** `pricing.json`: USD per million tokens by model key; rewritten in place at every run.sh start. */
const PriceSchema = v.looseObject({
  input: v.optional(nonNegativeNumber(MAX_USD)),
  output: v.optional(nonNegativeNumber(MAX_USD)),
});

export const PricingSchema = v.looseObject({
  models: v.optional(v.nullable(v.record(v.string(), PriceSchema))),
});
export type PricingFile = v.InferOutput<typeof PricingSchema>;

export const readPricing = (bytes: Uint8Array) => parseJsonFile(PricingSchema, bytes);
