/**
 * `npm run bench` (part 3): one exporter serving a fleet. 100 projects of 100k events each (plus
 * 10 efficiency files and a dashboard-state.json, as scrape.bench.ts's trees), served in ONE
 * process by a real `startFleetServer` over a `NodeProjectCatalog` of 100 named directories, with
 * `LOKI_METRICS_CACHE_SECONDS=0` (every scrape refreshes), queried over one kept-alive connection.
 *
 * Measured: a cold scrape of every project once (each store made on first use), a warm scrape of
 * one project (median), a warm sweep of all, discovery (`GET /targets`), peak RSS with all 100
 * open, and the inotify watches held, against the system's limit; at the limit (fs.watch failing
 * with ENOSPC): the same warm scrape with its directories polled, and a polled 1k / 10k-file
 * efficiency directory's refresh against a watched one. Naive baselines: one scrape as
 * the reference reader does it (read and split the whole `events.jsonl`, every time), and one
 * exporter process per project (its RSS, times 100).
 *
 * The server runs in a child process, so its peak RSS is its own (not the tree generation's).
 * `BENCH_FLEET_PROJECTS=N` for a smaller fleet; `BENCH_FLEET_TREES=hardlink|copy` to choose how
 * each project gets its `events.jsonl` (default: copies when /tmp has room, else hardlinks).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statfsSync, statSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseConfig } from '../../src/config.js';
import { NodeProjectCatalog } from '../../src/node/projects.js';
import { startFleetServer, startServer } from '../../src/node/server.js';
import { FsStateStore } from '../../src/stores/fs.js';
import { benchWanted, fillTree, naiveScrape, writeEvents } from './trees.js';

const PROJECTS = Number(process.env.BENCH_FLEET_PROJECTS ?? 100);
const EVENTS = 100_000;
const EFFICIENCY = 10;
const WARM_RUNS = 100;
const DISCOVERY_RUNS = 50;
const NAIVE_RUNS = 30;
const SWEEPS = 3;
const GIB = 1024 ** 3;

const projectName = (i: number) => `p-${String(i).padStart(3, '0')}`;
const projectDir = (root: string, i: number) => join(root, projectName(i), '.loki');

interface FleetResult {
  coldTotalMs: number;
  coldMedianMs: number;
  coldMaxMs: number;
  coldWrongCounts: number;
  warmMs: number;
  warmP90Ms: number;
  sweepMs: number;
  discoveryMs: number;
  discoveryP90Ms: number;
  discoveryTargets: number;
  rssBeforeMb: number;
  peakRssMb: number;
  rssNowMb: number;
  heapUsedMb: number;
  arrayBuffersMb: number;
  watches: { inotify: number; polling: number };
  kernelWatches: number | null;
  health: unknown;
  pollingWarmMs: number;
  pollingStatus: { inotify: number; polling: number };
  naiveColdMs: number;
  naiveWarmMs: number;
  naiveValue: number;
  logLines: string[];
}

interface SingleResult {
  coldMs: number;
  warmMs: number;
  peakRssMb: number;
}

// ---- HTTP -----------------------------------------------------------------------------------

function get(agent: Agent, port: number, path: string): Promise<{ ms: number; status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const t = performance.now();
    const req = request({ host: '127.0.0.1', port, path, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ ms: performance.now() - t, status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

async function ok(agent: Agent, port: number, path: string): Promise<{ ms: number; body: string }> {
  const res = await get(agent, port, path);
  if (res.status !== 200) throw new Error(`GET ${path}: status ${res.status}: ${res.body.slice(0, 200)}`);
  return res;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
const p90 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * 0.9)] ?? NaN;
const mb = (bytes: number) => bytes / 1024 / 1024;
const maxRssMb = () => process.resourceUsage().maxRSS / 1024;
const eventsIn = (body: string) => Number(/^loki_events_total (\d+)/m.exec(body)?.[1] ?? -1);

/** inotify watches this process holds, as the kernel counts them (`inotify wd:` lines in fdinfo), or null off Linux. */
function kernelWatches(): number | null {
  try {
    let n = 0;
    for (const fd of readdirSync('/proc/self/fdinfo')) {
      try {
        n += readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8').split('\n').filter((l) => l.startsWith('inotify wd:')).length;
      } catch {
        // closed meanwhile
      }
    }
    return n;
  } catch {
    return null;
  }
}

