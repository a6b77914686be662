import { TASK_STATUSES, type FamilyName } from './catalogue.js';
import { timeSlicer, type Slicer } from './file-set-collector.js';
import type { LivenessMode } from './liveness.js';
import { escapeForLog } from './log.js';
import { priceTable } from './pricing.js';
import { PROVENANCE_KINDS, RECEIPT_VERDICTS, type ReceiptCounts } from './receipts.js';
import type { PricingFile } from './schemas/pricing.js';
import { agentCounts, budgetState, currentAutonomyState, currentIteration, currentSession, holdAgentCounts, isHeartbeat, runOutcome, taskCounts, type HeldAgents } from './rules.js';
import type { Sample, Snapshot, SourceStatus } from './snapshot.js';
import type { Log } from './source-tracker.js';
import { createStateSources, type SourceValues } from './state-sources.js';
import type { StateReading } from './stores/store.js';
import { DURATION_BUCKETS_S, ITERATION_OUTCOMES, ModelLabeler, TOKEN_TYPES, usageFromTotals, type Usage } from './usage.js';
import { maxIteration, type UsageTotals } from './usage-totals.js';

export interface CollectorOptions {
  /** `LOKI_MAX_ITERATIONS`. */
  readonly maxIterations: number;
  /** `LOKI_BUDGET_LIMIT` in USD, used when `metrics/budget.json` gives no limit. */
  readonly budgetLimitUsd?: number;
  /** A `dashboard-state.json` rewritten within this window means the session is alive (when the pids cannot decide). */
  readonly heartbeatWindowMs: number;
  /** `LOKI_LIVENESS`: how the runner's pids and the heartbeat decide liveness (see liveness.ts). Default `auto`. */
  readonly liveness?: LivenessMode;
  /** An empty agent list read within this long after a non-empty one keeps the non-empty counts. */
  readonly agentsHoldMs: number;
  /** Remote stores: no sync for this long means the session is stopped. */
  readonly syncStaleMs?: number;
  readonly version: string;
  /** The git commit the exporter was built from (`loki_exporter_build_info{revision}`). Default `unknown`. */
  readonly revision?: string;
  /** The runtime's Node.js version, e.g. `v20.20.2`; no `nodeversion` label when unset or empty (the Worker). */
  readonly nodeversion?: string;
  /** The state is `serve --demo`'s simulation: said in the build info, so no one mistakes it for a run. */
  readonly demo?: boolean;
  readonly log: Log;
}

export interface Collector {
  /** State → Snapshot. Pure apart from the memo it keeps across calls; time is passed in. */
  collect(reading: StateReading, nowMs: number): Snapshot;
  /**
   * Optional, before `collect`: parses the file sets' new entries in slices, giving the event loop
   * back between them, so that `collect` (synchronous) finds them parsed. The result is the same.
   */
  prepare(reading: StateReading, slicer?: Slicer): Promise<void>;
}

