/**
 * The headers every response carries, on the apps that serve: every answer has them, including a
 * guard's thrown 401, and they cost a scrape no copy: the response @hono/node-server gets is the
 * one the handler built, which it writes straight to the socket (its fast path for string bodies).
 */
import { getRequestListener } from '@hono/node-server';
import { afterEach, describe, expect, it } from 'vitest';
import { createApp } from '../src/app.js';
import { parseConfig } from '../src/config.js';
import { createFleetApp, singleProject, DEFAULT_PROJECT } from '../src/fleet.js';
import { EVERY_RESPONSE } from '../src/response-headers.js';
import { FsStateStore } from '../src/stores/fs.js';
import { cleanTrees, materialize } from './support/loki-tree.js';

const TOKEN = 'test-token-0123456789abcdef';
const stores: FsStateStore[] = [];
afterEach(async () => {
  for (const store of stores.splice(0)) store.close();
  await cleanTrees();
});

// What @hono/node-server does to a server's process: its Response, which keeps a string body and
// headers as given until something reads the body, replaces the global one.
getRequestListener(() => new Response(''));

/** Whether `res` is still as built, with @hono/node-server's cache of status, body and headers. */
const unmaterialized = (res: Response): boolean => Object.getOwnPropertySymbols(res).some((symbol) => symbol.description === 'cache');

async function apps(env: Record<string, string> = {}) {
  const dir = await materialize('running', { pid: 'alive', mtimeMs: Date.now() });
  const store = new FsStateStore(dir, { watch: false });
  stores.push(store);
  const config = parseConfig({ LOKI_DIR: dir, ...env });
  return {
    project: createApp({ store, config, log: () => undefined }),
    fleet: createFleetApp({ catalog: singleProject(store), config, log: () => undefined, defaultProject: DEFAULT_PROJECT }),
  };
}

describe('the headers every response carries', () => {
  it('are exactly X-Content-Type-Options: nosniff', () => {
    expect(EVERY_RESPONSE).toEqual({ 'X-Content-Type-Options': 'nosniff' });
  });

  it('reach a scrape without a copy of the response, from the project app and through the fleet', async () => {
    const { project, fleet } = await apps();
    for (const app of [project, fleet]) {
      const res = await app.request('/metrics');
      expect(res.status).toBe(200);
      expect(unmaterialized(res)).toBe(true);
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
      expect(await res.text()).toContain('loki_session_status 1\n');
    }
  });

  it('are on every kind of answer: health, landing page, 404, 405, a refused Host, and a guard\'s 401', async () => {
    const { project, fleet } = await apps({ LOKI_METRICS_TOKEN: TOKEN });
    const guarded = createFleetApp({
      catalog: singleProject(stores[0]!),
      config: parseConfig({ LOKI_DIR: '/nonexistent' }),
      log: () => undefined,
      defaultProject: DEFAULT_PROJECT,
      allowedHosts: ['localhost'],
    });
    const answers: [string, Response][] = [];
    for (const [name, app] of [['project', project], ['fleet', fleet]] as const) {
      answers.push([`${name} 401`, await app.request('/metrics')]);
      answers.push([`${name} 200`, await app.request('/metrics', { headers: { Authorization: `Bearer ${TOKEN}` } })]);
      answers.push([`${name} /health`, await app.request('/health')]);
      answers.push([`${name} /`, await app.request('/')]);
      answers.push([`${name} 404`, await app.request('/nope')]);
      answers.push([`${name} 405`, await app.request('/', { method: 'POST' })]);
    }
    answers.push(['refused Host', await guarded.request('http://rebound.example/metrics')]);
    expect(answers.map(([name, res]) => `${name}: ${res.status}`)).toEqual([
      'project 401: 401', 'project 200: 200', 'project /health: 401', 'project /: 200', 'project 404: 404', 'project 405: 405',
      'fleet 401: 401', 'fleet 200: 200', 'fleet /health: 401', 'fleet /: 200', 'fleet 404: 404', 'fleet 405: 405',
      'refused Host: 403',
    ]);
    for (const [name, res] of answers) expect(res.headers.get('x-content-type-options'), name).toBe('nosniff');
  });
});
