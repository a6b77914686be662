/**
 * The collector's rules, on real `.loki` trees read through the real fs store. Time is passed in,
 * and file ages and pid liveness are set on the copied tree, so every rule is exercised for real.
 */
import { appendFile, mkdir, readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FAMILIES, PROCESS_FAMILIES, SNAPSHOT_FAMILIES } from '../src/catalogue.js';
import { createCollector, type CollectorOptions } from '../src/collect.js';
import { FsStateStore, type FsStateStoreOptions } from '../src/stores/fs.js';
import { cleanTrees, deadPid, materialize, setMtimes, tempDir } from './support/loki-tree.js';
import { DEAD_RUNNER, readingOf, type ReadingSpec } from './support/readings.js';
import type { StateReading } from '../src/stores/store.js';
import { sourceOf, tasksOf, valueOf } from './support/samples.js';

const NOW = Date.parse('2026-02-14T11:47:55Z');
const FRESH = NOW - 1_000;
const LONG_AGO = NOW - 6 * 3600_000;

const stores: FsStateStore[] = [];
afterEach(async () => {
  await Promise.all(stores.splice(0).map((s) => s.close()));
  await cleanTrees();
});

function setup(dir: string, options: Partial<CollectorOptions> = {}, storeOptions: FsStateStoreOptions = {}) {
  const logs: string[] = [];
  const store = new FsStateStore(dir, { watch: false, ...storeOptions });
  stores.push(store);
  const collector = createCollector({
    maxIterations: 1000,
    heartbeatWindowMs: 30_000,
    agentsHoldMs: 10_000,
    version: '9.9.9',
    log: (line) => logs.push(line),
    ...options,
  });
  return { logs, collect: async (nowMs = NOW) => collector.collect(await store.read(), nowMs) };
}

describe('running session (fixture running/)', () => {
  it('reports the truth for a live session', async () => {
    const { collect, logs } = setup(await materialize('running', { pid: 'alive', mtimeMs: FRESH }));
    const s = await collect();
    expect(valueOf(s, 'loki_session_status')).toBe(1);
    // dashboard-state's iteration is 6 here, but the rule is the latest iteration_start of the session
    expect(valueOf(s, 'loki_iteration_current')).toBe(6);
    expect(valueOf(s, 'loki_iteration_max')).toBe(1000);
    expect(tasksOf(s)).toEqual({ pending: 3, in_progress: 2, completed: 5, failed: 1 });
    expect(valueOf(s, 'loki_agents_active')).toBe(3);
    expect(valueOf(s, 'loki_agents_total')).toBe(6);
    expect(valueOf(s, 'loki_cost_usd')).toBe(3.5313);
    expect(valueOf(s, 'loki_events_total')).toBe(50);
    // since the latest session_start (09:12:04Z), not the first session's startedAt
    expect(valueOf(s, 'loki_uptime_seconds')).toBe((NOW - Date.parse('2026-02-14T09:12:04Z')) / 1000);
    expect(valueOf(s, 'loki_up')).toBe(1);
    expect(valueOf(s, 'loki_budget_limit_usd')).toBe(25);
    expect(valueOf(s, 'loki_budget_exceeded')).toBe(0);
    expect(valueOf(s, 'loki_exporter_build_info', { version: '9.9.9' })).toBe(1);
    expect(s.sources.filter((src) => !src.ok)).toEqual([]);
    expect(valueOf(s, 'loki_source_mtime_seconds', { source: 'dashboard-state.json' })).toBe(FRESH / 1000);
    expect(logs).toEqual([]);
  });

  it('emits every catalogue family on every scrape (the process\'s own are the runtime\'s, not the state\'s)', async () => {
    const { collect } = setup(await materialize('running', { pid: 'alive', mtimeMs: FRESH }));
    const s = await collect();
    for (const family of SNAPSHOT_FAMILIES) expect(s.samples.has(family.name), family.name).toBe(true);
    for (const family of PROCESS_FAMILIES) expect(s.samples.has(family.name), family.name).toBe(false);
    // the app measures the refresh around this call and fills it in
    expect(s.samples.get('loki_exporter_scrape_duration_seconds')).toEqual([]);
  });

  it('labels the build info with the version, demo, revision (default unknown) and the Node version when given', async () => {
    const dir = await materialize('running', { pid: 'alive', mtimeMs: FRESH });
    const plain = await setup(dir).collect();
    // strictly: no `nodeversion` key at all, not one holding undefined
    expect(plain.samples.get('loki_exporter_build_info')).toStrictEqual([{ labels: { version: '9.9.9', demo: 'false', revision: 'unknown' }, value: 1 }]);
    const built = await setup(dir, { revision: 'f'.repeat(40), nodeversion: 'v20.20.2', demo: true }).collect();
    expect(built.samples.get('loki_exporter_build_info')).toEqual([
      { labels: { version: '9.9.9', demo: 'true', revision: 'f'.repeat(40), nodeversion: 'v20.20.2' }, value: 1 },
    ]);
    // empty means not known: revision unknown, no nodeversion label
    const empty = await setup(dir, { revision: '', nodeversion: '' }).collect();
    expect(empty.samples.get('loki_exporter_build_info')?.[0]?.labels).toStrictEqual({ version: '9.9.9', demo: 'false', revision: 'unknown' });
  });

  it('honours LOKI_MAX_ITERATIONS', async () => {
    const { collect } = setup(await materialize('running', { pid: 'alive', mtimeMs: FRESH }), { maxIterations: 42 });
    expect(valueOf(await collect(), 'loki_iteration_max')).toBe(42);
  });
});

