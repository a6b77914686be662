import * as v from 'valibot';
import { MAX_COUNT, nonNegativeInteger, parseJsonFile } from './parse.js';

/** `state/orchestrator.json`: created once per project, then free-form (the AI agent edits it). */
export const OrchestratorSchema = v.looseObject({
  currentIteration: v.optional(v.nullable(nonNegativeInteger(MAX_COUNT))),
});
export type Orchestrator = v.InferOutput<typeof OrchestratorSchema>;

export const readOrchestrator = (bytes: Uint8Array) => parseJsonFile(OrchestratorSchema, bytes);
