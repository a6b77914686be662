/**
 * The Node process's own metrics, as prom-client's default metrics report them: CPU time, start
 * time, resident memory, open file descriptors and event-loop lag. Asked for on every scrape, so
 * every reading is cheap (a few microseconds; the fd count, a directory listing, is reused for up
 * to a second), a server reuses a whole reading for a moment (`reuseMs`: a cached scrape costs tens
 * of microseconds, and `process.memoryUsage.rss()` alone was 9 % of it), and nothing here keeps
 * the process alive.
 */
import { readdirSync } from 'node:fs';
import type { ProcessMetrics, ProcessMetricsSampler } from '../self-metrics.js';

export interface ProcessMetricsOptions {
  /** How long an open-fd count is reused, in ms. Default 1000; 0 counts on every reading. */
  readonly fdCacheMs?: number;
  /**
   * How long a whole reading is reused, in ms: calls within it get the same object, so its values
   * are at most this old. Default 0, a new reading on every call.
   */
  readonly reuseMs?: number;
}

/**
 * What the Node server passes as `reuseMs`: CPU time, resident memory and event-loop lag are at most
 * 100 ms old when scraped (the open-fd count up to `fdCacheMs`, the start time never changes). A
 * scrape interval is seconds, so no rate or graph can tell; a flood of scrapes samples ten times a
 * second at most.
 */
export const SERVER_READING_REUSE_MS = 100;

/** Where Linux lists the process's open descriptors; absent elsewhere (macOS), and then no sample. */
const FD_DIR = '/proc/self/fd';

/**
 * A sampler of this process, for `AppDeps.processMetrics`. Event-loop lag is measured as older
 * prom-client did: each reading reports what the previous `setImmediate` probe measured (the time
 * from the probe's start until the loop got round to it) and starts the next probe. When the
 * previous probe has not run yet, the loop has been busy all along: the time since it started is
 * reported (a lower bound). Probes are unref'd, so they never hold the process open.
 */
export function createProcessMetrics(options: ProcessMetricsOptions = {}): ProcessMetricsSampler {
  const fdCacheMs = options.fdCacheMs ?? 1_000;
  const reuseMs = options.reuseMs ?? 0;
  // Fixed for the life of the process: computed once, like prom-client.
  const startTimeSeconds = Date.now() / 1000 - process.uptime();

  let lagSeconds = 0;
  let probeStartedAt: number | undefined;
  const probe = (): void => {
    const startedAt = performance.now();
    probeStartedAt = startedAt;
    setImmediate(() => {
      lagSeconds = (performance.now() - startedAt) / 1000;
      probeStartedAt = undefined;
    }).unref();
  };

  let fds: { readonly value: number | undefined; readonly atMs: number } | undefined;
  const openFds = (nowMs: number): number | undefined => {
    if (fds !== undefined && nowMs - fds.atMs < fdCacheMs) return fds.value;
    let value: number | undefined;
    try {
      // Less the descriptor the listing itself holds open, as prom-client counts.
      value = readdirSync(FD_DIR).length - 1;
    } catch {
      value = undefined;
    }
    fds = { value, atMs: nowMs };
    return value;
  };

  probe();
  let last: { readonly reading: ProcessMetrics; readonly atMs: number } | undefined;
  return (): ProcessMetrics => {
    const nowMs = performance.now();
    if (last !== undefined && nowMs - last.atMs < reuseMs) return last.reading;
    let eventLoopLagSeconds: number;
    if (probeStartedAt !== undefined) {
      eventLoopLagSeconds = (nowMs - probeStartedAt) / 1000;
    } else {
      eventLoopLagSeconds = lagSeconds;
      probe();
    }
    const cpu = process.cpuUsage();
    const fdCount = openFds(nowMs);
    const reading: ProcessMetrics = {
      cpuSeconds: (cpu.user + cpu.system) / 1e6,
      startTimeSeconds,
      residentMemoryBytes: process.memoryUsage.rss(),
      ...(fdCount !== undefined ? { openFds: fdCount } : {}),
      eventLoopLagSeconds,
    };
    last = { reading, atMs: nowMs };
    return reading;
  };
}
