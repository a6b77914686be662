import { FileSetCollector, type Slicer } from './file-set-collector.js';
import { RunnerProbe, type LivenessMode } from './liveness.js';
import { escapeForLog } from './log.js';
import { countReceipts, type ReceiptCounts } from './receipts.js';
import { readAgents } from './schemas/agents.js';
import { readAutonomyState } from './schemas/autonomy-state.js';
import { readBudget, readBudgetSignal } from './schemas/budget.js';
import { readCompletion } from './schemas/completion.js';
import { readCurrentTask } from './schemas/current-task.js';
import { readDashboardState } from './schemas/dashboard-state.js';
import { readEfficiencyFile } from './schemas/efficiency.js';
import { readOrchestrator } from './schemas/orchestrator.js';
import { readPricing } from './schemas/pricing.js';
import { readProof } from './schemas/proof.js';
import type { SourceStatus } from './snapshot.js';
import { SourceTracker, type Log } from './source-tracker.js';
import { EVENTS_FILE, type EventsSummary, type StateReading } from './stores/store.js';
import { foldUsage } from './usage-totals.js';

/**
 * The state's sources as one unit: each document behind its `SourceTracker`, the two file sets
 * behind their `FileSetCollector`s, the runner's pids behind the `RunnerProbe`. One `read` per
 * refresh updates them all and lists their statuses in the order the snapshot reports them
 * (collect.ts turns the values into facts).
 */
export function createStateSources(liveness: LivenessMode, log: Log) {
  const dashboard = new SourceTracker('dashboard-state.json', readDashboardState, log);
  const runner = new RunnerProbe(liveness, log);
  const agents = new SourceTracker('state/agents.json', readAgents, log);
  const orchestrator = new SourceTracker('state/orchestrator.json', readOrchestrator, log);
  const currentTask = new SourceTracker('queue/current-task.json', readCurrentTask, log);
  const pricing = new SourceTracker('pricing.json', readPricing, log);
  const budget = new SourceTracker('metrics/budget.json', readBudget, log);
  const budgetSignal = new SourceTracker('signals/BUDGET_EXCEEDED', readBudgetSignal, log);
  const autonomy = new SourceTracker('autonomy-state.json', readAutonomyState, log);
  const completion = new SourceTracker('state/completion.json', readCompletion, log);
  // Each set folded into its totals only when it changed (a synced store hands the totals over).
  const efficiency = new FileSetCollector('efficiency', readEfficiencyFile, log, foldUsage);
  const proofs = new FileSetCollector('proofs', readProof, log, (values): ReceiptCounts => countReceipts(values.map((p) => p.value)));
  let loggedEventsError: string | undefined;

  return {
    /** Parses the file sets' new entries in slices (see `Collector.prepare`). */
    async prepare(reading: StateReading, slicer: Slicer): Promise<void> {
      await efficiency.prepare(reading.efficiency, slicer);
      await proofs.prepare(reading.proofs, slicer);
      await runner.prepare(reading, slicer);
    },

    /** Every source updated from one reading: their values (the last good ones while torn) and statuses. */
    read(reading: StateReading) {
      const docs = reading.documents;
      const stateRead = dashboard.update(docs['dashboard-state.json']);
      const probe = runner.probe(reading);
      const agentsRead = agents.update(docs['state/agents.json']);
      const orchestratorRead = orchestrator.update(docs['state/orchestrator.json']);
      const currentTaskRead = currentTask.update(docs['queue/current-task.json']);
      const pricingRead = pricing.update(docs['pricing.json']);
      const budgetRead = budget.update(docs['metrics/budget.json']);
      const signalRead = budgetSignal.update(docs['signals/BUDGET_EXCEEDED']);
      const autonomyRead = autonomy.update(docs['autonomy-state.json']);
      const completionRead = completion.update(docs['state/completion.json']);
      const efficiencyRead = efficiency.update(reading.efficiency);
      const proofsRead = proofs.update(reading.proofs);
      const { events } = reading;
      if (events.error !== loggedEventsError) log(`loki-metrics: ${EVENTS_FILE}: ${escapeForLog(events.error ?? 'ok again')}`);
      loggedEventsError = events.error;

      const [pidStatus, ...runnerSetStatuses] = probe.sources;
      const statuses: SourceStatus[] = [
        stateRead.status,
        pidStatus!,
        agentsRead.status,
        efficiencyRead.status,
        eventsSource(events),
        pricingRead.status,
        budgetRead.status,
        signalRead.status,
        orchestratorRead.status,
        currentTaskRead.status,
        autonomyRead.status,
        completionRead.status,
        proofsRead.status,
        ...runnerSetStatuses,
      ];
      return {
        state: stateRead.value ?? {},
        verdict: probe.verdict,
        agents: agentsRead.value,
        orchestrator: orchestratorRead.value,
        currentTask: currentTaskRead.value,
        pricing: pricingRead.value,
        budget: budgetRead.value,
        budgetSignal: signalRead.value,
        autonomy: autonomyRead.value,
        completion: completionRead.value,
        usageTotals: efficiencyRead.totals!,
        receipts: proofsRead.totals!,
        statuses,
      };
    },
  };
}

export type StateSources = ReturnType<typeof createStateSources>;
export type SourceValues = ReturnType<StateSources['read']>;

/** `events.jsonl` as one source. */
function eventsSource(events: EventsSummary): SourceStatus {
  return {
    source: EVENTS_FILE,
    ok: events.error === undefined,
    present: events.present,
    ...(events.mtimeMs !== undefined ? { mtimeMs: events.mtimeMs } : {}),
    ...(events.error !== undefined ? { problem: events.error } : {}),
  };
}
