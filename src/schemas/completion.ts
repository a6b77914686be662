import * as v from 'valibot';
import { jsonObject, parseJsonFile } from './parse.js';

/** `state/completion.json` (9.x): how the last run ended. Only `outcome` is used. */
export const CompletionSchema = jsonObject(
  v.looseObject({
  outcome: v.pipe(v.string(), v.trim(), v.nonEmpty('Expected a non-empty outcome'), v.maxLength(64, 'Expected an outcome name')),
  }),
);
export type Completion = v.InferOutput<typeof CompletionSchema>;

export const readCompletion = (bytes: Uint8Array) => parseJsonFile(CompletionSchema, bytes);
