import * as v from 'valibot';
import { jsonObject, parseJsonFile } from './parse.js';

/** `queue/current-task.json`: the task run.sh is working on, e.g. `{"id": "iteration-6", ...}`. */
export const CurrentTaskSchema = jsonObject(v.looseObject({ id: v.optional(v.unknown()) }));
export type CurrentTask = v.InferOutput<typeof CurrentTaskSchema>;

export const readCurrentTask = (bytes: Uint8Array) => parseJsonFile(CurrentTaskSchema, bytes);
