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
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createCollector } from '../../src/collect.js';
import { render } from '../../src/render.js';
import { FsStateStore } from '../../src/stores/fs.js';
import { makeTree, naiveScrape } from './trees.js';

const EVENT_SIZES = [1_000, 100_000, 1_000_000, 10_000_000];
const EFFICIENCY_SIZES = [10, 1_000, 10_000];
const RECEIPT_SIZES = [10_000];
const WARM_RUNS = 30;

interface CaseResult {
  coldMs: number;
  warmMs: number;
  peakRssMb: number;
  value: number;
  error?: string;
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
  const scrape = () => naiveScrape(dir);
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

/** A case's figures against its targets (issue 22): a no-change refresh ≤ 0.5 ms at every size, the cold ones that have one, RSS flat across event counts. */
function againstTargets(events: number, efficiency: number, receipts: number, ours: CaseResult): string {
  const targets: [string, number | null, number][] = [['warm', ours.warmMs, 0.5]];
  if (efficiency === 10 && receipts === 0) targets.push(['RSS MB', ours.peakRssMb, 100]);
  if (events === 1_000_000 && efficiency === 10 && receipts === 0) targets.push(['cold', ours.coldMs, 150]);
  if (efficiency === 10_000) targets.push(['cold', ours.coldMs, 300]);
  return targets.map(([name, value, limit]) => `${name} <= ${limit}: ${typeof value === 'number' && value <= limit ? 'met' : 'MISSED'}`).join(', ');
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
  const only = process.env.BENCH_ONLY; // e.g. BENCH_ONLY=receipts to run the cases whose label contains it
  const cases = [
    ...EVENT_SIZES.map((n): [number, number, number] => [n, 10, 0]),
    ...EFFICIENCY_SIZES.filter((n) => n !== 10).map((n): [number, number, number] => [1_000, n, 0]),
    ...RECEIPT_SIZES.map((n): [number, number, number] => [1_000, 10, n]),
  ]
    .map(([events, efficiency, receipts]) => ({
      events,
      efficiency,
      receipts,
      label: `${events.toLocaleString('en-US')} events, ${efficiency.toLocaleString('en-US')} eff${receipts ? `, ${receipts.toLocaleString('en-US')} receipts` : ''}`,
    }))
    .filter(({ label }) => !only || label.includes(only));
  // BENCH_ONLY=fleet (or transport, or anything no label contains): this part has nothing to run.
  if (cases.length === 0) return;
  const root = mkdtempSync(join(tmpdir(), 'loki-bench-'));
  try {
    console.log(`loki-metrics bench — node ${process.version}, ${WARM_RUNS} warm runs (median), one child process per case`);
    console.log('cold = first refresh of a fresh exporter; warm = refresh with the cache expired and nothing changed; times in ms\n');
    console.log(`${'case'.padEnd(40)}${'cold'.padStart(9)}${'warm'.padStart(9)}${'RSS MB'.padStart(8)} | ${'naive cold'.padStart(10)}${'naive warm'.padStart(11)}${'RSS MB'.padStart(8)} | warm speedup`);
    for (const { events, efficiency, receipts, label } of cases) {
      const dir = makeTree(root, events, efficiency, receipts);
      const ours = child('exporter', dir, events);
      const naive = child('naive', dir, events);
      const check = ours.value === events ? '' : `  (!! counted ${ours.value} ${ours.error ?? ''})`;
      console.log(
        `${label.padEnd(40)}${fmt(ours.coldMs)}${fmt(ours.warmMs)}${(ours.peakRssMb ?? NaN).toFixed(0).padStart(8)} | ${fmt(naive.coldMs).padStart(10)}${fmt(naive.warmMs).padStart(11)}${(naive.peakRssMb ?? NaN).toFixed(0).padStart(8)} | ${ratio(naive.warmMs, ours.warmMs)}${naive.error ? `  naive failed: ${naive.error.slice(0, 60)}` : ''}${check}  ${againstTargets(events, efficiency, receipts, ours)}`,
      );
      rmSync(dir, { recursive: true, force: true });
    }
    console.log('\ntargets (issue 22): warm <= 0.5 ms at every size; cold 1M events <= 150 ms; cold 10k efficiency files <= 300 ms; peak RSS < 100 MB from 1k to 10M events');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

await main();
