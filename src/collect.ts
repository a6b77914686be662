import { TASK_STATUSES, type FamilyName, type TaskStatus } from './catalogue.js';
import { iterationCost, priceTable } from './pricing.js';
import { countAgents, readAgents, type Agent } from './schemas/agents.js';
import { readBudget, readBudgetSignal } from './schemas/budget.js';
import { readCurrentTask } from './schemas/current-task.js';
import { readDashboardState, type DashboardState } from './schemas/dashboard-state.js';
import { readEfficiencyFile, type EfficiencyRecord } from './schemas/efficiency.js';
import { readOrchestrator } from './schemas/orchestrator.js';
import { iterationFromId } from './schemas/parse.js';
import { readPidFile } from './schemas/pid.js';
import { readPricing, type PricingFile } from './schemas/pricing.js';
import type { Sample, Snapshot, SourceStatus } from './snapshot.js';
import { SourceTracker, type Log } from './source-tracker.js';
import { EFFICIENCY_DIR, EVENTS_FILE, type StateReading } from './stores/store.js';

export interface CollectorOptions {
  /** `LOKI_MAX_ITERATIONS`. */
  readonly maxIterations: number;
  /** `LOKI_BUDGET_LIMIT` in USD, used when `metrics/budget.json` gives no limit. */
  readonly budgetLimitUsd?: number;
  /** A `dashboard-state.json` rewritten within this window means the session is alive. */
  readonly heartbeatWindowMs: number;
  /** An empty agent list read within this long after a non-empty one keeps the non-empty counts. */
  readonly agentsHoldMs: number;
  /** Remote stores: no sync for this long means the session is stopped. */
  readonly syncStaleMs?: number;
  readonly version: string;
  readonly log: Log;
}

export interface Collector {
  /** State → Snapshot. Pure apart from the memo it keeps across calls; time is passed in. */
  collect(reading: StateReading, nowMs: number): Snapshot;
}

const SESSION = { stopped: 0, running: 1, paused: 2 } as const;

/** Round money to micro-dollars so float noise (3.5313000000000003) never reaches the output. */
const roundUsd = (usd: number) => Math.round(usd * 1e6) / 1e6;

