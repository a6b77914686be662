/**
 * The fleet layer over Fetch Request/Response: projects chosen by ?project= (or ?session=), the
 * default project for a plain /metrics, discovery in Prometheus's http_sd format, credentials before
 * any project is named, one app (store, collector, cache) per project. Real stores on real trees.
 */
import bcrypt from 'bcryptjs';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { BasicAuthUsers } from '../src/basic-auth.js';
import { parseConfig } from '../src/config.js';
import { createFleetApp, singleProject, type ProjectCatalog } from '../src/fleet.js';
import { FsStateStore } from '../src/stores/fs.js';
import { unreadableReading, type StateStore } from '../src/stores/store.js';
import { CountingStore } from './support/counting-store.js';
import { cleanTrees, materialize } from './support/loki-tree.js';

const TOKEN = 'fleet-token-0123456789abcdef';
const stores: StateStore[] = [];
afterEach(async () => {
  await Promise.all(stores.splice(0).map((s) => s.close?.()));
  await cleanTrees();
});

async function storeOf(fixture: string): Promise<CountingStore> {
  const store = new CountingStore(new FsStateStore(await materialize(fixture, { pid: 'alive', mtimeMs: Date.now() }), { watch: false }));
  stores.push(store);
  return store;
}

/** A catalog whose projects the test can change. */
function mutableCatalog(initial: Record<string, StateStore>): ProjectCatalog & { projects: Record<string, StateStore> } {
  const catalog = {
    projects: { ...initial },
    list: async () => Object.keys(catalog.projects).map((name) => ({ name })),
    store: (name: string) => catalog.projects[name],
  };
  return catalog;
}

const metric = (body: string, name: string) => body.split('\n').find((l) => l.startsWith(`${name} `));

