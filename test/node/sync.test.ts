/**
 * `loki-metrics sync` against the real Worker in workerd: bytes per cycle follow what changed,
 * restarts and outages neither re-send everything nor count anything twice; failure messages.
 */
import { appendFile, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { parseInterval, runSync, type SyncOptions } from '../../src/node/sync.js';
import { cleanTrees, materialize } from '../support/loki-tree.js';
import { startWorker, SYNC_TOKEN, type TestWorker } from '../support/worker.js';

const workers: TestWorker[] = [];
const servers: Server[] = [];
afterEach(cleanTrees);
afterAll(async () => {
  await Promise.all(workers.map((w) => w.dispose()));
  for (const s of servers) s.close();
});

function options(url: string, dir: string, extra: Partial<SyncOptions> = {}): SyncOptions & { logs: string[] } {
  const logs: string[] = [];
  // Every look pushes (the Worker's own cadence is tested in sync-cadence.test.ts).
  return { url, session: 'default', dir, token: SYNC_TOKEN, intervalMs: 200, pushMs: 0, heartbeatMs: 0, once: true, log: (l) => logs.push(l), logs, ...extra };
}

async function cycleBytes(url: string, dir: string): Promise<number> {
  let bytes = -1;
  const code = await runSync(options(url, dir, { onCycle: (s) => (bytes = s.bytesSent) }));
  expect(code).toBe(0);
  return bytes;
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const port = (probe.address() as { port: number }).port;
      probe.close(() => resolve(port));
    });
  });
}

const eventsOf = async (w: TestWorker) => Number(/^loki_events_total (\d+)$/m.exec(await (await w.fetch('/metrics')).text())?.[1]);

