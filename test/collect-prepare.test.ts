/**
 * Collector.prepare (src/collect.ts): the file sets' new entries parsed ahead of `collect`, in
 * slices, on a real `.loki` tree read through the real fs store. Measured by counting slicer steps.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createCollector, type CollectorOptions } from '../src/collect.js';
import { FsStateStore } from '../src/stores/fs.js';
import { cleanTrees, materialize } from './support/loki-tree.js';
import { countingSlicer } from './support/slicers.js';

const NOW = Date.parse('2026-02-14T11:47:55Z');

const stores: FsStateStore[] = [];
afterEach(async () => {
  await Promise.all(stores.splice(0).map((s) => s.close()));
  await cleanTrees();
});

const OPTIONS: CollectorOptions = { maxIterations: 1000, heartbeatWindowMs: 30_000, agentsHoldMs: 10_000, version: '9.9.9', log: () => undefined };

describe('Collector.prepare', () => {
  it('consults the slicer once per new file-set entry (efficiency, proofs, pids), and collect then reports what it reports without prepare', async () => {
    const store = new FsStateStore(await materialize('v9-running'), { watch: false });
    stores.push(store);
    const reading = await store.read();
    // v9-running/: 3 efficiency files, 5 receipts, 3 pids/ entries, no sessions/.
    expect([reading.efficiency.files.length, reading.proofs.files.length, reading.pids.files.length, reading.sessions.files.length]).toEqual([3, 5, 3, 0]);

    const prepared = createCollector(OPTIONS);
    const slicer = countingSlicer();
    await prepared.prepare(reading, slicer);
    expect(slicer.steps).toBe(11);
    // A reading it has prepared is not parsed again.
    await prepared.prepare(reading, slicer);
    expect(slicer.steps).toBe(11);

    expect(prepared.collect(reading, NOW)).toEqual(createCollector(OPTIONS).collect(reading, NOW));
  });
});
