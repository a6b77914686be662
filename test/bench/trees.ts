/**
 * Generated `.loki` trees for the benchmarks (scrape.bench.ts, fleet.bench.ts, worker.bench.ts), and the naive
 * baseline's scrape: the reference reader's approach, read and split everything every time.
 */
import { closeSync, copyFileSync, constants, existsSync, linkSync, mkdirSync, openSync, readdirSync, readFileSync, utimesSync, writeSync } from 'node:fs';
import { join } from 'node:path';

const HEADLINES = ['VERIFIED', 'VERIFIED WITH GAPS', 'NOT VERIFIED', 'mystery'];

/** ~110-byte lines as run.sh writes them, with a session_start and iteration_starts. */
export function writeEvents(path: string, lines: number): void {
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

export interface TreeSpec {
  /** Lines of `events.jsonl` to generate (ignored with `eventsFrom`). */
  readonly events: number;
  readonly efficiency: number;
  readonly receipts?: number;
  /**
   * Take `events.jsonl` from this existing file instead of generating it: `hardlink` (no disk
   * space; the exporter only reads, so sharing one inode is safe) or `copy` (a reflink where the
   * filesystem has them, else a full copy).
   */
  readonly eventsFrom?: { readonly path: string; readonly how: 'hardlink' | 'copy' };
}

/** Fills `dir` (created) as a state directory: events, efficiency files, receipts, a dashboard state. */
export function fillTree(dir: string, spec: TreeSpec): string {
  const receipts = spec.receipts ?? 0;
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
  const events = join(dir, 'events.jsonl');
  if (spec.eventsFrom?.how === 'hardlink') linkSync(spec.eventsFrom.path, events);
  else if (spec.eventsFrom) copyFileSync(spec.eventsFrom.path, events, constants.COPYFILE_FICLONE);
  else writeEvents(events, spec.events);
  for (let i = 1; i <= spec.efficiency; i++) writeEfficiencyFile(dir, i);
  const fd = openSync(join(dir, 'dashboard-state.json'), 'w');
  writeSync(fd, JSON.stringify({ mode: 'autonomous', iteration: 0, tasks: { pending: [{ id: 'a' }], inProgress: [], completed: [], failed: [] } }));
  closeSync(fd);
  return dir;
}

/** Writes `metrics/efficiency/iteration-<i>.json` in `dir` (the directory must exist), as `fillTree` does. */
export function writeEfficiencyFile(dir: string, i: number): void {
  const fd = openSync(join(dir, `metrics/efficiency/iteration-${i}.json`), 'w');
  writeSync(fd, JSON.stringify({ iteration: i, model: i % 3 ? 'sonnet' : 'opus', input_tokens: 1000 * i, output_tokens: 200 * i, ...(i % 2 ? { cost_usd: 0.01 * i } : {}) }));
  closeSync(fd);
}

/** A tree under `root` named after its sizes. */
export function makeTree(root: string, events: number, efficiency: number, receipts = 0): string {
  return fillTree(join(root, `.loki-${events}-${efficiency}-${receipts}`), { events, efficiency, receipts });
}

/**
 * One naive scrape: every efficiency file and receipt read and parsed, the whole `events.jsonl`
 * read and split into lines. Returns the line count.
 */
export function naiveScrape(dir: string): number {
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
}

/** Whether `BENCH_ONLY` (unset: everything) asks for the part named `part`. */
export function benchWanted(part: string): boolean {
  const only = process.env.BENCH_ONLY;
  return only === undefined || only === '' || only.includes(part);
}