describe('incremental sync', () => {
  it('sends bytes in proportion to what changed, events as a summary, and nothing again after a restart', async () => {
    const w = await startWorker();
    workers.push(w);
    const dir = await materialize('running', { pid: 'alive', mtimeMs: Date.now() });

    const first = await cycleBytes(w.url, dir);
    expect(first).toBeGreaterThan(10_000); // every file, the first time
    // Each runSync is a fresh process state: it asks the remote for its manifest, so a restart
    // sends only the per-cycle summary.
    const unchanged = await cycleBytes(w.url, dir);
    expect(unchanged).toBeLessThan(1_000);

    const line = `{"timestamp":"2026-02-14T11:50:00Z","type":"tool_use","data":{"tool":"Edit","file":"src/x.ts"}}\n`;
    await appendFile(join(dir, 'events.jsonl'), line.repeat(20_000)); // ~2 MB appended
    const appended = await cycleBytes(w.url, dir);
    expect(appended).toBeLessThan(1_000);
    expect(await eventsOf(w)).toBe(50 + 20_000);

    const file = '{"iteration": 6, "model": "sonnet", "cost_usd": 0.5}';
    await writeFile(join(dir, 'metrics/efficiency/iteration-6.json'), file);
    const oneFile = await cycleBytes(w.url, dir);
    expect(oneFile).toBeGreaterThan(file.length);
    expect(oneFile).toBeLessThan(file.length * 2 + 1_000);
    expect(await (await w.fetch('/metrics')).text()).toContain('loki_cost_usd 4.0313\n');
  });

  it('keeps retrying while the remote is unreachable and resumes without loss or double counting', async () => {
    const dir = await materialize('running', { pid: 'alive', mtimeMs: Date.now() });
    const port = await freePort();
    const controller = new AbortController();
    let cycles = 0;
    const opts = options(`http://127.0.0.1:${port}`, dir, { once: false, signal: controller.signal, onCycle: () => cycles++ });
    const running = runSync(opts);
    await new Promise((r) => setTimeout(r, 1_500));
    expect(cycles).toBe(0);
    expect(opts.logs.filter((l) => l.includes('cannot reach'))).toHaveLength(1); // one line per kind of failure, not per retry

    const w = await startWorker({ port });
    workers.push(w);
    await appendFile(join(dir, 'events.jsonl'), '{"type":"tool_use"}\n'.repeat(7));
    const deadline = Date.now() + 20_000;
    while (cycles === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(cycles).toBeGreaterThan(0);
    expect(opts.logs.some((l) => l.includes('ok again'))).toBe(true);
    await new Promise((r) => setTimeout(r, 600)); // a few more cycles
    expect(await eventsOf(w)).toBe(57);
    controller.abort();
    expect(await running).toBe(0);
  }, 40_000);

  it('does not pile up abort listeners over many cycles', async () => {
    const w = await startWorker();
    workers.push(w);
    const dir = await materialize('running', { pid: 'alive', mtimeMs: Date.now() });
    const controller = new AbortController();
    let cycles = 0;
    let listeners = 0;
    const add = controller.signal.addEventListener.bind(controller.signal);
    const remove = controller.signal.removeEventListener.bind(controller.signal);
    controller.signal.addEventListener = ((...args: Parameters<typeof add>) => (listeners++, add(...args))) as typeof add;
    controller.signal.removeEventListener = ((...args: Parameters<typeof remove>) => (listeners--, remove(...args))) as typeof remove;
    const running = runSync(options(w.url, dir, { once: false, intervalMs: 100, signal: controller.signal, onCycle: () => cycles++ }));
    while (cycles < 15) await new Promise((r) => setTimeout(r, 50));
    expect(listeners).toBeLessThanOrEqual(1);
    controller.abort();
    expect(await running).toBe(0);
  }, 30_000);
});

describe('keeping the Worker equal to the local state', () => {
  it('re-sends what the remote lacks when its stored state was replaced under a running sync', async () => {
    const w = await startWorker();
    workers.push(w);
    const mine = await materialize('running', { pid: 'alive', mtimeMs: Date.now() });
    const other = await materialize('paused', { pid: 'alive', mtimeMs: Date.now() });
    const controller = new AbortController();
    let cycles = 0;
    const running = runSync(options(w.url, mine, { once: false, intervalMs: 200, signal: controller.signal, onCycle: () => cycles++ }));
    while (cycles < 1) await new Promise((r) => setTimeout(r, 50));
    // Another client overwrites the session (it could equally be lost storage or a stale KV read).
    expect(await runSync(options(w.url, other))).toBe(0);
    const seen = cycles;
    while (cycles < seen + 3) await new Promise((r) => setTimeout(r, 50));
    controller.abort();
    await running;
    const body = await (await w.fetch('/metrics')).text();
    expect(body).toContain('loki_cost_usd 3.5313\n'); // mine again, not the paused tree's 5.0421
    expect(body).toContain('loki_session_status 1\n');
  }, 30_000);

  it('keeps the last valid pid while loki.pid is caught mid-write, as a local exporter does', async () => {
    const w = await startWorker();
    workers.push(w);
    const dir = await materialize('running', { pid: 'alive', mtimeMs: Date.now() - 3600_000 }); // no heartbeat
    const controller = new AbortController();
    let cycles = 0;
    const running = runSync(options(w.url, dir, { once: false, intervalMs: 100, signal: controller.signal, onCycle: () => cycles++ }));
    while (cycles < 1) await new Promise((r) => setTimeout(r, 50));
    expect(await (await w.fetch('/metrics')).text()).toContain('loki_session_status 1\n');
    await writeFile(join(dir, 'loki.pid'), '');
    const seen = cycles;
    while (cycles < seen + 2) await new Promise((r) => setTimeout(r, 50));
    const body = await (await w.fetch('/metrics')).text();
    expect(body).toContain('loki_session_status 1\n');
    expect(body).toContain('loki_source_ok{source="loki.pid"} 0\n');
    controller.abort();
    await running;
  }, 30_000);

  it('splits large changes into requests under the Worker limit', async () => {
    const w = await startWorker();
    workers.push(w);
    const dir = await materialize('running', { pid: 'alive', mtimeMs: Date.now() });
    const task = (i: number) => ({ id: `task-${i}`, payload: { goal: 'x'.repeat(200) } });
    const big = JSON.stringify({ mode: 'autonomous', tasks: { pending: Array.from({ length: 16_000 }, (_, i) => task(i)), inProgress: [], completed: [], failed: [] } });
    expect(big.length).toBeGreaterThan(3_500_000);
    await writeFile(join(dir, 'dashboard-state.json'), big);
    await writeFile(join(dir, 'state/agents.json'), JSON.stringify(Array.from({ length: 16_000 }, (_, i) => ({ tool_id: `t${i}`, status: 'idle', note: 'y'.repeat(200) }))));
    for (let i = 0; i < 12; i++) await writeFile(join(dir, `metrics/efficiency/bulk-${i}.json`), JSON.stringify({ iteration: 100 + i, cost_usd: 0.01, notes: 'z'.repeat(300_000) }));
    let requests = 0;
    expect(await runSync(options(w.url, dir, { onCycle: (s) => (requests = s.requests) }))).toBe(0);
    expect(requests).toBeGreaterThan(1);
    const body = await (await w.fetch('/metrics')).text();
    expect(body).toContain('loki_tasks_total{status="pending"} 16000\n');
    expect(body).toContain('loki_agents_total 16000\n');
    expect(body).toContain('loki_cost_usd 3.6513\n');
  }, 60_000);
});

describe('failure messages', () => {
  async function scripted(status: number, body: string): Promise<string> {
    // The manifest request succeeds; the upload gets the scripted answer.
    const server = createServer((req, res) => {
      res.writeHead(req.method === 'GET' ? 200 : status, { 'Content-Type': 'application/json' });
      res.end(req.method === 'GET' ? '{"manifest":{"documents":{},"efficiency":{}},"syncedAtMs":null}' : body);
    });
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    return `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  }

  it.each([
    [401, '{"error":"unauthorized"}', /rejected the sync token \(401\): check LOKI_SYNC_TOKEN/],
    [413, '{"error":"payload larger than 8388608 bytes"}', /too large \(413\): payload larger than 8388608 bytes/],
    [422, '{"error":"dashboard-state.json: not valid JSON"}', /rejected the upload \(422\): dashboard-state\.json: not valid JSON/],
    [503, '{"error":"ingest is disabled"}', /HTTP 503: ingest is disabled/],
  ])('says what HTTP %i means in one line and exits 1 with --once', async (status, body, message) => {
    const dir = await materialize('running');
    const opts = options(await scripted(status, body), dir);
    expect(await runSync(opts)).toBe(1);
    expect(opts.logs).toEqual([expect.stringMatching(message)]);
  });

  it('says when the remote cannot be reached', async () => {
    const dir = await materialize('running');
    const port = await freePort();
    const opts = options(`http://127.0.0.1:${port}`, dir);
    expect(await runSync(opts)).toBe(1);
    expect(opts.logs).toEqual([`loki-metrics sync: cannot reach http://127.0.0.1:${port} (ECONNREFUSED)`]);
  });
});

