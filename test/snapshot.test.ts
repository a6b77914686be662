/**
 * src/snapshot.ts is types only: the shape one refresh hands from the collector to the renderer
 * and /health. What its comments promise is checked here on real snapshots, made by the real
 * collector from real `.loki` trees (good, broken, missing), against the catalogue they name.
 */
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FAMILIES, SNAPSHOT_FAMILIES, isProcessFamily, type MetricFamily } from '../src/catalogue.js';
import { createCollector } from '../src/collect.js';
import type { Snapshot } from '../src/snapshot.js';
import { FsStateStore } from '../src/stores/fs.js';
import { cleanTrees, materialize, tempDir } from './support/loki-tree.js';

const NOW = Date.parse('2026-02-14T11:47:55Z');
const LONG_AGO = NOW - 6 * 3600_000;

const stores: FsStateStore[] = [];
afterEach(async () => {
  await Promise.all(stores.splice(0).map((s) => s.close()));
  await cleanTrees();
});

async function snapshotOf(dir: string, nowMs = NOW): Promise<Snapshot> {
  const store = new FsStateStore(dir, { watch: false });
  stores.push(store);
  const collector = createCollector({ maxIterations: 1000, heartbeatWindowMs: 30_000, agentsHoldMs: 10_000, version: '9.9.9', log: () => undefined });
  return collector.collect(await store.read(), nowMs);
}

const byName = new Map<string, MetricFamily>(FAMILIES.map((f) => [f.name, f]));

/** Every promise of the Snapshot and Sample types, on one snapshot. */
function expectContract(snapshot: Snapshot, nowMs: number) {
  expect(snapshot.takenAtMs).toBe(nowMs);
  // samples: catalogue families only, never a process family (the app samples those per scrape)
  for (const [name, samples] of snapshot.samples) {
    const family = byName.get(name);
    expect(family, name).toBeDefined();
    expect(isProcessFamily(family!), name).toBe(false);
    for (const sample of samples) {
      expect(typeof sample.value, name).toBe('number');
      // a histogram's samples say which series they are; no other family's do
      if (family!.type === 'histogram') expect(['_bucket', '_sum', '_count'], name).toContain(sample.suffix);
      else expect(sample.suffix, name).toBeUndefined();
      // label names are the family's (any order), plus `le` on a histogram's _bucket samples
      const allowed = [...family!.labels, ...(sample.suffix === '_bucket' ? ['le'] : [])];
      const names = Object.keys(sample.labels ?? {});
      for (const label of names) expect(allowed, `${name} label ${label}`).toContain(label);
      if (sample.suffix === '_bucket') expect(names, name).toContain('le');
      for (const value of Object.values(sample.labels ?? {})) expect(typeof value).toBe('string');
    }
  }
  // sources: relative paths; a time only when present; a reason whenever not ok
  for (const source of snapshot.sources) {
    expect(source.source).not.toMatch(/^\//);
    expect(source.source).not.toBe('');
    if (!source.present) expect(source.mtimeMs, source.source).toBeUndefined();
    if (!source.ok) expect(source.problem, source.source).toEqual(expect.stringMatching(/\S/));
  }
  // a problem only says why the directory could not be read
  if (snapshot.up) expect(snapshot.problem).toBeUndefined();
  else expect(snapshot.problem).toEqual(expect.stringMatching(/\S/));
}

describe('a snapshot, as the collector makes it', () => {
  it('keeps every promise for a live 9.x session, histogram included', async () => {
    const s = await snapshotOf(await materialize('v9-running', { mtimeMs: LONG_AGO }));
    expectContract(s, NOW);
    expect(s.up).toBe(true);
    // every snapshot family is there, the histogram with its three series
    for (const family of SNAPSHOT_FAMILIES) expect(s.samples.has(family.name), family.name).toBe(true);
    const suffixes = new Set(s.samples.get('loki_iteration_duration_seconds')?.map((x) => x.suffix));
    expect([...suffixes].sort()).toEqual(['_bucket', '_count', '_sum']);
    // present sources carry their time
    const present = s.sources.filter((src) => src.present);
    expect(present.length).toBeGreaterThan(0);
    for (const source of present) expect(source.mtimeMs, source.source).toEqual(expect.any(Number));
  });

  it('keeps every promise with broken files: each bad source says why', async () => {
    const s = await snapshotOf(await materialize('malformed', { mtimeMs: LONG_AGO }));
    expectContract(s, NOW);
    expect(s.sources.filter((src) => !src.ok).length).toBeGreaterThan(0);
  });

  it('keeps every promise for a missing directory: not up, with why', async () => {
    const s = await snapshotOf(join(await tempDir(), 'nope'), NOW + 5);
    expectContract(s, NOW + 5);
    expect(s.up).toBe(false);
    expect(s.problem).toBe('missing');
  });
});
