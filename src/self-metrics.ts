/**
 * The exporter's metrics about itself, runtime-free: the values a runtime with a process samples
 * (Node: src/node/process-metrics.ts) and how they and the refresh duration become samples.
 */
import type { FamilyName, ProcessFamilyName } from './catalogue.js';
import type { Sample, Snapshot } from './snapshot.js';

/** One reading of the exporter's own process, as prom-client's default metrics report it. */
export interface ProcessMetrics {
  /** User plus system CPU time since the process started, in seconds. */
  readonly cpuSeconds: number;
  /** When the process started, in seconds since the epoch. */
  readonly startTimeSeconds: number;
  readonly residentMemoryBytes: number;
  /** Open file descriptors; undefined where they cannot be counted (no `/proc`, e.g. macOS). */
  readonly openFds?: number;
  /** Event-loop lag measured by the latest probe, in seconds. */
  readonly eventLoopLagSeconds: number;
}

/** Takes one reading; called on every scrape, so it must be cheap and never throw. */
export type ProcessMetricsSampler = () => ProcessMetrics;

/** The process families' samples for one reading (every process family is present). */
export function processSamples(metrics: ProcessMetrics): ReadonlyMap<ProcessFamilyName, readonly Sample[]> {
  return new Map<ProcessFamilyName, readonly Sample[]>([
    ['process_cpu_seconds_total', [{ value: metrics.cpuSeconds }]],
    ['process_start_time_seconds', [{ value: metrics.startTimeSeconds }]],
    ['process_resident_memory_bytes', [{ value: metrics.residentMemoryBytes }]],
    ['process_open_fds', metrics.openFds !== undefined ? [{ value: metrics.openFds }] : []],
    ['nodejs_eventloop_lag_seconds', [{ value: metrics.eventLoopLagSeconds }]],
  ]);
}

/** `snapshot` with `loki_exporter_scrape_duration_seconds` set to `seconds` (a copy; snapshots are shared). */
export function withScrapeDuration(snapshot: Snapshot, seconds: number): Snapshot {
  const samples = new Map<FamilyName, readonly Sample[]>(snapshot.samples);
  samples.set('loki_exporter_scrape_duration_seconds', [{ value: seconds }]);
  return { ...snapshot, samples };
}