describe('liveness and loki_session_status', () => {
  it('reads a stale "autonomous" mode with a dead pid and old files as stopped (fixture stale/)', async () => {
    const { collect } = setup(await materialize('stale', { pid: 'keep', mtimeMs: LONG_AGO }));
    const s = await collect();
    expect(valueOf(s, 'loki_session_status')).toBe(0);
    expect(valueOf(s, 'loki_uptime_seconds')).toBe(0);
    expect(valueOf(s, 'loki_agents_active')).toBe(0);
    expect(valueOf(s, 'loki_agents_total')).toBe(6);
  });

  it('treats an exited pid as dead and a live one as alive', async () => {
    const dead = setup(await materialize('running', { pid: 'dead', mtimeMs: LONG_AGO }));
    expect(valueOf(await dead.collect(), 'loki_session_status')).toBe(0);
    const alive = setup(await materialize('running', { pid: 'alive', mtimeMs: LONG_AGO }));
    expect(valueOf(await alive.collect(), 'loki_session_status')).toBe(1);
  });

  // A container reading a mounted `.loki`: the runner's pids mean nothing here, the heartbeat decides.
  const container: FsStateStoreOptions = { hostPidNamespace: false };

  it('on the host, reads a dead runner as stopped however fresh dashboard-state.json is', async () => {
    const { collect } = setup(await materialize('running', { pid: 'dead', mtimeMs: NOW - 1_000 }), {}, { hostPidNamespace: true });
    const s = await collect();
    expect(valueOf(s, 'loki_session_status')).toBe(0);
    expect(valueOf(s, 'loki_uptime_seconds')).toBe(0);
    expect(valueOf(s, 'loki_agents_active')).toBe(0);
  });

  it('where the pids cannot be seen, counts a recently rewritten dashboard-state.json as alive', async () => {
    const { collect } = setup(await materialize('running', { pid: 'dead', mtimeMs: NOW - 20_000 }), {}, container);
    expect(valueOf(await collect(), 'loki_session_status')).toBe(1);
  });

  it('follows LOKI_LIVENESS: heartbeat ignores the pids, pid ignores the heartbeat', async () => {
    const dir = await materialize('running', { pid: 'dead', mtimeMs: NOW - 1_000 });
    expect(valueOf(await setup(dir, { liveness: 'heartbeat' }, { hostPidNamespace: true }).collect(), 'loki_session_status')).toBe(1);
    expect(valueOf(await setup(dir, { liveness: 'pid' }, container).collect(), 'loki_session_status')).toBe(0);
    expect(valueOf(await setup(dir, { liveness: 'auto' }, container).collect(), 'loki_session_status')).toBe(1);
    expect(valueOf(await setup(dir, { liveness: 'auto' }, { hostPidNamespace: true }).collect(), 'loki_session_status')).toBe(0);
  });

  it('makes the heartbeat window configurable', async () => {
    const dir = await materialize('running', { pid: 'dead', mtimeMs: NOW - 60_000 });
    expect(valueOf(await setup(dir, { heartbeatWindowMs: 30_000 }, container).collect(), 'loki_session_status')).toBe(0);
    expect(valueOf(await setup(dir, { heartbeatWindowMs: 120_000 }, container).collect(), 'loki_session_status')).toBe(1);
  });

  it('takes no heartbeat from an mtime far in the future (the clock jumped back), but tolerates skew', async () => {
    const future = setup(await materialize('running', { pid: 'dead', mtimeMs: NOW + 3 * 3600_000 }), {}, container);
    expect(valueOf(await future.collect(), 'loki_session_status')).toBe(0);
    const skewed = setup(await materialize('running', { pid: 'dead', mtimeMs: NOW + 5_000 }), {}, container);
    expect(valueOf(await skewed.collect(), 'loki_session_status')).toBe(1);
  });

  it.each(['0', '-5', '4294967296', 'abc', '', '1.5'])('does not take loki.pid %j as alive', async (content) => {
    const dir = await materialize('running', { mtimeMs: LONG_AGO });
    await writeFile(join(dir, 'loki.pid'), content);
    await setMtimes(dir, LONG_AGO);
    const s = await setup(dir).collect();
    expect(valueOf(s, 'loki_session_status')).toBe(0);
    expect(sourceOf(s, 'loki.pid')?.ok).toBe(false);
    expect(valueOf(s, 'loki_source_ok', { source: 'loki.pid' })).toBe(0);
  });

  it('reports a PAUSE file as paused (2) and a STOP file as stopped (0)', async () => {
    const paused = setup(await materialize('paused', { pid: 'alive', mtimeMs: FRESH }));
    expect(valueOf(await paused.collect(), 'loki_session_status')).toBe(2);

    const dir = await materialize('running', { pid: 'alive', mtimeMs: FRESH });
    await writeFile(join(dir, 'STOP'), '');
    expect(valueOf(await setup(dir).collect(), 'loki_session_status')).toBe(0);
  });

  it('reports a paused session as stopped once its process is gone', async () => {
    const { collect } = setup(await materialize('paused', { pid: 'dead', mtimeMs: LONG_AGO }));
    expect(valueOf(await collect(), 'loki_session_status')).toBe(0);
  });
});

describe('budget (fixture paused/)', () => {
  it('reads the limit from budget.json and the guard signal of the current session', async () => {
    const { collect } = setup(await materialize('paused', { pid: 'alive', mtimeMs: FRESH }));
    const s = await collect();
    expect(valueOf(s, 'loki_budget_limit_usd')).toBe(5);
    expect(valueOf(s, 'loki_budget_exceeded')).toBe(1);
    expect(valueOf(s, 'loki_cost_usd')).toBe(5.0421);
    expect(valueOf(s, 'loki_iteration_current')).toBe(8);
  });

  it('falls back to LOKI_BUDGET_LIMIT and trips when the cost reaches it', async () => {
    const dir = await materialize('running', { pid: 'alive', mtimeMs: FRESH });
    await rm(join(dir, 'metrics/budget.json'));
    const under = await setup(dir, { budgetLimitUsd: 10 }).collect();
    expect([valueOf(under, 'loki_budget_limit_usd'), valueOf(under, 'loki_budget_exceeded')]).toEqual([10, 0]);
    const over = await setup(dir, { budgetLimitUsd: 3.5 }).collect();
    expect([valueOf(over, 'loki_budget_limit_usd'), valueOf(over, 'loki_budget_exceeded')]).toEqual([3.5, 1]);
    const none = await setup(dir).collect();
    expect([valueOf(none, 'loki_budget_limit_usd'), valueOf(none, 'loki_budget_exceeded')]).toEqual([0, 0]);
  });

  it('ignores a BUDGET_EXCEEDED signal left by an earlier session', async () => {
    const dir = await materialize('running', { pid: 'alive', mtimeMs: FRESH });
    await mkdir(join(dir, 'signals'));
    await writeFile(join(dir, 'signals/BUDGET_EXCEEDED'), '{"type":"BUDGET_EXCEEDED","timestamp":"2026-02-13T20:00:00Z"}');
    expect(valueOf(await setup(dir).collect(), 'loki_budget_exceeded')).toBe(0);
    await writeFile(join(dir, 'signals/BUDGET_EXCEEDED'), '{"type":"BUDGET_EXCEEDED","timestamp":"2026-02-14T10:00:00Z"}');
    expect(valueOf(await setup(dir).collect(), 'loki_budget_exceeded')).toBe(1);
  });
});