describe('createFleetApp', () => {
  it('serves each project its own output at ?project=NAME, ?session= as an alias, and the default for a plain /metrics', async () => {
    const running = await storeOf('running');
    const paused = await storeOf('paused');
    const app = createFleetApp({ catalog: mutableCatalog({ alpha: running, beta: paused }), config: parseConfig({ LOKI_METRICS_CACHE_SECONDS: '0' }), log: () => undefined, defaultProject: 'alpha' });
    const alpha = await (await app.request('/metrics?project=alpha')).text();
    const beta = await (await app.request('/metrics?project=beta')).text();
    expect(metric(alpha, 'loki_session_status')).toBe('loki_session_status 1');
    expect(metric(beta, 'loki_session_status')).toBe('loki_session_status 2');
    expect(await (await app.request('/metrics?session=beta')).text()).toContain('loki_session_status 2');
    expect(metric(await (await app.request('/metrics')).text(), 'loki_session_status')).toBe('loki_session_status 1');
    // The project is not in the series: relabelling adds it.
    expect(alpha).not.toContain('project=');
    expect((await app.request('/health?project=beta')).status).toBe(200);
  });

  it('answers 404 for an unknown project, 400 for an invalid name, and asks to choose without a default', async () => {
    const app = createFleetApp({ catalog: mutableCatalog({ alpha: await storeOf('running') }), config: parseConfig({}), log: () => undefined });
    const none = await app.request('/metrics');
    expect(none.status).toBe(404);
    expect(await none.text()).toBe('choose a project: /metrics?project=NAME (the projects are listed at /targets)\n');
    const unknown = await app.request('/metrics?project=gamma');
    expect(unknown.status).toBe(404);
    expect(await unknown.text()).toContain('unknown project "gamma"');
    for (const bad of ['-x', 'a/b', 'x'.repeat(65), '', '%00']) expect((await app.request(`/metrics?project=${bad}`)).status).toBe(400);
    expect((await app.request('/metrics?project=' + 'x'.repeat(64))).status).toBe(404);
    expect((await app.request('/elsewhere?project=alpha')).status).toBe(404);
  });

  it('lists the projects for http_sd_configs, with the address the request came to', async () => {
    const catalog = mutableCatalog({ alpha: await storeOf('running'), beta: await storeOf('paused') });
    const app = createFleetApp({ catalog, config: parseConfig({}), log: () => undefined });
    const res = await app.request('http://exporter.example:9000/targets');
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await res.json()).toEqual([
      { targets: ['exporter.example:9000'], labels: { project: 'alpha', __param_project: 'alpha' } },
      { targets: ['exporter.example:9000'], labels: { project: 'beta', __param_project: 'beta' } },
    ]);
    delete catalog.projects.beta;
    expect(((await (await app.request('/targets')).json()) as unknown[]).length).toBe(1);
  });

  it('checks the token before naming a project or listing any', async () => {
    const app = createFleetApp({ catalog: mutableCatalog({ alpha: await storeOf('running') }), config: parseConfig({ LOKI_METRICS_TOKEN: TOKEN }), log: () => undefined });
    for (const path of ['/targets', '/metrics?project=alpha', '/metrics?project=nope', '/metrics?project=-bad', '/health?project=nope']) {
      expect({ path, status: (await app.request(path)).status }).toEqual({ path, status: 401 });
    }
    const auth = { headers: { Authorization: `Bearer ${TOKEN}` } };
    expect((await app.request('/targets', auth)).status).toBe(200);
    expect((await app.request('/metrics?project=alpha', auth)).status).toBe(200);
    expect((await app.request('/metrics?project=nope', auth)).status).toBe(404);
  });

  it('checks basic-auth users (a web config) before naming a project, alone or next to the token', async () => {
    const users = new BasicAuthUsers({ prom: bcrypt.hashSync('right', 4) });
    const basic = (password: string) => ({ headers: { Authorization: `Basic ${btoa(`prom:${password}`)}` } });
    for (const env of [{}, { LOKI_METRICS_TOKEN: TOKEN }]) {
      const app = createFleetApp({ catalog: mutableCatalog({ alpha: await storeOf('running') }), config: parseConfig(env), log: () => undefined, basicAuthUsers: () => users });
      for (const path of ['/targets', '/metrics?project=alpha', '/metrics?project=nope', '/health?project=alpha']) {
        expect({ path, env, status: (await app.request(path, basic('wrong'))).status }).toEqual({ path, env, status: 401 });
        expect({ path, env, status: (await app.request(path)).status }).toEqual({ path, env, status: 401 });
      }
      expect((await app.request('/targets', basic('right'))).status).toBe(200);
      expect((await app.request('/metrics?project=alpha', basic('right'))).status).toBe(200);
      expect((await app.request('/metrics?project=nope', basic('right'))).status).toBe(404);
    }
  });

  it('logs to stderr when given no log of its own', async () => {
    const catalog: ProjectCatalog = { list: async () => [], store: () => { throw new Error('disk on fire'); } };
    const app = createFleetApp({ catalog, config: parseConfig({}), defaultProject: 'x' });
    const stderr = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    try {
      expect((await app.request('/metrics')).status).toBe(500);
      expect(stderr.mock.calls).toEqual([['loki-metrics: internal error on GET /metrics: disk on fire']]);
    } finally {
      stderr.mockRestore();
    }
  });

  it('keeps one app per project (its cache serves repeated scrapes) and rebuilds it when the store is replaced', async () => {
    const first = await storeOf('running');
    const catalog = mutableCatalog({ alpha: first });
    const app = createFleetApp({ catalog, config: parseConfig({ LOKI_METRICS_CACHE_SECONDS: '60' }), log: () => undefined });
    for (let i = 0; i < 3; i++) await app.request('/metrics?project=alpha');
    expect(first.reads).toBe(1);
    const second = await storeOf('paused');
    catalog.projects.alpha = second;
    expect(await (await app.request('/metrics?project=alpha')).text()).toContain('loki_session_status 2');
    expect(second.reads).toBe(1);
  });

  it('drops the least recently used app beyond maxApps', async () => {
    const a = await storeOf('running');
    const b = await storeOf('running');
    const app = createFleetApp({ catalog: mutableCatalog({ a, b }), config: parseConfig({ LOKI_METRICS_CACHE_SECONDS: '60' }), log: () => undefined, maxApps: 1 });
    await app.request('/metrics?project=a');
    await app.request('/metrics?project=b'); // a's app is dropped
    await app.request('/metrics?project=a'); // a new app: a new refresh
    expect(a.reads).toBe(2);
    expect(b.reads).toBe(1);
  });

  it('adds the catalog\'s facts to an authenticated /health', async () => {
    const store = await storeOf('running');
    const catalog: ProjectCatalog = { ...singleProject(store, 'alpha'), health: () => ({ watch: { mode: 'polling' } }) };
    const app = createFleetApp({ catalog, config: parseConfig({}), log: () => undefined, defaultProject: 'alpha' });
    expect(((await (await app.request('/health')).json()) as { watch: unknown }).watch).toEqual({ mode: 'polling' });
  });

  it('answers its own 404s and 400s in plain words, with nosniff, and lists targets uncached', async () => {
    const app = createFleetApp({ catalog: mutableCatalog({ alpha: await storeOf('running') }), config: parseConfig({ LOKI_METRICS_PATH: '/scrape' }), log: () => undefined });
    const stray = await app.request('/elsewhere');
    expect([stray.status, await stray.text(), stray.headers.get('x-content-type-options')]).toEqual([404, 'not found: metrics are at /scrape\n', 'nosniff']);
    const invalid = 'use 1-64 characters of A-Z a-z 0-9 . _ - starting with a letter or digit\n';
    expect(await (await app.request('/scrape?project=-x')).text()).toBe(`invalid project name: ${invalid}`);
    expect(await (await app.request('/scrape?session=-x')).text()).toBe(`invalid session name: ${invalid}`);
    expect(await (await app.request('/scrape?project=-x&session=ok')).text()).toBe(`invalid project name: ${invalid}`);
    const targets = await app.request('/targets');
    expect([targets.headers.get('cache-control'), targets.headers.get('x-content-type-options')]).toEqual(['no-store', 'nosniff']);
  });

  it('with LOKI_METRICS_HEALTH_PUBLIC=true, /health answers the status only without the token; otherwise 401', async () => {
    const store = await storeOf('running');
    for (const [value, status, keys] of [['true', 200, ['status']], ['false', 401, undefined]] as const) {
      const app = createFleetApp({ catalog: mutableCatalog({ alpha: store }), config: parseConfig({ LOKI_METRICS_TOKEN: TOKEN, LOKI_METRICS_HEALTH_PUBLIC: value }), log: () => undefined, defaultProject: 'alpha' });
      const res = await app.request('/health');
      expect(res.status).toBe(status);
      if (keys) expect(Object.keys((await res.json()) as object)).toEqual(keys);
      expect((await app.request('/metrics')).status).toBe(401);
    }
  });

  it('keeps every project\'s app while there is room (no refresh per switch)', async () => {
    const a = await storeOf('running');
    const b = await storeOf('paused');
    const app = createFleetApp({ catalog: mutableCatalog({ a, b }), config: parseConfig({ LOKI_METRICS_CACHE_SECONDS: '60' }), log: () => undefined });
    for (let i = 0; i < 3; i++) {
      await app.request('/metrics?project=a');
      await app.request('/metrics?project=b');
    }
    expect([a.reads, b.reads]).toEqual([1, 1]);
  });

  it('answers 500 without details when the catalog fails, and logs one line to its own log', async () => {
    const logs: string[] = [];
    const catalog: ProjectCatalog = { list: async () => [], store: () => { throw new Error('disk on fire'); } };
    const app = createFleetApp({ catalog, config: parseConfig({}), log: (l) => logs.push(l), defaultProject: 'x' });
    const res = await app.request('/metrics');
    expect([res.status, await res.text()]).toEqual([500, 'internal error\n']);
    expect(logs).toEqual(['loki-metrics: internal error on GET /metrics: disk on fire']);
  });
});

