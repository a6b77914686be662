/**
 * Property-based fuzzing of every source file of a real `.loki` tree (the running/ and paused/
 * fixtures are the valid seeds): random bytes, truncations, a wrong type at a random JSON path,
 * huge numbers, NaN/Infinity literals, deep nesting (up to 10,000 levels), invalid UTF-8, BOMs,
 * CRLF, NULs; for events.jsonl the same at line level.
 *
 * Every case goes through the real fs store and the real Hono app (`/metrics` in both formats and
 * `/health`): never a 5xx or an escaping exception, every output well-formed line by line, the
 * fuzzed source reported exactly when its validator rejects it (`loki_source_ok 0`, a log line,
 * `/health` degraded), every other source untouched. A sample of distinct outputs goes through
 * prometheus_client's two parsers in one python process at the end.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { createApp } from '../../src/app.js';
import { NEW_RUN_MARGIN_MS } from '../../src/rules.js';
import { SNAPSHOT_FAMILIES } from '../../src/catalogue.js';
import { createCollector } from '../../src/collect.js';
import { parseConfig } from '../../src/config.js';
import { EventsScanner } from '../../src/events.js';
import { render } from '../../src/render.js';
import type { Snapshot } from '../../src/snapshot.js';
import { FsStateStore } from '../../src/stores/fs.js';
import type { DocumentName, StateReading } from '../../src/stores/store.js';
import { VERSION } from '../../src/version.js';
import { cleanTrees, EARLY_RUNNER_START_MS } from '../support/loki-tree.js';
import {
  ALLOWED_LABEL_VALUES,
  labelAllowed,
  CaseCounter,
  checkExposition,
  measuresExporter,
  mutationOf,
  NOW,
  OLD_MS,
  OutputSample,
  put,
  pythonParseAll,
  referenceLineCount,
  referenceMarkers,
  runs,
  scrape,
  seedTree,
  sourceOk,
  SOURCES,
  value,
  type Mutation,
  type Scrape,
  type Target,
} from './support.js';

const CONFIG = parseConfig({ LOKI_METRICS_CACHE_SECONDS: '0' });
const counter = new CaseCounter();
const sample = new OutputSample(400);

let trees: Record<'running' | 'paused', { dir: string; targets: Target[] }>;
let targets: Target[];
const mutations = new Map<Target, fc.Arbitrary<Mutation>>();
const cases = () =>
  fc.constantFrom(...targets).chain((target) => {
    let arb = mutations.get(target);
    if (!arb) mutations.set(target, (arb = mutationOf(target)));
    return arb.map((mutation) => ({ target, mutation }));
  });

beforeAll(async () => {
  trees = { running: await seedTree('running'), paused: await seedTree('paused') };
  targets = [...trees.running.targets, ...trees.paused.targets];
});

afterAll(async () => {
  await cleanTrees();
  console.log(counter.report('sources.test.ts'));
});

function freshApp(dir: string) {
  const logs: string[] = [];
  const store = new FsStateStore(dir, { watch: false });
  const app = createApp({ store, config: CONFIG, log: (l) => logs.push(l), clock: () => NOW });
  return { app, store, logs };
}

/** What the fuzzed source must look like in a scrape, given whether its validator accepts it. */
/** The tree's live runner: the pid in its `loki.pid` and when it started (the file's mtime, as materialised). */
function liveRunner(dir: string): { pid: number; startMs: number } {
  const path = join(dir, 'loki.pid');
  return { pid: Number(readFileSync(path, 'utf8').trim()), startMs: statSync(path).mtimeMs };
}

function expectReported(s: Scrape, logs: readonly string[], target: Target, mutation: Mutation, warm: boolean): boolean {
  const ok = target.parse ? target.parse(mutation.bytes).ok : true;
  if (mutation.mustBeBad) expect(ok, `the validator accepted a known-bad ${mutation.kind}`).toBe(false);
  for (const source of SOURCES) {
    expect(sourceOk(s, source), `loki_source_ok{source="${source}"}`).toBe(source === target.source && !ok ? 0 : 1);
  }
  const health = s.health.sources.find((h) => h.source === target.source);
  expect(health?.ok).toBe(ok);
  expect(s.health.status).toBe(ok ? 'ok' : 'degraded');
  if (!ok) {
    expect(health?.problem).toBeTypeOf('string');
    if (warm) expect(health?.problem).toMatch(/serving last good value$/);
    expect(logs.filter((l) => l.startsWith(`loki-metrics: ${target.path}: `)), 'one log line naming the file').toHaveLength(1);
  } else {
    expect(logs.filter((l) => !l.endsWith(': ok again'))).toEqual([]);
  }
  if (target.kind === 'events') {
    expect(value(s, 'loki_events_total')).toBe(referenceLineCount(mutation.bytes));
    const ref = referenceMarkers(mutation.bytes);
    if (ref.sessionStartMs !== undefined) {
      // A live runner that started after the latest session_start, and is not the pid it names, is
      // a new run whose own session_start is not written yet (rules.ts): iteration 0. A truncation
      // can leave an earlier session's start as the latest.
      const runner = liveRunner(trees[target.seed].dir);
      const newRun = runner.startMs - ref.sessionStartMs > NEW_RUN_MARGIN_MS && ref.sessionPid !== runner.pid;
      expect(value(s, 'loki_iteration_current')).toBe(newRun ? 0 : (ref.iteration ?? 0));
    }
  }
  return ok;
}