describe('bad input never zeroes good input', () => {
  it('reports each broken file and keeps the rest (fixture malformed/)', async () => {
    const { collect, logs } = setup(await materialize('malformed', { mtimeMs: LONG_AGO }));
    const s = await collect();
    expect(valueOf(s, 'loki_cost_usd')).toBe(0.5625); // 0.3125 + "0.25"; the array and empty files are rejected
    expect(valueOf(s, 'loki_events_total')).toBe(6); // complete non-blank lines; the partial last one waits
    expect(valueOf(s, 'loki_session_status')).toBe(0);
    const bad = s.sources.filter((src) => !src.ok).map((src) => src.source).sort();
    expect(bad).toEqual(['dashboard-state.json', 'loki.pid', 'metrics/efficiency', 'state/agents.json']);
    for (const source of bad) expect(logs.some((line) => line.includes(source)), source).toBe(true);
    expect(valueOf(s, 'loki_up')).toBe(1);
  });

  it('rejects torn, NaN, negative and absurd values (fixture torn/)', async () => {
    const { collect, logs } = setup(await materialize('torn', { mtimeMs: LONG_AGO }));
    const s = await collect();
    expect(valueOf(s, 'loki_cost_usd')).toBe(0.5);
    expect(valueOf(s, 'loki_events_total')).toBe(2);
    expect(valueOf(s, 'loki_budget_limit_usd')).toBe(0);
    const bad = s.sources.filter((src) => !src.ok).map((src) => src.source).sort();
    expect(bad).toEqual(['dashboard-state.json', 'loki.pid', 'metrics/budget.json', 'metrics/efficiency', 'state/agents.json']);
    expect(sourceOf(s, 'metrics/efficiency')?.problem).toMatch(/4 bad file/);
    expect(logs.find((l) => l.includes('iteration-2.json'))).toMatch(/not valid JSON/);
    expect(logs.find((l) => l.includes('state/agents.json'))).toMatch(/empty file/);
  });

  it('rejects invalid UTF-8 but still counts the event line (fixture invalid-utf8/)', async () => {
    const { collect } = setup(await materialize('invalid-utf8', { mtimeMs: LONG_AGO }));
    const s = await collect();
    expect(sourceOf(s, 'dashboard-state.json')?.problem).toMatch(/invalid UTF-8/);
    expect(valueOf(s, 'loki_cost_usd')).toBe(0.25);
    expect(valueOf(s, 'loki_events_total')).toBe(2);
  });

  it('serves the last good value while a file is torn, and recovers', async () => {
    const dir = await materialize('running', { pid: 'alive', mtimeMs: FRESH });
    const { collect, logs } = setup(dir);
    const good = await collect();
    await writeFile(join(dir, 'dashboard-state.json'), '{"mode": "autonomous", "tasks": {"pend');
    await writeFile(join(dir, 'state/agents.json'), '');
    const torn = await collect(NOW + 1_000);
    expect(tasksOf(torn)).toEqual(tasksOf(good));
    expect(valueOf(torn, 'loki_agents_total')).toBe(6);
    expect(valueOf(torn, 'loki_source_ok', { source: 'dashboard-state.json' })).toBe(0);
    expect(sourceOf(torn, 'dashboard-state.json')?.problem).toMatch(/last good value/);
    expect(logs.filter((l) => l.includes('dashboard-state.json'))).toHaveLength(1);
    // one log line per change of state, not per scrape
    await collect(NOW + 2_000);
    expect(logs.filter((l) => l.includes('dashboard-state.json'))).toHaveLength(1);
  });

  it('reports a missing state directory as loki_up 0 with every family still present', async () => {
    const root = await tempDir();
    const { collect, logs } = setup(join(root, 'nope'));
    const s = await collect();
    expect(valueOf(s, 'loki_up')).toBe(0);
    for (const family of FAMILIES.slice(0, 9)) expect(s.samples.get(family.name)?.length, family.name).toBeGreaterThan(0);
    expect(valueOf(s, 'loki_session_status')).toBe(0);
    expect(logs).toEqual(['loki-metrics: state directory unreadable: missing']);
    await collect(NOW + 1_000);
    expect(logs).toHaveLength(1); // one line per change, not per scrape
    // Loki Mode creates it when its first run starts: one line says so
    await mkdir(join(root, 'nope'));
    expect(valueOf(await collect(NOW + 2_000), 'loki_up')).toBe(1);
    expect(logs.slice(1)).toEqual(['loki-metrics: state directory readable again']);
  });
});

describe('events.jsonl', () => {
  it('counts a half-written last line once it is finished (fixture partial-line/)', async () => {
    const dir = await materialize('partial-line', { pid: 'alive', mtimeMs: FRESH });
    const { collect } = setup(dir);
    const before = await collect();
    expect(valueOf(before, 'loki_events_total')).toBe(3);
    expect(valueOf(before, 'loki_iteration_current')).toBe(1);
    await appendFile(join(dir, 'events.jsonl'), 'ation":2}}\n');
    const after = await collect(NOW + 1);
    expect(valueOf(after, 'loki_events_total')).toBe(4);
    expect(valueOf(after, 'loki_iteration_current')).toBe(2);
  });

  it('remembers the session start across rotation (fixture rotated/)', async () => {
    const { collect } = setup(await materialize('rotated', { pid: 'alive', mtimeMs: FRESH }));
    const s = await collect();
    expect(valueOf(s, 'loki_events_total')).toBe(3);
    expect(valueOf(s, 'loki_iteration_current')).toBe(3);
    expect(valueOf(s, 'loki_uptime_seconds')).toBe((NOW - Date.parse('2026-02-14T08:00:00Z')) / 1000);
  });
});

describe('cost', () => {
  it('applies pricing.json per model over the built-in table (fixture pricing-override/)', async () => {
    const { collect } = setup(await materialize('pricing-override', { mtimeMs: LONG_AGO }));
    expect(valueOf(await collect(), 'loki_cost_usd')).toBe(22.25);
  });

  it('prices full model ids as their family and unknown models as sonnet (fixture model-ids/)', async () => {
    const { collect } = setup(await materialize('model-ids', { mtimeMs: LONG_AGO }));
    // 1M + 1M tokens each: opus 30 + haiku 6 + sonnet 18 + gemini flash 0.5 + gpt-5.3-codex 15.75
    // (9.x's 1.75/14) + mystery as sonnet 18
    expect(valueOf(await collect(), 'loki_cost_usd')).toBe(88.25);
  });
});

describe('other writers', () => {
  it("reads loki demo's flat dashboard-state.json (fixture demo-flat/)", async () => {
    const { collect } = setup(await materialize('demo-flat', { mtimeMs: FRESH }));
    const s = await collect();
    expect(valueOf(s, 'loki_session_status')).toBe(1);
    expect(valueOf(s, 'loki_iteration_current')).toBe(4);
    expect(tasksOf(s)).toEqual({ pending: 3, in_progress: 0, completed: 5, failed: 0 });
    expect([valueOf(s, 'loki_agents_active'), valueOf(s, 'loki_agents_total')]).toEqual([2, 10]);
    expect(valueOf(s, 'loki_uptime_seconds')).toBe(96); // written 1 s ago saying 95 s
  });

  it('takes the iteration from the task queues when there are no events', async () => {
    const dir = await materialize('running', { pid: 'alive', mtimeMs: FRESH });
    await rm(join(dir, 'events.jsonl'));
    const state = JSON.parse('{"mode":"autonomous","iteration":0,"tasks":{"pending":[],"inProgress":[{"id":"iteration-11"}],"completed":[{"id":"iteration-10"}],"failed":[]}}');
    await writeFile(join(dir, 'dashboard-state.json'), JSON.stringify(state));
    expect(valueOf(await setup(dir).collect(), 'loki_iteration_current')).toBe(11);
  });

  it('holds agent counts through the monitor resetting agents.json to [] for a moment', async () => {
    const dir = await materialize('running', { pid: 'alive', mtimeMs: FRESH });
    const { collect } = setup(dir);
    expect(valueOf(await collect(NOW), 'loki_agents_total')).toBe(6);
    await writeFile(join(dir, 'state/agents.json'), '[]');
    expect(valueOf(await collect(NOW + 2_000), 'loki_agents_total')).toBe(6);
    expect(valueOf(await collect(NOW + 20_000), 'loki_agents_total')).toBe(0);
  });

  it('does not hold agent counts across a backwards clock jump', async () => {
    const dir = await materialize('running', { pid: 'alive', mtimeMs: FRESH });
    const { collect } = setup(dir);
    expect(valueOf(await collect(NOW), 'loki_agents_total')).toBe(6);
    await writeFile(join(dir, 'state/agents.json'), '[]');
    expect(valueOf(await collect(NOW - 3600_000), 'loki_agents_total')).toBe(0);
  });
});

