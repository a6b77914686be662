import * as v from 'valibot';
import { isoTimestampMs, jsonObject, nonNegativeInteger, nonNegativeNumber, parseJsonFile } from './parse.js';
import { MAX_PID } from './pid.js';

const pid = v.pipe(nonNegativeInteger(MAX_PID), v.minValue(1, 'Expected a pid from 1'));

/**
 * `pids/<pid>.json` (8.56+): Loki Mode's process registry. The runner wrapper has
 * `"kind": "wrapper"`; helpers (status monitor, resource monitor) have no kind and name the wrapper
 * as `ppid`. `started` is when the process registered: after it started, so a live process with
 * that pid which started later is not it (liveness.ts).
 */
export const PidEntrySchema = jsonObject(
  v.looseObject({
  pid,
  label: v.optional(v.nullable(v.string())),
  kind: v.optional(v.nullable(v.string())),
  ppid: v.optional(v.nullable(pid)),
  started: v.optional(v.nullable(v.union([isoTimestampMs, nonNegativeNumber(1e13)]))),
  }),
);
export type PidEntry = v.InferOutput<typeof PidEntrySchema>;

export const readPidEntry = (bytes: Uint8Array) => parseJsonFile(PidEntrySchema, bytes);

/** `started` as epoch ms: ISO text as is, a number as epoch seconds (or ms when it is that large). */
export function startedMs(entry: PidEntry): number | undefined {
  const started = entry.started;
  if (started === undefined || started === null) return undefined;
  return started > 1e11 ? started : started * 1000;
}