describe('the seed trees', () => {
  it('are valid: every source ok, nothing logged, in both formats', async () => {
    for (const tree of Object.values(trees)) {
      const { app, store, logs } = freshApp(tree.dir);
      const s = await scrape(app);
      store.close();
      for (const source of SOURCES) expect(sourceOk(s, source), source).toBe(1);
      expect(s.health.status).toBe('ok');
      expect(logs).toEqual([]);
      expect(value(s, 'loki_session_status')).toBeGreaterThan(0);
    }
    expect(targets.length).toBeGreaterThanOrEqual(20);
  });
});

describe('fuzzed source files through the fs store and the app', () => {
  it('a fresh app per case: 200s, well-formed outputs, the bad source reported and only it', { timeout: 300_000 }, async () => {
    let bad = 0;
    await fc.assert(
      fc.asyncProperty(cases(), async ({ target, mutation }) => {
        counter.hit('fresh-app');
        const { dir } = trees[target.seed];
        await put(dir, target.path, mutation.bytes);
        try {
          const { app, store, logs } = freshApp(dir);
          const s = await scrape(app);
          store.close();
          sample.addScrape(s);
          if (!expectReported(s, logs, target, mutation, false)) bad++;
        } finally {
          await put(dir, target.path, target.bytes);
        }
      }),
      runs(2000),
    );
    // The generators must actually produce bad input, not only harmless variations.
    expect(bad).toBeGreaterThan(1000);
  });

  it('a warm app: a file going bad keeps every last good value while it is reported', { timeout: 300_000 }, async () => {
    const apps = {
      running: freshApp(trees.running.dir),
      paused: freshApp(trees.paused.dir),
    };
    await fc.assert(
      fc.asyncProperty(cases(), async ({ target, mutation }) => {
        counter.hit('warm-app');
        const { dir } = trees[target.seed];
        const { app, logs } = apps[target.seed];
        await put(dir, target.path, target.bytes, true);
        const before = await scrape(app);
        for (const source of SOURCES) expect(sourceOk(before, source), source).toBe(1);
        logs.length = 0;
        await put(dir, target.path, mutation.bytes, true);
        try {
          const s = await scrape(app);
          sample.addScrape(s);
          if (!expectReported(s, logs, target, mutation, target.kind !== 'events')) {
            for (const [key, v] of before.prom.samples) {
              if (key.startsWith('loki_source_mtime_seconds') || measuresExporter(key)) continue;
              expect(s.prom.samples.get(key), key).toBe(key === `loki_source_ok{source="${target.source}"}` ? 0 : v);
            }
          }
        } finally {
          await put(dir, target.path, target.bytes, true);
        }
      }),
      runs(600),
    );
    for (const { store } of Object.values(apps)) store.close();
  });
});

/** The seed reading with one target's bytes replaced, without touching the disk. */
function replaced(seed: StateReading, target: Target, bytes: Uint8Array, version: string): StateReading {
  // loki.pid's mtime is when its runner started: keep it, so only the content is fuzzed here.
  const read = { present: true, bytes, mtimeMs: target.path === 'loki.pid' ? (seed.documents['loki.pid'].mtimeMs ?? EARLY_RUNNER_START_MS) : OLD_MS, version };
  if (target.kind === 'events') {
    const scanner = new EventsScanner();
    scanner.feed(bytes);
    return { ...seed, events: { present: true, mtimeMs: OLD_MS, ...scanner.summary() } };
  }
  if (target.source === 'metrics/efficiency') {
    const name = target.path.slice('metrics/efficiency/'.length);
    return { ...seed, efficiency: { ...seed.efficiency, files: seed.efficiency.files.map((f) => (f.name === name ? { ...read, name } : f)) } };
  }
  return { ...seed, documents: { ...seed.documents, [target.path as DocumentName]: read } };
}