// ---- the fleet (child) ----------------------------------------------------------------------

async function runFleet(root: string, projects: number): Promise<FleetResult> {
  const logLines: string[] = [];
  const log = (line: string) => void (logLines.length < 20 && logLines.push(line));
  const config = { ...parseConfig({ LOKI_METRICS_CACHE_SECONDS: '0' }), port: 0 };
  const names = Array.from({ length: projects }, (_, i) => projectName(i));
  const catalog = new NodeProjectCatalog({ named: names.map((name, i) => ({ name, dir: projectDir(root, i) })), maxProjects: config.maxProjects, log });
  const server = await startFleetServer(config, catalog, log);
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const { port } = server;
  try {
    await ok(agent, port, '/targets'); // the connection made
    globalThis.gc?.();
    const rssBeforeMb = maxRssMb();

    // Cold: every project's first scrape (its store made, events.jsonl read from the start).
    const cold: number[] = [];
    let coldWrongCounts = 0;
    const t0 = performance.now();
    for (const name of names) {
      const res = await ok(agent, port, `/metrics?project=${name}`);
      cold.push(res.ms);
      if (eventsIn(res.body) !== EVENTS) coldWrongCounts++;
    }
    const coldTotalMs = performance.now() - t0;
    const watches = catalog.watchStatus();
    const kernel = kernelWatches();

    // Warm: one project, cache expired (TTL 0), nothing changed; the 99 others open.
    const one = names[0]!;
    for (let i = 0; i < 20; i++) await ok(agent, port, `/metrics?project=${one}`);
    const warm: number[] = [];
    for (let i = 0; i < WARM_RUNS; i++) warm.push((await ok(agent, port, `/metrics?project=${one}`)).ms);

    // Warm sweep: what one Prometheus scrape interval costs for the whole fleet.
    const sweeps: number[] = [];
    for (let s = 0; s < SWEEPS; s++) {
      const t = performance.now();
      for (const name of names) await ok(agent, port, `/metrics?project=${name}`);
      sweeps.push(performance.now() - t);
    }

    // Discovery.
    for (let i = 0; i < 10; i++) await ok(agent, port, '/targets');
    const discovery: number[] = [];
    let discoveryTargets = 0;
    for (let i = 0; i < DISCOVERY_RUNS; i++) {
      const res = await ok(agent, port, '/targets');
      discovery.push(res.ms);
      discoveryTargets = (JSON.parse(res.body) as unknown[]).length;
    }
    const health = (JSON.parse((await ok(agent, port, `/health?project=${one}`)).body) as { watch?: unknown; projects?: unknown });

    const peakRssMb = maxRssMb();
    globalThis.gc?.();
    const memory = process.memoryUsage();

    // At the inotify limit: project 0 again, in a second fleet whose fs.watch fails with ENOSPC.
    const polled = await pollingWarm(projectDir(root, 0));

    // Naive, after every RSS figure is taken: read and split project 0's whole tree, every scrape.
    const dir = projectDir(root, 0);
    let t = performance.now();
    const naiveValue = naiveScrape(dir);
    const naiveColdMs = performance.now() - t;
    const naive: number[] = [];
    for (let i = 0; i < NAIVE_RUNS; i++) {
      t = performance.now();
      naiveScrape(dir);
      naive.push(performance.now() - t);
    }

    return {
      coldTotalMs,
      coldMedianMs: median(cold),
      coldMaxMs: Math.max(...cold),
      coldWrongCounts,
      warmMs: median(warm),
      warmP90Ms: p90(warm),
      sweepMs: median(sweeps),
      discoveryMs: median(discovery),
      discoveryP90Ms: p90(discovery),
      discoveryTargets,
      rssBeforeMb,
      peakRssMb,
      rssNowMb: mb(memory.rss),
      heapUsedMb: mb(memory.heapUsed),
      arrayBuffersMb: mb(memory.arrayBuffers),
      watches,
      kernelWatches: kernel,
      health: { projects: health.projects, watch: health.watch },
      pollingWarmMs: polled.warmMs,
      pollingStatus: polled.status,
      naiveColdMs,
      naiveWarmMs: median(naive),
      naiveValue,
      logLines,
    };
  } finally {
    agent.destroy();
    await server.close();
    catalog.close();
  }
}

