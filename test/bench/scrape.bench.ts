/**
 * `npm run bench`: scrape cost at 1k / 100k / 1M / 10M events, 10 / 1k / 10k efficiency files and
 * 10k receipts (`proofs/<run>/proof.json`),
 * cold (a fresh exporter's first refresh) and warm (a refresh after the cache expired, nothing
 * changed), plus peak RSS, against a naive baseline (the reference reader's approach: read and
 * split everything on every scrape) run in the same way. A benchmark, not a test: it prints figures.
 *
 * Each case runs in its own child process so that peak RSS (which only grows) is per case.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, utimesSync, writeSync } from 'node:fs';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createCollector } from '../../src/collect.js';
import { render } from '../../src/render.js';
import { FsStateStore } from '../../src/stores/fs.js';

const EVENT_SIZES = [1_000, 100_000, 1_000_000, 10_000_000];
const EFFICIENCY_SIZES = [10, 1_000, 10_000];
const RECEIPT_SIZES = [10_000];
const HEADLINES = ['VERIFIED', 'VERIFIED WITH GAPS', 'NOT VERIFIED', 'mystery'];
const WARM_RUNS = 30;

interface CaseResult {
  coldMs: number;
  warmMs: number;
  peakRssMb: number;
  value: number;
  error?: string;
}

// ---- tree generation (parent) ---------------------------------------------------------------

/** ~110-byte lines as run.sh writes them, with a session_start and iteration_starts. */
function writeEvents(path: string, lines: number): void {
  const fd = openSync(path, 'w');
  const chunk: string[] = [];
  const t0 = Date.parse('2026-02-14T09:00:00Z');
  for (let i = 0; i < lines; i++) {
    const ts = new Date(t0 + i * 1000).toISOString().replace('.000', '');
    chunk.push(
      i === 0
        ? `{"timestamp":"${ts}","type":"session_start","data":{"provider":"claude","prd":"./prd.md","pid":4242}}`
        : i % 1000 === 0
          ? `{"timestamp":"${ts}","type":"iteration_start","data":{"iteration":${i / 1000},"provider":"claude"}}`
          : `{"timestamp":"${ts}","type":"tool_use","data":{"tool":"Edit","file":"src/app/module-${i % 97}.ts","ok":true}}`,
    );
    if (chunk.length === 10_000) {
      writeSync(fd, chunk.join('\n') + '\n');
      chunk.length = 0;
    }
  }
  if (chunk.length) writeSync(fd, chunk.join('\n') + '\n');
  closeSync(fd);
}

function makeTree(root: string, events: number, efficiency: number, receipts = 0): string {
  const dir = join(root, `.loki-${events}-${efficiency}-${receipts}`);
  mkdirSync(join(dir, 'metrics/efficiency'), { recursive: true });
  for (let i = 1; i <= receipts; i++) {
    mkdirSync(join(dir, `proofs/run-${i}`), { recursive: true });
    const fd = openSync(join(dir, `proofs/run-${i}/proof.json`), 'w');
    const proof = { schema_version: '1.1', run_id: `run-${i}`, honesty: { headline: HEADLINES[i % 4] }, verification: { attestation: i % 3 === 0 ? { sig: 'x' } : null, gpg_signature: null }, iterations: { count: 3, succeeded: 3, failed: 0 } };
    writeSync(fd, JSON.stringify(proof));
    closeSync(fd);
    // Receipts accumulate over weeks: settled, not being written (see FileSetTracker's recent re-check).
    const settled = Date.now() / 1000 - 86_400;
    utimesSync(join(dir, `proofs/run-${i}/proof.json`), settled, settled);
  }
  mkdirSync(join(dir, 'state'), { recursive: true });
  writeEvents(join(dir, 'events.jsonl'), events);
  for (let i = 1; i <= efficiency; i++) {
    const fd = openSync(join(dir, `metrics/efficiency/iteration-${i}.json`), 'w');
    writeSync(fd, JSON.stringify({ iteration: i, model: i % 3 ? 'sonnet' : 'opus', input_tokens: 1000 * i, output_tokens: 200 * i, ...(i % 2 ? { cost_usd: 0.01 * i } : {}) }));
    closeSync(fd);
  }
  const fd = openSync(join(dir, 'dashboard-state.json'), 'w');
  writeSync(fd, JSON.stringify({ mode: 'autonomous', iteration: 0, tasks: { pending: [{ id: 'a' }], inProgress: [], completed: [], failed: [] } }));
  closeSync(fd);
  return dir;
}

// ---- one case (child) -----------------------------------------------------------------------

async function runExporter(dir: string): Promise<CaseResult> {
  const collector = createCollector({ maxIterations: 1000, heartbeatWindowMs: 30_000, agentsHoldMs: 10_000, version: 'bench', log: () => undefined });
  const store = new FsStateStore(dir);
  const scrape = async () => render(collector.collect(await store.read(), Date.now()), 'openmetrics');
  let t = performance.now();
  const first = await scrape();
  const coldMs = performance.now() - t;
  const warm: number[] = [];
  for (let i = 0; i < WARM_RUNS; i++) {
    t = performance.now();
    await scrape();
    warm.push(performance.now() - t);
  }
  await store.close();
  const value = Number(/loki_events_total (\d+)/.exec(first)?.[1] ?? -1);
  return { coldMs, warmMs: median(warm), peakRssMb: process.resourceUsage().maxRSS / 1024, value };
}

