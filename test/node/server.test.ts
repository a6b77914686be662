import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
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

async function serve(env: Record<string, string> = {}, port = 0, log: (line: string) => void = () => undefined) {
  const dir = await materialize('running', { pid: 'alive', mtimeMs: Date.now() });
  const store = new FsStateStore(dir);
  const server = await startServer({ ...parseConfig({ LOKI_DIR: dir, ...env }), port }, store, log);
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

  it('says clearly when the port is taken, and by whom', async () => {
    const first = await serve();
    await expect(serve({}, first.port)).rejects.toThrow(`port ${first.port} on 127.0.0.1 is already served by another loki-metrics`);
    const other = createServer((_req, res) => res.writeHead(404).end());
    await new Promise<void>((resolve) => other.listen(0, '127.0.0.1', resolve));
    const port = (other.address() as AddressInfo).port;
    try {
      await expect(serve({}, port)).rejects.toThrow(`port ${port} on 127.0.0.1 is already in use (set LOKI_METRICS_PORT or --port)`);
    } finally {
      other.close();
    }
  });
});

/** A GET to 127.0.0.1 naming `host` in its Host header, as a browser after a DNS rebinding would. */
function getWithHost(port: number, path: string, host: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers: { ...headers, Host: host }, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('the Host check against DNS rebinding (issue 19, item 15)', () => {
  it('on a loopback address without credentials, a Host that is not localhost, an IP or allowed gets 403 on every route, said once a minute', async () => {
    const logs: string[] = [];
    const server = await serve({}, 0, (line) => logs.push(line));
    for (const path of ['/metrics', '/health', '/', '/targets', '/nosuch']) {
      const answer = await getWithHost(server.port, path, 'rebound.example:57374');
      expect({ path, status: answer.status }).toEqual({ path, status: 403 });
      expect(answer.body).not.toContain('loki_');
    }
    expect(logs).toEqual([expect.stringMatching(/^loki-metrics: refused a request for Host rebound\.example: .*LOKI_METRICS_ALLOWED_HOSTS or --allowed-hosts \(not logged again this minute\)$/)]);
    for (const host of ['localhost', `localhost:${server.port}`, `127.0.0.1:${server.port}`, 'app.localhost', '[::1]']) {
      expect({ host, status: (await getWithHost(server.port, '/metrics', host)).status }).toEqual({ host, status: 200 });
    }
    // /targets names the Host the request named: only ever an answered one.
    const targets = await getWithHost(server.port, '/targets', `localhost:${server.port}`);
    expect(JSON.parse(targets.body)).toEqual([expect.objectContaining({ targets: [`localhost:${server.port}`] })]);
  });

  it('LOKI_METRICS_ALLOWED_HOSTS adds names (a local reverse proxy passing its own Host on); * answers any', async () => {
    const listed = await serve({ LOKI_METRICS_ALLOWED_HOSTS: 'loki.example.com, other.example' });
    expect((await getWithHost(listed.port, '/metrics', 'loki.example.com')).status).toBe(200);
    expect((await getWithHost(listed.port, '/metrics', 'sub.loki.example.com')).status).toBe(403);
    const any = await serve({ LOKI_METRICS_ALLOWED_HOSTS: '*' });
    expect((await getWithHost(any.port, '/metrics', 'rebound.example')).status).toBe(200);
  });

  it('is off where it cannot help: with a token (a rebinding page has none), or on a non-loopback address', async () => {
    const token = 'host-check-token-0123456789';
    const withToken = await serve({ LOKI_METRICS_TOKEN: token });
    expect((await getWithHost(withToken.port, '/metrics', 'loki.example.com', { Authorization: `Bearer ${token}` })).status).toBe(200);
    expect((await getWithHost(withToken.port, '/metrics', 'loki.example.com')).status).toBe(401);
    const wide = await serve({ LOKI_METRICS_HOST: '0.0.0.0' });
    expect((await getWithHost(wide.port, '/metrics', 'exporter.lan')).status).toBe(200);
  });
});
