/**
 * The fleet at the inotify limit: when `fs.watch` fails as it does once `fs.inotify.max_user_watches`
 * is used up (ENOSPC), every file-set directory falls back to a full re-stat on each refresh, /health
 * says so (`watch.mode: polling`), and a change is still seen by the next scrape. Without the failure
 * the same fleet holds inotify watches and says `inotify`.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config.js';
import { NodeProjectCatalog } from '../../src/node/projects.js';
import { startFleetServer, type RunningServer } from '../../src/node/server.js';
import type { FsStateStoreOptions } from '../../src/stores/fs.js';
import { cleanTrees, materialize } from '../support/loki-tree.js';

const TOKEN = 'fleet-watch-test-token';

interface Health {
  status: string;
  projects?: number;
  watch?: { mode: string; inotifyWatches: number; pollingDirectories: number };
  sources?: unknown[];
}

let running: { server: RunningServer; catalog: NodeProjectCatalog } | undefined;

afterEach(async () => {
  await running?.server.close();
  running?.catalog.close();
  running = undefined;
  await cleanTrees();
});

/** Two real 9.x projects (efficiency files, receipts and a pid registry: three watched directories each), served as a fleet. */
async function fleet(storeOptions?: FsStateStoreOptions, token?: string) {
  const alpha = await materialize('v9-running', { registry: { wrapper: 'alive', helpers: 'alive' } });
  const beta = await materialize('v9-running', { registry: { wrapper: 'alive', helpers: 'alive' } });
  const log: string[] = [];
  const catalog = new NodeProjectCatalog({
    named: [
      { name: 'alpha', dir: alpha },
      { name: 'beta', dir: beta },
    ],
    maxProjects: 100,
    log: (line) => log.push(line),
    ...(storeOptions ? { storeOptions } : {}),
  });
  // Cache 0 s: every request refreshes, so the next scrape after a change must show it.
  const config = { ...parseConfig({ LOKI_METRICS_CACHE_SECONDS: '0', ...(token ? { LOKI_METRICS_TOKEN: token } : {}) }), port: 0 };
  const server = await startFleetServer(config, catalog, (line) => log.push(line));
  running = { server, catalog };
  const origin = new URL(server.url).origin;
  const get = (path: string, auth = true) => fetch(`${origin}${path}`, { headers: token && auth ? { Authorization: `Bearer ${token}` } : {} });
  const health = async (project: string, auth = true): Promise<Health> => {
    const res = await get(`/health?project=${project}`, auth);
    expect(res.status).toBe(200);
    return (await res.json()) as Health;
  };
  const metrics = async (project: string): Promise<string> => {
    const res = await get(`/metrics?project=${project}`);
    expect(res.status).toBe(200);
    return res.text();
  };
  return { alpha, beta, catalog, health, metrics, log };
}

/** A sample's value by its exact series text (name and labels), or undefined when absent. */
function sample(body: string, series: string): number | undefined {
  for (const line of body.split('\n')) {
    if (line.startsWith(`${series} `)) return Number(line.slice(series.length + 1).split(' ')[0]);
  }
  return undefined;
}

/** The sum of a family's samples (every label set), or undefined when it has none. */
function familySum(body: string, name: string): number | undefined {
  let sum: number | undefined;
  for (const line of body.split('\n')) {
    const match = new RegExp(`^${name}(\\{[^}]*\\})? (\\S+)`).exec(line);
    if (match) sum = (sum ?? 0) + Number(match[2]);
  }
  return sum;
}

/** An efficiency file with a cost of its own, as Loki Mode writes one per iteration. */
async function writeIteration(dir: string, iteration: number, costUsd: number): Promise<void> {
  const record = {
    iteration,
    model: 'claude-opus-4-1',
    phase: 'DEVELOPMENT',
    duration_ms: 60_000,
    provider: 'claude',
    status: 'completed',
    input_tokens: 1_000,
    output_tokens: 100,
    cost_usd: costUsd,
    timestamp: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
  };
  await writeFile(join(dir, 'metrics/efficiency', `iteration-${iteration}.json`), JSON.stringify(record, null, 2));
}

const enospc = () => {
  const error = new Error('ENOSPC: System limit for number of file watchers reached') as NodeJS.ErrnoException;
  error.code = 'ENOSPC';
  throw error;
};

