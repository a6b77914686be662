/**
 * Every metric family the exporter can emit, as data, in exposition order.
 *
 * The first nine are the public contract of Loki Mode's metrics guide (names, types, labels and
 * HELP text as the reference dashboard prints them): dashboards and alerts depend on them, so they
 * are extended, never renamed. The rest are loki-metrics' own additions, ending with the exporter's
 * own process metrics under prom-client's names.
 */
export type MetricType = 'gauge' | 'counter' | 'info' | 'histogram';

export interface MetricFamily {
  /** The sample name as exposed (counters keep `_total`, info families keep `_info`). */
  readonly name: string;
  readonly type: MetricType;
  readonly help: string;
  /** Label names in the order they are printed (a histogram's `le` comes after them). */
  readonly labels: readonly string[];
  /**
   * `process`: the exporter's own process, sampled on every scrape where the runtime has one (Node)
   * and never part of a state snapshot. Such a family is left out entirely (no HELP/TYPE either)
   * where the samples lack it, e.g. on the Cloudflare Worker.
   */
  readonly scope?: 'process';
}

export const FAMILIES = [
  { name: 'loki_session_status', type: 'gauge', help: 'Current session status (0=stopped, 1=running, 2=paused)', labels: [] },
  { name: 'loki_iteration_current', type: 'gauge', help: 'Current iteration number', labels: [] },
  { name: 'loki_iteration_max', type: 'gauge', help: 'Maximum configured iterations', labels: [] },
  // A gauge named `_total` is a known wart of the contract; kept because dashboards query it.
  { name: 'loki_tasks_total', type: 'gauge', help: 'Number of tasks by status', labels: ['status'] },
  { name: 'loki_agents_active', type: 'gauge', help: 'Number of currently active agents', labels: [] },
  { name: 'loki_agents_total', type: 'gauge', help: 'Total number of agents registered', labels: [] },
  { name: 'loki_cost_usd', type: 'gauge', help: 'Estimated total cost in USD', labels: [] },
  { name: 'loki_events_total', type: 'counter', help: 'Total number of events recorded', labels: [] },
  { name: 'loki_uptime_seconds', type: 'gauge', help: 'Seconds since session started', labels: [] },
  // ---- additions (never part of the reference reader) ----
  { name: 'loki_up', type: 'gauge', help: 'Whether the Loki state directory could be read (1) or not (0)', labels: [] },
  { name: 'loki_budget_limit_usd', type: 'gauge', help: 'Budget limit in USD for the session (0 when no limit is set)', labels: [] },
  { name: 'loki_budget_exceeded', type: 'gauge', help: 'Whether the budget guard has tripped in the current session (1) or not (0)', labels: [] },
  { name: 'loki_source_ok', type: 'gauge', help: 'Whether a state source was read and validated, or is absent where that is normal (1), or is present but unreadable or invalid (0)', labels: ['source'] },
  { name: 'loki_source_mtime_seconds', type: 'gauge', help: 'Modification time of a state source in seconds since the epoch (newest file for a directory source)', labels: ['source'] },
  { name: 'loki_last_sync_timestamp_seconds', type: 'gauge', help: 'When the state was last synced to this exporter, in seconds since the epoch (synced state only)', labels: [] },
  // `demo="true"` when the exporter serves its simulated session (`serve --demo`), never real state
  // `revision` = the git commit built (or `unknown`), `nodeversion` = Node's `process.version` (no label on the Worker)
  { name: 'loki_exporter_build_info', type: 'info', help: 'Build information of the loki-metrics exporter', labels: ['version', 'demo', 'revision', 'nodeversion'] },
  // ---- Loki Mode 9.20+ receipts, named, typed and labelled exactly as upstream 9.22's own /metrics
  // (gauges named `_total`, like loki_tasks_total, so its dashboards and alerts work unchanged)
  { name: 'loki_receipts_total', type: 'gauge', help: 'Total number of run receipts (proofs/*/proof.json)', labels: [] },
  { name: 'loki_receipts_by_verdict', type: 'gauge', help: 'Run receipts by honesty verdict', labels: ['verdict'] },
  { name: 'loki_receipts_with_provenance', type: 'gauge', help: 'Run receipts carrying provenance of each kind', labels: ['kind'] },
  // ---- per-model telemetry from metrics/efficiency/ (reset when Loki Mode empties it at a run start)
  { name: 'loki_model_tokens_total', type: 'counter', help: 'Tokens used in the current run by model family, model id and token type (input, output, cache_read, cache_creation)', labels: ['family', 'model', 'type'] },
  { name: 'loki_model_cost_usd_total', type: 'counter', help: 'Cost in USD of the current run by model family and model id', labels: ['family', 'model'] },
  { name: 'loki_iterations_total', type: 'counter', help: 'Iterations finished in the current run by outcome (completed, failed)', labels: ['outcome'] },
  { name: 'loki_iteration_duration_seconds', type: 'histogram', help: 'Duration of the iterations finished in the current run', labels: [] },
  { name: 'loki_run_outcome', type: 'gauge', help: 'How the last run ended, from state/completion.json (1 for its outcome; no sample while a run is under way)', labels: ['outcome'] },
  // ---- the exporter itself
  { name: 'loki_exporter_scrape_duration_seconds', type: 'gauge', help: 'How long the last refresh of the state (store read and collection) took, in seconds', labels: [] },
  // Named, typed and worded exactly as prom-client's default metrics, so stock Node.js dashboards and
  // alerts work unchanged. Node only, sampled on each scrape (scope `process`); last, so the
  // per-scrape part of an exposition follows the snapshot's.
  { name: 'process_cpu_seconds_total', type: 'counter', help: 'Total user and system CPU time spent in seconds.', labels: [], scope: 'process' },
  { name: 'process_start_time_seconds', type: 'gauge', help: 'Start time of the process since unix epoch in seconds.', labels: [], scope: 'process' },
  { name: 'process_resident_memory_bytes', type: 'gauge', help: 'Resident memory size in bytes.', labels: [], scope: 'process' },
  { name: 'process_open_fds', type: 'gauge', help: 'Number of open file descriptors.', labels: [], scope: 'process' },
  { name: 'nodejs_eventloop_lag_seconds', type: 'gauge', help: 'Lag of event loop in seconds.', labels: [], scope: 'process' },
] as const satisfies readonly MetricFamily[];

export type FamilyName = (typeof FAMILIES)[number]['name'];

/** Whether a family describes the exporter's own process (see `MetricFamily.scope`). */
export function isProcessFamily(family: MetricFamily): boolean {
  return family.scope === 'process';
}

type Family = (typeof FAMILIES)[number];
type ProcessFamily = Extract<Family, { readonly scope: 'process' }>;

/** The families of the exporter's own process, in exposition order (the tail of FAMILIES). */
export const PROCESS_FAMILIES: readonly ProcessFamily[] = FAMILIES.filter((family): family is ProcessFamily => isProcessFamily(family));

/** The families a state snapshot holds: every family but the process ones. */
export const SNAPSHOT_FAMILIES: readonly Exclude<Family, ProcessFamily>[] = FAMILIES.filter(
  (family): family is Exclude<Family, ProcessFamily> => !isProcessFamily(family),
);

export type ProcessFamilyName = ProcessFamily['name'];

/** The four task states of `loki_tasks_total`, in exposition order. */
export const TASK_STATUSES = ['pending', 'in_progress', 'completed', 'failed'] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];