export function createCollector(options: CollectorOptions): Collector {
  const { log } = options;
  const dashboard = new SourceTracker('dashboard-state.json', readDashboardState, log);
  const pid = new SourceTracker('loki.pid', readPidFile, log);
  const agents = new SourceTracker('state/agents.json', readAgents, log);
  const orchestrator = new SourceTracker('state/orchestrator.json', readOrchestrator, log);
  const currentTask = new SourceTracker('queue/current-task.json', readCurrentTask, log);
  const pricing = new SourceTracker('pricing.json', readPricing, log);
  const budget = new SourceTracker('metrics/budget.json', readBudget, log);
  const budgetSignal = new SourceTracker('signals/BUDGET_EXCEEDED', readBudgetSignal, log);
  const efficiencyFiles = new Map<string, SourceTracker<EfficiencyRecord>>();
  let heldAgents: { active: number; total: number; atMs: number } | undefined;
  let lastLoggedDirProblem: string | undefined;
  let lastLoggedEventsError: string | undefined;
  let lastLoggedEfficiencyError: string | undefined;

  /** One log line when a directory-level source (not a tracked file) goes bad, and one when it recovers. */
  function logTransition(source: string, error: string | undefined, last: string | undefined): string | undefined {
    if (error !== last) log(`loki-metrics: ${source}: ${error ?? 'ok again'}`);
    return error;
  }

  // A store hands back the same `files` array while nothing in the directory changed, so a warm
  // refresh over thousands of unchanged files skips the per-file work entirely.
  let efficiencyMemo: { files: unknown; error: string | undefined; result: ReturnType<typeof collectEfficiencyFiles> } | undefined;
  let costMemo: { records: unknown; pricing: unknown; cost: number } | undefined;

  function collectEfficiency(reading: StateReading) {
    const { files, error } = reading.efficiency;
    if (efficiencyMemo?.files !== files || efficiencyMemo.error !== error) {
      efficiencyMemo = { files, error, result: collectEfficiencyFiles(reading) };
    }
    return efficiencyMemo.result;
  }

  function totalCost(records: readonly EfficiencyRecord[], pricingFile: PricingFile | undefined): number {
    if (costMemo?.records !== records || costMemo.pricing !== pricingFile) {
      const prices = priceTable(pricingFile);
      let cost = 0;
      for (const record of records) cost += iterationCost(record, prices);
      costMemo = { records, pricing: pricingFile, cost: roundUsd(cost) };
    }
    return costMemo.cost;
  }

  function collectEfficiencyFiles(reading: StateReading) {
    const seen = new Set<string>();
    const records: EfficiencyRecord[] = [];
    const bad: string[] = [];
    for (const file of reading.efficiency.files) {
      seen.add(file.name);
      let tracker = efficiencyFiles.get(file.name);
      if (!tracker) {
        tracker = new SourceTracker(`${EFFICIENCY_DIR}/${file.name}`, readEfficiencyFile, log);
        efficiencyFiles.set(file.name, tracker);
      }
      const tracked = tracker.update(file);
      if (tracked.value) records.push(tracked.value);
      if (!tracked.status.ok) bad.push(`${file.name}: ${tracked.status.problem}`);
    }
    if (efficiencyFiles.size > seen.size) {
      for (const name of efficiencyFiles.keys()) if (!seen.has(name)) efficiencyFiles.delete(name);
    }
    const problem = reading.efficiency.error ?? (bad.length ? `${bad.length} bad file(s): ${bad.slice(0, 3).join('; ')}` : undefined);
    const status: SourceStatus = {
      source: EFFICIENCY_DIR,
      ok: problem === undefined,
      present: reading.efficiency.present,
      ...(reading.efficiency.mtimeMs !== undefined ? { mtimeMs: reading.efficiency.mtimeMs } : {}),
      ...(problem !== undefined ? { problem } : {}),
    };
    return { records, status };
  }

  return {
    collect(reading, nowMs) {
      const docs = reading.documents;
      if (!reading.available && reading.problem !== lastLoggedDirProblem) {
        log(`loki-metrics: state directory unreadable: ${reading.problem ?? 'unknown reason'}`);
      }
      lastLoggedDirProblem = reading.available ? undefined : reading.problem;

      const state = dashboard.update(docs['dashboard-state.json']);
      const pidFile = pid.update(docs['loki.pid']);
      const agentsFile = agents.update(docs['state/agents.json']);
      const orchestratorFile = orchestrator.update(docs['state/orchestrator.json']);
      const currentTaskFile = currentTask.update(docs['queue/current-task.json']);
      const pricingFile = pricing.update(docs['pricing.json']);
      const budgetFile = budget.update(docs['metrics/budget.json']);
      const signalFile = budgetSignal.update(docs['signals/BUDGET_EXCEEDED']);
      const efficiency = collectEfficiency(reading);
      const events = reading.events;
      lastLoggedEventsError = logTransition(EVENTS_FILE, events.error, lastLoggedEventsError);
      // The efficiency directory itself (a symlink, not a directory, unlistable): its files log for themselves.
      lastLoggedEfficiencyError = logTransition(EFFICIENCY_DIR, reading.efficiency.error, lastLoggedEfficiencyError);

      const s: DashboardState = state.value ?? {};

      // ---- liveness: the pid first, then the snapshot heartbeat; `mode` alone is never trusted
      const pidAlive = pidFile.value !== undefined && reading.isProcessAlive(pidFile.value);
      const stateMtime = docs['dashboard-state.json'].mtimeMs;
      // An mtime far in the future (the clock jumped back) is no heartbeat; a few seconds of skew is.
      const stateAge = stateMtime === undefined ? Infinity : nowMs - stateMtime;
      const heartbeat = Math.abs(stateAge) <= options.heartbeatWindowMs;
      const syncStale =
        reading.lastSyncMs !== undefined && options.syncStaleMs !== undefined && nowMs - reading.lastSyncMs > options.syncStaleMs;
      const alive = (pidAlive || heartbeat) && !syncStale;
      const paused = docs.PAUSE.present || s.mode === 'paused';
      const stopping = !paused && (docs.STOP.present || s.mode === 'stopped');
      const status = !alive || stopping ? SESSION.stopped : paused ? SESSION.paused : SESSION.running;

      // ---- uptime of the *current* session
      const startedAtMs = s.startedAt ? Date.parse(s.startedAt) : Number.NaN;
      const sessionStartMs =
        events.sessionStartMs ??
        (Number.isFinite(startedAtMs) ? startedAtMs : undefined) ??
        (s.uptime_seconds !== undefined && stateMtime !== undefined ? stateMtime - s.uptime_seconds * 1000 : undefined) ??
        docs['loki.pid'].mtimeMs;
      const uptime = alive && sessionStartMs !== undefined ? Math.max(0, (nowMs - sessionStartMs) / 1000) : 0;

      // ---- the real iteration (dashboard-state's is frozen at 0 by a writer bug)
      const iteration = currentIteration(events, s, currentTaskFile.value?.id, efficiency.records, orchestratorFile.value?.currentIteration);

      // ---- tasks: queue lengths (completed/failed queues keep the last 50 only)
      const tasks = taskCounts(s);

      // ---- agents
      const counted = agentCounts(agentsFile.value, s);
      let agentsNow = counted;
      if (counted.total > 0) heldAgents = { ...counted, atMs: nowMs };
      else if (heldAgents && nowMs >= heldAgents.atMs && nowMs - heldAgents.atMs <= options.agentsHoldMs) agentsNow = heldAgents;
      // A dead session has no active agents, whatever its last agents.json says.
      const agentsActive = alive ? agentsNow.active : 0;

      // ---- cost
      const cost = totalCost(efficiency.records, pricingFile.value);

      // ---- budget
      const b = budgetFile.value;
      const fileLimit = b?.limit ?? b?.budget_limit ?? undefined;
      const limit = fileLimit !== undefined && fileLimit !== null && fileLimit > 0 ? fileLimit : (options.budgetLimitUsd ?? 0);
      const signalAtMs = signalFile.value?.timestamp ?? docs['signals/BUDGET_EXCEEDED'].mtimeMs;
      const signalCurrent =
        docs['signals/BUDGET_EXCEEDED'].present &&
        (events.sessionStartMs === undefined || (signalAtMs !== undefined && signalAtMs >= events.sessionStartMs));
      const exceeded = b?.exceeded === true || signalCurrent || (limit > 0 && cost >= limit);

      // ---- sources
      const eventsStatus: SourceStatus = {
        source: EVENTS_FILE,
        ok: events.error === undefined,
        present: events.present,
        ...(events.mtimeMs !== undefined ? { mtimeMs: events.mtimeMs } : {}),
        ...(events.error !== undefined ? { problem: events.error } : {}),
      };
      const sources: SourceStatus[] = [
        state.status,
        pidFile.status,
        agentsFile.status,
        efficiency.status,
        eventsStatus,
        pricingFile.status,
        budgetFile.status,
        signalFile.status,
        orchestratorFile.status,
        currentTaskFile.status,
      ];

      const one = (value: number): Sample[] => [{ value }];
      const samples = new Map<FamilyName, Sample[]>([
        ['loki_session_status', one(status)],
        ['loki_iteration_current', one(iteration)],
        ['loki_iteration_max', one(options.maxIterations)],
        ['loki_tasks_total', TASK_STATUSES.map((st) => ({ labels: { status: st }, value: tasks[st] }))],
        ['loki_agents_active', one(agentsActive)],
        ['loki_agents_total', one(agentsNow.total)],
        ['loki_cost_usd', one(cost)],
        ['loki_events_total', one(events.lines)],
        ['loki_uptime_seconds', one(Math.round(uptime * 1000) / 1000)],
        ['loki_up', one(reading.available ? 1 : 0)],
        ['loki_budget_limit_usd', one(limit)],
        ['loki_budget_exceeded', one(exceeded ? 1 : 0)],
        ['loki_source_ok', sources.map((src) => ({ labels: { source: src.source }, value: src.ok ? 1 : 0 }))],
        [
          'loki_source_mtime_seconds',
          sources.flatMap((src) => (src.mtimeMs !== undefined ? [{ labels: { source: src.source }, value: src.mtimeMs / 1000 }] : [])),
        ],
        ['loki_last_sync_timestamp_seconds', reading.lastSyncMs !== undefined ? one(reading.lastSyncMs / 1000) : []],
        ['loki_exporter_build_info', [{ labels: { version: options.version }, value: 1 }]],
      ]);
      return { samples, sources, up: reading.available, takenAtMs: nowMs };
    },
  };
}