describe('where the state may be sent (item 6)', () => {
  it('never follows a redirect: a 3xx is a failure naming where it pointed, and nothing is posted there', async () => {
    const hits: string[] = [];
    const elsewhere = createServer((req, res) => {
      hits.push(`${req.method} ${req.url}`);
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end('{"manifest":{"documents":{},"sets":{}},"syncedAtMs":null}');
    });
    servers.push(elsewhere);
    await new Promise<void>((r) => elsewhere.listen(0, '127.0.0.1', () => r()));
    const target = `http://127.0.0.1:${(elsewhere.address() as { port: number }).port}`;
    for (const status of [301, 302, 307, 308]) {
      const redirector = createServer((req, res) => {
        res.writeHead(status, { Location: `${target}${req.url}` });
        res.end();
      });
      servers.push(redirector);
      await new Promise<void>((r) => redirector.listen(0, 'localhost', () => r()));
      const dir = await materialize('running');
      for (const once of [true, false]) {
        const controller = new AbortController();
        const opts = options(`http://localhost:${(redirector.address() as { port: number }).port}`, dir, { once, signal: controller.signal });
        const timer = setTimeout(() => controller.abort(), 5_000);
        expect(await runSync(opts)).toBe(1); // not retried, even when running continuously
        clearTimeout(timer);
        expect(opts.logs).toEqual([`loki-metrics sync: the remote answered with a redirect (HTTP ${status}) to ${target}; not followed: use the final URL as --url`]);
      }
    }
    expect(hits).toEqual([]);
  });

  it('refuses plain http to a non-loopback host unless allowHttp, before sending anything', async () => {
    const dir = await materialize('running');
    for (const url of ['http://example.invalid', 'http://10.0.0.1:9', 'http://[fe80::1]:9', 'http://127.0.0.1.example.invalid']) {
      const opts = options(url, dir);
      const started = Date.now();
      expect(await runSync(opts)).toBe(1);
      expect(Date.now() - started).toBeLessThan(1_000);
      expect(opts.logs).toEqual([expect.stringMatching(/^loki-metrics sync: refusing plain http to .*: the write token and the state would travel unencrypted \(use https, or --allow-http to accept that\)$/)]);
    }
    // With allowHttp it goes ahead (and here cannot reach the host), with a warning.
    const allowed = options('http://example.invalid', dir, { allowHttp: true });
    expect(await runSync(allowed)).toBe(1);
    expect(allowed.logs[0]).toMatch(/warning: http:\/\/example\.invalid is plain http/);
    expect(allowed.logs[1]).toMatch(/cannot reach http:\/\/example\.invalid/);
  });
});

