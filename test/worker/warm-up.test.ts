/**
 * The Worker's startup warm-up (src/worker/warm-up.ts): the code a first request runs is compiled
 * at startup by one pass over a synthetic session in memory — a scrape in each format, a sync
 * (manifest and upload) and a scrape of the result. It must take that whole path (each answer a
 * success, every collector given work, tokens as a deployment has them), stay on its own store and
 * clock, leave nothing behind, and never throw.
 *
 * The remote app it makes is the real one; `createRemoteApp` is wrapped only to see what it was
 * given and each answer (warmUp's result is nothing: it only saves time).
 */
import { afterEach, beforeEach, describe, expect, it, vi, type MockInstance } from 'vitest';
import { createRemoteApp, type RemoteAppDeps } from '../../src/remote-app.js';
import { MemoryObjectStore } from '../../src/stores/memory.js';
import type { StoredObject } from '../../src/stores/object-store.js';
import { beatKey, BeatSchema, docContent, docKey, headKey, HeadSchema, INLINE_DOC_BYTES, parseStored } from '../../src/sync/shards.js';
import { warmUp } from '../../src/worker/warm-up.js';

interface Answer {
  readonly request: string;
  readonly authorization: string | undefined;
  readonly status: number;
  readonly type: string | null;
  readonly body: string;
}

const seen = vi.hoisted(() => ({
  /** Each app made: what it was given, the store's objects as they were then, and its answers. */
  runs: [] as { deps: RemoteAppDeps; initial: Map<string, StoredObject>; answers: Answer[] }[],
  /** Set by a test: thrown by createRemoteApp, or by the app's request number `failAt`. */
  fail: undefined as undefined | { readonly at: 'create' } | { readonly at: number; readonly error: unknown },
}));

vi.mock('../../src/remote-app.js', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../src/remote-app.js')>();
  return {
    ...real,
    createRemoteApp: (deps: RemoteAppDeps) => {
      if (seen.fail?.at === 'create') throw new Error('refused at startup');
      const app = real.createRemoteApp(deps);
      const initial = new Map((deps.bucket as MemoryObjectStore | undefined)?.objects);
      const run = { deps, initial, answers: [] as Answer[] };
      seen.runs.push(run);
      const request = app.request;
      app.request = (async (input: string, init: RequestInit = {}) => {
        const fail = seen.fail;
        if (fail && fail.at === run.answers.length) throw fail.error;
        const headers = new Headers(init.headers);
        const res = await request(input, init);
        run.answers.push({
          request: `${init.method ?? 'GET'} ${input}`,
          authorization: headers.get('authorization') ?? undefined,
          status: res.status,
          type: res.headers.get('content-type'),
          body: await res.clone().text(),
        });
        return res;
      }) as typeof app.request;
      return app;
    },
  };
});

const NOW = 1_800_000_000_000;
const TEXT = 'text/plain; version=0.0.4; charset=utf-8';
const OPENMETRICS = 'application/openmetrics-text; version=1.0.0; charset=utf-8';

let logged: MockInstance[];
beforeEach(() => {
  seen.runs.length = 0;
  seen.fail = undefined;
  logged = (['error', 'warn', 'log', 'info', 'debug'] as const).map((level) => vi.spyOn(console, level).mockImplementation(() => undefined));
});
afterEach(() => {
  vi.restoreAllMocks();
});

async function run(nowMs = NOW) {
  expect(await warmUp(nowMs)).toBeUndefined();
  expect(seen.runs).toHaveLength(1);
  return seen.runs[0]!;
}

/** The sample lines of an exposition (no comments), without the scrape's own duration. */
const samples = (body: string) => body.split('\n').filter((l) => l !== '' && !l.startsWith('#') && !l.startsWith('loki_exporter_scrape_duration_seconds'));