export function createCollector(options: CollectorOptions): Collector {
  const { log } = options;
  const buildInfo = buildInfoSamples(options);
  const sources = createStateSources(options.liveness ?? 'auto', log);
  const labeler = new ModelLabeler();
  let heldAgents: HeldAgents | undefined;
  let lastLoggedDirProblem: string | undefined;

  // File sets keep their totals' identity while unchanged, so a warm refresh over thousands of
  // unchanged files recomputes nothing.
  let usageMemo: { totals: unknown; pricing: unknown; usage: Usage } | undefined;
  function usageOf(totals: UsageTotals, pricingFile: PricingFile | undefined): Usage {
    if (usageMemo?.totals !== totals || usageMemo.pricing !== pricingFile) {
      usageMemo = { totals, pricing: pricingFile, usage: usageFromTotals(totals, priceTable(pricingFile), labeler) };
    }
    return usageMemo.usage;
  }

  return {
    prepare: (reading, slicer = timeSlicer()) => sources.prepare(reading, slicer),
    collect(reading, nowMs) {
      // Compared as logged: an unreadable reading without a reason (a synced doc may carry none) logs once too.
      const dirProblem = reading.available ? undefined : (reading.problem ?? 'unknown reason');
      if (dirProblem !== undefined && dirProblem !== lastLoggedDirProblem) {
        log(`loki-metrics: state directory unreadable: ${escapeForLog(dirProblem)}`);
      } else if (dirProblem === undefined && lastLoggedDirProblem !== undefined) {
        log('loki-metrics: state directory readable again');
      }
      lastLoggedDirProblem = dirProblem;

      const read = sources.read(reading);
      const { documents: docs, events } = reading;
      const s = read.state;
      const session = sessionOf(read, reading, options, nowMs);
      // The real iteration (dashboard-state's is frozen at 0 by a writer bug).
      const autonomyState = currentAutonomyState(read.autonomy, docs['autonomy-state.json'].mtimeMs, read.verdict.pid, events.sessionStartMs);
      const iteration = session.newRun
        ? 0
        : currentIteration(events, autonomyState, s, read.currentTask?.id, maxIteration(read.usageTotals), read.orchestrator?.currentIteration);

      const agentsHeld = holdAgentCounts(agentCounts(read.agents, s), heldAgents, nowMs, options.agentsHoldMs);
      heldAgents = agentsHeld.held;
      const usage = usageOf(read.usageTotals, read.pricing);
      const signalDoc = docs['signals/BUDGET_EXCEEDED'];
      const budget = budgetState({
        file: read.budget,
        defaultLimitUsd: options.budgetLimitUsd,
        signal: signalDoc.present ? { atMs: read.budgetSignal?.timestamp ?? signalDoc.mtimeMs } : undefined,
        sessionStartMs: events.sessionStartMs,
        costUsd: usage.costUsd,
      });

      const samples = snapshotSamples({
        session,
        iteration,
        maxIterations: options.maxIterations,
        tasks: taskCounts(s),
        // A dead session has no active agents, whatever its last agents.json says.
        agentsActive: session.alive ? agentsHeld.shown.active : 0,
        agentsTotal: agentsHeld.shown.total,
        eventLines: events.lines,
        up: reading.available,
        budget,
        sources: read.statuses,
        lastSyncMs: reading.lastSyncMs,
        buildInfo,
        receipts: read.receipts,
        usage,
        // The run outcome, when it describes the latest session.
        outcome: runOutcome(read.completion, docs['state/completion.json'].mtimeMs, session.latestStartMs),
      });
      return { samples, sources: read.statuses, up: reading.available, ...(dirProblem !== undefined ? { problem: escapeForLog(dirProblem) } : {}), takenAtMs: nowMs };
    },
  };
}

/** The current session (rules.ts): liveness from the runner's pids, the heartbeat, a sync's age and the control files. */
function sessionOf(read: SourceValues, reading: StateReading, options: CollectorOptions, nowMs: number) {
  const docs = reading.documents;
  const stateMtime = docs['dashboard-state.json'].mtimeMs;
  const syncStale = reading.lastSyncMs !== undefined && options.syncStaleMs !== undefined && nowMs - reading.lastSyncMs > options.syncStaleMs;
  return currentSession({
    verdict: read.verdict,
    heartbeat: isHeartbeat(stateMtime, nowMs, options.heartbeatWindowMs),
    syncStale,
    paused: docs.PAUSE.present || read.state.mode === 'paused',
    stopping: docs.STOP.present || read.state.mode === 'stopped',
    events: reading.events,
    state: read.state,
    stateMtimeMs: stateMtime,
    pidFileMtimeMs: docs['loki.pid'].mtimeMs,
    nowMs,
  });
}

/** `loki_exporter_build_info`'s one sample. */
function buildInfoSamples(options: CollectorOptions): Sample[] {
  return [
    {
      labels: {
        version: options.version,
        demo: options.demo === true ? 'true' : 'false',
        revision: options.revision !== undefined && options.revision !== '' ? options.revision : 'unknown',
        ...(options.nodeversion !== undefined && options.nodeversion !== '' ? { nodeversion: options.nodeversion } : {}),
      },
      value: 1,
    },
  ];
}

