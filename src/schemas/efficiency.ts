import * as v from 'valibot';
import { MAX_COUNT, MAX_USD, nonNegativeInteger, nonNegativeNumber, parseJsonFile } from './parse.js';

/**
 * `metrics/efficiency/iteration-N.json`: one per finished iteration, written in place (empty or
 * partial reads happen; `"cost_usd": None` is invalid JSON). Legacy files have no tokens or cost;
 * third-party ones have no model.
 */
export const EfficiencySchema = v.looseObject({
  iteration: v.optional(nonNegativeInteger(MAX_COUNT)),
  model: v.optional(v.nullable(v.string())),
  input_tokens: v.optional(v.nullable(nonNegativeNumber(MAX_COUNT))),
  output_tokens: v.optional(v.nullable(nonNegativeNumber(MAX_COUNT))),
  cost_usd: v.optional(v.nullable(nonNegativeNumber(MAX_USD))),
});
export type EfficiencyRecord = v.InferOutput<typeof EfficiencySchema>;

export const readEfficiencyFile = (bytes: Uint8Array) => parseJsonFile(EfficiencySchema, bytes);
