/**
 * The rules that turn parsed state into the guide's values: liveness and the current session, the
 * iteration, tasks, agents, the run outcome. Pure: parsed values and times in, numbers out.
 */
import type { TaskStatus } from './catalogue.js';
import type { Agent } from './schemas/agents.js';
import { countAgents } from './schemas/agents.js';
import type { Budget } from './schemas/budget.js';
import type { AutonomyState } from './schemas/autonomy-state.js';
import type { Completion } from './schemas/completion.js';
import type { DashboardState } from './schemas/dashboard-state.js';
import { iterationFromId } from './schemas/parse.js';
import type { EventsSummary, RunnerVerdict } from './stores/store.js';

const SESSION = { stopped: 0, running: 1, paused: 2 } as const;

/**
 * A runner that started more than this after the latest `session_start` is a new run whose own
 * `session_start` has not arrived yet (run.sh writes `loki.pid` 4–8 s before it). The margin
 * absorbs whole-second event timestamps.
 */
export const NEW_RUN_MARGIN_MS = 1_000;

/** A `dashboard-state.json` rewritten within the window; an mtime far in the future (the clock jumped back) is none. */
export function isHeartbeat(mtimeMs: number | undefined, nowMs: number, windowMs: number): boolean {
  return mtimeMs !== undefined && Math.abs(nowMs - mtimeMs) <= windowMs;
}

export interface SessionInput {
  readonly verdict: RunnerVerdict;
  readonly heartbeat: boolean;
  /** Synced state not refreshed for too long. */
  readonly syncStale: boolean;
  readonly paused: boolean;
  readonly stopping: boolean;
  readonly events: EventsSummary;
  readonly state: DashboardState;
  readonly stateMtimeMs: number | undefined;
  readonly pidFileMtimeMs: number | undefined;
  readonly nowMs: number;
}

export interface Session {
  readonly alive: boolean;
  /** `loki_session_status`. */
  readonly status: number;
  /** A live runner newer than the latest `session_start`: its own has not arrived yet. */
  readonly newRun: boolean;
  /** When the latest session started, as far as the runner or the events tell (for the run outcome). */
  readonly latestStartMs: number | undefined;
  readonly uptimeSeconds: number;
}

/**
 * Alive: the runner's pids where they decide (see liveness.ts), else the heartbeat; `mode` alone is
 * never trusted. The current session starts at the latest `session_start`, unless a live runner
 * started after it (and it does not name that runner): then at the runner's start.
 */
export function currentSession(input: SessionInput): Session {
  const { verdict, events, state: s } = input;
  const alive = (verdict.decided ? verdict.alive : input.heartbeat) && !input.syncStale;
  const stopping = !input.paused && input.stopping;
  const status = !alive || stopping ? SESSION.stopped : input.paused ? SESSION.paused : SESSION.running;

  const runnerStartMs = alive && verdict.decided ? verdict.startedMs : undefined;
  const newRun =
    runnerStartMs !== undefined &&
    events.sessionStartMs !== undefined &&
    runnerStartMs - events.sessionStartMs > NEW_RUN_MARGIN_MS &&
    !(events.sessionPid !== undefined && events.sessionPid === verdict.pid);
  const startedAtMs = s.startedAt ? Date.parse(s.startedAt) : Number.NaN;
  const startMs = newRun
    ? runnerStartMs
    : (events.sessionStartMs ??
      (Number.isFinite(startedAtMs) ? startedAtMs : undefined) ??
      (s.uptime_seconds !== undefined && input.stateMtimeMs !== undefined ? input.stateMtimeMs - s.uptime_seconds * 1000 : undefined) ??
      runnerStartMs ??
      input.pidFileMtimeMs);
  const uptime = alive && startMs !== undefined ? Math.max(0, (input.nowMs - startMs) / 1000) : 0;
  return {
    alive,
    status,
    newRun,
    latestStartMs: newRun ? runnerStartMs : events.sessionStartMs,
    uptimeSeconds: Math.round(uptime * 1000) / 1000,
  };
}

/** Every `outcome` 9.22's run.sh writes; anything else is `other`, so the label stays bounded. */
export const RUN_OUTCOMES = [
  'complete',
  'max_iterations',
  'max_duration',
  'failed',
  'force_stopped',
  'stopped',
  'intervention',
  'inconclusive_spec_contradiction',
] as const;

function outcomeLabel(outcome: string): string {
  const label = outcome.trim().toLowerCase();
  return (RUN_OUTCOMES as readonly string[]).includes(label) ? label : 'other';
}

/**
 * `loki_run_outcome`'s label, when `state/completion.json` describes the latest session (written at
 * or after its start). A SIGKILLed run writes none, so the file left by the run before it must not
 * speak for it; nor may it during a newer run.
 */
export function runOutcome(completion: Completion | undefined, mtimeMs: number | undefined, latestStartMs: number | undefined): string | undefined {
  if (!completion) return undefined;
  if (latestStartMs !== undefined && (mtimeMs === undefined || mtimeMs < latestStartMs)) return undefined;
  return outcomeLabel(completion.outcome);
}

/**
 * `autonomy-state.json` when it describes the current run: written by the live runner (its `pid`),
 * or, without a pid, no older than the latest `session_start`.
 */
export function currentAutonomyState(
  value: AutonomyState | undefined,
  mtimeMs: number | undefined,
  runnerPid: number | undefined,
  sessionStartMs: number | undefined,
): AutonomyState | undefined {
  if (!value) return undefined;
  if (value.pid !== undefined && value.pid !== null && runnerPid !== undefined) return value.pid === runnerPid ? value : undefined;
  if (sessionStartMs === undefined || mtimeMs === undefined) return value;
  return mtimeMs + NEW_RUN_MARGIN_MS >= sessionStartMs ? value : undefined;
}