/** Everything one snapshot reports, as collected. */
interface CollectedFacts {
  readonly session: { readonly status: number; readonly uptimeSeconds: number };
  readonly iteration: number;
  readonly maxIterations: number;
  readonly tasks: Readonly<Record<(typeof TASK_STATUSES)[number], number>>;
  readonly agentsActive: number;
  readonly agentsTotal: number;
  readonly eventLines: number;
  readonly up: boolean;
  readonly budget: { readonly limit: number; readonly exceeded: boolean };
  readonly sources: readonly SourceStatus[];
  readonly lastSyncMs: number | undefined;
  readonly buildInfo: Sample[];
  readonly receipts: ReceiptCounts;
  readonly usage: Usage;
  readonly outcome: string | undefined;
}

/** The facts as the families of the catalogue, in its order. */
function snapshotSamples(f: CollectedFacts): Map<FamilyName, Sample[]> {
  const one = (value: number): Sample[] => [{ value }];
  return new Map<FamilyName, Sample[]>([
    ['loki_session_status', one(f.session.status)],
    ['loki_iteration_current', one(f.iteration)],
    ['loki_iteration_max', one(f.maxIterations)],
    ['loki_tasks_total', TASK_STATUSES.map((st) => ({ labels: { status: st }, value: f.tasks[st] }))],
    ['loki_agents_active', one(f.agentsActive)],
    ['loki_agents_total', one(f.agentsTotal)],
    ['loki_cost_usd', one(f.usage.costUsd)],
    ['loki_events_total', one(f.eventLines)],
    ['loki_uptime_seconds', one(f.session.uptimeSeconds)],
    ['loki_up', one(f.up ? 1 : 0)],
    ['loki_budget_limit_usd', one(f.budget.limit)],
    ['loki_budget_exceeded', one(f.budget.exceeded ? 1 : 0)],
    ['loki_source_ok', f.sources.map((src) => ({ labels: { source: src.source }, value: src.ok ? 1 : 0 }))],
    [
      'loki_source_mtime_seconds',
      f.sources.flatMap((src) => (src.mtimeMs !== undefined ? [{ labels: { source: src.source }, value: src.mtimeMs / 1000 }] : [])),
    ],
    ['loki_last_sync_timestamp_seconds', f.lastSyncMs !== undefined ? one(f.lastSyncMs / 1000) : []],
    ['loki_exporter_build_info', f.buildInfo],
    ['loki_receipts_total', one(f.receipts.total)],
    ['loki_receipts_by_verdict', RECEIPT_VERDICTS.map((verdict) => ({ labels: { verdict }, value: f.receipts.byVerdict[verdict] }))],
    ['loki_receipts_with_provenance', PROVENANCE_KINDS.map((kind) => ({ labels: { kind }, value: f.receipts.withProvenance[kind] }))],
    ...usageSamples(f.usage),
    ['loki_run_outcome', f.outcome !== undefined ? [{ labels: { outcome: f.outcome }, value: 1 }] : []],
    // measured around the whole refresh by the app (withScrapeDuration), which includes this call
    ['loki_exporter_scrape_duration_seconds', []],
  ]);
}

/** The per-model families. */
function usageSamples(usage: Usage): [FamilyName, Sample[]][] {
  const { durations } = usage;
  const le = (bound: number) => (Number.isInteger(bound) ? `${bound}.0` : String(bound));
  return [
    [
      'loki_model_tokens_total',
      usage.models.flatMap(({ family, model, tokens }) => TOKEN_TYPES.map((type) => ({ labels: { family, model, type }, value: tokens[type] }))),
    ],
    ['loki_model_cost_usd_total', usage.models.map(({ family, model, costUsd }) => ({ labels: { family, model }, value: costUsd }))],
    ['loki_iterations_total', ITERATION_OUTCOMES.map((outcome) => ({ labels: { outcome }, value: usage.iterations[outcome] }))],
    [
      'loki_iteration_duration_seconds',
      [
        ...DURATION_BUCKETS_S.map((bound, i) => ({ suffix: '_bucket' as const, labels: { le: le(bound) }, value: durations.buckets[i]! })),
        { suffix: '_bucket', labels: { le: '+Inf' }, value: durations.count },
        { suffix: '_sum', value: durations.sum },
        { suffix: '_count', value: durations.count },
      ],
    ],
  ];
}