describe('one pass over a synthetic session', () => {
  it('scrapes it in both formats, syncs a change (manifest, then one upload) and scrapes again, each answered with success', async () => {
    const { answers } = await run();
    expect(answers.map(({ request, status, type }) => ({ request, status, type }))).toEqual([
      { request: 'GET /metrics?session=warm-up', status: 200, type: TEXT },
      { request: 'GET /metrics?session=warm-up', status: 200, type: OPENMETRICS },
      { request: 'GET /ingest/manifest?session=warm-up&layout=3', status: 200, type: 'application/json' },
      { request: 'POST /ingest?session=warm-up&layout=3', status: 200, type: 'application/json' },
      { request: 'GET /metrics?session=warm-up', status: 200, type: TEXT },
    ]);
    expect(answers[1]!.body.endsWith('# EOF\n')).toBe(true);
    // The manifest is format 3's: the four documents, each file set with its one bucket in use,
    // and the cadence for R2 (what the synthetic store behaves as).
    const version = `${'a'.repeat(64)}@${NOW}`;
    expect(JSON.parse(answers[2]!.body)).toEqual({
      session: 'warm-up',
      layout: 3,
      syncedAtMs: NOW,
      documents: { 'dashboard-state.json': version, 'loki.pid': version, 'state/agents.json': version, 'pricing.json': version },
      sets: { efficiency: { buckets: [0] }, proofs: { buckets: [0] }, pids: { buckets: [0] }, sessions: { buckets: [0] } },
      cadence: { pushMs: 60_000, heartbeatMs: 300_000, staleMs: 660_000, requestGapMs: 0 },
    });
    expect(JSON.parse(answers[3]!.body)).toEqual({ ok: true, session: 'warm-up', syncedAtMs: NOW, previousSyncedAtMs: NOW });
  });

  it('with tokens as a deployment has them: a scrape token on every scrape, a different sync token on the sync', async () => {
    const { deps, answers } = await run();
    const { token, syncToken } = deps.config;
    expect(token).toMatch(/^.{16,}$/);
    expect(syncToken).toMatch(/^.{16,}$/);
    expect(syncToken).not.toBe(token);
    expect(answers.map((a) => a.authorization)).toEqual([`Bearer ${token}`, `Bearer ${token}`, `Bearer ${syncToken}`, `Bearer ${syncToken}`, `Bearer ${token}`]);
    // no cache between the scrapes: the last one reads the synced change
    expect(deps.config.cacheTtlMs).toBe(0);
    expect(deps.config.budgetLimitUsd).toBe(10);
  });

  it('gives every collector work: tasks, agents, runner, events, cost by model, iterations, receipts, a bad pid entry', async () => {
    const { answers } = await run();
    const first = samples(answers[0]!.body);
    expect(first).toEqual(expect.arrayContaining([
      'loki_up 1',
      'loki_session_status 1',
      'loki_iteration_current 1',
      'loki_tasks_total{status="pending"} 1',
      'loki_tasks_total{status="in_progress"} 1',
      'loki_tasks_total{status="completed"} 64',
      'loki_tasks_total{status="failed"} 0',
      'loki_agents_active 1',
      'loki_agents_total 1',
      'loki_events_total 10',
      'loki_uptime_seconds 60',
      'loki_budget_limit_usd 10',
      'loki_budget_exceeded 0',
      'loki_cost_usd 0.006003',
      'loki_model_tokens_total{family="sonnet",model="claude-sonnet-4",type="input"} 1000',
      'loki_model_tokens_total{family="sonnet",model="claude-sonnet-4",type="output"} 200',
      'loki_model_tokens_total{family="sonnet",model="claude-sonnet-4",type="cache_read"} 10',
      'loki_iterations_total{outcome="completed"} 1',
      'loki_iterations_total{outcome="failed"} 0',
      'loki_iteration_duration_seconds_sum 61',
      'loki_receipts_total 1',
      'loki_receipts_by_verdict{verdict="verified"} 1',
      'loki_receipts_with_provenance{kind="attestation"} 1',
      'loki_last_sync_timestamp_seconds 1800000000',
    ]));
    // Every source read fine but the one bad pid entry (the problem path runs too).
    const sources = first.filter((l) => l.startsWith('loki_source_ok{'));
    expect(sources.filter((l) => l.endsWith(' 0'))).toEqual(['loki_source_ok{source="pids"} 0']);
    expect(sources.length).toBeGreaterThan(10);
    for (const source of ['dashboard-state.json', 'loki.pid', 'state/agents.json', 'pricing.json', 'metrics/efficiency', 'events.jsonl', 'proofs', 'pids']) {
      expect(first).toContain(`loki_source_mtime_seconds{source="${source}"} 1800000000`);
    }
    // The OpenMetrics scrape is the same state.
    const om = samples(answers[1]!.body);
    expect(om).toEqual(expect.arrayContaining(first.filter((l) => !l.startsWith('loki_iteration_duration_seconds_'))));
  });

  it('the upload is stored and the last scrape reads it: a failed iteration, its tokens, the budget file, one more event line', async () => {
    const { answers } = await run();
    const [before, after] = [samples(answers[0]!.body), samples(answers[4]!.body)];
    expect(after).toEqual(expect.arrayContaining([
      'loki_up 1',
      'loki_iterations_total{outcome="completed"} 1',
      'loki_iterations_total{outcome="failed"} 1',
      'loki_model_tokens_total{family="sonnet",model="claude-sonnet-4",type="input"} 1010',
      'loki_iteration_duration_seconds_count 2',
      'loki_events_total 11',
      'loki_source_ok{source="metrics/budget.json"} 1',
      'loki_source_mtime_seconds{source="metrics/budget.json"} 1800000000',
      'loki_budget_limit_usd 10',
      // The upload's events carry no iteration: it is read from the dashboard's tasks (iteration-0 … iteration-63).
      'loki_iteration_current 63',
    ]));
    expect(before).not.toContain('loki_source_mtime_seconds{source="metrics/budget.json"} 1800000000');
  });

  it('runs on the clock it is given, not the wall clock: a session synced "now" is running', async () => {
    const past = 1_000_000_000_000;
    const { answers } = await run(past);
    for (const i of [0, 4]) {
      expect(samples(answers[i]!.body)).toEqual(expect.arrayContaining(['loki_up 1', 'loki_session_status 1', 'loki_last_sync_timestamp_seconds 1000000000']));
    }
    expect(JSON.parse(answers[3]!.body)).toMatchObject({ ok: true, syncedAtMs: past, previousSyncedAtMs: past });
  });

  it('leaves its session whole to a reader: every source present, the one bad pid entry named with its problem', async () => {
    const { deps } = await run();
    // A new app over the store the pass left (what /health says of the synthetic session).
    const app = createRemoteApp(deps);
    const health = (await (await app.request('/health?session=warm-up', { headers: { Authorization: `Bearer ${deps.config.token}` } })).json()) as {
      status: string;
      sources: { source: string; ok: boolean; present: boolean; problem?: string }[];
    };
    expect(health.status).toBe('degraded');
    expect(health.sources.filter((s) => !s.ok).map((s) => s.source)).toEqual(['pids']);
    const bySource = new Map(health.sources.map((s) => [s.source, s]));
    for (const source of ['dashboard-state.json', 'loki.pid', 'state/agents.json', 'pricing.json', 'metrics/budget.json', 'events.jsonl', 'metrics/efficiency', 'proofs', 'pids', 'sessions']) {
      const { ok, present, problem } = bySource.get(source) ?? {};
      expect({ source, ok, present, problem }).toEqual({ source, ok: source !== 'pids', present: true, problem: source === 'pids' ? '1 bad file(s): 4242.json: warm-up: a bad entry' : undefined });
    }
  });
});

