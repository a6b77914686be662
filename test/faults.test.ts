/**
 * Faults (issue #5): the state directory or `events.jsonl` misbehaving under a running exporter,
 * clock jumps, storage bindings that fail or hang, and a sync cut off mid-upload. In every case the
 * exporter keeps answering 200, recovers by itself, and loses or double-counts nothing.
 *
 * Everything is on 127.0.0.1 with short timeouts, and every server, store, worker and proxy is
 * stopped in afterEach/afterAll even when a test fails.
 */
import { cp, rename, rm, truncate, writeFile, appendFile, stat, readFile } from 'node:fs/promises';
import { createServer, request, type IncomingMessage, type Server } from 'node:http';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { createApp } from '../src/app.js';
import { parseConfig } from '../src/config.js';
import { startServer, type RunningServer } from '../src/node/server.js';
import { runSync } from '../src/node/sync.js';
import { createRemoteApp } from '../src/remote-app.js';
import { FsStateStore } from '../src/stores/fs.js';
import type { ObjectStore } from '../src/stores/object-store.js';
import type { StateReading, StateStore } from '../src/stores/store.js';
import { cleanTrees, FIXTURES, materialize, tempDir } from './support/loki-tree.js';
import { startWorker, SYNC_TOKEN, type TestWorker } from './support/worker.js';

