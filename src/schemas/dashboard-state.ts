import * as v from 'valibot';
import { MAX_COUNT, jsonObject, nonNegativeInteger, parseJsonFile } from './parse.js';

/**
 * `dashboard-state.json`: run.sh's snapshot (every ~2 s, temp+rename but often torn or invalid
 * because raw queue text is pasted in) or `loki demo`'s flat variant. Only the fields the collector
 * uses are validated; the rest pass through untouched.
 */
const taskList = v.array(v.unknown());

export const DashboardStateSchema = jsonObject(
  v.looseObject({
  mode: v.optional(v.string()),
  /** Frozen at 0 under run.sh (writer bug); real in `loki demo`. `null` is treated as absent. */
  iteration: v.optional(v.nullable(nonNegativeInteger(MAX_COUNT))),
  startedAt: v.optional(v.nullable(v.string())),
  tasks: v.optional(
    v.nullable(
      jsonObject(
        v.looseObject({
          pending: v.optional(taskList),
          inProgress: v.optional(taskList),
          completed: v.optional(taskList),
          failed: v.optional(taskList),
        }),
      ),
    ),
  ),
  agents: v.optional(v.unknown()),
  // `loki demo`'s flat variant
  pending_tasks: v.optional(nonNegativeInteger(MAX_COUNT)),
  in_progress_tasks: v.optional(nonNegativeInteger(MAX_COUNT)),
  completed_tasks: v.optional(nonNegativeInteger(MAX_COUNT)),
  failed_tasks: v.optional(nonNegativeInteger(MAX_COUNT)),
  running_agents: v.optional(nonNegativeInteger(MAX_COUNT)),
  total_agents: v.optional(nonNegativeInteger(MAX_COUNT)),
  uptime_seconds: v.optional(v.pipe(v.number(), v.finite(), v.minValue(0))),
  }),
);
export type DashboardState = v.InferOutput<typeof DashboardStateSchema>;

export const readDashboardState = (bytes: Uint8Array) => parseJsonFile(DashboardStateSchema, bytes);
