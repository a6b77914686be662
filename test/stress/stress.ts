/**
 * `npm run stress`: the long runs of issue #5, printing figures for the README (not a test).
 *
 * 1. Concurrent writers: a writer process rewrites dashboard-state.json (atomically and in place),
 *    agents.json and efficiency files in place, appends to events.jsonl (with partial lines) and
 *    rotates it, while we scrape the real exporter (a `loki-metrics serve` child) continuously.
 *    Checked on every scrape: no 5xx, every value in its legal range, loki_events_total never
 *    decreasing except at a rotation, loki_session_status never 0 while the writer lives.
 * 2. Load: wrk (Debian) on loopback at 64 connections against a 1M-event state: errors, p99,
 *    throughput, the exporter's peak RSS.
 * 3. The same load against the Worker in workerd while a sync writes to its ingest endpoint.
 *
 * STRESS_SECONDS (default 60) sets each phase's duration.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runSync } from '../../src/node/sync.js';
import { parseExposition } from '../../src/cli/report.js';
import { materialize, cleanTrees, treeDigest } from '../support/loki-tree.js';
import { startWorker, SYNC_TOKEN } from '../support/worker.js';

const SECONDS = Number(process.env.STRESS_SECONDS ?? 60);
const CLI = fileURLToPath(new URL('../../src/node/cli.js', import.meta.url));
const WRITER = fileURLToPath(new URL('./writer.js', import.meta.url));
const children: ChildProcess[] = [];

process.on('exit', () => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
});

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => resolve(port));
    });
  });
}

async function serve(dir: string, env: Record<string, string> = {}): Promise<{ url: string; child: ChildProcess }> {
  const port = await freePort();
  const child = spawn(process.execPath, [CLI, 'serve', '--dir', dir, '--port', String(port)], {
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  child.stderr!.resume();
  await new Promise<void>((resolve, reject) => {
    child.stdout!.once('data', () => resolve());
    child.once('exit', (code) => reject(new Error(`serve exited ${code}`)));
  });
  return { url: `http://127.0.0.1:${port}/metrics`, child };
}

/** Peak resident set of a process, from /proc (VmHWM), in MB. */
function peakRssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? NaN) / 1024;
}

// ---- 1. concurrent writers -------------------------------------------------------------------

async function concurrentWriters(): Promise<void> {
  const dir = await materialize('running', { pid: 'keep' });
  const writer = spawn(process.execPath, [WRITER, dir, String(SECONDS + 2)], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(writer);
  let rotations = 0;
  // Each `rotated` the writer announces licenses exactly one later drop of the counter.
  let pendingRotations = 0;
  writer.stdout!.on('data', (d: Buffer) => {
    const n = (d.toString().match(/rotated/g) ?? []).length;
    rotations += n;
    pendingRotations += n;
  });
  await new Promise((r) => setTimeout(r, 300)); // the writer has written its pid
  const { url, child } = await serve(dir, { LOKI_METRICS_CACHE_SECONDS: '0' });

  let scrapes = 0;
  let errors5xx = 0;
  let otherErrors = 0;
  let outOfRange = 0;
  let statusZero = 0;
  let decreases = 0;
  let resetsAtRotation = 0;
  let lastEvents = -1;
  const deadline = Date.now() + SECONDS * 1000;
  while (Date.now() < deadline) {
    let res: Response;
    try {
      res = await fetch(url);
    } catch {
      otherErrors++;
      continue;
    }
    scrapes++;
    if (res.status >= 500) errors5xx++;
    else if (res.status !== 200) otherErrors++;
    const samples = parseExposition(await res.text());
    const get = (name: string) => samples.filter((s) => s.name === name).map((s) => s.value);
    for (const s of samples) {
      if (!Number.isFinite(s.value) || s.value < 0) outOfRange++;
      if (s.name === 'loki_session_status' && ![0, 1, 2].includes(s.value)) outOfRange++;
      if ((s.name === 'loki_up' || s.name === 'loki_source_ok' || s.name === 'loki_budget_exceeded') && s.value !== 0 && s.value !== 1) outOfRange++;
    }
    if (get('loki_agents_active')[0]! > get('loki_agents_total')[0]!) outOfRange++;
    if (writer.exitCode === null && get('loki_session_status')[0] === 0) statusZero++;
    const events = get('loki_events_total')[0] ?? 0;
    if (events < lastEvents) {
      // Only a rotation may reset the counter (the writer announces each one just before it).
      if (pendingRotations > 0) {
        pendingRotations--;
        resetsAtRotation++;
      } else decreases++;
    }
    lastEvents = events;
  }
  const rss = peakRssMb(child.pid!);
  writer.kill('SIGTERM');
  child.kill('SIGTERM');
  console.log(`concurrent writers, ${SECONDS} s: ${scrapes} scrapes (${(scrapes / SECONDS).toFixed(0)}/s), 5xx ${errors5xx}, other errors ${otherErrors}, ` +
    `values out of range ${outOfRange}, status 0 while the writer lived ${statusZero}, events_total decreases without rotation ${decreases}, ` +
    `resets at rotation ${resetsAtRotation} (writer rotated ${rotations}x), exporter peak RSS ${rss.toFixed(0)} MB`);
}

// ---- 2./3. load with wrk ------------------------------------------------------------------------

interface WrkFigures {
  requests: number;
  rps: number;
  p99: string;
  p50: string;
  non2xx: number;
  socketErrors: string;
}

/** Runs wrk without blocking this process's event loop (the sync of phase 3 runs here meanwhile). */
async function wrk(url: string): Promise<WrkFigures> {
  const child = spawn('wrk', ['-t2', '-c64', `-d${SECONDS}s`, '--latency', '--timeout', '10s', url], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', (e) => reject(new Error(`wrk failed (apt-get install -y wrk): ${e.message}`)));
    child.once('exit', resolve);
  });
  if (code !== 0) throw new Error(`wrk failed: ${err}`);
  return {
    requests: Number(/(\d+) requests in/.exec(out)?.[1] ?? NaN),
    rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? NaN),
    p50: /50%\s+(\S+)/.exec(out)?.[1] ?? '?',
    p99: /99%\s+(\S+)/.exec(out)?.[1] ?? '?',
    non2xx: Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0),
    socketErrors: /Socket errors: (.*)/.exec(out)?.[1] ?? 'none',
  };
}