const servers: RunningServer[] = [];
const stores: { close?(): unknown }[] = [];
const workers: TestWorker[] = [];
const proxies: Server[] = [];
afterEach(async () => {
  vi.useRealTimers();
  for (const server of servers.splice(0)) await server.close();
  for (const store of stores.splice(0)) await store.close?.();
  for (const proxy of proxies.splice(0)) {
    proxy.closeAllConnections();
    await new Promise((r) => proxy.close(r));
  }
  await cleanTrees();
});
afterAll(async () => {
  await Promise.all(workers.splice(0).map((w) => w.dispose()));
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The value of one unlabelled sample in a 0.0.4 body. */
function value(body: string, name: string): number {
  const match = new RegExp(`^${name} (\\S+)$`, 'm').exec(body);
  if (!match) throw new Error(`${name} missing from:\n${body}`);
  return Number(match[1]);
}

/** A Node server on 127.0.0.1 over a real (watching) FsStateStore, with no cache. */
async function serve(dir: string) {
  const store = new FsStateStore(dir);
  stores.push(store);
  const logs: string[] = [];
  const server = await startServer({ ...parseConfig({ LOKI_DIR: dir, LOKI_METRICS_CACHE_SECONDS: '0' }), port: 0 }, store, (l) => logs.push(l));
  servers.push(server);
  const scrape = async () => {
    const res = await fetch(server.url);
    expect(res.status).toBe(200);
    return res.text();
  };
  const health = async () => {
    const res = await fetch(server.url.replace(/\/metrics$/, '/health'));
    expect(res.status).toBe(200);
    return (await res.json()) as { status: string; up: boolean; sources: { source: string; ok: boolean; problem?: string }[] };
  };
  /** Scrapes until `check` holds (inotify is asynchronous); returns the last body. */
  const until = async (check: (body: string) => boolean, ms = 3_000) => {
    const deadline = Date.now() + ms;
    for (;;) {
      const body = await scrape();
      if (check(body) || Date.now() > deadline) return body;
      await sleep(25);
    }
  };
  return { store, server, logs, scrape, health, until };
}

/** Copies the `running` fixture to `dir` (which must not exist), with this process as the live pid. */
async function createRunningTree(dir: string) {
  await cp(join(FIXTURES, 'running', '.loki'), dir, { recursive: true });
  await writeFile(join(dir, 'loki.pid'), `${process.pid}\n`);
}

const RUNNING_COST = 3.5313;
/** iteration-5 of `running` costs 0.4 (haiku tokens); rewritten in place with cost_usd 1.4, the total grows by 1. */
const rewriteIteration5 = (dir: string) =>
  writeFile(join(dir, 'metrics/efficiency/iteration-5.json'), '{"iteration": 5, "model": "haiku", "cost_usd": 1.4}\n');

/**
 * The efficiency watcher is live: warm scrapes do no full re-stat (without a watcher every read
 * re-stats everything), and a file rewritten in place — which changes neither the directory's mtime
 * nor anything a listing would see, so only inotify can tell — shows up in the cost.
 */
async function expectWatcherLive(s: Awaited<ReturnType<typeof serve>>, dir: string, costBefore: number) {
  await s.scrape();
  const scans = s.store.counters.fileSets.efficiency.fullScans;
  for (let i = 0; i < 3; i++) await s.scrape();
  expect(s.store.counters.fileSets.efficiency.fullScans).toBe(scans);
  await rewriteIteration5(dir);
  const body = await s.until((b) => value(b, 'loki_cost_usd') !== costBefore);
  expect(value(body, 'loki_cost_usd')).toBeCloseTo(costBefore + 1, 6);
  expect(s.store.counters.fileSets.efficiency.fullScans).toBe(scans);
}

describe('the state directory', () => {
  it('missing at start: loki_up 0 with every family, then recovers by itself when it appears (watching)', async () => {
    const dir = join(await tempDir(), '.loki');
    const s = await serve(dir);
    const down = await s.scrape();
    expect(value(down, 'loki_up')).toBe(0);
    expect(value(down, 'loki_events_total')).toBe(0);
    expect(down).toContain('loki_session_status 0');
    const health = await s.health();
    expect(health).toMatchObject({ status: 'degraded', up: false });
    expect(s.logs).toEqual([`loki-metrics: state directory unreadable: missing`]);

    await createRunningTree(dir);
    const up = await s.scrape();
    expect(value(up, 'loki_up')).toBe(1);
    expect(value(up, 'loki_session_status')).toBe(1);
    expect(value(up, 'loki_events_total')).toBe(50);
    expect(value(up, 'loki_cost_usd')).toBe(RUNNING_COST);
    expect((await s.health()).status).toBe('ok');
    await expectWatcherLive(s, dir, RUNNING_COST);
  });

  it('deleted and recreated while running: recovers, re-establishes the watcher, values correct', async () => {
    const dir = join(await tempDir(), '.loki');
    await createRunningTree(dir);
    const s = await serve(dir);
    expect(value(await s.scrape(), 'loki_events_total')).toBe(50);
    await expectWatcherLive(s, dir, RUNNING_COST);

    await rm(dir, { recursive: true });
    const down = await s.scrape();
    expect(value(down, 'loki_up')).toBe(0);
    expect(value(down, 'loki_events_total')).toBe(0); // a counter reset, as for rotation

    await createRunningTree(dir);
    await appendFile(join(dir, 'events.jsonl'), '{"type":"tool_use"}\n'.repeat(3));
    const up = await s.scrape();
    expect(value(up, 'loki_up')).toBe(1);
    expect(value(up, 'loki_events_total')).toBe(53);
    expect(value(up, 'loki_cost_usd')).toBe(RUNNING_COST); // the old rewrite is gone with the old tree
    await expectWatcherLive(s, dir, RUNNING_COST);
  });

  it('deleted and recreated between two scrapes (no scrape saw it missing): same recovery', async () => {
    const dir = join(await tempDir(), '.loki');
    await createRunningTree(dir);
    const s = await serve(dir);
    await expectWatcherLive(s, dir, RUNNING_COST);
    await rm(dir, { recursive: true });
    await createRunningTree(dir);
    await appendFile(join(dir, 'events.jsonl'), '{"type":"tool_use"}\n'.repeat(2));
    const body = await s.until((b) => value(b, 'loki_cost_usd') === RUNNING_COST);
    expect(value(body, 'loki_up')).toBe(1);
    expect(value(body, 'loki_events_total')).toBe(52);
    expect(value(body, 'loki_cost_usd')).toBe(RUNNING_COST);
    await expectWatcherLive(s, dir, RUNNING_COST);
  });

  it('replaced by a file: loki_up 0 and a clear problem, then recovers', async () => {
    const dir = join(await tempDir(), '.loki');
    await createRunningTree(dir);
    const s = await serve(dir);
    expect(value(await s.scrape(), 'loki_up')).toBe(1);

    await rm(dir, { recursive: true });
    await writeFile(dir, 'not a directory\n');
    const down = await s.scrape();
    expect(value(down, 'loki_up')).toBe(0);
    expect(value(down, 'loki_session_status')).toBe(0);
    expect(await s.health()).toMatchObject({ status: 'degraded', up: false });
    expect(s.logs).toContain('loki-metrics: state directory unreadable: not a directory');

    await rm(dir);
    await createRunningTree(dir);
    const up = await s.scrape();
    expect(value(up, 'loki_up')).toBe(1);
    expect(value(up, 'loki_events_total')).toBe(50);
    expect((await s.health()).status).toBe('ok');
    await expectWatcherLive(s, dir, RUNNING_COST);
  });
});

describe('events.jsonl', () => {
  const line = '{"timestamp":"2026-02-14T11:50:00Z","type":"tool_use","data":{"tool":"Edit"}}\n';

  it('truncated to zero: the count restarts from 0 (a counter reset), then counts new lines exactly', async () => {
    const dir = await materialize('running', { pid: 'alive', mtimeMs: Date.now() });
    const s = await serve(dir);
    expect(value(await s.scrape(), 'loki_events_total')).toBe(50);
    await truncate(join(dir, 'events.jsonl'), 0);
    expect(value(await s.scrape(), 'loki_events_total')).toBe(0);
    await appendFile(join(dir, 'events.jsonl'), line.repeat(3));
    expect(value(await s.scrape(), 'loki_events_total')).toBe(3);
    await appendFile(join(dir, 'events.jsonl'), line.repeat(4) + '{"type":"half');
    expect(value(await s.scrape(), 'loki_events_total')).toBe(7);
    await appendFile(join(dir, 'events.jsonl'), '"}\n');
    expect(value(await s.scrape(), 'loki_events_total')).toBe(8);
  });

  it('replaced by a new inode that starts with the same bytes and is longer: recounted, not added', async () => {
    const dir = await materialize('running', { pid: 'alive', mtimeMs: Date.now() });
    const s = await serve(dir);
    expect(value(await s.scrape(), 'loki_events_total')).toBe(50);
    const original = await readFile(join(dir, 'events.jsonl'));
    await writeFile(join(dir, 'events.jsonl.new'), Buffer.concat([original, Buffer.from(line.repeat(2))]));
    await rename(join(dir, 'events.jsonl.new'), join(dir, 'events.jsonl'));
    expect(value(await s.scrape(), 'loki_events_total')).toBe(52);
    await appendFile(join(dir, 'events.jsonl'), line);
    expect(value(await s.scrape(), 'loki_events_total')).toBe(53);
  });

  it('grown by 1 GB without a newline: bounded memory, the event loop keeps turning, then exact counts', async () => {
    const dir = await materialize('running', { pid: 'alive', mtimeMs: Date.now() });
    const path = join(dir, 'events.jsonl');
    const s = await serve(dir);
    expect(value(await s.scrape(), 'loki_events_total')).toBe(50);
    const size = (await stat(path)).size;
    // A sparse 1 GiB of NUL bytes: one partial line (NUL is not whitespace), as a crash can leave.
    await truncate(path, size + 1024 ** 3);

    global.gc?.();
    const rssBefore = process.memoryUsage().rss;
    let rssMax = rssBefore;
    const sampler = setInterval(() => (rssMax = Math.max(rssMax, process.memoryUsage().rss)), 20);
    const lag = monitorEventLoopDelay({ resolution: 10 });
    lag.enable();
    const bytesBefore = s.store.counters.eventBytesRead;
    const started = Date.now();
    try {
      const scrape = s.scrape();
      // While the store reads the gigabyte, the server still answers what needs no refresh.
      await sleep(50);
      const t0 = Date.now();
      expect((await fetch(s.server.url.replace(/\/metrics$/, '/'))).status).toBe(200);
      expect(Date.now() - t0).toBeLessThan(1_000);
      const body = await scrape;
      expect(value(body, 'loki_events_total')).toBe(50); // the partial line is not counted yet
      expect(value(body, 'loki_up')).toBe(1);
    } finally {
      clearInterval(sampler);
      lag.disable();
    }
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(s.store.counters.eventBytesRead - bytesBefore).toBe(1024 ** 3);
    expect(rssMax - rssBefore).toBeLessThan(100 * 1024 ** 2);
    expect(lag.max / 1e6).toBeLessThan(500); // ms; reads are 1 MiB chunks with awaits between them

    // The next scrape reads only what was appended: the newline ends the NUL line (one line), then three more.
    await appendFile(path, '\n' + line.repeat(3));
    const after = await s.scrape();
    expect(value(after, 'loki_events_total')).toBe(54);
    expect(s.store.counters.eventBytesRead - bytesBefore).toBe(1024 ** 3 + 1 + line.length * 3);
  }, 60_000);
});

describe('clock jumps', () => {
  it('backwards and forwards: uptime never negative, and the cache never gets stuck', async () => {
    const dir = await materialize('running', { pid: 'alive', mtimeMs: Date.now() });
    const store = new FsStateStore(dir, { watch: false });
    stores.push(store);
    let now = Date.now();
    // Default 2 s cache: the case where a backwards jump used to freeze the snapshot.
    const app = createApp({ store, config: parseConfig({ LOKI_DIR: dir }), clock: () => now, log: () => undefined });
    const scrape = async () => {
      const res = await app.request('/metrics');
      expect(res.status).toBe(200);
      const body = await res.text();
      expect(value(body, 'loki_uptime_seconds')).toBeGreaterThanOrEqual(0);
      return body;
    };
    const before = value(await scrape(), 'loki_uptime_seconds');
    expect(before).toBeGreaterThan(0);

    // Five hours back (NTP step, VM restore): fresh values on the next scrape, not a 5-hour-old cache.
    now -= 5 * 3600_000;
    await appendFile(join(dir, 'events.jsonl'), '{"type":"tool_use"}\n');
    const back = await scrape();
    expect(value(back, 'loki_events_total')).toBe(51);
    expect(value(back, 'loki_uptime_seconds')).toBe(Math.max(0, Math.round((before - 5 * 3600) * 1000) / 1000));
    // ...and the cache still works at the new time: within the TTL, one snapshot.
    now += 500;
    await appendFile(join(dir, 'events.jsonl'), '{"type":"tool_use"}\n');
    expect(value(await scrape(), 'loki_events_total')).toBe(51);
    now += 2_000;
    expect(value(await scrape(), 'loki_events_total')).toBe(52);

    // Ten hours forward: refreshed at once, uptime grows by the jump.
    now += 10 * 3600_000;
    await appendFile(join(dir, 'events.jsonl'), '{"type":"tool_use"}\n');
    const forward = await scrape();
    expect(value(forward, 'loki_events_total')).toBe(53);
    expect(value(forward, 'loki_uptime_seconds')).toBeGreaterThan(before + 4.9 * 3600);
  });
});

describe('storage that fails or hangs', () => {
  /** Reads through to a real store, or fails / never answers on demand. */
  class FlakyStore implements StateStore {
    mode: 'ok' | 'throw' | 'hang' = 'ok';
    constructor(private readonly inner: StateStore) {}
    read(): Promise<StateReading> {
      if (this.mode === 'throw') return Promise.reject(new Error('R2 binding: internal error'));
      if (this.mode === 'hang') return new Promise<StateReading>(() => undefined);
      return this.inner.read();
    }
    close() {
      return this.inner.close?.();
    }
  }

  async function flakyApp() {
    const dir = await materialize('running', { pid: 'alive', mtimeMs: Date.now() });
    const store = new FlakyStore(new FsStateStore(dir, { watch: false }));
    stores.push(store);
    const logs: string[] = [];
    const app = createApp({ store, config: parseConfig({ LOKI_METRICS_CACHE_SECONDS: '0' }), log: (l) => logs.push(l), storeTimeoutMs: 300 });
    return { app, store, logs };
  }

  it('a read that throws: 200, loki_up 0, the last good values; recovers by itself', async () => {
    const { app, store, logs } = await flakyApp();
    expect(value(await (await app.request('/metrics')).text(), 'loki_events_total')).toBe(50);
    store.mode = 'throw';
    const res = await app.request('/metrics');
    expect(res.status).toBe(200);
    const body = await res.text();
    expect(value(body, 'loki_up')).toBe(0);
    expect(value(body, 'loki_events_total')).toBe(50);
    expect(value(body, 'loki_cost_usd')).toBe(RUNNING_COST);
    expect(logs).toContain('loki-metrics: state store failed: R2 binding: internal error');
    store.mode = 'ok';
    expect(value(await (await app.request('/metrics')).text(), 'loki_up')).toBe(1);
  });

  it('a read that never answers times out: 200 within the bound, loki_up 0, last good values; recovers', async () => {
    const { app, store, logs } = await flakyApp();
    expect(value(await (await app.request('/metrics')).text(), 'loki_up')).toBe(1);
    store.mode = 'hang';
    const started = Date.now();
    const [metrics, health] = await Promise.all([app.request('/metrics'), app.request('/health')]);
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(metrics.status).toBe(200);
    const body = await metrics.text();
    expect(value(body, 'loki_up')).toBe(0);
    expect(value(body, 'loki_events_total')).toBe(50);
    expect(((await health.json()) as { up: boolean }).up).toBe(false);
    expect(logs).toContain('loki-metrics: state store failed: no answer within 0.3 s');
    store.mode = 'ok';
    expect(value(await (await app.request('/metrics')).text(), 'loki_up')).toBe(1);
  });

  it('a hanging first read answers loki_up 0 with zeros', async () => {
    const { app, store } = await flakyApp();
    store.mode = 'hang';
    const body = await (await app.request('/metrics')).text();
    expect(value(body, 'loki_up')).toBe(0);
    expect(value(body, 'loki_events_total')).toBe(0);
  });

  it('the Worker app: an R2/KV binding that throws or hangs (5 s default) still gets 200 and loki_up 0', async () => {
    let mode: 'throw' | 'hang' = 'throw';
    const bucket: ObjectStore = {
      strong: true,
      kind: 'r2',
      get: () => (mode === 'throw' ? Promise.reject(new Error('R2 GET failed: 503')) : new Promise(() => undefined)),
      put: () => Promise.reject(new Error('R2 PUT failed: 503')),
      delete: () => Promise.reject(new Error('R2 DELETE failed: 503')),
      list: () => Promise.reject(new Error('R2 LIST failed: 503')),
    };
    const config = parseConfig({ LOKI_METRICS_CACHE_SECONDS: '0', LOKI_SYNC_TOKEN: SYNC_TOKEN });
    const logs: string[] = [];
    const app = createRemoteApp({ bucket, config, log: (l) => logs.push(l) });
    const failed = await app.request('/metrics');
    expect(failed.status).toBe(200);
    expect(value(await failed.text(), 'loki_up')).toBe(0);

    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    mode = 'hang';
    const pending = app.request('/metrics?session=other');
    await vi.advanceTimersByTimeAsync(10_000);
    const hung = await pending;
    expect(hung.status).toBe(200);
    expect(value(await hung.text(), 'loki_up')).toBe(0);
    vi.useRealTimers();

    // Ingest against a failing binding: a plain 500 (which sync retries), no stack trace.
    mode = 'throw';
    const ingest = await app.request('/ingest/manifest', { headers: { Authorization: `Bearer ${SYNC_TOKEN}` } });
    expect(ingest.status).toBe(500);
    expect(await ingest.text()).toBe('{"error":"internal error"}');
    expect(logs.some((l) => l.includes('R2 GET failed: 503'))).toBe(true);
  });
});

describe('sync interrupted mid-upload', () => {
  type Fault = 'cut-request' | 'drop-response';

  /**
   * A proxy in front of the Worker that sabotages chosen POSTs: `cut-request` forwards half the body
   * and then aborts both sides (the Worker sees a truncated upload); `drop-response` forwards the
   * whole upload, lets the Worker apply it, then kills the client's connection before the answer.
   */
  async function saboteur(target: string, faults: Fault[]) {
    const posts: string[] = [];
    const proxy = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        const fault = req.method === 'POST' ? faults.shift() : undefined;
        if (req.method === 'POST') posts.push(fault ?? 'ok');
        const upstream = request(target + req.url, { method: req.method, headers: { ...req.headers, host: new URL(target).host } }, (answer: IncomingMessage) => {
          if (fault === 'drop-response') {
            answer.resume();
            answer.on('end', () => req.socket.destroy());
            return;
          }
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
        });
        upstream.on('error', () => req.socket.destroy());
        if (fault === 'cut-request') {
          upstream.write(body.subarray(0, body.length >> 1));
          setTimeout(() => {
            upstream.destroy();
            req.socket.destroy();
          }, 50);
          return;
        }
        upstream.end(body);
      });
    });
    proxies.push(proxy);
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', () => r()));
    return { url: `http://127.0.0.1:${(proxy.address() as { port: number }).port}`, posts, faults };
  }

  it('resumes after a cut upload and a lost answer: nothing lost, nothing counted twice', async () => {
    const w = await startWorker();
    workers.push(w);
    const dir = await materialize('running', { pid: 'alive', mtimeMs: Date.now() });
    const proxy = await saboteur(w.url, ['cut-request', 'drop-response']);
    const controller = new AbortController();
    const logs: string[] = [];
    let cycles = 0;
    const running = runSync({
      url: proxy.url,
      session: 'default',
      dir,
      token: SYNC_TOKEN,
      intervalMs: 200,
      pushMs: 0,
      heartbeatMs: 0,
      once: false,
      log: (l) => logs.push(l),
      signal: controller.signal,
      onCycle: () => cycles++,
    });
    const metrics = async () => (await w.fetch('/metrics')).text();
    const waitFor = async (check: () => boolean, ms = 20_000) => {
      const deadline = Date.now() + ms;
      while (!check() && Date.now() < deadline) await sleep(50);
      expect(check()).toBe(true);
    };
    try {
      await waitFor(() => cycles > 0);
      expect(proxy.posts.slice(0, 3)).toEqual(['cut-request', 'drop-response', 'ok']);
      expect(logs.some((l) => l.includes('retrying with backoff'))).toBe(true);
      expect(logs.some((l) => l.includes('ok again'))).toBe(true);
      let body = await metrics();
      expect(value(body, 'loki_events_total')).toBe(50);
      expect(value(body, 'loki_cost_usd')).toBe(RUNNING_COST);

      // Changes, and another upload cut in half: they arrive once, exactly.
      proxy.faults.push('cut-request');
      const seen = cycles;
      await appendFile(join(dir, 'events.jsonl'), '{"type":"tool_use"}\n'.repeat(7));
      await rewriteIteration5(dir);
      await waitFor(() => proxy.faults.length === 0 && cycles > seen + 1);
      body = await metrics();
      expect(value(body, 'loki_events_total')).toBe(57);
      expect(value(body, 'loki_cost_usd')).toBeCloseTo(RUNNING_COST + 1, 6);
      await sleep(600); // a few more cycles change nothing
      expect(value(await metrics(), 'loki_events_total')).toBe(57);
    } finally {
      controller.abort();
      expect(await running).toBe(0);
    }
  }, 45_000);
});
