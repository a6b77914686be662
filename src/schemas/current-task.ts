import * as v from 'valibot';
import { jsonObject, parseJsonFile } from './parse.js';

/**
 * `queue/current-task.json`: the task run.sh is working on, e.g. `{"id": "iteration-6", ...}`. Any
 * object: `id` may be anything (rules.ts reads an iteration from it only when it is text), so the
 * schema names no field, where an entry accepting any value would check nothing.
 */
export const CurrentTaskSchema = jsonObject(v.looseObject({}));
export type CurrentTask = v.InferOutput<typeof CurrentTaskSchema>;

export const readCurrentTask = (bytes: Uint8Array) => parseJsonFile(CurrentTaskSchema, bytes);