describe('singleProject', () => {
  it('lists one project and has a store for that name only', async () => {
    const store = await storeOf('running');
    const catalog = singleProject(store, 'solo');
    expect(await catalog.list()).toEqual([{ name: 'solo' }]);
    expect(await catalog.store('solo')).toBe(store);
    expect(await catalog.store('other')).toBeUndefined();
    expect(await singleProject(store).list()).toEqual([{ name: 'default' }]);
  });
});

describe('the apps kept, bounded by what their stores retain', () => {
  it('drops the least recently used apps beyond maxRetainedBytes, and has the catalog forget their stores', async () => {
    const sized = (bytes: number): StateStore & { reads: number } => {
      const store = { reads: 0, read: async () => (store.reads++, unreadableReading('test')), retainedBytes: () => bytes };
      return store;
    };
    const projects = { a: sized(400), b: sized(400), c: sized(400), d: sized(10), e: sized(10) };
    const forgotten: string[] = [];
    const catalog = { ...mutableCatalog(projects), forget: (name: string) => void forgotten.push(name) };
    const app = createFleetApp({ catalog, config: parseConfig({ LOKI_METRICS_CACHE_SECONDS: '0' }), log: () => undefined, maxRetainedBytes: 1000 });
    for (const name of ['a', 'b', 'c']) expect((await app.request(`/metrics?project=${name}`)).status).toBe(200);
    expect(forgotten).toEqual([]); // 1,200 bytes kept, but nothing new came since the third
    await app.request('/metrics?project=a'); // a is now the most recently used
    expect((await app.request('/metrics?project=d')).status).toBe(200);
    expect(forgotten).toEqual(['b']); // the oldest goes until 800 are kept: b, not a
    // Dropped apps are made again on demand; kept ones are reused (no new app, the same collector).
    await app.request('/metrics?project=a');
    expect(forgotten).toEqual(['b']);
    await app.request('/metrics?project=b'); // made again: 810 kept before it came, none dropped
    expect(forgotten).toEqual(['b']);
    await app.request('/metrics?project=e'); // 1,210 kept: the oldest, c, goes
    expect(forgotten).toEqual(['b', 'c']);
  });
});