/** A warm scrape of one project when its directories are polled (fs.watch failing as at the limit). */
async function pollingWarm(dir: string): Promise<{ warmMs: number; status: { inotify: number; polling: number } }> {
  const enospc = () => {
    const error = new Error('ENOSPC: System limit for number of file watchers reached') as NodeJS.ErrnoException;
    error.code = 'ENOSPC';
    throw error;
  };
  const catalog = new NodeProjectCatalog({ named: [{ name: 'polled', dir }], maxProjects: 1, log: () => undefined, storeOptions: { watchFn: enospc as never } });
  const server = await startFleetServer({ ...parseConfig({ LOKI_METRICS_CACHE_SECONDS: '0' }), port: 0 }, catalog, () => undefined);
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  try {
    for (let i = 0; i < 20; i++) await ok(agent, server.port, '/metrics?project=polled');
    const warm: number[] = [];
    for (let i = 0; i < WARM_RUNS; i++) warm.push((await ok(agent, server.port, '/metrics?project=polled')).ms);
    return { warmMs: median(warm), status: catalog.watchStatus() };
  } finally {
    agent.destroy();
    await server.close();
    catalog.close();
  }
}

/**
 * What the limit costs a bigger project: a warm refresh (store only, in process) of a tree with
 * `efficiency` files, watched and polled. A polled directory re-stats every entry on every refresh.
 */
async function limitCost(root: string, efficiency: number): Promise<{ inotifyMs: number; pollingMs: number }> {
  const dir = fillTree(join(root, `limit-${efficiency}`, '.loki'), { events: 1_000, efficiency });
  const enospc = () => {
    const error = new Error('ENOSPC: System limit for number of file watchers reached') as NodeJS.ErrnoException;
    error.code = 'ENOSPC';
    throw error;
  };
  const warm = async (store: FsStateStore) => {
    for (let i = 0; i < 5; i++) await store.read();
    const runs: number[] = [];
    for (let i = 0; i < 30; i++) {
      const t = performance.now();
      await store.read();
      runs.push(performance.now() - t);
    }
    store.close();
    return median(runs);
  };
  const inotifyMs = await warm(new FsStateStore(dir));
  const pollingMs = await warm(new FsStateStore(dir, { watchFn: enospc as never }));
  rmSync(join(root, `limit-${efficiency}`), { recursive: true, force: true });
  return { inotifyMs, pollingMs };
}

/** The other naive baseline: today's single-project exporter, one process per project. */
async function runSingle(dir: string): Promise<SingleResult> {
  const store = new FsStateStore(dir);
  const server = await startServer({ ...parseConfig({ LOKI_DIR: dir, LOKI_METRICS_CACHE_SECONDS: '0' }), port: 0 }, store, () => undefined);
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  try {
    const coldMs = (await ok(agent, server.port, '/metrics')).ms;
    for (let i = 0; i < 10; i++) await ok(agent, server.port, '/metrics');
    const warm: number[] = [];
    for (let i = 0; i < WARM_RUNS; i++) warm.push((await ok(agent, server.port, '/metrics')).ms);
    return { coldMs, warmMs: median(warm), peakRssMb: maxRssMb() };
  } finally {
    agent.destroy();
    await server.close();
    store.close();
  }
}

// ---- driver ---------------------------------------------------------------------------------

const self = fileURLToPath(import.meta.url);

function child<T>(args: string[]): T {
  const result = spawnSync(process.execPath, ['--expose-gc', self, '--case', ...args], { encoding: 'utf8', maxBuffer: 16 << 20 });
  const line = result.stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line) as T;
  } catch {
    throw new Error(`bench child ${args[0]} failed: ${(result.stderr || `exit ${result.status}`).split('\n').slice(0, 5).join(' | ')}`);
  }
}

