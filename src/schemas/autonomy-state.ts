import * as v from 'valibot';
import { MAX_COUNT, jsonObject, nonNegativeInteger, parseJsonFile } from './parse.js';
import { MAX_PID } from './pid.js';

/**
 * `autonomy-state.json` (9.x, also `sessions/<id>/`): the runner's own loop state, rewritten in
 * place. `iterationCount` is its real iteration counter; `pid` the runner that wrote it.
 */
export const AutonomyStateSchema = jsonObject(
  v.looseObject({
  iterationCount: v.optional(v.nullable(nonNegativeInteger(MAX_COUNT))),
  status: v.optional(v.nullable(v.string())),
  pid: v.optional(v.nullable(v.pipe(nonNegativeInteger(MAX_PID), v.minValue(1)))),
  }),
);
export type AutonomyState = v.InferOutput<typeof AutonomyStateSchema>;

export const readAutonomyState = (bytes: Uint8Array) => parseJsonFile(AutonomyStateSchema, bytes);