describe('without credentials, nothing names a project (issue 19, items 3 and 11)', () => {
  it('/ and a public /health answer the same whichever project is asked for, and touch none but the default', async () => {
    const web = await storeOf('running');
    const asked: string[] = [];
    const base = mutableCatalog({ web });
    const catalog = { ...base, store: (name: string) => (asked.push(name), base.store(name)) };
    const app = createFleetApp({ catalog, config: parseConfig({ LOKI_METRICS_TOKEN: TOKEN, LOKI_METRICS_HEALTH_PUBLIC: 'true' }), log: () => undefined, defaultProject: 'web' });
    const answer = async (path: string) => {
      const res = await app.request(path);
      return { status: res.status, body: await res.text() };
    };
    for (const route of ['/', '/health']) {
      const known = await answer(`${route}?project=web`);
      expect(await answer(`${route}?project=nosuch`)).toEqual(known);
      expect(await answer(`${route}?session=nosuch`)).toEqual(known);
      expect(known.status).toBe(200);
    }
    expect(asked.every((name) => name === 'web')).toBe(true); // only the default, for /health
    expect(asked.filter((name) => name === 'web').length).toBeLessThanOrEqual(3);
    // With the token, /health speaks for the project asked for, and an unknown one is a 404.
    const auth = { headers: { Authorization: `Bearer ${TOKEN}` } };
    expect((await app.request('/health?project=nosuch', auth)).status).toBe(404);
    expect(asked).toContain('nosuch');
  });

  it('a public /health without a default project answers ok, reading nothing', async () => {
    const asked: string[] = [];
    const base = mutableCatalog({ web: await storeOf('running') });
    const catalog = { ...base, store: (name: string) => (asked.push(name), base.store(name)) };
    const app = createFleetApp({ catalog, config: parseConfig({ LOKI_METRICS_TOKEN: TOKEN, LOKI_METRICS_HEALTH_PUBLIC: 'true' }), log: () => undefined });
    for (const path of ['/health', '/health?project=web', '/health?project=nosuch']) expect(await (await app.request(path)).json()).toEqual({ status: 'ok' });
    expect(asked).toEqual([]);
  });
});
