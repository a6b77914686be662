/**
 * The fleet's own answers, before any project app: the landing page and its methods, the host
 * check against DNS rebinding (its 403 and its once-a-minute log line), and what an anonymous
 * public /health says and costs. Real stores on real trees; bcrypt counted through its seam.
 */
import bcrypt from 'bcryptjs';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { BasicAuthUsers } from '../src/basic-auth.js';
import { parseConfig } from '../src/config.js';
import { createFleetApp, singleProject } from '../src/fleet.js';
import { FsStateStore } from '../src/stores/fs.js';
import type { StateStore } from '../src/stores/store.js';
import { VERSION } from '../src/version.js';
import { cleanTrees, materialize, tempDir } from './support/loki-tree.js';

const TOKEN = 'fleet-token-0123456789abcdef';
const stores: StateStore[] = [];
afterEach(async () => {
  vi.restoreAllMocks();
  await Promise.all(stores.splice(0).map((s) => s.close?.()));
  await cleanTrees();
});

async function storeOf(fixture: string): Promise<StateStore> {
  const store = new FsStateStore(await materialize(fixture, { pid: 'alive', mtimeMs: Date.now() }), { watch: false });
  stores.push(store);
  return store;
}

describe('the landing page, answered by the fleet itself', () => {
  it('names the version it was given, else its own', async () => {
    const store = await storeOf('running');
    const given = createFleetApp({ catalog: singleProject(store), config: parseConfig({}), log: () => undefined, defaultProject: 'default', version: '9.8.7-fleet' });
    expect(await (await given.request('/')).text()).toContain('exporter for Loki Mode, version 9.8.7-fleet.');
    const own = createFleetApp({ catalog: singleProject(store), config: parseConfig({}), log: () => undefined, defaultProject: 'default' });
    expect(await (await own.request('/')).text()).toContain(`exporter for Loki Mode, version ${VERSION}.`);
  });

  it('refuses other methods with 405 and the methods it allows, and an invalid ?project= with 400', async () => {
    const app = createFleetApp({ catalog: singleProject(await storeOf('running')), config: parseConfig({}), log: () => undefined, defaultProject: 'default' });
    for (const method of ['POST', 'PUT', 'DELETE']) {
      const res = await app.request('/', { method });
      expect([res.status, res.headers.get('allow'), await res.text()]).toEqual([405, 'GET, HEAD', 'method not allowed\n']);
    }
    const invalid = await app.request('/?project=-x');
    expect([invalid.status, await invalid.text()]).toEqual([400, 'invalid project name: use 1-64 characters of A-Z a-z 0-9 . _ - starting with a letter or digit\n']);
    expect((await app.request('/?project=ok')).status).toBe(200);
  });
});

describe('the host check (DNS rebinding)', () => {
  it('refuses a Host it does not answer with a 403 that says why, and logs it at most once a minute', async () => {
    const logs: string[] = [];
    const app = createFleetApp({ catalog: singleProject(await storeOf('running')), config: parseConfig({}), log: (l) => logs.push(l), defaultProject: 'default', allowedHosts: [] });
    const now = vi.spyOn(performance, 'now');
    const refused = async () => {
      const res = await app.request('http://rebind.example:9464/metrics');
      return [res.status, await res.text()];
    };
    now.mockReturnValue(5_000);
    expect(await refused()).toEqual([403, 'forbidden: this Host is not answered (DNS rebinding protection; see docs/configuration.md, LOKI_METRICS_ALLOWED_HOSTS)\n']);
    expect(logs).toHaveLength(1);
    expect(logs[0]).toMatch(/^loki-metrics: refused a request for Host rebind\.example: .*\(not logged again this minute\)$/);
    now.mockReturnValue(64_999);
    await refused();
    expect(logs).toHaveLength(1);
    now.mockReturnValue(65_000); // a minute exactly after the last line
    await refused();
    expect(logs).toHaveLength(2);
    now.mockReturnValue(124_999);
    await refused();
    expect(logs).toHaveLength(2);
    now.mockRestore();
    expect((await app.request('http://localhost:9464/metrics')).status).toBe(200);
  });
});

describe('a public /health without credentials', () => {
  it('answers what the default project\'s own app answers anonymously: degraded when it cannot be read', async () => {
    const absent = new FsStateStore(join(await tempDir('loki-fleet-'), 'absent', '.loki'), { watch: false });
    stores.push(absent);
    const app = createFleetApp({ catalog: singleProject(absent), config: parseConfig({ LOKI_METRICS_TOKEN: TOKEN, LOKI_METRICS_HEALTH_PUBLIC: 'true' }), log: () => undefined, defaultProject: 'default' });
    for (const path of ['/health', '/health?project=default', '/health?project=other']) {
      const res = await app.request(path);
      expect({ path, status: res.status, body: await res.json() }).toEqual({ path, status: 200, body: { status: 'degraded' } });
    }
    const auth = await app.request('/health', { headers: { Authorization: `Bearer ${TOKEN}` } });
    expect(((await auth.json()) as { up: unknown }).up).toBe(false);
  });

  it('is the only route asking whether a request is authenticated: a scrape costs no bcrypt check for its sake', async () => {
    let compared = 0;
    const compare = (password: string, hash: string) => (compared++, bcrypt.compare(password, hash));
    // ttlMs 0: nothing remembered, so every check of the credentials is a bcrypt comparison.
    const users = new BasicAuthUsers({ prom: bcrypt.hashSync('right', 4) }, { ttlMs: 0, failureDelayMs: 0, compare });
    const basic = { headers: { Authorization: `Basic ${btoa('prom:right')}` } };
    for (const env of [{}, { LOKI_METRICS_TOKEN: TOKEN }]) {
      const app = createFleetApp({ catalog: singleProject(await storeOf('running')), config: parseConfig({ ...env, LOKI_METRICS_CACHE_SECONDS: '0', LOKI_METRICS_HEALTH_PUBLIC: 'true' }), log: () => undefined, basicAuthUsers: () => users, defaultProject: 'default' });
      compared = 0;
      expect((await app.request('/metrics', basic)).status).toBe(200);
      // The fleet's guard and the project app's own: nothing more.
      expect({ env, compared }).toEqual({ env, compared: 2 });
    }
  });
});