const fmt = (ms: number) => (!Number.isFinite(ms) ? 'n/a' : ms < 10 ? ms.toFixed(3) : ms.toFixed(1)).padStart(10);
const verdict = (met: boolean) => (met ? 'met' : 'MISSED');

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args[0] === '--case') {
    const result = args[1] === 'fleet' ? await runFleet(args[2]!, Number(args[3])) : await runSingle(args[2]!);
    process.stdout.write(JSON.stringify(result) + '\n');
    return;
  }
  if (!benchWanted('fleet')) return; // BENCH_ONLY set to something else
  const root = mkdtempSync(join(tmpdir(), 'loki-bench-fleet-'));
  try {
    const master = join(root, 'events.jsonl');
    let t = performance.now();
    writeEvents(master, EVENTS);
    const eventsBytes = statSync(master).size;
    const fs0 = statfsSync(root);
    const freeBefore = fs0.bavail * fs0.bsize;
    const need = PROJECTS * eventsBytes;
    const chosen = process.env.BENCH_FLEET_TREES;
    // Copies when they leave at least 2 GiB and half the free space; otherwise hardlinks (the exporter only reads).
    const how: 'copy' | 'hardlink' = chosen === 'copy' || chosen === 'hardlink' ? chosen : freeBefore - need > Math.max(2 * GIB, freeBefore / 2) ? 'copy' : 'hardlink';
    for (let i = 0; i < PROJECTS; i++) fillTree(projectDir(root, i), { events: EVENTS, efficiency: EFFICIENCY, eventsFrom: { path: master, how } });
    // Flush the 1 GB just written, so its writeback does not land in the measurements.
    spawnSync('sync');
    const fs1 = statfsSync(root);
    const used = freeBefore - fs1.bavail * fs1.bsize;
    const generateS = (performance.now() - t) / 1000;

    t = performance.now();
    const fleet = child<FleetResult>(['fleet', root, String(PROJECTS)]);
    const single = child<SingleResult>(['single', projectDir(root, 0)]);
    const limits = [];
    for (const n of [1_000, 10_000]) limits.push({ n, ...(await limitCost(root, n)) });
    const runS = (performance.now() - t) / 1000;
    let limit: string;
    try {
      limit = readFileSync('/proc/sys/fs/inotify/max_user_watches', 'utf8').trim();
    } catch {
      limit = 'n/a (not Linux)';
    }

    const width = 52;
    const row = (label: string, median: number, p90?: number, target = '') =>
      console.log(`${label.padEnd(width)}${fmt(median)}${p90 !== undefined ? fmt(p90) : ''.padStart(10)}  ${target}`);
    console.log(
      `\nloki-metrics fleet bench — node ${process.version}, ${PROJECTS} projects × ${EVENTS.toLocaleString('en-US')} events (${mb(eventsBytes).toFixed(1)} MB events.jsonl each) + ${EFFICIENCY} efficiency files + dashboard-state.json`,
    );
    console.log(`one startFleetServer over a NodeProjectCatalog of ${PROJECTS} named directories, in a child process; LOKI_METRICS_CACHE_SECONDS=0; one kept-alive connection; times in ms`);
    console.log(
      `trees: events.jsonl written once and ${how === 'copy' ? 'copied into each project (copy_file_range/reflink where the filesystem offers it)' : 'hardlinked into each project (one inode; the exporter only reads)'}: ${mb(used).toFixed(0)} MB of disk used, ${(freeBefore / GIB).toFixed(0)} GB was free; generated in ${generateS.toFixed(1)} s, measured in ${runS.toFixed(1)} s`,
    );
    console.log('"cold" = each project\'s first scrape in a fresh exporter; the files were just written, so they are in the page cache, not read from disk\n');
    console.log(`${'case'.padEnd(width)}${'median'.padStart(10)}${'p90'.padStart(10)}  target`);
    row(`cold: all ${PROJECTS} projects once, total`, fleet.coldTotalMs);
    row('cold: per project (total / projects)', fleet.coldTotalMs / PROJECTS);
    row('cold: per project, median and max', fleet.coldMedianMs, fleet.coldMaxMs);
    row(`warm: one project, cache expired (median of ${WARM_RUNS})`, fleet.warmMs, fleet.warmP90Ms, `<= 2 ms: ${verdict(fleet.warmMs <= 2)}`);
    row(
      `warm: one project, ${fleet.pollingStatus.polling} dir(s) polled (watch failed)`,
      fleet.pollingWarmMs,
      undefined,
      fleet.pollingStatus.inotify === 0 && fleet.pollingStatus.polling > 0 ? '(at the inotify limit)' : '!! not polling',
    );
    row(`warm: all ${PROJECTS} projects, one sweep (median of ${SWEEPS})`, fleet.sweepMs);
    row(`discovery: GET /targets, ${fleet.discoveryTargets} targets (median of ${DISCOVERY_RUNS})`, fleet.discoveryMs, fleet.discoveryP90Ms, `<= 5 ms: ${verdict(fleet.discoveryMs <= 5)}`);
    console.log(
      `${`peak RSS, all ${PROJECTS} open (maxRSS)`.padEnd(width)}${`${fleet.peakRssMb.toFixed(0)} MB`.padStart(10)}${''.padStart(10)}  < 250 MB: ${verdict(fleet.peakRssMb < 250)}`,
    );
    console.log(
      `  (${fleet.rssBeforeMb.toFixed(0)} MB with the server up and no project open: ≈${((fleet.peakRssMb - fleet.rssBeforeMb) / PROJECTS).toFixed(2)} MB per project; after GC: rss ${fleet.rssNowMb.toFixed(0)} MB, heap used ${fleet.heapUsedMb.toFixed(0)} MB, array buffers ${fleet.arrayBuffersMb.toFixed(0)} MB)`,
    );
    console.log(
      `inotify: ${fleet.watches.inotify} watches held by the catalog (kernel fdinfo: ${fleet.kernelWatches ?? 'n/a'}), ${fleet.watches.polling} directories polled; fs.inotify.max_user_watches = ${limit} (per user, shared with every process of that user)`,
    );
    console.log(`  /health?project=${projectName(0)}: ${JSON.stringify(fleet.health)}`);
    console.log(
      `  at the limit a polled directory is re-stat'ed whole on every refresh; warm store refresh, watched → polled: ${limits.map((l) => `${l.n.toLocaleString('en-US')} efficiency files ${l.inotifyMs.toFixed(2)} → ${l.pollingMs.toFixed(1)} ms`).join('; ')}`,
    );
    if (fleet.coldWrongCounts > 0) console.log(`  !! ${fleet.coldWrongCounts} projects did not report loki_events_total ${EVENTS}`);
    if (fleet.naiveValue !== EVENTS) console.log(`  !! the naive scrape counted ${fleet.naiveValue} lines`);
    for (const line of fleet.logLines) console.log(`  log: ${line}`);
    console.log(
      `\nnaive 1, the reference reader's scrape (read + split the whole events.jsonl, parse every file; in process, no HTTP): cold ${fmt(fleet.naiveColdMs).trim()}, warm ${fmt(fleet.naiveWarmMs).trim()} ms per project → the fleet's warm scrape (over HTTP) is ${(fleet.naiveWarmMs / fleet.warmMs).toFixed(0)}x faster; a sweep of ${PROJECTS} would take ≈${((fleet.naiveWarmMs * PROJECTS) / 1000).toFixed(1)} s`,
    );
    console.log(
      `naive 2, one single-project exporter process per project: one uses ${single.peakRssMb.toFixed(0)} MB peak RSS (cold ${fmt(single.coldMs).trim()}, warm ${fmt(single.warmMs).trim()} ms) → ${PROJECTS} processes ≈ ${((single.peakRssMb * PROJECTS) / 1024).toFixed(1)} GB, ${((single.peakRssMb * PROJECTS) / fleet.peakRssMb).toFixed(0)}x the fleet's ${fleet.peakRssMb.toFixed(0)} MB`,
    );
    console.log(`\ntargets: warm one project <= 2 ms; discovery <= 5 ms; peak RSS < 250 MB with ${PROJECTS} projects open`);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

await main();
