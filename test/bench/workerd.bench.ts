/**
 * Cross-check of the Worker bench in real workerd (Miniflare, local R2): CPU per request read from
 * the workerd process itself (the schedstat of every thread under `/proc/<pid>/task`), over a batch of
 * requests, minus a batch of requests for an unknown route (what workerd and Miniflare cost for any
 * request). Miniflare simulates R2 on the same threads, so storage calls are in the figure too.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { appendFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runSync } from '../../src/node/sync.js';
import { cleanTrees, materialize } from '../support/loki-tree.js';
import { SCRAPE_TOKEN, startWorker, SYNC_TOKEN } from '../support/worker.js';

const N = 200;

/** The workerd processes this process started (Miniflare's), by their parent. */
function workerdPids(): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (comm.startsWith('workerd') && ppid === process.pid) pids.push(Number(entry));
    } catch {
      // gone
    }
  }
  return pids;
}

/** Nanoseconds on CPU, every thread of `pid`. */
function cpuNs(pid: number): number {
  let total = 0;
  for (const task of readdirSync(`/proc/${pid}/task`)) {
    try {
      total += Number(readFileSync(`/proc/${pid}/task/${task}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // a thread that ended
    }
  }
  return total;
}

async function batch(pid: number, request: () => Promise<Response>): Promise<number> {
  const before = cpuNs(pid);
  for (let i = 0; i < N; i++) await (await request()).arrayBuffer();
  return (cpuNs(pid) - before) / N / 1e6;
}

async function main(): Promise<void> {
  const worker = await startWorker({ vars: { LOKI_METRICS_TOKEN: SCRAPE_TOKEN } });
  try {
    const [pid] = workerdPids();
    if (pid === undefined) throw new Error('no workerd process found');
    const dir = await materialize('v9-running', { pid: 'alive', mtimeMs: Date.now() });
    const sync = () => runSync({ url: worker.url, session: 'default', dir, token: SYNC_TOKEN, intervalMs: 1000, pushMs: 0, once: true, log: () => undefined });
    if ((await sync()) !== 0) throw new Error('sync failed');
    const scrape = () => worker.fetch('/metrics', { headers: { Authorization: `Bearer ${SCRAPE_TOKEN}` } });
    const noop = () => worker.fetch('/nope');
    for (let i = 0; i < 50; i++) await (await scrape()).arrayBuffer(); // warm
    const base = await batch(pid, noop);
    const warm = await batch(pid, scrape);
    // A scrape after each change: N cycles of (append an event, sync, scrape), the sync measured apart.
    let syncMs = 0;
    let scrapeMs = 0;
    for (let i = 0; i < N / 4; i++) {
      await appendFile(join(dir, 'events.jsonl'), '{"type":"tool_use"}\n');
      const t0 = cpuNs(pid);
      await sync();
      const t1 = cpuNs(pid);
      await (await scrape()).arrayBuffer();
      syncMs += (t1 - t0) / 1e6;
      scrapeMs += (cpuNs(pid) - t1) / 1e6;
    }
    const cycles = N / 4;
    console.log('\nloki-metrics Worker in workerd (Miniflare, local R2), v9-running fixture: CPU of the workerd process per request');
    console.log(`  any request (unknown route, 404)            ${base.toFixed(2)} ms`);
    console.log(`  warm scrape, nothing changed                ${warm.toFixed(2)} ms  (${(warm - base).toFixed(2)} ms over a 404)`);
    console.log(`  scrape after a sync of one change           ${(scrapeMs / cycles).toFixed(2)} ms  (${(scrapeMs / cycles - base).toFixed(2)} ms over a 404)`);
    console.log(`  a new client's sync of one change (its manifest pages, one ingest)  ${(syncMs / cycles).toFixed(2)} ms`);
    console.log('  (includes Miniflare\'s R2 simulation on the same threads; compare with the Node figures above as a cross-check, not to the ms)');
  } finally {
    await worker.dispose();
    await cleanTrees();
  }
}

await main();
