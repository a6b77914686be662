import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config.js';
import { startServer, type RunningServer } from '../../src/node/server.js';
import { FsStateStore } from '../../src/stores/fs.js';
import { cleanTrees, materialize } from '../support/loki-tree.js';

const running: { server: RunningServer; store: FsStateStore }[] = [];
afterEach(async () => {
  for (const { server, store } of running.splice(0)) {
    await server.close();
    await store.close();
  }
  await cleanTrees();
});

async function serve(env: Record<string, string> = {}, port = 0) {
  const dir = await materialize('running', { pid: 'alive', mtimeMs: Date.now() });
  const store = new FsStateStore(dir);
  const server = await startServer({ ...parseConfig({ LOKI_DIR: dir, ...env }), port }, store, () => undefined);
  running.push({ server, store });
  return server;
}

describe('startServer', () => {
  it('binds 127.0.0.1 by default and serves the app over real HTTP', async () => {
    const server = await serve();
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    const res = await fetch(server.url);
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('loki_events_total 50');
    const health = await fetch(server.url.replace('/metrics', '/health'));
    expect(((await health.json()) as { status: string }).status).toBe('ok');
  });

  it('binds another address only when asked', async () => {
    const server = await serve({ LOKI_METRICS_HOST: '0.0.0.0' });
    expect(server.url).toMatch(/^http:\/\/0\.0\.0\.0:\d+\//);
    expect((await fetch(`http://127.0.0.1:${server.port}/health`)).status).toBe(200);
  });

  it('says clearly when the port is taken', async () => {
    const first = await serve();
    await expect(serve({}, first.port)).rejects.toThrow(/already in use \(set LOKI_METRICS_PORT or --port\)/);
  });
});