describe('the synthetic session, as format 3 stores it', () => {
  const SESSION = 'warm-up';

  it('a finished head (no move from format 2 under way) whose documents are laid out as a sync lays them out: over INLINE_DOC_BYTES in their own object, smaller ones inline', async () => {
    const { initial } = await run();
    const head = parseStored(HeadSchema, initial.get(headKey(SESSION)) ?? null)!;
    expect(head).toBeDefined();
    expect(head.filling).toBeUndefined();
    const large: string[] = [];
    for (const [name, entry] of Object.entries(head.docs)) {
      if (entry.t !== undefined) {
        expect({ name, inline: new TextEncoder().encode(entry.t).length <= INLINE_DOC_BYTES }).toEqual({ name, inline: true });
        continue;
      }
      const content = docContent(initial.get(docKey(SESSION, entry.g!)) ?? null, entry.g!);
      expect({ name, stored: content !== undefined, large: (content?.length ?? 0) > INLINE_DOC_BYTES }).toEqual({ name, stored: true, large: true });
      large.push(name);
    }
    // a running session's dashboard-state.json is the large one
    expect(large).toEqual(['dashboard-state.json']);
  });

  it('its beat is what a current sync client writes for a live runner: decided by the client, alive, started before the sync, events present; so is the upload’s', async () => {
    const { deps, initial } = await run();
    const before = parseStored(BeatSchema, initial.get(beatKey(SESSION)) ?? null)!;
    expect(before).toMatchObject({ available: true, pid: 4242, pidAlive: true, runner: { decided: true, alive: true, pid: 4242 }, events: { present: true } });
    expect(before.runner!.startedMs).toBeLessThan(before.syncedAtMs);
    const after = parseStored(BeatSchema, await deps.bucket!.get(beatKey(SESSION)))!;
    expect(after).toMatchObject({ available: true, pid: 4242, pidAlive: true, runner: { decided: true, alive: true, pid: 4242 }, events: { present: true } });
  });
});

