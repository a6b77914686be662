/**
 * The Node process's own metrics, as prom-client's default metrics report them: CPU time, start
 * time, resident memory, open file descriptors and event-loop lag. Sampled on every scrape, so
 * every reading is cheap (a few microseconds; the fd count, a directory listing, is reused for up
 * to a second) and nothing here keeps the process alive.
 */
import { readdirSync } from 'node:fs';
import type { ProcessMetrics, ProcessMetricsSampler } from '../self-metrics.js';

export interface ProcessMetricsOptions {
  /** How long an open-fd count is reused, in ms. Default 1000; 0 counts on every reading. */
  readonly fdCacheMs?: number;
}

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
  return (): ProcessMetrics => {
    const nowMs = performance.now();
    let eventLoopLagSeconds: number;
    if (probeStartedAt !== undefined) {
      eventLoopLagSeconds = (nowMs - probeStartedAt) / 1000;
    } else {
      eventLoopLagSeconds = lagSeconds;
      probe();
    }
    const cpu = process.cpuUsage();
    const fdCount = openFds(nowMs);
    return {
      cpuSeconds: (cpu.user + cpu.system) / 1e6,
      startTimeSeconds,
      residentMemoryBytes: process.memoryUsage.rss(),
      ...(fdCount !== undefined ? { openFds: fdCount } : {}),
      eventLoopLagSeconds,
    };
  };
}