describe('parseInterval', () => {
  it('reads 2s, 500ms, 1m and plain seconds, and refuses the rest', () => {
    expect([parseInterval('2s'), parseInterval('500ms'), parseInterval('1m'), parseInterval('3')]).toEqual([2000, 500, 60000, 3000]);
    expect([parseInterval('0s'), parseInterval('fast'), parseInterval('2h')]).toEqual([undefined, undefined, undefined]);
  });
});

describe('what the remote says (issue 19, item 13)', () => {
  async function remote(handler: (res: import('node:http').ServerResponse) => void): Promise<string> {
    const server = createServer((req, res) => {
      req.resume();
      handler(res);
    });
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  }

  it('prints the remote\'s error text escaped and cut: no forged log line, no terminal control', async () => {
    const url = await remote((res) => {
      res.writeHead(409, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ error: `boom\nloki-metrics sync: ok again\u001b[2J\u0007${'x'.repeat(1000)}` }));
    });
    const dir = await materialize('running');
    const opts = options(url, dir);
    expect(await runSync(opts)).toBe(1);
    expect(opts.logs).toHaveLength(1);
    const line = opts.logs[0]!;
    expect(line).toMatch(/^loki-metrics sync: the remote refused the session \(409\): boom\\nloki-metrics sync: ok again\\x1b\[2J\\x07x+…$/);
    expect(line).not.toMatch(/[\u0000-\u001f\u007f]/);
    expect(line.length).toBeLessThan(400);
  });

  it('refuses an answer larger than it reads, without holding it', async () => {
    const chunk = Buffer.alloc(1024 * 1024, 0x61);
    const url = await remote((res) => {
      res.writeHead(500, { 'Content-Type': 'text/plain' });
      let sent = 0;
      const more = () => {
        while (sent < 64 && res.write(chunk)) sent++;
        if (sent < 64) res.once('drain', () => (sent++, more()));
        else res.end();
      };
      res.on('error', () => undefined);
      more();
    });
    const dir = await materialize('running');
    const opts = options(url, dir, { once: true });
    const before = process.memoryUsage().rss;
    expect(await runSync(opts)).toBe(1);
    expect(opts.logs.join('\n')).toMatch(/the remote's answer is larger than 16777216 bytes \(HTTP 500\); not read/);
    expect(process.memoryUsage().rss - before).toBeLessThan(48 * 1024 * 1024);
  });
});