describe('the restart window: a live runner newer than the latest session_start', () => {
  it('5.4x: a loki.pid written 3 s ago by a live runner is a new run at iteration 0 (fixture running/)', async () => {
    const dir = await materialize('running', { mtimeMs: FRESH });
    // The new runner (this process) wrote loki.pid after it started: real times, as /proc's are.
    const wrote = Math.floor(Date.now() / 1000) * 1000;
    await writeFile(join(dir, 'loki.pid'), `${process.pid}\n`);
    await utimes(join(dir, 'loki.pid'), wrote / 1000, wrote / 1000);
    const s = await setup(dir).collect(wrote + 3_000);
    expect(valueOf(s, 'loki_session_status')).toBe(1);
    // the events still end with the previous run's session_start (09:12:04) and iteration 6
    expect(valueOf(s, 'loki_iteration_current')).toBe(0);
    expect(valueOf(s, 'loki_uptime_seconds')).toBe(3);
  });

  it('9.x: the new wrapper in pids/ starts the session; the previous runner\'s autonomy-state is not used (fixture v9-restart/)', async () => {
    const dir = await materialize('v9-restart', { registry: { wrapper: 'alive', helpers: 'alive' }, mtimeMs: FRESH });
    // the last run's outcome was written when it ended, before this runner started
    const ended = Date.parse('2026-02-14T11:36:00Z') / 1000;
    await utimes(join(dir, 'state/completion.json'), ended, ended);
    const { collect } = setup(dir);
    let s = await collect();
    expect(valueOf(s, 'loki_session_status')).toBe(1);
    expect(valueOf(s, 'loki_iteration_current')).toBe(0);
    expect(valueOf(s, 'loki_uptime_seconds')).toBe((NOW - Date.parse('2026-02-14T11:47:52Z')) / 1000);
    expect(s.samples.get('loki_run_outcome')).toEqual([]);
    // its own session_start arrives: the session is the events' again
    await appendFile(join(dir, 'events.jsonl'), `{"timestamp":"2026-02-14T11:47:54Z","type":"session_start","data":{"pid":${process.pid}}}\n`);
    s = await collect(NOW + 2_000);
    expect(valueOf(s, 'loki_iteration_current')).toBe(0);
    expect(valueOf(s, 'loki_uptime_seconds')).toBe(3);
    await appendFile(join(dir, 'events.jsonl'), '{"timestamp":"2026-02-14T11:47:59Z","type":"iteration_start","data":{"iteration":1}}\n');
    expect(valueOf(await collect(NOW + 5_000), 'loki_iteration_current')).toBe(1);
  });

  it('is not a new run when the session_start names the live runner, however late loki.pid was written', async () => {
    const dir = await materialize('v9-running', { registry: { wrapper: 'alive', helpers: 'alive' }, mtimeMs: FRESH });
    // the wrapper entry claims a start after the session_start (coarse clocks, a rewritten registry)
    const [entry] = (await readdir(join(dir, 'pids'))).filter((name) => name === `${process.pid}.json`);
    const path = join(dir, 'pids', entry!);
    await writeFile(path, JSON.stringify({ ...JSON.parse(await readFile(path, 'utf8')), started: '2026-02-14T11:40:00Z' }));
    const s = await setup(dir).collect();
    expect(valueOf(s, 'loki_iteration_current')).toBe(4);
    expect(valueOf(s, 'loki_uptime_seconds')).toBe((NOW - Date.parse('2026-02-14T11:30:00Z')) / 1000);
  });
});

describe('SIGKILL of the runner: the status monitor keeps dashboard-state.json fresh', () => {
  it('a dead wrapper next to a live status monitor is stopped, even where only the registry shows the namespace (fixture v9-running/)', async () => {
    const dir = await materialize('v9-running', { registry: { wrapper: 'dead', helpers: 'alive' }, mtimeMs: NOW - 1_000 });
    const s = await setup(dir, {}, { hostPidNamespace: false }).collect();
    expect(valueOf(s, 'loki_session_status')).toBe(0);
    expect(valueOf(s, 'loki_uptime_seconds')).toBe(0);
    expect(valueOf(s, 'loki_agents_active')).toBe(0);
  });

  it('with no live process of the state in sight (a container), the heartbeat still decides', async () => {
    const dir = await materialize('v9-running', { registry: { wrapper: 'dead', helpers: 'dead' }, mtimeMs: NOW - 1_000 });
    expect(valueOf(await setup(dir, {}, { hostPidNamespace: false }).collect(), 'loki_session_status')).toBe(1);
    expect(valueOf(await setup(dir, {}, { hostPidNamespace: true }).collect(), 'loki_session_status')).toBe(0);
  });

  it('5.4x clean exit: loki.pid removed, the runner the latest session_start names is dead: stopped at once', async () => {
    const dir = await materialize('running', { mtimeMs: NOW - 1_000 });
    await rm(join(dir, 'loki.pid'));
    const session = (pid: number) => `{"timestamp":"2026-02-14T11:40:00Z","type":"session_start","data":{"provider":"claude","pid":${pid}}}\n`;
    await appendFile(join(dir, 'events.jsonl'), session(deadPid()));
    const host = setup(dir, {}, { hostPidNamespace: true });
    expect(valueOf(await host.collect(), 'loki_session_status')).toBe(0);
    // in a container the dead pid proves nothing: the fresh heartbeat decides
    expect(valueOf(await setup(dir, {}, { hostPidNamespace: false }).collect(), 'loki_session_status')).toBe(1);
    // the runner it names is alive (this process, started before it wrote the event): a weak witness,
    // so the heartbeat decides: running, timed from that session_start. Real times, as /proc's are.
    const at = Math.floor(Date.now() / 1000) * 1000;
    await appendFile(join(dir, 'events.jsonl'), session(process.pid).replace('2026-02-14T11:40:00Z', new Date(at).toISOString()));
    await utimes(join(dir, 'dashboard-state.json'), at / 1000, at / 1000);
    const s = await host.collect(at + 3_000);
    expect(valueOf(s, 'loki_session_status')).toBe(1);
    expect(valueOf(s, 'loki_uptime_seconds')).toBe(3);
  });

  it('a runner under LOKI_SESSION_ID (sessions/<id>/loki.pid) is the runner', async () => {
    const dir = await materialize('running', { mtimeMs: NOW - 1_000 });
    await rm(join(dir, 'loki.pid'));
    await mkdir(join(dir, 'sessions/feature-a'), { recursive: true });
    // written now, after this process (the runner) started
    await writeFile(join(dir, 'sessions/feature-a/loki.pid'), `${process.pid}\n`);
    const { collect } = setup(dir, {}, { hostPidNamespace: true });
    expect(valueOf(await collect(), 'loki_session_status')).toBe(1);
    await writeFile(join(dir, 'sessions/feature-a/loki.pid'), `${deadPid()}\n`);
    expect(valueOf(await collect(NOW + 3_000), 'loki_session_status')).toBe(0);
  });
});