/**
 * Best source first (state-files.md §3.2): the latest `iteration_start` of the current session; a
 * session that has started none is at 0. Without any `session_start`: a non-zero `iteration` in the
 * snapshot (real in `loki demo`), the highest `iteration-N` in the task queues, the efficiency
 * files, then `orchestrator.json`'s `currentIteration`.
 */
function currentIteration(
  events: StateReading['events'],
  s: DashboardState,
  currentTaskId: unknown,
  records: readonly EfficiencyRecord[],
  orchestratorIteration: number | null | undefined,
): number {
  if (events.sessionStartMs !== undefined) return events.iteration ?? 0;
  if (s.iteration) return s.iteration;
  let fromQueues = typeof currentTaskId === 'string' ? (iterationFromId(currentTaskId) ?? 0) : 0;
  for (const list of [s.tasks?.inProgress, s.tasks?.completed, s.tasks?.failed]) {
    for (const task of list ?? []) {
      const id = (task as { id?: unknown } | null)?.id;
      if (typeof id === 'string') fromQueues = Math.max(fromQueues, iterationFromId(id) ?? 0);
    }
  }
  if (fromQueues > 0) return fromQueues;
  const fromEfficiency = records.reduce((max, r) => Math.max(max, r.iteration ?? 0), 0);
  if (fromEfficiency > 0) return fromEfficiency;
  return orchestratorIteration ?? 0;
}

function taskCounts(s: DashboardState): Record<TaskStatus, number> {
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
function agentCounts(fromFile: readonly Agent[] | undefined, s: DashboardState): { active: number; total: number } {
  if (fromFile && fromFile.length > 0) return countAgents(fromFile);
  if (Array.isArray(s.agents)) {
    const list = s.agents.filter((a): a is Agent => typeof a === 'object' && a !== null && !Array.isArray(a));
    if (list.length > 0) return countAgents(list);
  }
  return { active: s.running_agents ?? 0, total: s.total_agents ?? s.running_agents ?? 0 };
}
