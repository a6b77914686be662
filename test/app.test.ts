/**
 * The Hono app over Fetch Request/Response, on real trees through the real fs store.
 */
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createApp } from '../src/app.js';
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