/** Every sample of `a` in `b`, except `loki_source_ok{source=except}`; a message for the first difference. */
function sampleDifference(a: Snapshot, b: Snapshot, except: string): string | undefined {
  for (const [family, samples] of a.samples) {
    const other = b.samples.get(family);
    for (let i = 0; i < samples.length; i++) {
      const sample = samples[i]!;
      if (family === 'loki_source_ok' && sample.labels?.source === except) continue;
      const o = other?.[i];
      if (!o || !Object.is(o.value, sample.value) || JSON.stringify(o.labels) !== JSON.stringify(sample.labels)) {
        return `${family} ${JSON.stringify(sample)} became ${JSON.stringify(o)}`;
      }
    }
  }
  return undefined;
}

describe('truncation of every valid source file at every offset (torn writes)', () => {
  it('each prefix is either valid or reported, and a torn file changes nothing but its source_ok', { timeout: 120_000 }, async () => {
    let offsets = 0;
    for (const tree of Object.values(trees)) {
      const store = new FsStateStore(tree.dir, { watch: false });
      const seed = await store.read();
      store.close();
      for (const target of tree.targets) {
        const logs: string[] = [];
        const collector = createCollector({ maxIterations: 1000, heartbeatWindowMs: 30_000, agentsHoldMs: 10_000, version: VERSION, log: (l) => logs.push(l) });
        const base = collector.collect(seed, NOW);
        let last = target.bytes.length - 1;
        while (last >= 0 && [32, 9, 10, 13].includes(target.bytes[last]!)) last--;
        for (let k = 0; k <= target.bytes.length; k++) {
          offsets++;
          counter.hit('truncate-every-offset');
          collector.collect(seed, NOW);
          logs.length = 0;
          const bytes = target.bytes.slice(0, k);
          const snapshot = collector.collect(replaced(seed, target, bytes, `trunc-${k}`), NOW);
          const ok = target.parse ? target.parse(bytes).ok : true;
          if (target.kind === 'json' && k <= last && ok) expect.fail(`${target.path} cut at ${k} accepted`);
          const where = `${target.seed}/${target.path} cut at ${k}`;
          for (const s of snapshot.sources) {
            if (s.ok !== (s.source !== target.source || ok)) expect.fail(`${where}: source ${s.source} ok=${s.ok}`);
          }
          if (!ok) {
            if (logs.length !== 1) expect.fail(`${where}: logged ${JSON.stringify(logs)}`);
            const difference = sampleDifference(base, snapshot, target.source);
            if (difference !== undefined) expect.fail(`${where}: ${difference}`);
          }
          if (target.kind === 'events') {
            expect(snapshot.samples.get('loki_events_total')?.[0]?.value, where).toBe(referenceLineCount(bytes));
          }
          // Render and check the grammar on a stride (every offset is cheap enough only in memory).
          if (k % 8 === 0 || k === target.bytes.length) {
            const prom = render(snapshot, 'prometheus');
            const om = render(snapshot, 'openmetrics');
            checkExposition(prom, 'prometheus');
            checkExposition(om, 'openmetrics');
            if (k % 256 === 0) {
              sample.add('prometheus', prom);
              sample.add('openmetrics', om);
            }
          }
        }
      }
    }
    expect(offsets).toBeGreaterThan(20_000);
  });
});

describe('prometheus_client', () => {
  it('parses a sample of a few hundred distinct outputs in both formats (one python process)', { timeout: 60_000 }, () => {
    expect(sample.items.length).toBeGreaterThan(100);
    const verdicts = pythonParseAll(sample.items);
    expect(verdicts).toHaveLength(sample.items.length);
    verdicts.forEach((v, i) => {
      const item = sample.items[i]!;
      expect(v.error, `${item.format} output #${i}:\n${item.text}`).toBeUndefined();
      expect(v.families).toBe(SNAPSHOT_FAMILIES.length);
      for (const label of v.labels ?? []) {
        const eq = label.indexOf('=');
        expect(labelAllowed(ALLOWED_LABEL_VALUES, label.slice(0, eq), label.slice(eq + 1)), label).toBe(true);
      }
    });
    counter.hit(`python-parsed(${verdicts.length})`);
    console.log(`prometheus_client parsed ${verdicts.length} distinct outputs (${sample.items.filter((i) => i.format === 'openmetrics').length} OpenMetrics)`);
  });
});
