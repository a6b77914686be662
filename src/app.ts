import { Hono, type Context } from 'hono';
import { bearerAuth } from 'hono/bearer-auth';
import { HTTPException } from 'hono/http-exception';
import { createCollector, type Collector } from './collect.js';
import type { Config } from './config.js';
import { contentType, negotiate, render, type Format } from './render.js';
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
}

/**
 * Default for `AppDeps.storeTimeoutMs`: well inside Prometheus's default 10 s scrape timeout, so a
 * hung store gives `loki_up 0` rather than a failed scrape.
 */
export const STORE_TIMEOUT_MS = 5_000;

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
    log,
  });
  const storeTimeoutMs = deps.storeTimeoutMs ?? STORE_TIMEOUT_MS;
  const cache: SnapshotCache = new SnapshotCache(
    (): Promise<Snapshot> => refresh(store, storeTimeoutMs, collector, clock, log, () => cache.last),
    config.cacheTtlMs,
    clock,
    deps.shareRefreshes ?? true,
  );
  const rendered = new WeakMap<Snapshot, Partial<Record<Format, string>>>();
  const metricsPath = config.metricsPath;

  const app = new Hono();

  app.use('*', async (c, next) => {
    await next();
    c.header('X-Content-Type-Options', 'nosniff');
  });

  /** Whether the request carries the scrape token (always true without one). */
  let authenticated: (c: Context) => Promise<boolean> = async () => true;
  if (config.token) {
    const auth = bearerAuth({ token: config.token, realm: 'loki-metrics' });
    app.use(metricsPath, auth);
    // With a token, /health needs it unless LOKI_METRICS_HEALTH_PUBLIC=true, and then an
    // unauthenticated probe gets the overall status only.
    if (config.healthPublic !== true) app.use('/health', auth);
    authenticated = async (c) => {
      let ok = false;
      try {
        await auth(c, async () => {
          ok = true;
        });
      } catch (error) {
        if (!(error instanceof HTTPException)) throw error;
      }
      return ok;
    };
  }

  app.get(metricsPath, async (c) => {
    if (!config.enabled) {
      return c.text(`metrics are disabled: set LOKI_METRICS_ENABLED=true to serve ${metricsPath}\n`, 404);
    }
    const format = negotiate(c.req.header('Accept'));
    const snapshot = await cache.get();
    const forSnapshot = rendered.get(snapshot) ?? {};
    const body = (forSnapshot[format] ??= render(snapshot, format));
    rendered.set(snapshot, forSnapshot);
    return c.body(body, 200, { 'Content-Type': contentType(format), 'Cache-Control': 'no-store' });
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
    });
  });

  app.get('/', (c) => c.html(landingPage(metricsPath, version)));

  app.all(metricsPath, (c) => c.text('method not allowed\n', 405, { Allow: 'GET, HEAD' }));
  app.all('/health', (c) => c.text('method not allowed\n', 405, { Allow: 'GET, HEAD' }));
  app.all('/', (c) => c.text('method not allowed\n', 405, { Allow: 'GET, HEAD' }));

  app.notFound((c) => c.text(`not found: metrics are at ${metricsPath}\n`, 404));

  app.onError((error, c) => {
    if (error instanceof HTTPException) return error.getResponse();
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
  try {
    return collector.collect(await withTimeout(store.read(), timeoutMs), clock());
  } catch (error) {
    log(`loki-metrics: state store failed: ${error instanceof Error ? error.message : String(error)}`);
    const previous = last();
    if (previous) {
      const samples = new Map(previous.samples);
      samples.set('loki_up', [{ value: 0 }]);
      return { ...previous, samples, up: false, takenAtMs: clock() };
    }
    return collector.collect(unreadableReading(error instanceof Error ? error.message : 'state store failed'), clock());
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

function landingPage(metricsPath: string, version: string): string {
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
