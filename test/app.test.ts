/**
 * The Hono app over Fetch Request/Response, on real trees through the real fs store.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createApp, landingPage, STORE_TIMEOUT_MS, type AppDeps } from '../src/app.js';
import { BasicAuthUsers } from '../src/basic-auth.js';
import { parseConfig } from '../src/config.js';
import { FsStateStore } from '../src/stores/fs.js';
import type { StateStore } from '../src/stores/store.js';
import { cleanTrees, materialize, tempDir } from './support/loki-tree.js';
import { CountingStore } from './support/counting-store.js';

const TOKEN = 'test-token-0123456789abcdef';
const stores: StateStore[] = [];
afterEach(async () => {
  await Promise.all(stores.splice(0).map((s) => s.close?.()));
  await cleanTrees();
});


async function appFor(fixture: string, env: Record<string, string> = {}, clock?: () => number) {
  const dir = await materialize(fixture, { pid: 'alive', mtimeMs: Date.now() });
  const store = new CountingStore(new FsStateStore(dir, { watch: false }));
  stores.push(store);
  const logs: string[] = [];
  const app = createApp({ store, config: parseConfig({ LOKI_DIR: dir, ...env }), log: (l) => logs.push(l), ...(clock ? { clock } : {}) });
  return { app, store, logs, dir };
}

const PROMETHEUS_3_ACCEPT =
  'application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2';

describe('GET /metrics', () => {
  it('serves Prometheus text 0.0.4 by default with the right headers', async () => {
    const { app } = await appFor('running');
    const res = await app.request('/metrics');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    const body = await res.text();
    expect(body).toContain('loki_session_status 1\n');
    expect(body).toContain('loki_cost_usd 3.5313\n');
    expect(body).not.toContain('# EOF');
    expect(body).not.toMatch(/\n\n/);
  });

  it('serves OpenMetrics to Prometheus 3 and ends with # EOF', async () => {
    const { app } = await appFor('running');
    const res = await app.request('/metrics', { headers: { Accept: PROMETHEUS_3_ACCEPT } });
    expect(res.headers.get('content-type')).toBe('application/openmetrics-text; version=1.0.0; charset=utf-8');
    const body = await res.text();
    expect(body.endsWith('# EOF\n')).toBe(true);
    expect(body).toContain('# TYPE loki_events counter\nloki_events_total 50\n');
  });

  it('answers HEAD with headers and no body', async () => {
    const { app } = await appFor('running');
    const res = await app.request('/metrics', { method: 'HEAD' });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(await res.text()).toBe('');
  });

  it('serves on the configured path only', async () => {
    const { app } = await appFor('running', { LOKI_METRICS_PATH: '/custom/loki' });
    expect((await app.request('/custom/loki')).status).toBe(200);
    const old = await app.request('/metrics');
    expect(old.status).toBe(404);
    expect(await old.text()).toContain('/custom/loki');
  });

  it('turns into a 404 explaining how to enable it when LOKI_METRICS_ENABLED=false', async () => {
    const { app } = await appFor('running', { LOKI_METRICS_ENABLED: 'false' });
    const res = await app.request('/metrics');
    expect(res.status).toBe(404);
    expect(await res.text()).toMatch(/LOKI_METRICS_ENABLED=true/);
  });

  it('answers 200 with every family for a malformed tree', async () => {
    const { app } = await appFor('malformed');
    const res = await app.request('/metrics');
    expect(res.status).toBe(200);
    const body = await res.text();
    expect(body).toContain('loki_source_ok{source="dashboard-state.json"} 0');
    expect(body).toContain('loki_cost_usd 0.5625');
  });

  it('shares one refresh between concurrent scrapes and caches for the TTL', async () => {
    let now = Date.now();
    const { app, store } = await appFor('running', { LOKI_METRICS_CACHE_SECONDS: '2' }, () => now);
    const responses = await Promise.all(Array.from({ length: 20 }, () => app.request('/metrics')));
    expect(responses.every((r) => r.status === 200)).toBe(true);
    expect(store.reads).toBe(1);
    now += 1_500;
    await app.request('/metrics');
    expect(store.reads).toBe(1);
    now += 1_000;
    await app.request('/metrics');
    expect(store.reads).toBe(2);
  });
});

describe('when the store fails', () => {
  it('answers loki_up 0 with the last good values, never a 5xx or a stack trace', async () => {
    let fail = false;
    let now = Date.now();
    const dir = await materialize('running', { pid: 'alive', mtimeMs: Date.now() });
    const inner = new FsStateStore(dir, { watch: false });
    stores.push(inner);
    const store: StateStore = { read: () => (fail ? Promise.reject(new Error('binding exploded at /secret/path')) : inner.read()) };
    const logs: string[] = [];
    const app = createApp({ store, config: parseConfig({ LOKI_METRICS_CACHE_SECONDS: '0' }), clock: () => now, log: (l) => logs.push(l) });
    expect(await (await app.request('/metrics')).text()).toContain('loki_up 1');
    fail = true;
    now += 10;
    const res = await app.request('/metrics');
    expect(res.status).toBe(200);
    const body = await res.text();
    expect(body).toContain('loki_up 0');
    expect(body).toContain('loki_cost_usd 3.5313');
    expect(body).not.toContain('secret');
    expect(logs.join('\n')).toMatch(/state store failed/);
  });

  it('answers loki_up 0 with zeros when the first read fails', async () => {
    const store: StateStore = { read: () => Promise.reject(new Error('boom')) };
    const app = createApp({ store, config: parseConfig({}), log: () => undefined });
    const res = await app.request('/metrics');
    expect(res.status).toBe(200);
    const body = await res.text();
    expect(body).toContain('loki_up 0');
    expect(body).toContain('loki_session_status 0');
  });
});

describe('GET /health', () => {
  it('reports each source and overall status, 200 even when degraded', async () => {
    const ok = await (await appFor('running')).app.request('/health');
    expect(ok.status).toBe(200);
    const healthy = (await ok.json()) as { status: string; up: boolean; sources: { source: string; ok: boolean }[] };
    expect(healthy.status).toBe('ok');
    expect(healthy.up).toBe(true);
    expect(healthy.sources.map((s) => s.source)).toContain('events.jsonl');

    const bad = await (await appFor('malformed')).app.request('/health');
    expect(bad.status).toBe(200);
    const degraded = (await bad.json()) as { status: string; sources: { source: string; ok: boolean; problem?: string }[] };
    expect(degraded.status).toBe('degraded');
    expect(degraded.sources.find((s) => s.source === 'dashboard-state.json')).toMatchObject({ ok: false, problem: expect.stringMatching(/JSON/) });
  });
});

describe('/health for a state directory that cannot be read', () => {
  it('gives the reason, and the demo label says this is no simulation', async () => {
    const dir = join(await tempDir(), 'not-there', '.loki');
    const store = new FsStateStore(dir, { watch: false });
    stores.push(store);
    const app = createApp({ store, config: parseConfig({ LOKI_DIR: dir }), log: () => undefined });
    const body = (await (await app.request('/health')).json()) as { status: string; up: boolean; problem?: string };
    expect(body).toMatchObject({ status: 'degraded', up: false, problem: 'missing' });
    expect(await (await app.request('/metrics')).text()).toMatch(/^loki_exporter_build_info\{version="[^"]+",demo="false",revision="unknown"\} 1$/m);
    const demo = createApp({ store, config: { ...parseConfig({ LOKI_DIR: dir }), demo: true }, log: () => undefined });
    expect(await (await demo.request('/metrics')).text()).toMatch(/^loki_exporter_build_info\{version="[^"]+",demo="true",revision="unknown"\} 1$/m);
  });
});

describe('/health and times beyond Date', () => {
  it('never answers 500 for a modification time far in the future: the time is left out', async () => {
    const dir = await materialize('running', { pid: 'alive', mtimeMs: Date.now() });
    const inner = new FsStateStore(dir, { watch: false });
    stores.push(inner);
    const store: StateStore = {
      read: async () => {
        const reading = await inner.read();
        return { ...reading, documents: { ...reading.documents, 'dashboard-state.json': { ...reading.documents['dashboard-state.json'], mtimeMs: 1e300 } } };
      },
    };
    const app = createApp({ store, config: parseConfig({ LOKI_DIR: dir }), log: () => undefined });
    const res = await app.request('/health');
    expect(res.status).toBe(200);
    const body = (await res.json()) as { sources: { source: string; modified?: string }[] };
    const dashboard = body.sources.find((s) => s.source === 'dashboard-state.json')!;
    expect(dashboard).toBeDefined();
    expect(dashboard.modified).toBeUndefined();
    expect(body.sources.some((s) => s.modified !== undefined)).toBe(true);
    expect((await app.request('/metrics')).status).toBe(200);
  });
});

describe('other routes', () => {
  it('serves a landing page linking metrics and health', async () => {
    const { app } = await appFor('running', { LOKI_METRICS_PATH: '/m' });
    const res = await app.request('/');
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    const html = await res.text();
    expect(html).toContain('href="/m"');
    expect(html).toContain('href="/health"');
  });

  it('answers unknown paths with a plain-text 404 and other methods with 405', async () => {
    const { app } = await appFor('running');
    const missing = await app.request('/nope');
    expect(missing.status).toBe(404);
    expect(missing.headers.get('content-type')).toMatch(/^text\/plain/);
    const post = await app.request('/metrics', { method: 'POST' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
  });
});

describe('bearer token', () => {
  it('requires LOKI_METRICS_TOKEN on metrics, and on /health by default (LOKI_METRICS_HEALTH_PUBLIC unset)', async () => {
    const { app } = await appFor('running', { LOKI_METRICS_TOKEN: TOKEN });
    const none = await app.request('/metrics');
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect((await app.request('/metrics', { headers: { Authorization: 'Bearer wrong-token-0123456789' } })).status).toBe(401);
    const good = await app.request('/metrics', { headers: { Authorization: `Bearer ${TOKEN}` } });
    expect(good.status).toBe(200);
    const health = await app.request('/health');
    expect(health.status).toBe(401);
    expect(health.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect((await app.request('/health', { headers: { Authorization: `Bearer ${TOKEN}` } })).status).toBe(200);
  });

  it('keeps /health open without a token', async () => {
    const { app } = await appFor('running');
    const body = (await (await app.request('/health')).json()) as { sources: unknown[] };
    expect(body.sources.length).toBeGreaterThan(0);
  });

  it('protects /health too when LOKI_METRICS_HEALTH_PUBLIC=false', async () => {
    const { app } = await appFor('running', { LOKI_METRICS_TOKEN: TOKEN, LOKI_METRICS_HEALTH_PUBLIC: 'false' });
    expect((await app.request('/health')).status).toBe(401);
    expect((await app.request('/health', { headers: { Authorization: `Bearer ${TOKEN}` } })).status).toBe(200);
  });

  it('with LOKI_METRICS_HEALTH_PUBLIC=true, tells an unauthenticated probe the status only', async () => {
    for (const [fixture, status] of [['running', 'ok'], ['malformed', 'degraded']] as const) {
      const { app } = await appFor(fixture, { LOKI_METRICS_TOKEN: TOKEN, LOKI_METRICS_HEALTH_PUBLIC: 'true' });
      for (const headers of [{}, { Authorization: 'Bearer wrong-token-0123456789' }] as Record<string, string>[]) {
        const res = await app.request('/health', { headers });
        expect(res.status).toBe(200);
        expect(res.headers.get('cache-control')).toBe('no-store');
        expect(await res.json()).toEqual({ status });
      }
      const full = (await (await app.request('/health', { headers: { Authorization: `Bearer ${TOKEN}` } })).json()) as { status: string; sources: unknown[] };
      expect(full.status).toBe(status);
      expect(full.sources.length).toBeGreaterThan(0);
    }
  });

  it('never echoes the token', async () => {
    const { app } = await appFor('running', { LOKI_METRICS_TOKEN: TOKEN });
    for (const path of ['/metrics', '/health', '/', '/nope']) {
      const res = await app.request(path, { headers: { Authorization: 'Bearer wrong-token-0123456789' } });
      expect(await res.text()).not.toContain(TOKEN);
    }
  });
});

describe('the collector\'s settings', () => {
  it('LOKI_BUDGET_LIMIT and LOKI_MAX_ITERATIONS reach the collector (0 when no budget is set, as the family\'s help says)', async () => {
    // a tree without metrics/budget.json, whose limit would win
    const limited = await appFor('stale', { LOKI_BUDGET_LIMIT: '12.5', LOKI_MAX_ITERATIONS: '40' });
    const body = await (await limited.app.request('/metrics')).text();
    expect(body).toMatch(/^loki_budget_limit_usd 12\.5$/m);
    expect(body).toMatch(/^loki_iteration_max 40$/m);
    expect(body).toContain('# HELP loki_budget_limit_usd Budget limit in USD for the session (0 when no limit is set)');
    const open = await appFor('stale');
    expect(await (await open.app.request('/metrics')).text()).toMatch(/^loki_budget_limit_usd 0$/m);
  });

  it('syncStaleMs: synced state not synced for longer reads as a stopped session; without it, the sync time alone decides nothing', async () => {
    const dir = await materialize('running', { pid: 'alive', mtimeMs: Date.now() });
    const inner = new FsStateStore(dir, { watch: false });
    stores.push(inner);
    const now = Date.now();
    const store: StateStore = { read: async () => ({ ...(await inner.read()), lastSyncMs: now - 60_000 }) };
    const status = async (deps: Partial<AppDeps>) =>
      (await (await createApp({ store, config: parseConfig({ LOKI_DIR: dir }), log: () => undefined, clock: () => now, ...deps }).request('/metrics')).text()).match(/^loki_session_status (\d)$/m)?.[1];
    expect(await status({ syncStaleMs: 30_000 })).toBe('0');
    expect(await status({ syncStaleMs: 60_000 })).toBe('1');
    expect(await status({})).toBe('1');
  });

  it('the version given is the one reported (build info, /health, the landing page); by default the package\'s own', async () => {
    const dir = await materialize('running', { pid: 'alive', mtimeMs: Date.now() });
    const store = new FsStateStore(dir, { watch: false });
    stores.push(store);
    const custom = createApp({ store, config: parseConfig({ LOKI_DIR: dir }), log: () => undefined, version: '9.8.7-test' });
    expect(await (await custom.request('/metrics')).text()).toMatch(/^loki_exporter_build_info\{version="9\.8\.7-test",/m);
    expect(await (await custom.request('/health')).json()).toMatchObject({ version: '9.8.7-test' });
    expect(await (await custom.request('/')).text()).toContain('version 9.8.7-test.');
    const pkg = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
    const plain = createApp({ store, config: parseConfig({ LOKI_DIR: dir }), log: () => undefined });
    expect(await (await plain.request('/health')).json()).toMatchObject({ version: pkg.version });
  });

  it('the build info\'s revision and nodeversion come from AppDeps.build', async () => {
    const dir = await materialize('running', { pid: 'alive', mtimeMs: Date.now() });
    const store = new FsStateStore(dir, { watch: false });
    stores.push(store);
    const info = async (build: AppDeps['build']) =>
      (await (await createApp({ store, config: parseConfig({ LOKI_DIR: dir }), log: () => undefined, ...(build ? { build } : {}) }).request('/metrics')).text()).match(/^loki_exporter_build_info\{.*\} 1$/m)?.[0];
    expect(await info({ revision: 'abc123', nodeversion: 'v20.0.0' })).toMatch(/,revision="abc123",nodeversion="v20\.0\.0"\}/);
    expect(await info({ nodeversion: 'v20.0.0' })).toMatch(/,revision="unknown",nodeversion="v20\.0\.0"\}/);
    expect(await info({ revision: 'abc123' })).toMatch(/,revision="abc123"\} 1$/);
    expect(await info(undefined)).toMatch(/,revision="unknown"\} 1$/);
  });
});

describe('when the store fails (more)', () => {
  it('after good reads, /health says up false and degraded, and the log line names the failure', async () => {
    let fail = false;
    let now = Date.now();
    const dir = await materialize('running', { pid: 'alive', mtimeMs: Date.now() });
    const inner = new FsStateStore(dir, { watch: false });
    stores.push(inner);
    const store: StateStore = { read: () => (fail ? Promise.reject(new Error('binding exploded')) : inner.read()) };
    const logs: string[] = [];
    const app = createApp({ store, config: parseConfig({ LOKI_METRICS_CACHE_SECONDS: '0' }), clock: () => now, log: (l) => logs.push(l) });
    expect(await (await app.request('/health')).json()).toMatchObject({ status: 'ok', up: true });
    fail = true;
    now += 10;
    expect(await (await app.request('/health')).json()).toMatchObject({ status: 'degraded', up: false });
    expect(logs).toEqual(['loki-metrics: state store failed: binding exploded']);
  });

  it('a first read failing: /health gives the error\'s message as the problem, or a generic one for a rejection that is no Error', async () => {
    for (const [reason, problem, logged] of [
      [new Error('disk on fire'), 'disk on fire', 'disk on fire'],
      ['a plain string', 'state store failed', 'a plain string'],
    ] as const) {
      const logs: string[] = [];
      const app = createApp({ store: { read: () => Promise.reject(reason) }, config: parseConfig({}), log: (l) => logs.push(l) });
      expect(await (await app.request('/health')).json()).toMatchObject({ status: 'degraded', up: false, problem });
      expect(logs[0]).toBe(`loki-metrics: state store failed: ${logged}`);
    }
  });

  it('without a log given, the line goes to stderr (console.error)', async () => {
    const printed = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    try {
      const app = createApp({ store: { read: () => Promise.reject(new Error('nope')) }, config: parseConfig({}) });
      expect((await app.request('/metrics')).status).toBe(200);
      expect(printed.mock.calls[0]).toEqual(['loki-metrics: state store failed: nope']);
    } finally {
      printed.mockRestore();
    }
  });
});

describe('a store that never answers', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  /** Resolves once the pending microtasks and one turn of the loop have run. */
  const settle = () => new Promise<void>((resolve) => setImmediate(resolve));
  const hung: StateStore = { read: () => new Promise(() => undefined) };

  it(`counts as a failed read after STORE_TIMEOUT_MS (${STORE_TIMEOUT_MS} ms, inside Prometheus's default 10 s scrape timeout), not before`, async () => {
    expect(STORE_TIMEOUT_MS).toBeLessThan(10_000);
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const logs: string[] = [];
    const app = createApp({ store: hung, config: parseConfig({}), log: (l) => logs.push(l) });
    let answered: Response | undefined;
    const pending = Promise.resolve(app.request('/metrics')).then((res) => (answered = res));
    await vi.advanceTimersByTimeAsync(STORE_TIMEOUT_MS - 1);
    await settle();
    expect(answered).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1);
    await settle();
    await pending;
    expect(answered!.status).toBe(200);
    expect(await answered!.text()).toMatch(/^loki_up 0$/m);
    expect(logs[0]).toBe(`loki-metrics: state store failed: no answer within ${STORE_TIMEOUT_MS / 1000} s`);
  });

  it('storeTimeoutMs sets the wait', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const logs: string[] = [];
    const app = createApp({ store: hung, config: parseConfig({}), log: (l) => logs.push(l), storeTimeoutMs: 250 });
    let answered: Response | undefined;
    const pending = Promise.resolve(app.request('/health')).then((res) => (answered = res));
    await vi.advanceTimersByTimeAsync(249);
    await settle();
    expect(answered).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1);
    await pending;
    expect(await answered!.json()).toMatchObject({ status: 'degraded', up: false, problem: 'no answer within 0.25 s' });
    expect(logs[0]).toBe('loki-metrics: state store failed: no answer within 0.25 s');
  });

  it('a read that answers leaves no timer behind', async () => {
    const dir = await materialize('running', { pid: 'alive', mtimeMs: Date.now() });
    const inner = new FsStateStore(dir, { watch: false });
    stores.push(inner);
    const reading = await inner.read();
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const app = createApp({ store: { read: async () => reading }, config: parseConfig({}), log: () => undefined });
    expect(await (await app.request('/metrics')).text()).toMatch(/^loki_up 1$/m);
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe('/health details', () => {
  /** An app over the running fixture whose dashboard mtime is `mtimeMs`. */
  async function withMtime(mtimeMs: number) {
    const dir = await materialize('running', { pid: 'alive', mtimeMs: Date.now() });
    const inner = new FsStateStore(dir, { watch: false });
    stores.push(inner);
    const store: StateStore = {
      read: async () => {
        const reading = await inner.read();
        return { ...reading, documents: { ...reading.documents, 'dashboard-state.json': { ...reading.documents['dashboard-state.json'], mtimeMs } } };
      },
    };
    const res = await createApp({ store, config: parseConfig({ LOKI_DIR: dir }), log: () => undefined }).request('/health');
    expect(res.status).toBe(200);
    return ((await res.json()) as { sources: { source: string; modified?: string }[] }).sources.find((s) => s.source === 'dashboard-state.json')!;
  }

  it('gives a modification time as ISO 8601 through the whole range of Date (±8.64e15 ms, ECMAScript\'s time values), and none beyond or for NaN', async () => {
    for (const ms of [8.64e15, -8.64e15, 0, 1_767_225_600_123]) expect((await withMtime(ms)).modified, String(ms)).toBe(new Date(ms).toISOString());
    for (const ms of [8.64e15 + 1, -8.64e15 - 1, -1e300, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
      const source = await withMtime(ms);
      expect(source, String(ms)).toBeDefined();
      expect('modified' in source, String(ms)).toBe(false);
    }
  });

  it('an authenticated /health carries the extras given (the fleet\'s watch facts)', async () => {
    const dir = await materialize('running', { pid: 'alive', mtimeMs: Date.now() });
    const store = new FsStateStore(dir, { watch: false });
    stores.push(store);
    const app = createApp({ store, config: parseConfig({ LOKI_DIR: dir, LOKI_METRICS_TOKEN: TOKEN, LOKI_METRICS_HEALTH_PUBLIC: 'true' }), log: () => undefined, healthExtras: () => ({ watching: 'inotify', projects: 3 }) });
    expect(await (await app.request('/health', { headers: { Authorization: `Bearer ${TOKEN}` } })).json()).toMatchObject({ status: 'ok', watching: 'inotify', projects: 3 });
    expect(await (await app.request('/health')).json()).toEqual({ status: 'ok' });
  });

  it('an error inside a route is a plain 500 with no detail; the detail is one log line', async () => {
    const dir = await materialize('running', { pid: 'alive', mtimeMs: Date.now() });
    const store = new FsStateStore(dir, { watch: false });
    stores.push(store);
    const logs: string[] = [];
    const app = createApp({
      store,
      config: parseConfig({ LOKI_DIR: dir }),
      log: (l) => logs.push(l),
      healthExtras: () => {
        throw new Error('extras exploded at /secret/path');
      },
    });
    const res = await app.request('/health');
    expect(res.status).toBe(500);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(await res.text()).toBe('internal error\n');
    expect(logs).toEqual(['loki-metrics: internal error on GET /health: extras exploded at /secret/path']);
  });
});

describe('methods', () => {
  it('every route answers the methods its Allow header lists, and 405 with that header to the others (RFC 9110 §15.5.6)', async () => {
    const { app } = await appFor('running', { LOKI_METRICS_PATH: '/m' });
    for (const path of ['/m', '/health', '/']) {
      for (const method of ['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']) {
        const res = await app.request(path, { method });
        expect(res.status, `${method} ${path}`).toBe(405);
        expect(res.headers.get('x-content-type-options')).toBe('nosniff');
        expect(await res.text()).toBe('method not allowed\n');
        const allowed = res.headers.get('allow')!.split(',').map((m) => m.trim());
        expect(allowed.length).toBeGreaterThan(0);
        for (const ok of allowed) expect((await app.request(path, { method: ok })).status, `${ok} ${path}`).toBe(200);
      }
    }
  });
});

describe('basic-auth users (a web config\'s basic_auth_users)', () => {
  const HASH = bcrypt.hashSync('right-password', 4);
  const basic = (user: string, password: string) => ({ Authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` });

  async function appWith(deps: Partial<AppDeps>, env: Record<string, string> = {}) {
    const dir = await materialize('running', { pid: 'alive', mtimeMs: Date.now() });
    const store = new FsStateStore(dir, { watch: false });
    stores.push(store);
    return createApp({ store, config: parseConfig({ LOKI_DIR: dir, ...env }), log: () => undefined, ...deps });
  }

  it('alone: /metrics and /health need a user\'s password (a Basic challenge), and get the full answer with it', async () => {
    const users = new BasicAuthUsers({ alice: HASH }, { failureDelayMs: 0 });
    const app = await appWith({ basicAuthUsers: () => users });
    const none = await app.request('/metrics');
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toMatch(/^Basic realm=/);
    expect((await app.request('/metrics', { headers: basic('alice', 'wrong') })).status).toBe(401);
    expect((await app.request('/metrics', { headers: basic('alice', 'right-password') })).status).toBe(200);
    expect((await app.request('/health')).status).toBe(401);
    const health = (await (await app.request('/health', { headers: basic('alice', 'right-password') })).json()) as { sources: unknown[] };
    expect(health.sources.length).toBeGreaterThan(0);
  });

  it('with a token as well, either passes', async () => {
    const users = new BasicAuthUsers({ alice: HASH }, { failureDelayMs: 0 });
    const app = await appWith({ basicAuthUsers: () => users }, { LOKI_METRICS_TOKEN: TOKEN });
    expect((await app.request('/metrics', { headers: basic('alice', 'right-password') })).status).toBe(200);
    expect((await app.request('/metrics', { headers: { Authorization: `Bearer ${TOKEN}` } })).status).toBe(200);
    expect((await app.request('/metrics')).status).toBe(401);
  });

  it('a reloaded web config without users opens the routes again (asked per request)', async () => {
    let users: BasicAuthUsers | undefined = new BasicAuthUsers({ alice: HASH }, { failureDelayMs: 0 });
    const app = await appWith({ basicAuthUsers: () => users });
    expect((await app.request('/metrics')).status).toBe(401);
    users = undefined;
    expect((await app.request('/metrics')).status).toBe(200);
    expect(((await (await app.request('/health')).json()) as { sources: unknown[] }).sources.length).toBeGreaterThan(0);
  });

  it('a password check is charged to the client clientAddress names (its own share of the checks), or to one shared client without it', async () => {
    const busy: string[] = [];
    // no check may wait: every check is refused as busy, naming whose it was
    const users = new BasicAuthUsers({ alice: HASH }, { failureDelayMs: 0, maxChecksPerClient: 0, onBusy: (client) => busy.push(client) });
    const app = await appWith({ basicAuthUsers: () => users, clientAddress: (c) => c.req.header('X-Test-Peer') });
    expect((await app.request('/metrics', { headers: { ...basic('alice', 'right-password'), 'X-Test-Peer': '192.0.2.7' } })).status).toBe(401);
    const shared = await appWith({ basicAuthUsers: () => users });
    expect((await shared.request('/metrics', { headers: { ...basic('alice', 'right-password'), 'X-Test-Peer': '192.0.2.8' } })).status).toBe(401);
    expect(busy).toEqual(['192.0.2.7', '']);
  });
});

describe('landingPage', () => {
  it('escapes the metrics path for an HTML attribute: it reads back as given, with no markup of its own', () => {
    const path = `/m"><script>alert('x')</script>&amp;`;
    const html = landingPage(path, '1.2.3');
    const href = /<li><a href="([^"]*)">Metrics<\/a><\/li>/.exec(html)?.[1];
    expect(href).toBeDefined();
    expect(href).not.toMatch(/[<>"']/);
    expect(href!.replace(/&#(\d+);/g, (_, code: string) => String.fromCharCode(Number(code)))).toBe(path);
    expect(html).not.toContain('<script>');
    expect(html).toContain('<a href="/health">Health</a>');
    expect(html).toContain('version 1.2.3.');
  });
});
