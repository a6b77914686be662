/**
 * Regressions found by the fuzz suite, as plain tests.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createCollector } from '../../src/collect.js';
import { FsStateStore } from '../../src/stores/fs.js';
import { cleanTrees, materialize } from '../support/loki-tree.js';
import { rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

afterEach(cleanTrees);

describe('a bad metrics/efficiency directory is logged, not only reported (found by special-files.test.ts)', () => {
  it('one line when it goes bad (symlink, not a directory), none while it stays bad, one when it recovers', async () => {
    const dir = await materialize('running', { pid: 'alive' });
    const logs: string[] = [];
    const collector = createCollector({ maxIterations: 1000, heartbeatWindowMs: 30_000, agentsHoldMs: 10_000, version: 'x', log: (l) => logs.push(l) });
    const store = new FsStateStore(dir, { watch: false });
    const collect = async () => collector.collect(await store.read(), Date.now());
    const efficiency = join(dir, 'metrics/efficiency');
    await rm(efficiency, { recursive: true });
    await symlink('/tmp', efficiency);
    let s = await collect();
    expect(s.sources.find((x) => x.source === 'metrics/efficiency')?.ok).toBe(false);
    expect(logs).toEqual(['loki-metrics: metrics/efficiency: is a symbolic link (not followed)']);
    await collect();
    expect(logs).toHaveLength(1);
    await rm(efficiency);
    await writeFile(efficiency, '{}');
    s = await collect();
    expect(logs[1]).toBe('loki-metrics: metrics/efficiency: not a directory');
    await rm(efficiency);
    s = await collect();
    expect(s.sources.find((x) => x.source === 'metrics/efficiency')?.ok).toBe(true);
    expect(logs[2]).toBe('loki-metrics: metrics/efficiency: ok again');
    expect(logs).toHaveLength(3);
    store.close();
  });

  it('events.jsonl going bad and recovering logs both transitions', async () => {
    const dir = await materialize('running', { pid: 'alive' });
    const logs: string[] = [];
    const collector = createCollector({ maxIterations: 1000, heartbeatWindowMs: 30_000, agentsHoldMs: 10_000, version: 'x', log: (l) => logs.push(l) });
    const store = new FsStateStore(dir, { watch: false });
    const collect = async () => collector.collect(await store.read(), Date.now());
    const events = join(dir, 'events.jsonl');
    await rm(events);
    await symlink('/etc/hostname', events);
    await collect();
    expect(logs).toEqual(['loki-metrics: events.jsonl: is a symbolic link (not followed)']);
    await rm(events);
    await writeFile(events, '{}\n');
    await collect();
    expect(logs).toEqual(['loki-metrics: events.jsonl: is a symbolic link (not followed)', 'loki-metrics: events.jsonl: ok again']);
    store.close();
  });
});
