/**
 * `serve --demo`'s simulated session (src/node/demo.ts), through its public `startDemo`: the tree it
 * writes is read back by the real exporter (FsStateStore + createApp), so what the demo writes is
 * what the exporter understands (every source valid, a live running session, the numbers the
 * simulation says), and its files are shaped like the real runner's, compared with the 9.x and 5.46
 * fixtures (test/fixtures/, captured from run.sh) rather than with a copy of themselves. The step
 * timer is captured (a spied `setInterval`), so no test waits for it: every step is taken by hand.
 */
import { existsSync } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join, sep } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createApp } from '../../src/app.js';
import { parseConfig } from '../../src/config.js';
import { startDemo, type DemoSession } from '../../src/node/demo.js';
import { FsStateStore } from '../../src/stores/fs.js';
import { FIXTURES } from '../support/loki-tree.js';

const sessions: DemoSession[] = [];
const stores: FsStateStore[] = [];
afterEach(async () => {
  await Promise.all(stores.splice(0).map((s) => s.close()));
  await Promise.all(sessions.splice(0).map((s) => s.stop()));
  vi.restoreAllMocks();
});

interface Captured {
  readonly callback: () => void;
  readonly ms: number | undefined;
  readonly handle: { unref: ReturnType<typeof vi.fn> };
}

/** `setInterval` and `clearInterval` recorded, never run: the demo's timer is only what the test does with it. */
function captureTimers(): { intervals: Captured[]; cleared: unknown[] } {
  const intervals: Captured[] = [];
  const cleared: unknown[] = [];
  vi.spyOn(globalThis, 'setInterval').mockImplementation(((callback: () => void, ms?: number) => {
    const handle = { unref: vi.fn(() => handle) };
    intervals.push({ callback, ms, handle });
    return handle;
  }) as unknown as typeof setInterval);
  vi.spyOn(globalThis, 'clearInterval').mockImplementation(((handle: unknown) => void cleared.push(handle)) as typeof clearInterval);
  return { intervals, cleared };
}

async function demo(options?: { stepMs?: number }): Promise<DemoSession> {
  const session = await startDemo(options);
  sessions.push(session);
  return session;
}

/** Steps the demo to `tick` (it starts at tick 1). */
async function stepTo(session: DemoSession, tick: number): Promise<void> {
  for (let t = 1; t < tick; t++) await session.step();
}

/** The exporter's /metrics over the demo's tree, as name{labels} → value. */
async function scrape(dir: string): Promise<{ body: string; value: (series: string) => number | undefined; health: () => Promise<unknown> }> {
  const store = new FsStateStore(dir, { watch: false });
  stores.push(store);
  const app = createApp({ store, config: { ...parseConfig({ LOKI_DIR: dir }), demo: true }, log: () => undefined });
  const body = await (await app.request('/metrics')).text();
  const samples = new Map<string, number>();
  for (const line of body.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    samples.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return { body, value: (series) => samples.get(series), health: async () => (await app.request('/health')).json() };
}

const readJson = async (path: string): Promise<unknown> => JSON.parse(await readFile(path, 'utf8'));
const lines = async (path: string): Promise<Record<string, unknown>[]> =>
  (await readFile(path, 'utf8'))
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);

/** Every key path of a JSON value down to `depth` (array elements as `[]`). */
function keyPaths(value: unknown, depth: number, prefix = ''): Set<string> {
  const out = new Set<string>();
  if (depth === 0 || value === null || typeof value !== 'object') return out;
  if (Array.isArray(value)) {
    for (const item of value) for (const p of keyPaths(item, depth, `${prefix}[]`)) out.add(p);
    return out;
  }
  for (const [key, child] of Object.entries(value)) {
    const path = prefix === '' ? key : `${prefix}.${key}`;
    out.add(path);
    for (const p of keyPaths(child, depth - 1, path)) out.add(p);
  }
  return out;
}

