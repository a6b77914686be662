/**
 * `npm run bench` (part: http): the Node server's hot path against a bare Node `http` server that
 * sends a static body of the same size and type, in the same process and the same run, with wrk
 * (Debian's `wrk`) as the client. A benchmark, not a test: it prints figures beside their targets.
 *
 * - Cached scrapes (the `running` fixture, the default 2 s cache): throughput with `wrk -t2 -c8`,
 *   and latency over one connection (`wrk -t1 -c1`). Targets: ≥ 0.5 × the bare server's requests per
 *   second; latency within 0.2 ms of it.
 * - No-change refresh end to end, at 1M events with 10k efficiency files and 10k receipts: one
 *   exporter that refreshes on every scrape (cache 0) and one that never does (cache 1 h) over the
 *   same tree, each scraped once after the same idle time, alternately. Target: ≤ 1 ms apart.
 *
 * The rounds alternate between the two servers so machine noise falls on both alike.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, request, Agent, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseConfig } from '../../src/config.js';
import { startServer, type RunningServer } from '../../src/node/server.js';
import { FsStateStore } from '../../src/stores/fs.js';
import { cleanTrees, materialize } from '../support/loki-tree.js';
import { benchWanted, makeTree } from './trees.js';

const ROUNDS = 3;
const THROUGHPUT_SECONDS = 4;
const LATENCY_SECONDS = 3;
const IDLE_MS = 100;
const REFRESH_PAIRS = 40;

interface WrkFigures {
  readonly requestsPerSecond: number;
  readonly latencyMs: number;
}

/** One wrk run; its "Requests/sec" and average latency. */
async function wrk(url: string, threads: number, connections: number, seconds: number): Promise<WrkFigures> {
  const child = spawn('wrk', [`-t${threads}`, `-c${connections}`, `-d${seconds}s`, url], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(out);
  const latency = /Latency\s+([\d.]+)(us|ms|s)\b/.exec(out);
  if (code !== 0 || !rps || !latency) throw new Error(`wrk failed (exit ${code}): ${out.slice(0, 300)}`);
  const unit = { us: 0.001, ms: 1, s: 1000 }[latency[2] as 'us' | 'ms' | 's'];
  if (/Non-2xx or 3xx responses/.test(out)) throw new Error(`wrk saw errors: ${out.slice(0, 300)}`);
  return { requestsPerSecond: Number(rps[1]), latencyMs: Number(latency[1]) * unit };
}

/** A bare Node server answering every request with `body`, as the exporter answers /metrics. */
async function bareServer(body: Buffer, contentType: string): Promise<{ server: Server; url: string }> {
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'Content-Type': contentType, 'Content-Length': body.length });
    res.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  return { server, url: `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/metrics` };
}

/** One GET over `agent`; its status, body and time in ms. */
function get(url: string, agent: Agent): Promise<{ status: number; body: Buffer; contentType: string; ms: number }> {
  return new Promise((resolve, reject) => {
    const t = performance.now();
    const req = request(url, { agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), contentType: String(res.headers['content-type']), ms: performance.now() - t }));
    });
    req.on('error', reject);
    req.end();
  });
}

const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

async function exporter(dir: string, cacheSeconds: string): Promise<{ server: RunningServer; store: FsStateStore }> {
  const store = new FsStateStore(dir);
  const server = await startServer({ ...parseConfig({ LOKI_DIR: dir, LOKI_METRICS_CACHE_SECONDS: cacheSeconds }), port: 0 }, store, () => undefined);
  return { server, store };
}