describe('nothing outside it', () => {
  it('uses a store of its own each time, no binding, no network, no log line; a second pass starts from scratch', async () => {
    const fetch = vi.spyOn(globalThis, 'fetch');
    await warmUp(NOW);
    await warmUp(NOW);
    expect(seen.runs).toHaveLength(2);
    const [a, b] = seen.runs as [(typeof seen.runs)[0], (typeof seen.runs)[0]];
    expect(a.deps.bucket).toBeInstanceOf(MemoryObjectStore);
    expect(b.deps.bucket).toBeInstanceOf(MemoryObjectStore);
    expect(b.deps.bucket).not.toBe(a.deps.bucket);
    // The second pass saw the synthetic session as made, not the first pass's upload.
    expect(samples(b.answers[0]!.body)).toEqual(samples(a.answers[0]!.body));
    expect(b.answers.map((x) => x.status)).toEqual([200, 200, 200, 200, 200]);
    expect(fetch).not.toHaveBeenCalled();
    for (const spy of logged) expect(spy).not.toHaveBeenCalled();
  });

  it('holds only the synthetic session (one name), the sync’s upload within it', async () => {
    const { deps } = await run();
    const keys = [...(deps.bucket as MemoryObjectStore).objects.keys()];
    expect(keys.length).toBeGreaterThan(2);
    // Every key names the session `warm-up` and no other (the registry of sessions aside).
    for (const key of keys.filter((k) => !k.startsWith('registry/'))) expect(key.split('/')).toContain('warm-up');
  });
});

describe('never throws', () => {
  it('when the app cannot be made', async () => {
    seen.fail = { at: 'create' };
    await expect(warmUp(NOW)).resolves.toBeUndefined();
    expect(seen.runs).toEqual([]);
  });

  it.each([0, 2, 3, 4])('when request %i fails (an Error or anything else), and stops there', async (at) => {
    for (const error of [new Error('refused'), 'refused']) {
      seen.runs.length = 0;
      seen.fail = { at, error };
      await expect(warmUp(NOW)).resolves.toBeUndefined();
      expect(seen.runs[0]!.answers).toHaveLength(at);
    }
  });
});