/**
 * Best source first (state-files.md §3.2): the latest `iteration_start` of the current session;
 * then the runner's own counter in `autonomy-state.json` (9.x) when it describes this run; a
 * session that has started neither is at 0. Without any `session_start`: that counter, a non-zero
 * `iteration` in the snapshot (real in `loki demo`), the highest `iteration-N` in the task queues,
 * the efficiency files, then `orchestrator.json`'s `currentIteration`.
 */
export function currentIteration(
  events: EventsSummary,
  autonomyState: AutonomyState | undefined,
  s: DashboardState,
  currentTaskId: unknown,
  /** The highest `iteration` among the efficiency files (0 when none). */
  efficiencyIteration: number,
  orchestratorIteration: number | null | undefined,
): number {
  const counter = autonomyState?.iterationCount ?? undefined;
  if (events.sessionStartMs !== undefined) return events.iteration ?? counter ?? 0;
  if (counter !== undefined) return counter;
  if (s.iteration) return s.iteration;
  let fromQueues = typeof currentTaskId === 'string' ? (iterationFromId(currentTaskId) ?? 0) : 0;
  for (const list of [s.tasks?.inProgress, s.tasks?.completed, s.tasks?.failed]) {
    for (const task of list ?? []) {
      const id = (task as { id?: unknown } | null)?.id;
      if (typeof id === 'string') fromQueues = Math.max(fromQueues, iterationFromId(id) ?? 0);
    }
  }
  if (fromQueues > 0) return fromQueues;
  if (efficiencyIteration > 0) return efficiencyIteration;
  return orchestratorIteration ?? 0;
}

export function taskCounts(s: DashboardState): Record<TaskStatus, number> {
  if (s.tasks) {
    return {
      pending: s.tasks.pending?.length ?? 0,
      in_progress: s.tasks.inProgress?.length ?? 0,
      completed: s.tasks.completed?.length ?? 0,
      failed: s.tasks.failed?.length ?? 0,
    };
  }
  // `loki demo`'s flat variant
  return {
    pending: s.pending_tasks ?? 0,
    in_progress: s.in_progress_tasks ?? 0,
    completed: s.completed_tasks ?? 0,
    failed: s.failed_tasks ?? 0,
  };
}

/**
 * `state/agents.json` when it lists anyone, else the snapshot's own `agents` list, else `loki demo`'s
 * flat `running_agents`/`total_agents` counts.
 */
export function agentCounts(fromFile: readonly Agent[] | undefined, s: DashboardState): { active: number; total: number } {
  if (fromFile && fromFile.length > 0) return countAgents(fromFile);
  if (Array.isArray(s.agents)) {
    const list = s.agents.filter((a): a is Agent => typeof a === 'object' && a !== null && !Array.isArray(a));
    if (list.length > 0) return countAgents(list);
  }
  return { active: s.running_agents ?? 0, total: s.total_agents ?? s.running_agents ?? 0 };
}

export interface BudgetInput {
  /** `metrics/budget.json`, when valid. */
  readonly file: Budget | undefined;
  /** `LOKI_BUDGET_LIMIT`, USD. */
  readonly defaultLimitUsd: number | undefined;
  /** `signals/BUDGET_EXCEEDED` when present: when it was raised (its `timestamp`, else its mtime). */
  readonly signal: { readonly atMs: number | undefined } | undefined;
  readonly sessionStartMs: number | undefined;
  readonly costUsd: number;
}

/**
 * The budget limit and whether it is exceeded. A file limit of 0 (or null, or none) means no limit
 * of its own: `LOKI_BUDGET_LIMIT` applies. Exceeded when the file says so, when the signal was raised
 * in the current session (a signal from an earlier session, or of unknown time after a session
 * start, is stale), or when the cost has reached a positive limit.
 */
export function budgetState(input: BudgetInput): { limit: number; exceeded: boolean } {
  const { file, signal, sessionStartMs } = input;
  const fileLimit = file?.limit ?? file?.budget_limit ?? 0;
  const limit = fileLimit > 0 ? fileLimit : (input.defaultLimitUsd ?? 0);
  const signalCurrent = signal !== undefined && (sessionStartMs === undefined || (signal.atMs !== undefined && signal.atMs >= sessionStartMs));
  return { limit, exceeded: file?.exceeded === true || signalCurrent || (limit > 0 && input.costUsd >= limit) };
}

/** The last non-empty agent counts, and when they were read. */
export interface HeldAgents {
  readonly active: number;
  readonly total: number;
  readonly atMs: number;
}

/**
 * An empty agent list read within `holdMs` after a non-empty one keeps the non-empty counts (a
 * list rewritten between iterations is empty for a moment). Returns the counts to report and what
 * to hold for the next read. A clock that went back never holds.
 */
export function holdAgentCounts(
  counted: { readonly active: number; readonly total: number },
  held: HeldAgents | undefined,
  nowMs: number,
  holdMs: number,
): { shown: { readonly active: number; readonly total: number }; held: HeldAgents | undefined } {
  if (counted.total > 0) return { shown: counted, held: { ...counted, atMs: nowMs } };
  if (held && nowMs >= held.atMs && nowMs - held.atMs <= holdMs) return { shown: held, held };
  return { shown: counted, held };
}