/** The string values each key has anywhere in the fixtures' JSON and JSONL files: the runner's vocabulary. */
async function fixtureVocabulary(): Promise<Map<string, Set<string>>> {
  const vocabulary = new Map<string, Set<string>>();
  const visit = (value: unknown): void => {
    if (value === null || typeof value !== 'object') return;
    for (const [key, child] of Object.entries(value)) {
      if (typeof child === 'string') {
        if (!vocabulary.has(key)) vocabulary.set(key, new Set());
        vocabulary.get(key)!.add(child);
      }
      visit(child);
    }
  };
  for (const entry of await readdir(FIXTURES, { recursive: true })) {
    const path = join(FIXTURES, entry);
    if (entry.endsWith('.json')) {
      try {
        visit(await readJson(path));
      } catch {
        // the fixtures of torn and malformed files
      }
    } else if (entry.endsWith('.jsonl')) {
      for (const line of (await readFile(path, 'latin1')).split('\n')) {
        try {
          visit(JSON.parse(line));
        } catch {
          // partial and broken lines
        }
      }
    }
  }
  return vocabulary;
}

/** Every string value under `keys` in `value` that the real runner never writes for that key. */
function unknownWords(value: unknown, vocabulary: Map<string, Set<string>>, keys: readonly string[], where: string): string[] {
  const out: string[] = [];
  const visit = (v: unknown, path: string): void => {
    if (v === null || typeof v !== 'object') return;
    for (const [key, child] of Object.entries(v)) {
      if (typeof child === 'string' && keys.includes(key) && !vocabulary.get(key)?.has(child)) out.push(`${where}: ${path}${key}=${JSON.stringify(child)}`);
      visit(child, `${path}${key}.`);
    }
  };
  visit(value, '');
  return out;
}

const V9 = join(FIXTURES, 'v9-running', '.loki');
const V546 = join(FIXTURES, 'running', '.loki');

describe('startDemo: where it writes', () => {
  it('writes a fresh `.loki` in its own new directory under the system temp dir, never elsewhere, and removes it all on stop', async () => {
    captureTimers();
    const first = await demo();
    const second = await demo();
    expect(basename(first.dir)).toBe('.loki');
    expect(dirname(first.dir).startsWith(tmpdir() + sep)).toBe(true);
    expect(dirname(first.dir)).not.toBe(dirname(second.dir));
    // the directory holds the simulated .loki and nothing else
    expect(await readdir(dirname(first.dir))).toEqual(['.loki']);
    expect((await stat(first.dir)).isDirectory()).toBe(true);

    await first.stop();
    expect(existsSync(dirname(first.dir))).toBe(false);
    expect(existsSync(second.dir)).toBe(true);
    // a second stop (a second signal, or a failed startup after the first) is harmless
    await expect(first.stop()).resolves.toBeUndefined();
  });

  it('has the task queue directory of a real tree (queue/, docs/state-files.md), left for the runner to fill', async () => {
    captureTimers();
    const session = await demo();
    expect((await stat(join(session.dir, 'queue'))).isDirectory()).toBe(true);
    expect(existsSync(join(V546, 'queue'))).toBe(true);
    expect(await readdir(join(session.dir, 'queue'))).toEqual([]);
  });
});

