import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ENV, parseConfig } from '../../src/config.js';
import { isDashboardHealth, LOKI_DASHBOARD_DEFAULT_PORT, portInUseMessage, probeHost, whoHolds } from '../../src/node/port-holder.js';
import { startServer, type RunningServer } from '../../src/node/server.js';
import { FsStateStore } from '../../src/stores/fs.js';
import { cleanTrees, materialize } from '../support/loki-tree.js';

/** What Loki Mode 9.22.12's dashboard answers on GET /health (dashboard/server.py), byte for byte. */
const DASHBOARD_HEALTH = '{"status":"healthy","service":"loki-dashboard"}';

const servers: Server[] = [];
const exporters: { server: RunningServer; store: FsStateStore }[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
  for (const { server, store } of exporters.splice(0)) {
    await server.close();
    await store.close();
  }
  await cleanTrees();
});

async function holder(listener: RequestListener): Promise<number> {
  const server = createServer(listener);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

/** A stand-in for Loki Mode's dashboard: its /health and its landing page, as measured. */
const dashboard: RequestListener = (req, res) => {
  if (req.url === '/health') {
    res.writeHead(200, { 'Content-Type': 'application/json' }).end(DASHBOARD_HEALTH);
  } else {
    res.writeHead(200, { 'Content-Type': 'text/html' }).end('<html><head><title>Loki Mode Dashboard</title></head></html>');
  }
};

async function exporter(port = 0): Promise<RunningServer> {
  const dir = await materialize('running', { pid: 'alive', mtimeMs: Date.now() });
  const store = new FsStateStore(dir);
  const server = await startServer({ ...parseConfig({ LOKI_DIR: dir }), port }, store, () => undefined);
  exporters.push({ server, store });
  return server;
}

describe('whoHolds', () => {
  it("recognises Loki Mode's dashboard by its /health", async () => {
    expect(await whoHolds('127.0.0.1', await holder(dashboard))).toBe('loki-dashboard');
  });

  it('recognises another loki-metrics by its landing page, and asks a wildcard address on loopback', async () => {
    const other = await exporter();
    expect(await whoHolds('127.0.0.1', other.port)).toBe('loki-metrics');
    expect(await whoHolds('0.0.0.0', other.port)).toBe('loki-metrics');
  });

  it('says unknown for anything else: other answers, other statuses, no answer at all', async () => {
    const plain = await holder((_req, res) => res.writeHead(200).end('{"status":"ok"}'));
    expect(await whoHolds('127.0.0.1', plain)).toBe('unknown');
    const notFound = await holder((_req, res) => res.writeHead(404).end(DASHBOARD_HEALTH));
    expect(await whoHolds('127.0.0.1', notFound)).toBe('unknown');
    const redirect = await holder((req, res) =>
      req.url === '/health' ? res.writeHead(302, { Location: '/real-health' }).end() : res.writeHead(200).end(DASHBOARD_HEALTH),
    );
    expect(await whoHolds('127.0.0.1', redirect)).toBe('unknown');
    const closed = await holder(() => undefined);
    servers.at(-1)!.close();
    servers.at(-1)!.closeAllConnections();
    expect(await whoHolds('127.0.0.1', closed)).toBe('unknown');
  });

  it('gives up at its deadline on a holder that never answers', async () => {
    const silent = await holder(() => undefined);
    expect(await whoHolds('127.0.0.1', silent, { timeoutMs: 200 })).toBe('unknown');
  });

  it('reads a bounded part of an endless answer', async () => {
    let written = 0;
    const endless = await holder((_req, res) => {
      res.writeHead(200);
      const more = () => {
        while (written < 64 * 1024 * 1024 && res.write(Buffer.alloc(64 * 1024, 0x20))) written += 64 * 1024;
        if (written < 64 * 1024 * 1024) res.once('drain', more);
      };
      more();
    });
    expect(await whoHolds('127.0.0.1', endless, { timeoutMs: 5_000 })).toBe('unknown');
    expect(written).toBeLessThan(64 * 1024 * 1024);
  });

  it('reads an answer that arrives in pieces to its end', async () => {
    const pieces = await holder((req, res) => {
      if (req.url !== '/health') return void res.writeHead(404).end();
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.write(DASHBOARD_HEALTH.slice(0, 20));
      setTimeout(() => res.end(DASHBOARD_HEALTH.slice(20)), 50);
    });
    expect(await whoHolds('127.0.0.1', pieces)).toBe('loki-dashboard');
  });

  it('finds a dashboard whose /health is padded, within what it reads', async () => {
    const padded = await holder((_req, res) => res.writeHead(200).end(' '.repeat(15 * 1024) + DASHBOARD_HEALTH));
    expect(await whoHolds('127.0.0.1', padded)).toBe('loki-dashboard');
    const overlong = await holder((_req, res) => res.writeHead(200).end(' '.repeat(16 * 1024) + DASHBOARD_HEALTH));
    expect(await whoHolds('127.0.0.1', overlong)).toBe('unknown');
  });
});

describe('isDashboardHealth', () => {
  it('is true only for a JSON object whose service is loki-dashboard', () => {
    expect(isDashboardHealth(DASHBOARD_HEALTH)).toBe(true);
    expect(isDashboardHealth('{"service":"loki-dashboard"}')).toBe(true);
    expect(isDashboardHealth('{"service":"loki-dashboard2"}')).toBe(false);
    expect(isDashboardHealth('{"status":"healthy"}')).toBe(false);
    expect(isDashboardHealth('"loki-dashboard"')).toBe(false);
    expect(isDashboardHealth('null')).toBe(false);
    expect(isDashboardHealth('not json loki-dashboard')).toBe(false);
  });
});

describe('probeHost', () => {
  it('asks loopback for a wildcard address and brackets an IPv6 one', () => {
    expect(probeHost('0.0.0.0')).toBe('127.0.0.1');
    expect(probeHost('')).toBe('127.0.0.1');
    expect(probeHost('::')).toBe('[::1]');
    expect(probeHost('[::]')).toBe('[::1]');
    expect(probeHost('::1')).toBe('[::1]');
    expect(probeHost('[::1]')).toBe('[::1]');
    expect(probeHost('127.0.0.2')).toBe('127.0.0.2');
    expect(probeHost('localhost')).toBe('localhost');
  });
});

describe('portInUseMessage', () => {
  it("tells a user who kept the guide's port to use the exporter's own default", () => {
    expect(portInUseMessage('127.0.0.1', 57374, 'loki-dashboard', 57373)).toBe(
      "port 57374 on 127.0.0.1 is held by Loki Mode's dashboard (it answers /health as loki-dashboard): run loki-metrics on its own default port, 57373 (drop --port 57374 / LOKI_METRICS_PORT=57374), and scrape that",
    );
  });

  it('tells a user whose dashboard was moved onto the default port to move one of them', () => {
    expect(portInUseMessage('127.0.0.1', 57373, 'loki-dashboard', 57373)).toBe(
      "port 57373 on 127.0.0.1 is held by Loki Mode's dashboard (it answers /health as loki-dashboard): run loki-metrics on another port (--port or LOKI_METRICS_PORT), or Loki Mode's dashboard on another one (LOKI_DASHBOARD_PORT)",
    );
  });

  it('names another loki-metrics, and keeps the plain message for anything else', () => {
    expect(portInUseMessage('::1', 9, 'loki-metrics', 57373)).toBe(
      'port 9 on ::1 is already served by another loki-metrics: scrape that one, or stop it first',
    );
    expect(portInUseMessage('0.0.0.0', 9, 'unknown', 57373)).toBe('port 9 on 0.0.0.0 is already in use (set LOKI_METRICS_PORT or --port)');
  });
});

describe('the default port', () => {
  it("is neither the dashboard's port nor one its runner walks to when that is held", () => {
    // autonomy/run.sh (9.22.12) tries LOKI_DASHBOARD_PORT and the 9 ports above it.
    const port = Number(ENV.LOKI_METRICS_PORT);
    expect(LOKI_DASHBOARD_DEFAULT_PORT).toBe(57374);
    expect(port >= LOKI_DASHBOARD_DEFAULT_PORT && port <= LOKI_DASHBOARD_DEFAULT_PORT + 9).toBe(false);
    expect(port).toBe(57373);
  });
});

describe('startServer on a held port', () => {
  it("names Loki Mode's dashboard and the one thing to do", async () => {
    const port = await holder(dashboard);
    await expect(exporter(port)).rejects.toThrow(
      `port ${port} on 127.0.0.1 is held by Loki Mode's dashboard (it answers /health as loki-dashboard): run loki-metrics on its own default port, 57373 (drop --port ${port} / LOKI_METRICS_PORT=${port}), and scrape that`,
    );
  });

  it('names another loki-metrics', async () => {
    const first = await exporter();
    await expect(exporter(first.port)).rejects.toThrow(`port ${first.port} on 127.0.0.1 is already served by another loki-metrics`);
  });
});
