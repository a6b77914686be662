import * as v from 'valibot';
import { MAX_COUNT, jsonObject, nonNegativeInteger, parseJsonFile } from './parse.js';

/** `state/orchestrator.json`: created once per project, then free-form (the AI agent edits it). */
export const OrchestratorSchema = jsonObject(v.looseObject({ currentIteration: v.optional(v.nullable(nonNegativeInteger(MAX_COUNT))) }));
export type Orchestrator = v.InferOutput<typeof OrchestratorSchema>;

export const readOrchestrator = (bytes: Uint8Array) => parseJsonFile(OrchestratorSchema, bytes);