describe('startDemo: what the exporter reads from it', () => {
  it('at once: a running session of this process in its first iteration, every source valid', async () => {
    captureTimers();
    const session = await demo();
    const { value, health } = await scrape(session.dir);
    expect(value('loki_up')).toBe(1);
    expect(value('loki_session_status')).toBe(1);
    expect(value('loki_iteration_current')).toBe(1);
    expect(await health()).toMatchObject({ status: 'ok', up: true });
    const sources = (await health()) as { sources: { source: string; ok: boolean; present: boolean }[] };
    expect(sources.sources.filter((s) => !s.ok)).toEqual([]);
    // what the first step wrote is there, and read
    for (const source of ['dashboard-state.json', 'loki.pid', 'state/agents.json', 'events.jsonl', 'pids']) {
      expect(sources.sources.find((s) => s.source === source), source).toMatchObject({ ok: true, present: true });
    }
    // the file sets of a 9.x tree (the fixture's) are there from the start, empty until written
    const v9 = new FsStateStore(V9, { watch: false });
    stores.push(v9);
    const v9Health = (await (await createApp({ store: v9, config: parseConfig({ LOKI_DIR: V9 }), log: () => undefined }).request('/health')).json()) as typeof sources;
    for (const source of ['proofs', 'metrics/efficiency', 'pids']) {
      expect(v9Health.sources.find((s) => s.source === source), `9.x ${source}`).toMatchObject({ present: true });
      expect(sources.sources.find((s) => s.source === source), source).toMatchObject({ ok: true, present: true });
    }
    // tick 1: two agents, both active; five tasks pending, one in progress
    expect(value('loki_agents_total')).toBe(2);
    expect(value('loki_agents_active')).toBe(2);
    expect(value('loki_tasks_total{status="pending"}')).toBe(5);
    expect(value('loki_tasks_total{status="in_progress"}')).toBe(1);
    expect(value('loki_tasks_total{status="completed"}')).toBe(0);
    expect(value('loki_events_total')).toBe(3);
  });

  it('an iteration every fifth step, each finished one leaving its efficiency file; every seventh fails; receipts every third', async () => {
    captureTimers();
    const session = await demo();
    await stepTo(session, 46); // iteration 10 has just started: 1–9 are finished
    const { value, health } = await scrape(session.dir);
    expect(((await health()) as { sources: { ok: boolean }[] }).sources.every((s) => s.ok)).toBe(true);
    expect(value('loki_session_status')).toBe(1);
    expect(value('loki_iteration_current')).toBe(10);
    expect(value('loki_iterations_total{outcome="completed"}')).toBe(8);
    expect(value('loki_iterations_total{outcome="failed"}')).toBe(1);
    // the dashboard's queues: the finished iterations, the current one in progress
    expect(value('loki_tasks_total{status="completed"}')).toBe(8);
    expect(value('loki_tasks_total{status="failed"}')).toBe(1);
    expect(value('loki_tasks_total{status="in_progress"}')).toBe(1);
    expect(value('loki_tasks_total{status="pending"}')).toBe(2); // 6 - 46 % 7
    // 1 + 46 % 4 agents, 1 + 46 % 3 of them active
    expect(value('loki_agents_total')).toBe(3);
    expect(value('loki_agents_active')).toBe(2);

    const efficiency = (await readdir(join(session.dir, 'metrics/efficiency'))).sort();
    expect(efficiency).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9].map((n) => `iteration-${n}.json`).sort());
    // each model's tokens in the exporter are the sum of its files
    const records = await Promise.all(efficiency.map(async (f) => (await readJson(join(session.dir, 'metrics/efficiency', f))) as Record<string, number | string>));
    for (const model of ['sonnet', 'opus', 'haiku']) {
      const mine = records.filter((r) => r.model === model);
      expect(mine.length, model).toBe(3);
      for (const [type, field] of [['input', 'input_tokens'], ['output', 'output_tokens'], ['cache_read', 'cache_read_tokens'], ['cache_creation', 'cache_creation_tokens']] as const) {
        const sum = mine.reduce((s, r) => s + (r[field] as number), 0);
        expect(value(`loki_model_tokens_total{family="${model}",model="${model}",type="${type}"}`), `${model} ${type}`).toBe(sum);
      }
    }
    // durations of 41 … 49 s
    expect(value('loki_iteration_duration_seconds_count')).toBe(9);
    expect(value('loki_iteration_duration_seconds_sum')).toBe(405);

    // receipts of iterations 3, 6 and 9: one of each verdict, the even one attested
    expect(value('loki_receipts_total')).toBe(3);
    expect(value('loki_receipts_by_verdict{verdict="verified"}')).toBe(1);
    expect(value('loki_receipts_by_verdict{verdict="with_gaps"}')).toBe(1);
    expect(value('loki_receipts_by_verdict{verdict="not_verified"}')).toBe(1);
    expect(value('loki_receipts_by_verdict{verdict="unknown"}')).toBe(0);
    expect(value('loki_receipts_with_provenance{kind="attestation"}')).toBe(1);
    expect(value('loki_receipts_with_provenance{kind="gpg"}')).toBe(0);
    expect((await readdir(join(session.dir, 'proofs'))).sort()).toEqual(['run-demo-3', 'run-demo-6', 'run-demo-9']);
  });

  it('the numbers grow with the iteration, as a real run\'s do: iteration 7 (failed) and 3 exactly', async () => {
    captureTimers();
    const session = await demo();
    await stepTo(session, 36); // iteration 8 starts: 7 is finished
    expect(await readJson(join(session.dir, 'metrics/efficiency/iteration-7.json'))).toEqual({
      iteration: 7,
      model: 'opus',
      phase: 'DEVELOPMENT',
      duration_ms: 47_000,
      provider: 'claude',
      status: 'failed',
      input_tokens: 30_500,
      output_tokens: 6_100,
      cache_read_tokens: 95_000,
      cache_creation_tokens: 8_000,
      cost_usd: 0,
    });
    expect(await readJson(join(session.dir, 'metrics/efficiency/iteration-3.json'))).toMatchObject({ iteration: 3, model: 'sonnet', status: 'completed', duration_ms: 43_000, input_tokens: 24_500 });
    expect(await readJson(join(session.dir, 'proofs/run-demo-6/proof.json'))).toEqual({
      schema_version: '1.1',
      run_id: 'run-demo-6',
      honesty: { headline: 'NOT VERIFIED' },
      verification: { algo: 'sha256', scope: 'integrity', attestation: { kid: 'demo' } },
    });
    expect(await readJson(join(session.dir, 'proofs/run-demo-3/proof.json'))).toEqual({
      schema_version: '1.1',
      run_id: 'run-demo-3',
      honesty: { headline: 'VERIFIED WITH GAPS' },
      verification: { algo: 'sha256', scope: 'integrity' },
    });
  });
});