describe('Loki Mode 9.x state (fixture v9-running/)', () => {
  async function v9(options: Partial<CollectorOptions> = {}) {
    const dir = await materialize('v9-running', { registry: { wrapper: 'alive', helpers: 'alive' }, mtimeMs: FRESH });
    return { dir, ...setup(dir, options) };
  }

  it('reports the guide families, with cache tokens priced at the cache rates', async () => {
    const { collect, logs } = await v9();
    const s = await collect();
    expect(valueOf(s, 'loki_session_status')).toBe(1);
    expect(valueOf(s, 'loki_iteration_current')).toBe(4);
    expect(valueOf(s, 'loki_uptime_seconds')).toBe((NOW - Date.parse('2026-02-14T11:30:00Z')) / 1000);
    // iteration-1 sonnet, cost_usd 0 next to real tokens, so priced at pricing.json's 3/15 and the
    // derived cache rates 0.3 (read) and 3.75 (write): 3 + 1.5 + 0.6 + 1.5 = 6.6
    // iteration-2 opus: its cost_usd 2.5
    // iteration-3 fable at 10/50, cache write 12.5: 1 + 0.5 + 0 + 1.25 = 2.75
    expect(valueOf(s, 'loki_cost_usd')).toBe(11.85);
    expect(valueOf(s, 'loki_budget_limit_usd')).toBe(50);
    expect(s.sources.filter((src) => !src.ok)).toEqual([]);
    expect(logs).toEqual([]);
  });

  it('reports tokens and cost per model, iterations by outcome, and their durations', async () => {
    const s = await (await v9()).collect();
    const tokens = (family: string, model: string) =>
      Object.fromEntries(['input', 'output', 'cache_read', 'cache_creation'].map((type) => [type, valueOf(s, 'loki_model_tokens_total', { family, model, type })]));
    expect(tokens('sonnet', 'sonnet')).toEqual({ input: 1e6, output: 1e5, cache_read: 2e6, cache_creation: 4e5 });
    expect(tokens('opus', 'claude-opus-4-6')).toEqual({ input: 2e5, output: 4e4, cache_read: 1e6, cache_creation: 0 });
    expect(tokens('fable', 'fable')).toEqual({ input: 1e5, output: 1e4, cache_read: 0, cache_creation: 1e5 });
    expect(s.samples.get('loki_model_tokens_total')).toHaveLength(12);
    expect(valueOf(s, 'loki_model_cost_usd_total', { family: 'sonnet', model: 'sonnet' })).toBe(6.6);
    expect(valueOf(s, 'loki_model_cost_usd_total', { family: 'opus', model: 'claude-opus-4-6' })).toBe(2.5);
    expect(valueOf(s, 'loki_model_cost_usd_total', { family: 'fable', model: 'fable' })).toBe(2.75);
    expect(valueOf(s, 'loki_iterations_total', { outcome: 'completed' })).toBe(2);
    expect(valueOf(s, 'loki_iterations_total', { outcome: 'failed' })).toBe(1);
    const durations = s.samples.get('loki_iteration_duration_seconds')!;
    const bucket = (le: string) => durations.find((d) => d.suffix === '_bucket' && d.labels?.le === le)?.value;
    // 240 s, 310 s, 310 s
    expect([bucket('120.0'), bucket('300.0'), bucket('600.0'), bucket('+Inf')]).toEqual([0, 1, 3, 3]);
    expect(durations.find((d) => d.suffix === '_sum')?.value).toBe(860);
    expect(durations.find((d) => d.suffix === '_count')?.value).toBe(3);
  });

  it('keeps a model series at 0 when a run start empties metrics/efficiency, so increase() sees a counter reset', async () => {
    const { dir, collect } = await v9();
    expect(valueOf(await collect(), 'loki_model_tokens_total', { family: 'fable', model: 'fable', type: 'input' })).toBe(1e5);
    await rm(join(dir, 'metrics/efficiency'), { recursive: true });
    await mkdir(join(dir, 'metrics/efficiency'));
    const s = await collect(NOW + 5_000);
    expect(valueOf(s, 'loki_model_tokens_total', { family: 'fable', model: 'fable', type: 'input' })).toBe(0);
    expect(valueOf(s, 'loki_model_cost_usd_total', { family: 'sonnet', model: 'sonnet' })).toBe(0);
    expect(valueOf(s, 'loki_iterations_total', { outcome: 'completed' })).toBe(0);
    expect(valueOf(s, 'loki_cost_usd')).toBe(0);
  });

  it('counts receipts name-for-name with upstream: every verdict and provenance kind, 1.0 receipts as unknown', async () => {
    const s = await (await v9()).collect();
    expect(valueOf(s, 'loki_receipts_total')).toBe(5);
    const verdicts = Object.fromEntries(s.samples.get('loki_receipts_by_verdict')!.map((x) => [x.labels!.verdict, x.value]));
    // VERIFIED, VERIFIED WITH GAPS, NOT VERIFIED; a 1.0 receipt (no honesty) and a lower-case headline are unknown
    expect(verdicts).toEqual({ verified: 1, with_gaps: 1, not_verified: 1, unknown: 2 });
    // {} and "" are not provenance (upstream tests truthiness)
    expect(valueOf(s, 'loki_receipts_with_provenance', { kind: 'attestation' })).toBe(2);
    expect(valueOf(s, 'loki_receipts_with_provenance', { kind: 'gpg' })).toBe(2);
  });

  it('reports a bad proof.json like any bad source and does not count it', async () => {
    const { dir, collect, logs } = await v9();
    await mkdir(join(dir, 'proofs/run-bad'));
    await writeFile(join(dir, 'proofs/run-bad/proof.json'), '{"honesty": "VERIFIED"}');
    await mkdir(join(dir, 'proofs/run-torn'));
    await writeFile(join(dir, 'proofs/run-torn/proof.json'), '{"schema_version": "1.1", "hon');
    const s = await collect();
    expect(valueOf(s, 'loki_receipts_total')).toBe(5);
    expect(valueOf(s, 'loki_source_ok', { source: 'proofs' })).toBe(0);
    expect(sourceOf(s, 'proofs')?.problem).toMatch(/2 bad file\(s\): run-bad: honesty: .*; run-torn: not valid JSON/);
    expect(logs.filter((l) => l.includes('proofs/run-bad/proof.json'))).toHaveLength(1);
    expect(valueOf(s, 'loki_session_status')).toBe(1); // the rest of the scrape stands
  });

  it("takes autonomy-state.json's iterationCount when the events have no iteration_start yet, if its runner is the live one", async () => {
    const { dir, collect } = await v9();
    const events = (await readFile(join(dir, 'events.jsonl'), 'utf8')).split('\n').filter((l) => !l.includes('iteration_start'));
    await writeFile(join(dir, 'events.jsonl'), events.join('\n'));
    expect(valueOf(await collect(), 'loki_iteration_current')).toBe(4);
    const state = JSON.parse(await readFile(join(dir, 'autonomy-state.json'), 'utf8'));
    await writeFile(join(dir, 'autonomy-state.json'), JSON.stringify({ ...state, pid: deadPid() }));
    expect(valueOf(await collect(NOW + 3_000), 'loki_iteration_current')).toBe(0);
  });

  it('reports the outcome state/completion.json gives for the latest session, once it has ended', async () => {
    const dir = await materialize('v9-restart', { registry: { wrapper: 'dead', helpers: 'dead' }, mtimeMs: LONG_AGO });
    // the run that started at 11:00:00 (the latest session_start) ended at 11:36
    const ended = Date.parse('2026-02-14T11:36:00Z') / 1000;
    await utimes(join(dir, 'state/completion.json'), ended, ended);
    const { collect } = setup(dir);
    let s = await collect();
    expect(valueOf(s, 'loki_session_status')).toBe(0);
    expect(s.samples.get('loki_run_outcome')).toEqual([{ labels: { outcome: 'max_iterations' }, value: 1 }]);
    // an outcome upstream does not write is `other`, never the file's text
    await writeFile(join(dir, 'state/completion.json'), '{"outcome": "Exploded\\nbadly"}');
    await utimes(join(dir, 'state/completion.json'), ended, ended + 1);
    s = await collect(NOW + 3_000);
    expect(s.samples.get('loki_run_outcome')).toEqual([{ labels: { outcome: 'other' }, value: 1 }]);
  });

  it('does not let the previous run\'s completion.json speak for a SIGKILLed run (which writes none)', async () => {
    const dir = await materialize('v9-restart', { registry: { wrapper: 'dead', helpers: 'dead' }, mtimeMs: LONG_AGO });
    // written before the latest session_start (11:00:00): it describes an earlier run
    const before = Date.parse('2026-02-14T10:30:00Z') / 1000;
    await utimes(join(dir, 'state/completion.json'), before, before);
    const s = await setup(dir).collect();
    expect(valueOf(s, 'loki_session_status')).toBe(0);
    expect(s.samples.get('loki_run_outcome')).toEqual([]);
  });
});

