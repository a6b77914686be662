import * as v from 'valibot';
import { MAX_COUNT, MAX_USD, jsonObject, nonNegativeInteger, nonNegativeNumber, parseJsonFile } from './parse.js';

const tokens = v.optional(v.nullable(nonNegativeNumber(MAX_COUNT)));

/**
 * `metrics/efficiency/iteration-N.json`: one per finished iteration, written in place (empty or
 * partial reads happen; `"cost_usd": None` is invalid JSON). Legacy files have no tokens or cost;
 * third-party ones have no model. 9.x adds cache tokens, `status` and `duration_ms`, and writes
 * `cost_usd` as 0 when nothing was measured.
 *
 * Only these fields are kept (`v.object` drops the rest: 9.x's `phase`, `provider`, `timestamp`, or
 * anything a file carries besides): a parsed record is kept per file for as long as the file
 * exists, and the metrics read nothing else.
 */
export const EfficiencySchema = jsonObject(
  v.object({
  iteration: v.optional(nonNegativeInteger(MAX_COUNT)),
  model: v.optional(v.nullable(v.string())),
  input_tokens: tokens,
  output_tokens: tokens,
  cache_read_tokens: tokens,
  cache_creation_tokens: tokens,
  cost_usd: v.optional(v.nullable(nonNegativeNumber(MAX_USD))),
  status: v.optional(v.nullable(v.string())),
  /** Up to 30 days; beyond it a value is garbage. */
  duration_ms: v.optional(v.nullable(nonNegativeNumber(30 * 86_400_000))),
  }),
);
export type EfficiencyRecord = v.InferOutput<typeof EfficiencySchema>;

export const readEfficiencyFile = (bytes: Uint8Array) => parseJsonFile(EfficiencySchema, bytes);