async function cachedScrapes(): Promise<void> {
  const dir = await materialize('running', { pid: 'alive', mtimeMs: Date.now() });
  const ours = await exporter(dir, '2');
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const sample = await get(ours.server.url, agent);
  const bare = await bareServer(sample.body, sample.contentType);
  try {
    console.log(`\nloki-metrics HTTP bench — node ${process.version}; wrk against the exporter (the running fixture, ${sample.body.length} B body, cache 2 s) and a bare Node server sending a ${sample.body.length} B static body; ${ROUNDS} alternating rounds, median`);
    await wrk(ours.server.url, 1, 1, 1); // warm-up: JIT, connections
    await wrk(bare.url, 1, 1, 1);
    const throughput = { ours: [] as number[], bare: [] as number[] };
    const latency = { ours: [] as number[], bare: [] as number[] };
    for (let round = 0; round < ROUNDS; round++) {
      throughput.bare.push((await wrk(bare.url, 2, 8, THROUGHPUT_SECONDS)).requestsPerSecond);
      throughput.ours.push((await wrk(ours.server.url, 2, 8, THROUGHPUT_SECONDS)).requestsPerSecond);
      latency.bare.push((await wrk(bare.url, 1, 1, LATENCY_SECONDS)).latencyMs);
      latency.ours.push((await wrk(ours.server.url, 1, 1, LATENCY_SECONDS)).latencyMs);
    }
    const ratio = median(throughput.ours) / median(throughput.bare);
    const extra = median(latency.ours) - median(latency.bare);
    console.log(`${'cached scrape, wrk -t2 -c8'.padEnd(44)}${median(throughput.ours).toFixed(0).padStart(8)} req/s  bare ${median(throughput.bare).toFixed(0).padStart(6)} req/s  ratio ${ratio.toFixed(2)}  (target >= 0.5)`);
    console.log(`${'cached scrape, wrk -t1 -c1, mean latency'.padEnd(44)}${median(latency.ours).toFixed(3).padStart(8)} ms     bare ${median(latency.bare).toFixed(3).padStart(6)} ms     extra ${extra.toFixed(3)} ms  (target <= 0.2 ms)`);
  } finally {
    agent.destroy();
    await ours.server.close();
    await ours.store.close();
    await new Promise((resolve) => bare.server.close(resolve));
  }
}

async function noChangeRefresh(): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), 'loki-bench-http-'));
  try {
    const dir = makeTree(root, 1_000_000, 10_000, 10_000);
    const refreshing = await exporter(dir, '0');
    const cached = await exporter(dir, '3600');
    const agents = [new Agent({ keepAlive: true, maxSockets: 1 }), new Agent({ keepAlive: true, maxSockets: 1 })] as const;
    try {
      const cold = await get(refreshing.server.url, agents[0]);
      await get(cached.server.url, agents[1]);
      for (let i = 0; i < 5; i++) await get(refreshing.server.url, agents[0]); // the first refreshes settle
      const times = { refreshing: [] as number[], cached: [] as number[] };
      for (let i = 0; i < REFRESH_PAIRS; i++) {
        await sleep(IDLE_MS);
        times.refreshing.push((await get(refreshing.server.url, agents[0])).ms);
        await sleep(IDLE_MS);
        times.cached.push((await get(cached.server.url, agents[1])).ms);
      }
      const extra = median(times.refreshing) - median(times.cached);
      console.log(`${'1M events, 10k eff, 10k receipts: first scrape'.padEnd(44)}${cold.ms.toFixed(1).padStart(8)} ms`);
      console.log(
        `${`no-change refresh after ${IDLE_MS} ms idle`.padEnd(44)}${median(times.refreshing).toFixed(3).padStart(8)} ms     cached ${median(times.cached).toFixed(3).padStart(6)} ms     extra ${extra.toFixed(3)} ms  (target <= 1 ms)`,
      );
    } finally {
      for (const agent of agents) agent.destroy();
      for (const { server, store } of [refreshing, cached]) {
        await server.close();
        await store.close();
      }
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  if (!benchWanted('http')) return;
  if (spawnSync('wrk', ['--version']).error) {
    console.log('\nloki-metrics HTTP bench skipped: no wrk (apt-get install -y wrk)');
    return;
  }
  try {
    await cachedScrapes();
    await noChangeRefresh();
  } finally {
    await cleanTrees();
  }
}

await main();