// ---- the collector's boundaries, on hand-built readings (no files: each reading names exactly its sources)

function collectorFor(options: Partial<CollectorOptions> = {}) {
  const collector = createCollector({
    maxIterations: 1000,
    heartbeatWindowMs: 30_000,
    agentsHoldMs: 10_000,
    version: '9.9.9',
    log: () => undefined,
    ...options,
  });
  return {
    collect: (spec: ReadingSpec, nowMs = NOW) => collector.collect(readingOf(spec), nowMs),
    collectReading: (reading: StateReading, nowMs = NOW) => collector.collect(reading, nowMs),
  };
}
const collectOnce = (spec: ReadingSpec, options: Partial<CollectorOptions> = {}, nowMs = NOW) => collectorFor(options).collect(spec, nowMs);
const SESSION_START = NOW - 600_000;
const spent = (...costs: number[]) => Object.fromEntries(costs.map((cost_usd, i) => [`iteration-${i + 1}.json`, { model: 'opus', cost_usd }]));

describe('loki_budget_exceeded at the limit', () => {
  const budget = (content: unknown): ReadingSpec['documents'] => ({ 'metrics/budget.json': { content } });
  const exceeded = (spec: ReadingSpec, options: Partial<CollectorOptions> = {}) => {
    const s = collectOnce(spec, options);
    return { cost: valueOf(s, 'loki_cost_usd'), limit: valueOf(s, 'loki_budget_limit_usd'), exceeded: valueOf(s, 'loki_budget_exceeded') };
  };

  it.each([
    [4.999999, 0],
    [5, 1],
    [5.000001, 1],
  ])('a cost of %d against budget.json\'s limit of 5: exceeded %d', (cost, expected) => {
    expect(exceeded({ documents: budget({ limit: 5 }), efficiency: spent(cost) })).toEqual({ cost, limit: 5, exceeded: expected });
  });

  it.each([
    [4.999999, 0],
    [5, 1],
    [5.000001, 1],
  ])('a cost of %d against LOKI_BUDGET_LIMIT=5: exceeded %d', (cost, expected) => {
    expect(exceeded({ efficiency: spent(cost) }, { budgetLimitUsd: 5 })).toEqual({ cost, limit: 5, exceeded: expected });
  });

  it('compares the rounded cost: files summing to 0.7999999999999999 reach a limit of 0.8', () => {
    expect(0.7 + 0.1).toBeLessThan(0.8);
    expect(exceeded({ documents: budget({ limit: 0.8 }), efficiency: spent(0.7, 0.1) })).toEqual({ cost: 0.8, limit: 0.8, exceeded: 1 });
  });

  it('without a limit nothing is exceeded by cost, not even a cost of 0 "reaching" a limit of 0', () => {
    expect(exceeded({})).toEqual({ cost: 0, limit: 0, exceeded: 0 });
    expect(exceeded({ efficiency: spent(100) })).toEqual({ cost: 100, limit: 0, exceeded: 0 });
    expect(exceeded({ documents: budget({ limit: 0 }), efficiency: spent(100) })).toEqual({ cost: 100, limit: 0, exceeded: 0 });
  });

  it('budget.json\'s limit over its budget_limit over LOKI_BUDGET_LIMIT; a limit of 0 or null is none', () => {
    expect(exceeded({ documents: budget({ limit: 5, budget_limit: 10 }), efficiency: spent(5) }, { budgetLimitUsd: 20 })).toMatchObject({ limit: 5, exceeded: 1 });
    expect(exceeded({ documents: budget({ limit: null, budget_limit: 5 }), efficiency: spent(5) }, { budgetLimitUsd: 20 })).toMatchObject({ limit: 5, exceeded: 1 });
    expect(exceeded({ documents: budget({ budget_limit: 5 }), efficiency: spent(5) }, { budgetLimitUsd: 20 })).toMatchObject({ limit: 5, exceeded: 1 });
    expect(exceeded({ documents: budget({ limit: 0 }), efficiency: spent(5) }, { budgetLimitUsd: 5 })).toMatchObject({ limit: 5, exceeded: 1 });
    expect(exceeded({ documents: budget({ limit: 0, budget_limit: 5 }), efficiency: spent(5) }, { budgetLimitUsd: 20 })).toMatchObject({ limit: 20, exceeded: 0 });
  });

  it('budget.json\'s exceeded: true trips it below the limit; false does not hide a cost at the limit', () => {
    expect(exceeded({ documents: budget({ limit: 5, exceeded: true }), efficiency: spent(1) })).toMatchObject({ exceeded: 1 });
    expect(exceeded({ documents: budget({ limit: 5, exceeded: false }), efficiency: spent(5) })).toMatchObject({ exceeded: 1 });
  });

  it('a BUDGET_EXCEEDED signal counts from the latest session_start on, to the millisecond', () => {
    const events = { present: true, lines: 1, sessionStartMs: SESSION_START };
    const signal = (content: unknown, mtimeMs?: number): ReadingSpec['documents'] => ({
      'signals/BUDGET_EXCEEDED': { content, ...(mtimeMs !== undefined ? { mtimeMs } : {}) },
    });
    const at = (ms: number) => ({ type: 'BUDGET_EXCEEDED', timestamp: new Date(ms).toISOString() });
    expect(exceeded({ events, documents: signal(at(SESSION_START)) }).exceeded).toBe(1);
    expect(exceeded({ events, documents: signal(at(SESSION_START - 1)) }).exceeded).toBe(0);
    // without a timestamp, the file's mtime
    expect(exceeded({ events, documents: signal({}, SESSION_START) }).exceeded).toBe(1);
    expect(exceeded({ events, documents: signal({}, SESSION_START - 1) }).exceeded).toBe(0);
    // the timestamp, not the mtime, when both are there
    expect(exceeded({ events, documents: signal(at(SESSION_START - 1), SESSION_START) }).exceeded).toBe(0);
    // no session_start to compare with: a signal is current
    expect(exceeded({ documents: signal(at(SESSION_START - 3_600_000)) }).exceeded).toBe(1);
  });
});