/** ~110-byte lines as run.sh writes them. */
function writeEvents(path: string, lines: number): void {
  const fd = openSync(path, 'w');
  const chunk: string[] = [];
  for (let i = 0; i < lines; i++) {
    chunk.push(i === 0
      ? '{"timestamp":"2026-02-14T09:00:00Z","type":"session_start","data":{"provider":"claude","pid":4242}}'
      : `{"timestamp":"2026-02-14T09:00:00Z","type":"tool_use","data":{"tool":"Edit","file":"src/app/module-${i % 97}.ts","ok":true}}`);
    if (chunk.length === 10_000) {
      writeSync(fd, chunk.join('\n') + '\n');
      chunk.length = 0;
    }
  }
  if (chunk.length) writeSync(fd, chunk.join('\n') + '\n');
  closeSync(fd);
}

async function loadNode(): Promise<void> {
  const dir = await materialize('running', { pid: 'alive', mtimeMs: Date.now() });
  writeEvents(join(dir, 'events.jsonl'), 1_000_000);
  const before = await treeDigest(dir);
  const { url, child } = await serve(dir);
  await fetch(url); // cold scan before the clock starts
  const figures = await wrk(url);
  const rss = peakRssMb(child.pid!);
  child.kill('SIGTERM');
  const untouched = (await treeDigest(dir)) === before;
  console.log(`node under wrk, 64 connections, ${SECONDS} s, 1M events: ${figures.requests} requests, ${figures.rps} req/s, p50 ${figures.p50}, p99 ${figures.p99}, ` +
    `non-2xx ${figures.non2xx}, socket errors ${figures.socketErrors}, exporter peak RSS ${rss.toFixed(0)} MB, state tree unchanged: ${untouched}`);
}

async function loadWorker(): Promise<void> {
  const dir = await materialize('running', { pid: 'alive', mtimeMs: Date.now() });
  writeEvents(join(dir, 'events.jsonl'), 1_000_000);
  const worker = await startWorker({ vars: { LOKI_METRICS_CACHE_SECONDS: '2' } });
  try {
    const controller = new AbortController();
    let cycles = 0;
    let syncErrors = 0;
    // The writer side: a sync every 500 ms while the scrapes run, and events keep arriving.
    const appender = setInterval(() => {
      const fd = openSync(join(dir, 'events.jsonl'), 'a');
      writeSync(fd, '{"timestamp":"2026-02-14T09:00:00Z","type":"tool_use","data":{}}\n'.repeat(100));
      closeSync(fd);
    }, 250);
    let slowest = 0;
    let cycleStart = Date.now();
    const syncing = runSync({
      url: worker.url, session: 'default', dir, token: SYNC_TOKEN, intervalMs: 500, once: false, signal: controller.signal,
      log: (line) => (syncErrors++, process.env.STRESS_VERBOSE && console.log(line)),
      onCycle: () => {
        cycles++;
        slowest = Math.max(slowest, Date.now() - cycleStart - (cycles > 1 ? 500 : 0));
        cycleStart = Date.now();
      },
    });
    while (cycles === 0) await new Promise((r) => setTimeout(r, 100));
    const figures = await wrk(`${worker.url}/metrics?session=default`);
    controller.abort();
    clearInterval(appender);
    await syncing;
    console.log(`worker (workerd) under wrk, 64 connections, ${SECONDS} s, with a sync every 500 ms: ${figures.requests} requests, ${figures.rps} req/s, p50 ${figures.p50}, p99 ${figures.p99}, ` +
      `non-2xx ${figures.non2xx}, socket errors ${figures.socketErrors}, sync cycles ${cycles} (slowest ${slowest} ms), sync problems logged ${syncErrors}, events seen ${await eventsTotal(`${worker.url}/metrics?session=default`)}`);
  } finally {
    await worker.dispose();
  }
}

async function eventsTotal(url: string): Promise<number> {
  // A pooled keep-alive connection the server has just closed fails once; try a fresh one.
  for (let attempt = 0; ; attempt++) {
    try {
      return parseExposition(await (await fetch(url)).text()).find((s) => s.name === 'loki_events_total')?.value ?? NaN;
    } catch (error) {
      if (attempt >= 2) throw error;
    }
  }
}

async function main(): Promise<void> {
  console.log(`loki-metrics stress — node ${process.version}, ${SECONDS} s per phase`);
  try {
    // STRESS_ONLY=writers|node|worker runs one phase.
    const only = process.env.STRESS_ONLY;
    if (!only || only === 'writers') await concurrentWriters();
    if (!only || only === 'node') await loadNode();
    if (!only || only === 'worker') await loadWorker();
  } finally {
    for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
    await cleanTrees();
  }
}

await main();