/** The reference reader's approach: read and split everything, every scrape. */
async function runNaive(dir: string, events: number): Promise<CaseResult> {
  const scrape = () => {
    let cost = 0;
    const effDir = join(dir, 'metrics/efficiency');
    for (const name of readdirSync(effDir)) {
      const r = JSON.parse(readFileSync(join(effDir, name), 'utf8')) as { cost_usd?: number };
      cost += r.cost_usd ?? 0;
    }
    let receipts = 0;
    const proofs = join(dir, 'proofs');
    for (const run of existsSync(proofs) ? readdirSync(proofs) : []) {
      const p = JSON.parse(readFileSync(join(proofs, run, 'proof.json'), 'utf8')) as { honesty?: { headline?: string } };
      if (p.honesty?.headline === 'VERIFIED') receipts++;
    }
    const lines = readFileSync(join(dir, 'events.jsonl'), 'utf8').trim().split('\n').filter((l) => l.trim() !== '').length;
    return lines + cost * 0 + receipts * 0;
  };
  try {
    let t = performance.now();
    const value = scrape();
    const coldMs = performance.now() - t;
    // warm = the same work again; fewer runs at 10M, it is slow by construction
    const runs = events >= 1_000_000 ? 3 : WARM_RUNS;
    const warm: number[] = [];
    for (let i = 0; i < runs; i++) {
      t = performance.now();
      scrape();
      warm.push(performance.now() - t);
    }
    return { coldMs, warmMs: median(warm), peakRssMb: process.resourceUsage().maxRSS / 1024, value };
  } catch (error) {
    return { coldMs: NaN, warmMs: NaN, peakRssMb: process.resourceUsage().maxRSS / 1024, value: -1, error: (error as Error).message };
  }
}

function median(xs: number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? NaN;
}

// ---- driver ---------------------------------------------------------------------------------

const self = fileURLToPath(import.meta.url);

function child(kind: 'exporter' | 'naive', dir: string, events: number): CaseResult {
  const result = spawnSync(process.execPath, ['--max-old-space-size=8192', self, '--case', kind, dir, String(events)], {
    encoding: 'utf8',
    maxBuffer: 1 << 20,
  });
  const line = result.stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line) as CaseResult;
  } catch {
    return { coldMs: NaN, warmMs: NaN, peakRssMb: NaN, value: -1, error: (result.stderr || 'crashed').split('\n')[0] ?? 'crashed' };
  }
}

// JSON turns NaN into null, so anything that is not a finite number prints as n/a.
const fmt = (ms: number | null) => (typeof ms !== 'number' || !Number.isFinite(ms) ? '   n/a' : ms < 10 ? ms.toFixed(3) : ms.toFixed(1)).padStart(9);
const ratio = (naive: number | null, ours: number) => (typeof naive === 'number' && Number.isFinite(naive) && ours > 0 ? `${(naive / ours).toFixed(naive / ours < 10 ? 1 : 0)}x` : 'n/a').padStart(7);

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args[0] === '--case') {
    const [, kind, dir, events] = args as [string, string, string, string];
    const result = kind === 'naive' ? await runNaive(dir, Number(events)) : await runExporter(dir);
    process.stdout.write(JSON.stringify(result) + '\n');
    return;
  }
  const root = mkdtempSync(join(tmpdir(), 'loki-bench-'));
  try {
    console.log(`loki-metrics bench — node ${process.version}, ${WARM_RUNS} warm runs (median), one child process per case`);
    console.log('cold = first refresh of a fresh exporter; warm = refresh with the cache expired and nothing changed; times in ms\n');
    console.log(`${'case'.padEnd(40)}${'cold'.padStart(9)}${'warm'.padStart(9)}${'RSS MB'.padStart(8)} | ${'naive cold'.padStart(10)}${'naive warm'.padStart(11)}${'RSS MB'.padStart(8)} | warm speedup`);
    const only = process.env.BENCH_ONLY; // e.g. BENCH_ONLY=receipts to run the cases whose label contains it
    const cases: [number, number, number][] = [
      ...EVENT_SIZES.map((n): [number, number, number] => [n, 10, 0]),
      ...EFFICIENCY_SIZES.filter((n) => n !== 10).map((n): [number, number, number] => [1_000, n, 0]),
      ...RECEIPT_SIZES.map((n): [number, number, number] => [1_000, 10, n]),
    ];
    for (const [events, efficiency, receipts] of cases) {
      const label = `${events.toLocaleString('en-US')} events, ${efficiency.toLocaleString('en-US')} eff${receipts ? `, ${receipts.toLocaleString('en-US')} receipts` : ''}`;
      if (only && !label.includes(only)) continue;
      const dir = makeTree(root, events, efficiency, receipts);
      const ours = child('exporter', dir, events);
      const naive = child('naive', dir, events);
      const check = ours.value === events ? '' : `  (!! counted ${ours.value} ${ours.error ?? ''})`;
      console.log(
        `${label.padEnd(40)}${fmt(ours.coldMs)}${fmt(ours.warmMs)}${(ours.peakRssMb ?? NaN).toFixed(0).padStart(8)} | ${fmt(naive.coldMs).padStart(10)}${fmt(naive.warmMs).padStart(11)}${(naive.peakRssMb ?? NaN).toFixed(0).padStart(8)} | ${ratio(naive.warmMs, ours.warmMs)}${naive.error ? `  naive failed: ${naive.error.slice(0, 60)}` : ''}${check}`,
      );
      rmSync(dir, { recursive: true, force: true });
    }
    console.log(
      '\ntargets: warm 1M events <= 2 ms; cold 1M events <= 150 ms; RSS < 100 MB from 1k to 10M events; warm 10k efficiency files <= 10 ms; cold 10k efficiency files <= 300 ms; warm 10k receipts <= 10 ms',
    );
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

await main();
