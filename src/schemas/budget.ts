import * as v from 'valibot';
import { MAX_USD, isoTimestampMs, jsonObject, nonNegativeNumber, parseJsonFile } from './parse.js';

/** `metrics/budget.json`: written by run.sh only when LOKI_BUDGET_LIMIT is set. */
export const BudgetSchema = jsonObject(
  v.looseObject({
  limit: v.optional(v.nullable(nonNegativeNumber(MAX_USD))),
  budget_limit: v.optional(v.nullable(nonNegativeNumber(MAX_USD))),
  exceeded: v.optional(v.boolean()),
  }),
);
export type Budget = v.InferOutput<typeof BudgetSchema>;

export const readBudget = (bytes: Uint8Array) => parseJsonFile(BudgetSchema, bytes);

/**
 * `signals/BUDGET_EXCEEDED`: written each time the guard trips and never deleted upstream, so only
 * its time tells whether it belongs to the current session.
 */
export const BudgetSignalSchema = jsonObject(v.looseObject({ timestamp: v.optional(isoTimestampMs) }));
export type BudgetSignal = v.InferOutput<typeof BudgetSignalSchema>;

export const readBudgetSignal = (bytes: Uint8Array) => parseJsonFile(BudgetSignalSchema, bytes);
