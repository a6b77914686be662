import * as v from 'valibot';
import { MAX_COUNT, isoTimestampMs, jsonObject, nonNegativeInteger, validate, type ParseResult } from './parse.js';
import { MAX_PID } from './pid.js';

/**
 * One `events.jsonl` line (state-files.md §1.5). run.sh writes
 * `{"timestamp":"…Z","type":"<t>","data":{…}}` with numbers possibly as strings; the dashboard's
 * control.py writes µs and `+00:00`; checkpoint rollback lines have neither `type` nor `data`.
 * Only the fields the exporter uses are checked; everything else passes through untouched.
 */
const EventPid = v.pipe(nonNegativeInteger(MAX_PID), v.minValue(1));

export const EventLineSchema = v.pipe(
  jsonObject(
    v.looseObject({
      timestamp: v.optional(isoTimestampMs),
      type: v.optional(v.string()),
      data: v.optional(
        jsonObject(
          v.looseObject({
            iteration: v.optional(nonNegativeInteger(MAX_COUNT)),
            // A pid we cannot use is no reason to lose the line's other fields.
            pid: v.optional(v.unknown()),
          }),
        ),
      ),
    }),
  ),
  v.transform((line): EventLine => {
    const out: { type?: string; timestampMs?: number; iteration?: number; pid?: number } = {};
    if (line.type !== undefined) out.type = line.type;
    if (line.timestamp !== undefined) out.timestampMs = line.timestamp;
    if (line.data?.iteration !== undefined) out.iteration = line.data.iteration;
    // A pid we cannot use is no reason to lose the line's other fields.
    const pid = v.safeParse(EventPid, line.data?.pid);
    if (pid.success) out.pid = pid.output;
    return out;
  }),
);

export interface EventLine {
  readonly type?: string;
  /** `timestamp`, as epoch ms. */
  readonly timestampMs?: number;
  /** `data.iteration`, accepting `4` and `"4"`. */
  readonly iteration?: number;
  /** `data.pid` (the runner's, on `session_start`), when it is a usable pid. */
  readonly pid?: number;
}

/** One line of text (without its newline) → the fields the exporter uses, or why it is unusable. */
export function readEventLine(text: string): ParseResult<EventLine> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { ok: false, problem: 'not valid JSON' };
  }
  return validate(EventLineSchema, json);
}