describe('loki_cost_usd and loki_model_cost_usd_total: micro-dollars', () => {
  it('rounds each to the nearest micro-dollar', () => {
    const s = collectOnce({ efficiency: { 'iteration-1.json': { model: 'opus', cost_usd: 0.1234567 }, 'iteration-2.json': { model: 'haiku', cost_usd: 0.0000007 } } });
    // per model: 0.123457 and 0.000001; the total rounds the exact sum 0.1234574, not the rounded ones
    expect(valueOf(s, 'loki_model_cost_usd_total', { family: 'opus', model: 'opus' })).toBe(0.123457);
    expect(valueOf(s, 'loki_model_cost_usd_total', { family: 'haiku', model: 'haiku' })).toBe(0.000001);
    expect(valueOf(s, 'loki_cost_usd')).toBe(0.123457);
  });
});

describe('pricing.json: an exact key for a full model id', () => {
  it('prices that id by its key and the rest of its family by the family\'s price', () => {
    const tokens = { input_tokens: 1_000_000, output_tokens: 100_000 };
    const s = collectOnce({
      documents: { 'pricing.json': { content: { models: { 'claude-opus-4-5-20251101': { input: 7, output: 35 } } } } },
      efficiency: {
        'iteration-1.json': { model: 'claude-opus-4-5-20251101', ...tokens },
        'iteration-2.json': { model: 'claude-opus-4-6', ...tokens },
      },
    });
    // 7 + 3.5 by the exact key; 5 + 2.5 at opus's built-in price
    expect(valueOf(s, 'loki_model_cost_usd_total', { family: 'opus', model: 'claude-opus-4-5-20251101' })).toBe(10.5);
    expect(valueOf(s, 'loki_model_cost_usd_total', { family: 'opus', model: 'claude-opus-4-6' })).toBe(7.5);
    expect(valueOf(s, 'loki_cost_usd')).toBe(18);
  });
});

describe('loki_iteration_current: which source wins', () => {
  // Every source disagrees, each better one saying less than the next.
  const all: NonNullable<ReadingSpec['documents']> = {
    'autonomy-state.json': { content: { iterationCount: 3 } },
    'dashboard-state.json': { content: { iteration: 4 } },
    'queue/current-task.json': { content: { id: 'iteration-5' } },
    'state/orchestrator.json': { content: { currentIteration: 7 } },
  };
  const efficiency = { 'iteration-1.json': { iteration: 6, cost_usd: 0 } };
  const iteration = (spec: ReadingSpec) => valueOf(collectOnce(spec), 'loki_iteration_current');
  const without = (...names: (keyof typeof all)[]) => Object.fromEntries(Object.entries(all).filter(([name]) => !names.includes(name as keyof typeof all)));

  it('without a session_start: autonomy-state.json, dashboard-state.json, current-task.json, the efficiency files, orchestrator.json', () => {
    expect(iteration({ documents: all, efficiency })).toBe(3);
    expect(iteration({ documents: without('autonomy-state.json'), efficiency })).toBe(4);
    expect(iteration({ documents: without('autonomy-state.json', 'dashboard-state.json'), efficiency })).toBe(5);
    expect(iteration({ documents: without('autonomy-state.json', 'dashboard-state.json', 'queue/current-task.json'), efficiency })).toBe(6);
    expect(iteration({ documents: without('autonomy-state.json', 'dashboard-state.json', 'queue/current-task.json') })).toBe(7);
    expect(iteration({})).toBe(0);
  });

  it('a source that is invalid, or says nothing, falls through to the next', () => {
    const rest = without('autonomy-state.json', 'dashboard-state.json');
    expect(iteration({ documents: { ...rest, 'autonomy-state.json': { content: '{"iterationCount": 3' } }, efficiency })).toBe(5);
    expect(iteration({ documents: { ...rest, 'dashboard-state.json': { content: { iteration: 0 } } }, efficiency })).toBe(5);
    expect(iteration({ documents: { ...rest, 'queue/current-task.json': { content: { id: 'task-5' } } }, efficiency })).toBe(6);
    expect(iteration({ documents: { ...rest, 'queue/current-task.json': { content: '{"id": "iteration-' } }, efficiency })).toBe(6);
    const noQueues = without('autonomy-state.json', 'dashboard-state.json', 'queue/current-task.json');
    expect(iteration({ documents: noQueues, efficiency: { 'iteration-1.json': '{"iteration": 6' } })).toBe(7);
    expect(iteration({ documents: noQueues, efficiency: { 'iteration-9.json': { cost_usd: 0 } } })).toBe(7);
    expect(iteration({ documents: { 'state/orchestrator.json': { content: '{"currentIteration": 7' } } })).toBe(0);
  });

  it('after a session_start: its iteration_start; else the counter written since (NEW_RUN_MARGIN_MS); else 0', () => {
    const events = { present: true, lines: 2, sessionStartMs: SESSION_START };
    expect(iteration({ documents: all, efficiency, events: { ...events, iteration: 2 } })).toBe(2);
    const counter = (mtimeMs: number) => ({ ...all, 'autonomy-state.json': { content: { iterationCount: 3 }, mtimeMs } });
    expect(iteration({ documents: counter(SESSION_START - 1_000), efficiency, events })).toBe(3);
    expect(iteration({ documents: counter(SESSION_START - 1_001), efficiency, events })).toBe(0);
  });

  it('0 while a live runner newer than the latest session_start (by more than 1 s) has not written its own', () => {
    const events = { present: true, lines: 2, sessionStartMs: SESSION_START, iteration: 2, sessionPid: 4242 };
    const runner = (startedMs: number, pid = 5151) => ({ decided: true, alive: true, pid, startedMs });
    expect(iteration({ documents: all, events, runner: runner(SESSION_START + 1_000) })).toBe(2);
    expect(iteration({ documents: all, events, runner: runner(SESSION_START + 1_001) })).toBe(0);
    expect(iteration({ documents: all, events, runner: runner(SESSION_START + 60_000, 4242) })).toBe(2);
  });
});

describe('liveness windows', () => {
  const status = (spec: ReadingSpec, options: Partial<CollectorOptions> = {}) => valueOf(collectOnce(spec, options), 'loki_session_status');

  it('where the pids cannot decide, a dashboard-state.json rewritten up to heartbeatWindowMs ago is alive', () => {
    const undecided = { decided: false, alive: false };
    const written = (mtimeMs: number): ReadingSpec => ({ runner: undecided, documents: { 'dashboard-state.json': { content: {}, mtimeMs } } });
    expect(status(written(NOW - 30_000))).toBe(1);
    expect(status(written(NOW - 30_001))).toBe(0);
    expect(status(written(NOW - 30_001), { heartbeatWindowMs: 30_001 })).toBe(1);
  });

  it('synced state is stopped only after more than syncStaleMs without a sync', () => {
    expect(status({ lastSyncMs: NOW - 60_000 }, { syncStaleMs: 60_000 })).toBe(1);
    expect(status({ lastSyncMs: NOW - 60_001 }, { syncStaleMs: 60_000 })).toBe(0);
    // no stale window configured (a local store): never stale
    expect(status({ lastSyncMs: NOW - 3_600_000 })).toBe(1);
  });
});