describe('startDemo: shaped like the real runner\'s files', () => {
  it('loki.pid, the pids/ registry entry of its wrapper and session_start all name this process', async () => {
    captureTimers();
    const session = await demo();
    expect(await readFile(join(session.dir, 'loki.pid'), 'utf8')).toBe(`${process.pid}\n`);
    const entry = (await readJson(join(session.dir, 'pids', `${process.pid}.json`))) as Record<string, unknown>;
    const wrapper = (await readJson(join(V9, 'pids/3999001.json'))) as Record<string, unknown>;
    expect(entry).toMatchObject({ pid: process.pid, ppid: process.ppid, label: wrapper.label, kind: wrapper.kind });
    // `started` in whole seconds, as the runner writes it, and the session's start
    const shape = new RegExp(`^${String(wrapper.started).replace(/\d/g, '\\d')}$`);
    expect(entry.started).toMatch(shape);
    const dashboard = (await readJson(join(session.dir, 'dashboard-state.json'))) as { startedAt: string; timestamp: string };
    expect(Date.parse(String(entry.started))).toBe(Math.floor(Date.parse(dashboard.startedAt) / 1000) * 1000);
    expect(Date.parse(dashboard.timestamp)).toBeGreaterThanOrEqual(Date.parse(dashboard.startedAt));

    const [start] = await lines(join(session.dir, 'events.jsonl'));
    expect(start).toMatchObject({ type: 'session_start', data: { pid: process.pid } });
    expect(Date.parse(String(start!.timestamp))).toBeGreaterThanOrEqual(Date.parse(dashboard.startedAt));
  });

  it('every file\'s fields are fields the runner writes there (9.x and 5.46 fixtures), with values from its vocabulary', async () => {
    captureTimers();
    const session = await demo();
    await stepTo(session, 36);
    const vocabulary = await fixtureVocabulary();
    const words = ['type', 'phase', 'mode', 'provider', 'status', 'kind', 'label', 'model', 'schema_version', 'headline', 'algo', 'scope'];
    const problems: string[] = [];
    const within = (mine: unknown, theirs: unknown[], depth: number, what: string) => {
      const allowed = new Set(theirs.flatMap((t) => [...keyPaths(t, depth)]));
      for (const path of keyPaths(mine, depth)) if (!allowed.has(path)) problems.push(`${what}: ${path}`);
      problems.push(...unknownWords(mine, vocabulary, words, what));
    };
    const v9Efficiency = await Promise.all([1, 2, 3].map((n) => readJson(join(V9, `metrics/efficiency/iteration-${n}.json`))));
    for (const name of await readdir(join(session.dir, 'metrics/efficiency'))) {
      within(await readJson(join(session.dir, 'metrics/efficiency', name)), v9Efficiency, 1, name);
    }
    within(await readJson(join(session.dir, `pids/${process.pid}.json`)), [await readJson(join(V9, 'pids/3999001.json'))], 1, 'pids entry');
    const dashboards = await Promise.all(['v9-running', 'v9-restart', 'running', 'stale'].map((f) => readJson(join(FIXTURES, f, '.loki', 'dashboard-state.json'))));
    within(await readJson(join(session.dir, 'dashboard-state.json')), dashboards, 3, 'dashboard-state.json');
    within(await readJson(join(session.dir, 'state/agents.json')), [await readJson(join(V546, 'state/agents.json'))], 2, 'state/agents.json');
    const v9Proofs = await Promise.all((await readdir(join(V9, 'proofs'))).map((run) => readJson(join(V9, 'proofs', run, 'proof.json'))));
    for (const run of await readdir(join(session.dir, 'proofs'))) {
      // an attestation's content is the signer's; a receipt counts it when it is there
      const { verification, ...rest } = (await readJson(join(session.dir, 'proofs', run, 'proof.json'))) as { verification: Record<string, unknown> };
      const { attestation, ...signed } = verification;
      within({ ...rest, verification: { ...signed, ...(attestation !== undefined ? { attestation: {} } : {}) } }, v9Proofs, 2, run);
    }
    const v9Events = await lines(join(V9, 'events.jsonl'));
    const events = await lines(join(session.dir, 'events.jsonl'));
    for (const event of events) {
      // their data is the demo's own (what it carries differs by event); its words are the runner's
      within({ timestamp: event.timestamp, type: event.type }, v9Events, 1, 'events.jsonl');
      problems.push(...unknownWords(event, vocabulary, words, 'events.jsonl'));
    }
    expect(problems).toEqual([]);
    // every event carries a real time, in order
    const times = events.map((e) => Date.parse(String(e.timestamp)));
    expect(times.every((t) => Number.isFinite(t))).toBe(true);
    expect([...times].sort((a, b) => a - b)).toEqual(times);
    // one tool call per step after the start, an iteration_start per iteration
    expect(events.filter((e) => e.type === 'iteration_start').map((e) => (e.data as { iteration: number }).iteration)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(events.filter((e) => e.type === 'tool_use')).toHaveLength(36);
  });

  it('the queues and agents are identified as the runner\'s are: iteration tasks by `iteration-N`, agents keyed by a unique tool_id', async () => {
    captureTimers();
    const session = await demo();
    await stepTo(session, 41); // iteration 9 starts; 1–8 finished, 7 failed
    const dashboard = (await readJson(join(session.dir, 'dashboard-state.json'))) as { tasks: Record<string, { id: string }[]>; agents: unknown[] };
    const v9 = (await readJson(join(V9, 'dashboard-state.json'))) as { tasks: Record<string, { id: string }[]>; agents: unknown[] };
    // 9.x's status monitor names the iteration under way `iteration-N` (the fixture's iteration 4)
    expect(v9.tasks.inProgress!.map((t) => t.id)).toEqual(['iteration-4']);
    const { value } = await scrape(session.dir);
    expect(dashboard.tasks.inProgress!.map((t) => t.id)).toEqual([`iteration-${value('loki_iteration_current')}`]);
    expect(dashboard.tasks.completed!.map((t) => t.id)).toEqual(['iteration-1', 'iteration-2', 'iteration-3', 'iteration-4', 'iteration-5', 'iteration-6', 'iteration-8']);
    expect(dashboard.tasks.failed!.map((t) => t.id)).toEqual(['iteration-7']);
    // 9.x leaves the dashboard's own agent list empty (agents are in state/agents.json)
    expect(dashboard.agents).toEqual(v9.agents);

    const vocabulary = await fixtureVocabulary();
    const seen = { pending: 0, idle: 0 };
    for (let tick = 41; tick < 48; tick++) {
      // every task is an object with an id of its own, across the queues
      const now = (await readJson(join(session.dir, 'dashboard-state.json'))) as { tasks: Record<string, unknown[]> };
      const tasks = Object.values(now.tasks).flat();
      expect(tasks.every((t) => typeof t === 'object' && t !== null), `tick ${tick}`).toBe(true);
      const ids = tasks.map((t) => (t as { id: unknown }).id);
      expect(ids.every((id) => typeof id === 'string' && id !== ''), `tick ${tick}`).toBe(true);
      expect(new Set(ids).size, `tick ${tick}`).toBe(ids.length);
      seen.pending += now.tasks.pending!.length;
      // docs/state-files.md: agent_id is not unique, tool_id is the key; both always set, and the status one the runner writes
      const agents = (await readJson(join(session.dir, 'state/agents.json'))) as { agent_id: string; tool_id: string; status: string }[];
      expect(agents.every((a) => typeof a.agent_id === 'string' && a.agent_id !== '' && typeof a.tool_id === 'string' && a.tool_id !== ''), `tick ${tick}`).toBe(true);
      expect(new Set(agents.map((a) => a.tool_id)).size, `tick ${tick}`).toBe(agents.length);
      expect(unknownWords(agents, vocabulary, ['status'], `agents at tick ${tick}`)).toEqual([]);
      seen.idle += agents.filter((a) => a.status === 'idle').length;
      await session.step();
    }
    expect(seen.pending).toBeGreaterThan(0);
    expect(seen.idle).toBeGreaterThan(0);
  });

  it('writes whole files through a temporary file and a rename, as run.sh does: no .tmp is left behind', async () => {
    captureTimers();
    const session = await demo();
    await stepTo(session, 12);
    const all = await readdir(session.dir, { recursive: true });
    expect(all.filter((f) => f.endsWith('.tmp'))).toEqual([]);
    expect(all).toContain(join('metrics', 'efficiency', 'iteration-2.json'));
  });
});

describe('startDemo: its timer', () => {
  it('steps every 2 s by default (the real status monitor rewrites its files every ~2–3 s, docs/state-files.md), never keeping the process alive', async () => {
    const { intervals } = captureTimers();
    await demo();
    expect(intervals).toHaveLength(1);
    expect(intervals[0]!.ms).toBeGreaterThanOrEqual(2_000);
    expect(intervals[0]!.ms).toBeLessThanOrEqual(3_000);
    expect(intervals[0]!.handle.unref).toHaveBeenCalledTimes(1);
  });

  it('steps every `stepMs` when given; each tick of the timer is one step; stop clears the timer', async () => {
    const { intervals, cleared } = captureTimers();
    const session = await demo({ stepMs: 250 });
    expect(intervals.map((i) => i.ms)).toEqual([250]);
    const events = join(session.dir, 'events.jsonl');
    const before = (await lines(events)).length;
    intervals[0]!.callback();
    await vi.waitFor(async () => expect((await lines(events)).length).toBe(before + 1));
    expect((await lines(events)).at(-1)).toMatchObject({ type: 'tool_use' });
    await session.stop();
    expect(cleared).toEqual([intervals[0]!.handle]);
  });
});