describe('fleet at the inotify watch limit', () => {
  it('polls every file-set directory, says so in /health, and still sees a new efficiency file', async () => {
    let attempts = 0;
    const { alpha, catalog, health, metrics } = await fleet({
      watchFn: (() => {
        attempts++;
        return enospc();
      }) as unknown as NonNullable<FsStateStoreOptions['watchFn']>,
    });

    const first = await health('alpha');
    expect(first.status).toBe('ok');
    expect(first.projects).toBe(2);
    // alpha's metrics/efficiency, proofs and pids: each tried to watch and fell back to polling.
    expect(first.watch).toEqual({ mode: 'polling', inotifyWatches: 0, pollingDirectories: 3 });
    expect(attempts).toBeGreaterThanOrEqual(3);
    // beta opened too: the fleet-wide count grows with it.
    expect((await health('beta')).watch).toEqual({ mode: 'polling', inotifyWatches: 0, pollingDirectories: 6 });
    expect(catalog.watchStatus()).toEqual({ inotify: 0, polling: 6 });

    const before = await metrics('alpha');
    const costBefore = sample(before, 'loki_cost_usd');
    const modelBefore = familySum(before, 'loki_model_cost_usd_total');
    expect(costBefore).toBeDefined();
    expect(sample(before, 'loki_model_cost_usd_total{family="opus",model="claude-opus-4-1"}')).toBeUndefined();

    // A new iteration's file: no watcher reports it, the per-refresh re-stat must find it.
    await writeIteration(alpha, 4, 1.25);
    const after = await metrics('alpha');
    expect(sample(after, 'loki_cost_usd')).toBeCloseTo(costBefore! + 1.25, 6);
    expect(sample(after, 'loki_model_cost_usd_total{family="opus",model="claude-opus-4-1"}')).toBeCloseTo(1.25, 6);
    expect(familySum(after, 'loki_model_cost_usd_total')).toBeCloseTo((modelBefore ?? 0) + 1.25, 6);

    // An existing file rewritten in place (the directory's mtime does not change): seen as well.
    await writeIteration(alpha, 4, 2.5);
    expect(sample(await metrics('alpha'), 'loki_cost_usd')).toBeCloseTo(costBefore! + 2.5, 6);
    // beta is untouched by alpha's change.
    expect(sample(await metrics('beta'), 'loki_cost_usd')).toBeCloseTo(costBefore!, 6);
    // Still polling: nothing pretended to have recovered.
    expect((await health('alpha')).watch?.mode).toBe('polling');
  });

  it('with a token, the authenticated /health carries the watch facts and an anonymous one is refused', async () => {
    const { health } = await fleet({ watchFn: enospc as unknown as NonNullable<FsStateStoreOptions['watchFn']> }, TOKEN);
    const authed = await health('alpha');
    expect(authed.watch).toEqual({ mode: 'polling', inotifyWatches: 0, pollingDirectories: 3 });
    const res = await fetch(`${new URL(running!.server.url).origin}/health?project=alpha`);
    expect(res.status).toBe(401);
  });

  it('without the failure the same fleet holds inotify watches and says inotify', async () => {
    const { alpha, catalog, health, metrics } = await fleet();
    expect((await health('alpha')).watch).toEqual({ mode: 'inotify', inotifyWatches: 3, pollingDirectories: 0 });
    expect((await health('beta')).watch).toEqual({ mode: 'inotify', inotifyWatches: 6, pollingDirectories: 0 });
    expect(catalog.watchStatus()).toEqual({ inotify: 6, polling: 0 });

    const costBefore = sample(await metrics('alpha'), 'loki_cost_usd');
    expect(costBefore).toBeDefined();
    await writeIteration(alpha, 4, 1.25);
    // The watcher's event may take a moment to arrive; the directory's changed mtime relists it anyway.
    await expect.poll(async () => sample(await metrics('alpha'), 'loki_cost_usd'), { timeout: 2_000 }).toBeCloseTo(costBefore! + 1.25, 6);

    // The fleet's watches go when the catalog closes.
    catalog.close();
    expect(catalog.watchStatus()).toEqual({ inotify: 0, polling: 0 });
  });
});