describe('agent counts held through a momentary reset of agents.json (agentsHoldMs)', () => {
  const agents: ReadingSpec = { documents: { 'state/agents.json': { content: [{ tool_id: 'a', status: 'active' }, { tool_id: 'b', status: 'idle' }] } } };
  const reset: ReadingSpec = { documents: { 'state/agents.json': { content: [] } } };
  const counts = (s: ReturnType<typeof collectOnce>) => [valueOf(s, 'loki_agents_active'), valueOf(s, 'loki_agents_total')];
  function emptyAfter(ms: number, spec: ReadingSpec = reset) {
    const c = collectorFor();
    c.collect(agents, NOW);
    return counts(c.collect(spec, NOW + ms));
  }

  it('keeps the last counts from the same instant up to and including agentsHoldMs later', () => {
    expect(emptyAfter(0)).toEqual([1, 2]);
    expect(emptyAfter(10_000)).toEqual([1, 2]);
  });

  it('drops them 1 ms after the window, and when the clock went back', () => {
    expect(emptyAfter(10_001)).toEqual([0, 0]);
    expect(emptyAfter(-1)).toEqual([0, 0]);
  });

  it('counts the window from the latest non-empty read', () => {
    const c = collectorFor();
    c.collect(agents, NOW);
    c.collect(agents, NOW + 8_000);
    expect(counts(c.collect(reset, NOW + 18_000))).toEqual([1, 2]);
    expect(counts(c.collect(reset, NOW + 18_001))).toEqual([0, 0]);
  });

  it('a dead session keeps the held total but has no active agents', () => {
    expect(emptyAfter(5_000, { ...reset, runner: DEAD_RUNNER })).toEqual([0, 2]);
  });
});

describe('the state directory and events.jsonl: one log line per change of state', () => {
  function logged() {
    const logs: string[] = [];
    return { logs, collect: collectorFor({ log: (line) => logs.push(line) }).collectReading };
  }

  it('an unreadable directory without a reason (a synced doc may carry none) is logged once as "unknown reason", then readable again', () => {
    const { logs, collect } = logged();
    const unreadable: StateReading = { ...readingOf({}), available: false };
    const s = collect(unreadable);
    expect([valueOf(s, 'loki_up'), s.up, s.problem]).toEqual([0, false, 'unknown reason']);
    collect(unreadable, NOW + 1_000);
    expect(logs).toEqual(['loki-metrics: state directory unreadable: unknown reason']);
    const readable = collect(readingOf({}), NOW + 2_000);
    expect(readable.up).toBe(true);
    expect(readable).not.toHaveProperty('problem');
    expect(logs.slice(1)).toEqual(['loki-metrics: state directory readable again']);
  });

  it('an events.jsonl error is logged once, reported as the source\'s problem, and its recovery logged', () => {
    const { logs, collect } = logged();
    const mtimeMs = NOW - 5_000;
    const broken = readingOf({ events: { present: true, lines: 3, mtimeMs, error: 'permission denied' } });
    let s = collect(broken);
    collect(broken, NOW + 1_000);
    expect(logs).toEqual(['loki-metrics: events.jsonl: permission denied']);
    expect(sourceOf(s, 'events.jsonl')).toStrictEqual({ source: 'events.jsonl', ok: false, present: true, mtimeMs, problem: 'permission denied' });
    expect(valueOf(s, 'loki_source_ok', { source: 'events.jsonl' })).toBe(0);
    expect(valueOf(s, 'loki_source_mtime_seconds', { source: 'events.jsonl' })).toBe(mtimeMs / 1000);
    s = collect(readingOf({ events: { present: true, lines: 4, mtimeMs } }), NOW + 2_000);
    expect(logs.slice(1)).toEqual(['loki-metrics: events.jsonl: ok again']);
    expect(sourceOf(s, 'events.jsonl')).toStrictEqual({ source: 'events.jsonl', ok: true, present: true, mtimeMs });
  });
});

describe('sources: loki_source_ok, loki_source_mtime_seconds, loki_last_sync_timestamp_seconds', () => {
  it('reports every source docs/metrics.md names, in that order, each ok when absent', () => {
    const s = collectOnce({});
    const sources = [
      'dashboard-state.json', 'loki.pid', 'state/agents.json', 'metrics/efficiency', 'events.jsonl', 'pricing.json', 'metrics/budget.json',
      'signals/BUDGET_EXCEEDED', 'state/orchestrator.json', 'queue/current-task.json', 'autonomy-state.json', 'state/completion.json', 'proofs', 'pids', 'sessions',
    ];
    expect(s.samples.get('loki_source_ok')).toEqual(sources.map((source) => ({ labels: { source }, value: 1 })));
    // an absent events.jsonl: no mtime, no problem (not even as keys holding undefined)
    expect(sourceOf(s, 'events.jsonl')).toStrictEqual({ source: 'events.jsonl', ok: true, present: false });
  });

  it('gives an mtime sample (seconds) only to the sources that have an mtime', () => {
    const s = collectOnce({
      documents: {
        'dashboard-state.json': { content: {}, mtimeMs: NOW - 2_500 },
        'state/orchestrator.json': { content: { currentIteration: 1 }, mtimeMs: NOW - 7_000 },
        'pricing.json': { content: { models: {} } },
      },
      events: { present: true, lines: 0, mtimeMs: NOW - 1_000 },
    });
    expect(s.samples.get('loki_source_mtime_seconds')).toEqual([
      { labels: { source: 'dashboard-state.json' }, value: (NOW - 2_500) / 1000 },
      { labels: { source: 'events.jsonl' }, value: (NOW - 1_000) / 1000 },
      { labels: { source: 'state/orchestrator.json' }, value: (NOW - 7_000) / 1000 },
    ]);
  });

  it('reports the last sync in seconds for synced state, and no sample for a local store', () => {
    expect(collectOnce({ lastSyncMs: NOW - 4_000 }).samples.get('loki_last_sync_timestamp_seconds')).toEqual([{ value: (NOW - 4_000) / 1000 }]);
    expect(collectOnce({}).samples.get('loki_last_sync_timestamp_seconds')).toEqual([]);
  });
});

describe('loki_session_status: paused and stopping from the files or the snapshot\'s mode', () => {
  const status = (spec: ReadingSpec) => valueOf(collectOnce(spec), 'loki_session_status');
  const mode = (m: string): ReadingSpec['documents'] => ({ 'dashboard-state.json': { content: { mode: m } } });

  it('a live session whose mode is paused is paused (2), stopped is stopped (0), autonomous is running (1)', () => {
    expect(status({ documents: mode('paused') })).toBe(2);
    expect(status({ documents: mode('stopped') })).toBe(0);
    expect(status({ documents: mode('autonomous') })).toBe(1);
  });

  it('a PAUSE or STOP file decides whatever the mode says', () => {
    expect(status({ documents: { ...mode('autonomous'), PAUSE: { content: '' } } })).toBe(2);
    expect(status({ documents: { ...mode('autonomous'), STOP: { content: '' } } })).toBe(0);
  });
});

describe('the usage memo', () => {
  it('re-prices unchanged efficiency files when pricing.json changes', () => {
    const c = collectorFor();
    const pricing = (input: number): ReadingSpec['documents'] => ({ 'pricing.json': { content: { models: { opus: { input, output: 0 } } } } });
    const first = readingOf({ documents: pricing(10), efficiency: { 'iteration-1.json': { model: 'opus', input_tokens: 1_000_000 } } });
    expect(valueOf(c.collectReading(first), 'loki_cost_usd')).toBe(10);
    // the same efficiency set (as a store hands back an unchanged one), a new price
    const second: StateReading = { ...readingOf({ documents: pricing(20) }), efficiency: first.efficiency };
    expect(valueOf(c.collectReading(second, NOW + 1_000), 'loki_cost_usd')).toBe(20);
  });
});
