import { Hono, type Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { createGuard } from './auth.js';
import type { BasicAuthUsers } from './basic-auth.js';
import { createCollector, type Collector } from './collect.js';
import type { Config } from './config.js';
import { MetricsBody } from './metrics-body.js';
import { contentType, negotiate, type Format } from './render.js';
import { EVERY_RESPONSE, everyResponseHeaders, exceptionResponse } from './response-headers.js';
import { withScrapeDuration, type ProcessMetrics, type ProcessMetricsSampler } from './self-metrics.js';
import type { Snapshot } from './snapshot.js';
import { SnapshotCache } from './snapshot-cache.js';
import type { Log } from './source-tracker.js';
import { unreadableReading, type StateStore } from './stores/store.js';
import { VERSION } from './version.js';

export interface AppDeps {
  readonly store: StateStore;
  readonly config: Config;
  /** Milliseconds since the epoch; injected so tests control time. */
  readonly clock?: () => number;
  readonly log?: Log;
  readonly version?: string;
  /** Remote stores: no sync for this long reads as a stopped session. */
  readonly syncStaleMs?: number;
  /**
   * A store read that has not settled after this long counts as a failed read (`loki_up 0`, last
   * good values), so a hung binding or disk cannot hang every scrape. Default 5 s.
   */
  readonly storeTimeoutMs?: number;
  /** Let concurrent scrapes share one refresh (default). Workers turn it off: see SnapshotCache. */
  readonly shareRefreshes?: boolean;
  /**
   * The runtime's own process, asked for on every scrape (Node: `createProcessMetrics()`, which
   * reuses a reading for 100 ms; `MetricsBody` renders it once per reading); without it
   * (the Worker) the process families are left out altogether.
   */
  readonly processMetrics?: ProcessMetricsSampler;
  /**
   * What `loki_exporter_build_info` adds to the version: `revision` (default `unknown`) and
   * `nodeversion` (no label when unset). Node: `nodeBuildInfo(process.env)`.
   */
  readonly build?: { readonly revision?: string; readonly nodeversion?: string };
  /**
   * Basic-auth users (`basic_auth_users` of a web config), asked per request because a reloaded
   * config can change them; undefined from it means none. Either these or the token may pass.
   */
  readonly basicAuthUsers?: () => BasicAuthUsers | undefined;
  /** Who is asking (the peer's address), so one client's wrong passwords wait only in its own share. */
  readonly clientAddress?: (c: Context) => string | undefined;
  /** More facts for an authenticated `/health` (the fleet's: how changes are watched). */
  readonly healthExtras?: () => Readonly<Record<string, unknown>>;
}

/**
 * Default for `AppDeps.storeTimeoutMs`: well inside Prometheus's default 10 s scrape timeout, so a
 * hung store gives `loki_up 0` rather than a failed scrape.
 */
export const STORE_TIMEOUT_MS = 5_000;

/** A scrape's answer headers in `format`: every response's own, the content type, never cached. */
const metricsHeaders = (format: Format): Readonly<Record<string, string>> => ({ ...EVERY_RESPONSE, 'Content-Type': contentType(format), 'Cache-Control': 'no-store' });
const METRICS_HEADERS: Readonly<Record<Format, Readonly<Record<string, string>>>> = { prometheus: metricsHeaders('prometheus'), openmetrics: metricsHeaders('openmetrics') };

/** How long an empty agent list may follow a non-empty one before it is believed (writer resets it every ~2 s). */
const AGENTS_HOLD_MS = 10_000;

/**
 * The whole HTTP surface, runtime-free: `/metrics` (path configurable), `/health`, `/`.
 * Entry points give it a store and settings; it never touches the runtime itself.
 */
export function createApp(deps: AppDeps): Hono {
  const { store, config } = deps;
  const clock = deps.clock ?? Date.now;
  const log = deps.log ?? ((line: string) => console.error(line));
  const version = deps.version ?? VERSION;
  const collector = createCollector({
    maxIterations: config.maxIterations,
    ...(config.budgetLimitUsd !== undefined ? { budgetLimitUsd: config.budgetLimitUsd } : {}),
    heartbeatWindowMs: config.heartbeatWindowMs,
    liveness: config.liveness,
    demo: config.demo === true,
    agentsHoldMs: AGENTS_HOLD_MS,
    ...(deps.syncStaleMs !== undefined ? { syncStaleMs: deps.syncStaleMs } : {}),
    version,
    ...(deps.build?.revision !== undefined ? { revision: deps.build.revision } : {}),
    ...(deps.build?.nodeversion !== undefined ? { nodeversion: deps.build.nodeversion } : {}),
    log,
  });
  const storeTimeoutMs = deps.storeTimeoutMs ?? STORE_TIMEOUT_MS;
  const cache: SnapshotCache = new SnapshotCache(
    (): Promise<Snapshot> => refresh(store, storeTimeoutMs, collector, clock, log, () => cache.last),
    config.cacheTtlMs,
    clock,
    deps.shareRefreshes ?? true,
  );
  const body = new MetricsBody();
  const metricsPath = config.metricsPath;

  const app = new Hono();

  app.use('*', everyResponseHeaders);

  // With credentials (a token, basic-auth users from a web config, or both), /metrics needs them,
  // and so does /health unless LOKI_METRICS_HEALTH_PUBLIC=true, when an unauthenticated probe gets
  // the overall status only.
  let authenticated: (c: Context) => Promise<boolean> = async () => true;
  if (config.token || deps.basicAuthUsers) {
    const guard = createGuard({
      ...(config.token ? { token: config.token } : {}),
      ...(deps.basicAuthUsers ? { basicUsers: deps.basicAuthUsers } : {}),
      ...(deps.clientAddress ? { clientOf: deps.clientAddress } : {}),
    });
    app.use(metricsPath, guard.middleware);
    if (config.healthPublic !== true) app.use('/health', guard.middleware);
    authenticated = (c) => guard.authenticated(c);
  }

  app.get(metricsPath, async (c) => {
    if (!config.enabled) {
      return c.text(`metrics are disabled: set LOKI_METRICS_ENABLED=true to serve ${metricsPath}\n`, 404);
    }
    const format = negotiate(c.req.header('Accept'));
    const snapshot = await cache.get();
    const reading = deps.processMetrics ? readProcess(deps.processMetrics, log) : undefined;
    // A Response of our own with a plain header object, not `c.body`: Hono would copy the headers
    // into a Headers object, which @hono/node-server then copies out again, on every scrape.
    return new Response(body.bytes(snapshot, reading, format), { status: 200, headers: METRICS_HEADERS[format] });
  });

  app.get('/health', async (c) => {
    const snapshot = await cache.get();
    const healthy = snapshot.up && snapshot.sources.every((s) => s.ok);
    c.header('Cache-Control', 'no-store');
    const status = healthy ? 'ok' : 'degraded';
    if (!(await authenticated(c))) return c.json({ status });
    return c.json({
      status,
      up: snapshot.up,
      // why the state directory cannot be read (`missing`, `not a directory`, ...)
      ...(snapshot.problem !== undefined ? { problem: snapshot.problem } : {}),
      version,
      sources: snapshot.sources.map((s) => ({
        source: s.source,
        ok: s.ok,
        present: s.present,
        ...(isoTime(s.mtimeMs) !== undefined ? { modified: isoTime(s.mtimeMs) } : {}),
        ...(s.problem !== undefined ? { problem: s.problem } : {}),
      })),
      ...deps.healthExtras?.(),
    });
  });

  app.get('/', (c) => c.html(landingPage(metricsPath, version)));

  app.all(metricsPath, (c) => c.text('method not allowed\n', 405, { Allow: 'GET, HEAD' }));
  app.all('/health', (c) => c.text('method not allowed\n', 405, { Allow: 'GET, HEAD' }));
  app.all('/', (c) => c.text('method not allowed\n', 405, { Allow: 'GET, HEAD' }));

  app.notFound((c) => c.text(`not found: metrics are at ${metricsPath}\n`, 404));

  app.onError((error, c) => {
    if (error instanceof HTTPException) return exceptionResponse(error);
    // Never a stack trace in a response; one line in the log.
    log(`loki-metrics: internal error on ${c.req.method} ${c.req.path}: ${error instanceof Error ? error.message : String(error)}`);
    return c.text('internal error\n', 500);
  });

  return app;
}

/**
 * One refresh. A store is not supposed to throw for bad files; if it throws anyway (a bug, or a
 * remote binding failing), report `loki_up 0` with the last good values rather than a 5xx.
 */
async function refresh(
  store: StateStore,
  timeoutMs: number,
  collector: Collector,
  clock: () => number,
  log: Log,
  last: () => Snapshot | undefined,
): Promise<Snapshot> {
  // `loki_exporter_scrape_duration_seconds`: the store read and the collection, failed ones too.
  // (performance.now() exists on Node and in Workers; a Worker's clock advances only across I/O.)
  const startedAt = performance.now();
  const took = (): number => (performance.now() - startedAt) / 1000;
  try {
    const reading = await withTimeout(store.read(), timeoutMs);
    // New file-set entries parsed in slices first: a cold project never holds its siblings' scrapes.
    await collector.prepare(reading);
    return withScrapeDuration(collector.collect(reading, clock()), took());
  } catch (error) {
    log(`loki-metrics: state store failed: ${error instanceof Error ? error.message : String(error)}`);
    const previous = last();
    if (previous) {
      const samples = new Map(previous.samples);
      samples.set('loki_up', [{ value: 0 }]);
      samples.set('loki_exporter_scrape_duration_seconds', [{ value: took() }]);
      return { ...previous, samples, up: false, takenAtMs: clock() };
    }
    return withScrapeDuration(collector.collect(unreadableReading(error instanceof Error ? error.message : 'state store failed'), clock()), took());
  }
}

/** The process's reading for one scrape; none (and one log line) if the sampler fails. */
function readProcess(sample: ProcessMetricsSampler, log: Log): ProcessMetrics | undefined {
  try {
    return sample();
  } catch (error) {
    log(`loki-metrics: cannot sample the process metrics: ${error instanceof Error ? error.message : String(error)}`);
    return undefined;
  }
}

/** A time as ISO 8601, or undefined when there is none or it is outside Date's range (never a throw). */
function isoTime(ms: number | undefined): string | undefined {
  if (ms === undefined || !Number.isFinite(ms) || Math.abs(ms) > MAX_DATE_MS) return undefined;
  return new Date(ms).toISOString();
}
const MAX_DATE_MS = 8.64e15;

/** `promise`, or a rejection once `ms` have passed without it settling. */
function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms / 1000} s`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export function landingPage(metricsPath: string, version: string): string {
  const path = metricsPath.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
  return `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>loki-metrics</title></head>
<body>
<h1>loki-metrics</h1>
<p>Prometheus/OpenMetrics exporter for Loki Mode, version ${version}.</p>
<ul>
<li><a href="${path}">Metrics</a></li>
<li><a href="/health">Health</a></li>
</ul>
</body>
</html>
`;
}
