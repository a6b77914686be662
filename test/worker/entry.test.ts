/**
 * The Worker's entry (src/worker/index.ts) in process, through its public `fetch(request, env, ctx)`
 * as the runtime calls it, with in-memory R2 and KV bindings that behave like Cloudflare's
 * (test/bench/bindings.ts: the public binding API, every call counted). The real sync client
 * (`runSync`) pushes real trees to it through an injected `fetch`. This is what `npm run mutation`
 * runs against src/worker/index.ts (test/worker/index.test.ts runs the bundle in workerd, a child
 * process no mutant reaches).
 *
 * The rules the entry holds: which binding is used (R2, else KV, else none: scrapes say `loki_up 0`
 * and ingest refuses in one line), the env's string variables as the config (secrets from the env
 * only, never from the process), the revision label, one app per env object (the same env keeps
 * its collectors' memory; another env gets its own, so a rotated token is enforced at once), and a
 * failure as a one-line 500, never a stack.
 */
import { afterEach, beforeEach, describe, expect, it, vi, type MockInstance } from 'vitest';
import { runSync } from '../../src/node/sync.js';
import { CADENCE_DEFAULTS, KV_REQUEST_GAP_MS } from '../../src/sync/cadence.js';
import worker from '../../src/worker/index.js';
import { MemoryKV, MemoryR2 } from '../bench/bindings.js';
import { cleanTrees, materialize } from '../support/loki-tree.js';
import { comparableSamples, nodeMetrics } from '../support/node-metrics.js';

const BASE = 'https://worker.test';
const SYNC_TOKEN = 'sync-write-token-0123456789';
const SCRAPE_TOKEN = 'scrape-read-token-0123456789';
const scrapeAuth = { Authorization: `Bearer ${SCRAPE_TOKEN}` };
const syncAuth = { Authorization: `Bearer ${SYNC_TOKEN}` };

const realFetch = globalThis.fetch;
/** The Worker's log (console.error): captured, not printed. */
let logged: MockInstance<typeof console.error>;
beforeEach(() => {
  logged = vi.spyOn(console, 'error').mockImplementation(() => undefined);
});
afterEach(async () => {
  globalThis.fetch = realFetch;
  vi.useRealTimers();
  vi.unstubAllEnvs();
  vi.restoreAllMocks();
  await cleanTrees();
});

/** What the runtime hands `fetch` as its third argument (the entry does not use it). */
const ctx = { waitUntil: () => undefined, passThroughOnException: () => undefined, props: {} };
/**
 * The bindings and variables as the runtime hands them over (the doubles implement Cloudflare's
 * binding API, wider than the slice the entry's `Env` names).
 */
type Env = Record<string, unknown>;
/** The default export as the runtime calls it: request, env, execution context. */
const entry = worker as unknown as { fetch(request: Request, env: Env, context: typeof ctx): Promise<Response> };

/** One request to the entry, as the runtime makes it. */
function call(env: Env, path: string, init?: RequestInit): Promise<Response> {
  return entry.fetch(new Request(`${BASE}${path}`, init), env, ctx);
}

async function text(env: Env, path: string, init?: RequestInit): Promise<string> {
  return (await call(env, path, init)).text();
}

/** One cycle of the real sync client, its requests answered by the entry with `env`. */
async function sync(env: Env, dir: string, session = 'default', token = SYNC_TOKEN): Promise<{ code: number; logs: string[] }> {
  const logs: string[] = [];
  globalThis.fetch = ((input: RequestInfo | URL, init?: RequestInit) => entry.fetch(new Request(input, init), env, ctx)) as typeof fetch;
  try {
    // requestGapMs 0: KV's pause between a push's requests would only make the test slower.
    const code = await runSync({ url: BASE, session, dir, token, intervalMs: 1000, once: true, requestGapMs: 0, log: (l) => logs.push(l) });
    return { code, logs };
  } finally {
    globalThis.fetch = realFetch;
  }
}

async function synced(env: Env, session = 'default', fixture = 'running'): Promise<string> {
  const dir = await materialize(fixture, { pid: 'alive', mtimeMs: Date.now() });
  expect(await sync(env, dir, session)).toEqual({ code: 0, logs: [] });
  return dir;
}

/** A sample's value in an exposition (a name without labels). */
const value = (body: string, name: string) => new RegExp(`^${name} (\\S+)$`, 'm').exec(body)?.[1];
const total = (counts: Record<string, number>) => Object.values(counts).reduce((a, b) => a + b, 0);
const tokens = { LOKI_SYNC_TOKEN: SYNC_TOKEN, LOKI_METRICS_TOKEN: SCRAPE_TOKEN };

describe('the storage binding', () => {
  it('R2 (LOKI_STATE_BUCKET): a synced tree scrapes sample for sample as the Node exporter serves it', async () => {
    const r2 = new MemoryR2();
    const env: Env = { LOKI_STATE_BUCKET: r2, ...tokens };
    const dir = await synced(env, 'laptop', 'v9-running');
    const body = await text(env, '/metrics?session=laptop', { headers: scrapeAuth });
    expect(body).toContain('\nloki_up 1\n');
    expect(comparableSamples(body)).toEqual(comparableSamples(await nodeMetrics(dir)));
    expect(comparableSamples(body).length).toBeGreaterThan(20);
    expect(r2.entries().map((e) => e.key)).toContain('sessions/laptop/beat.json');
  });

  it('KV (LOKI_STATE_KV) when no bucket is bound: the same output, stored in KV', async () => {
    const kv = new MemoryKV();
    const env: Env = { LOKI_STATE_KV: kv, ...tokens };
    const dir = await synced(env, 'laptop', 'v9-running');
    const body = await text(env, '/metrics?session=laptop', { headers: scrapeAuth });
    expect(body).toContain('\nloki_up 1\n');
    expect(comparableSamples(body)).toEqual(comparableSamples(await nodeMetrics(dir)));
    expect(kv.entries().map((e) => e.key)).toContain('sessions/laptop/beat.json');
  });

  it('R2 when both are bound: KV is never touched, and clients are asked for R2’s cadence', async () => {
    const r2 = new MemoryR2();
    const kv = new MemoryKV();
    const env: Env = { LOKI_STATE_BUCKET: r2, LOKI_STATE_KV: kv, ...tokens };
    await synced(env);
    expect(await text(env, '/metrics', { headers: scrapeAuth })).toContain('\nloki_up 1\n');
    const manifest = (await (await call(env, '/ingest/manifest?layout=3', { headers: syncAuth })).json()) as { cadence: unknown };
    expect(manifest.cadence).toMatchObject({ ...CADENCE_DEFAULTS.r2, requestGapMs: 0 });
    expect(r2.entries().length).toBeGreaterThan(0);
    expect(kv.entries()).toEqual([]);
    expect(total(kv.ops().byMethod)).toBe(0);
  });

  it('KV’s cadence with KV alone: pushes further apart, a pause between a push’s requests', async () => {
    const env: Env = { LOKI_STATE_KV: new MemoryKV(), ...tokens };
    const manifest = (await (await call(env, '/ingest/manifest?layout=3', { headers: syncAuth })).json()) as { cadence: unknown };
    expect(manifest.cadence).toMatchObject({ ...CADENCE_DEFAULTS.kv, requestGapMs: KV_REQUEST_GAP_MS });
  });

  it('neither: scrapes answer loki_up 0 and ingest refuses with one line saying what to bind (no stack)', async () => {
    const env: Env = { ...tokens };
    const scrape = await call(env, '/metrics', { headers: scrapeAuth });
    expect(scrape.status).toBe(200);
    expect(await scrape.text()).toContain('\nloki_up 0\n');
    for (const [path, init] of [
      ['/ingest/manifest?layout=3', { headers: syncAuth }],
      ['/ingest?layout=3', { method: 'POST', headers: { ...syncAuth, 'Content-Type': 'application/json' }, body: JSON.stringify({ available: true, pidAlive: false, documents: {}, events: { present: false, lines: 0 } }) }],
    ] as const) {
      const res = await call(env, path, init);
      expect(res.status).toBe(503);
      expect(await res.json()).toEqual({ error: 'no R2 bucket or KV namespace is bound' });
    }
    // The sync client says so in one line and stops.
    const dir = await materialize('running', { pid: 'alive', mtimeMs: Date.now() });
    const result = await sync(env, dir);
    expect(result.code).toBe(1);
    expect(result.logs).toEqual([expect.stringMatching(/HTTP 503: no R2 bucket or KV namespace is bound$/)]);
    expect(logged.mock.calls.flat().join('\n')).not.toMatch(/\n\s+at /);
  });
});

describe('the env’s variables are the config', () => {
  it('LOKI_METRICS_TOKEN guards the scrape side, LOKI_SYNC_TOKEN the write side; neither opens the other', async () => {
    const env: Env = { LOKI_STATE_BUCKET: new MemoryR2(), ...tokens };
    await synced(env);
    expect((await call(env, '/metrics')).status).toBe(401);
    expect((await call(env, '/metrics', { headers: syncAuth })).status).toBe(401);
    expect((await call(env, '/targets')).status).toBe(401);
    expect(await text(env, '/metrics', { headers: scrapeAuth })).toContain('\nloki_up 1\n');
    expect((await call(env, '/ingest/manifest?layout=3')).status).toBe(401);
    expect((await call(env, '/ingest/manifest?layout=3', { headers: scrapeAuth })).status).toBe(401);
    expect((await call(env, '/ingest/manifest?layout=3', { headers: syncAuth })).status).toBe(200);
  });

  it('secrets come from the env only: the process environment is never read', async () => {
    vi.stubEnv('LOKI_METRICS_TOKEN', SCRAPE_TOKEN);
    vi.stubEnv('LOKI_SYNC_TOKEN', SYNC_TOKEN);
    vi.stubEnv('LOKI_MAX_ITERATIONS', 'not a number');
    const env: Env = { LOKI_STATE_BUCKET: new MemoryR2() };
    // No scrape token in the env: /metrics is open, and /targets refused (it would list every session).
    expect(await text(env, '/metrics')).toContain('\nloki_up 0\n');
    expect((await call(env, '/targets', { headers: scrapeAuth })).status).toBe(403);
    // No sync token in the env: ingest is off, whatever token is presented.
    const res = await call(env, '/ingest/manifest?layout=3', { headers: syncAuth });
    expect(res.status).toBe(503);
    expect(((await res.json()) as { error: string }).error).toMatch(/set the LOKI_SYNC_TOKEN secret/);
  });

  it('a binding or a JSON object is no setting: as if unset, never a 500', async () => {
    const env: Env = { LOKI_STATE_BUCKET: new MemoryR2(), ...tokens, LOKI_METRICS_REVISION: { sha: 'abc' }, LOKI_METRICS_PATH: { path: '/x' }, LOKI_MAX_ITERATIONS: [5] };
    const res = await call(env, '/metrics', { headers: scrapeAuth });
    expect(res.status).toBe(200);
    const body = await res.text();
    expect(body).toMatch(/^loki_exporter_build_info\{.*revision="unknown".*\} 1$/m);
    expect(body).toMatch(/^loki_iteration_max 1000$/m);
  });

  it("wrangler.toml's numbers and booleans are settings (`LOKI_MAX_ITERATIONS = 5`), as their strings are", async () => {
    const env: Env = { LOKI_STATE_BUCKET: new MemoryR2(), ...tokens, LOKI_MAX_ITERATIONS: 5, LOKI_METRICS_REVISION: 7 };
    const body = await (await call(env, '/metrics', { headers: scrapeAuth })).text();
    expect(body).toMatch(/^loki_iteration_max 5$/m);
    expect(body).toMatch(/^loki_exporter_build_info\{.*revision="7".*\} 1$/m);
    // A boolean reaches parseConfig as its string, which judges it like any other value.
    const bad = await call({ LOKI_STATE_BUCKET: new MemoryR2(), ...tokens, LOKI_MAX_ITERATIONS: true }, '/metrics', { headers: scrapeAuth });
    expect(bad.status).toBe(500);
    expect(await bad.text()).toMatch(/^loki-metrics: .*LOKI_MAX_ITERATIONS.*\n$/);
  });

  it.each([
    ['0123abc', '0123abc'],
    ['  0123abc\n', '0123abc'],
    ['   ', 'unknown'],
    [undefined, 'unknown'],
  ])('LOKI_METRICS_REVISION %j is the build_info revision %j', async (revision, label) => {
    const env: Env = { LOKI_STATE_BUCKET: new MemoryR2(), ...(revision !== undefined ? { LOKI_METRICS_REVISION: revision } : {}) };
    const body = await text(env, '/metrics');
    const info = body.split('\n').filter((l) => l.startsWith('loki_exporter_build_info{'));
    expect(info).toHaveLength(1);
    expect(info[0]).toContain(`revision="${label}"`);
  });

  it('LOKI_METRICS_PATH moves the scrape route, LOKI_BUDGET_LIMIT and LOKI_MAX_ITERATIONS reach the collector', async () => {
    const env: Env = { LOKI_STATE_BUCKET: new MemoryR2(), ...tokens, LOKI_METRICS_PATH: '/custom/scrape', LOKI_BUDGET_LIMIT: '12.5', LOKI_MAX_ITERATIONS: '77' };
    await synced(env);
    expect((await call(env, '/metrics', { headers: scrapeAuth })).status).toBe(404);
    const body = await text(env, '/custom/scrape', { headers: scrapeAuth });
    expect(body).toContain('\nloki_up 1\n');
    expect(value(body, 'loki_iteration_max')).toBe('77');
    // The session's own metrics/budget.json says 25; a session without one gets the variable's.
    expect(value(body, 'loki_budget_limit_usd')).toBe('25');
    expect(value(await text(env, '/custom/scrape?session=nobody', { headers: scrapeAuth }), 'loki_budget_limit_usd')).toBe('12.5');
  });

  it('LOKI_MAX_SESSIONS caps the sessions: one more is refused with 409', async () => {
    const env: Env = { LOKI_STATE_BUCKET: new MemoryR2(), ...tokens, LOKI_MAX_SESSIONS: '1' };
    await synced(env, 'one');
    const dir = await materialize('running', { pid: 'alive', mtimeMs: Date.now() });
    const second = await sync(env, dir, 'two');
    expect(second.code).toBe(1);
    expect(second.logs).toEqual([expect.stringMatching(/refused the session \(409\): session limit reached: .*at most 1 session/)]);
    expect((await sync(env, dir, 'one')).code).toBe(0);
  });

  it('LOKI_SYNC_PUSH_SECONDS and LOKI_SYNC_HEARTBEAT_SECONDS are the cadence clients are asked for', async () => {
    const env: Env = { LOKI_STATE_KV: new MemoryKV(), ...tokens, LOKI_SYNC_PUSH_SECONDS: '5', LOKI_SYNC_HEARTBEAT_SECONDS: '7' };
    const manifest = (await (await call(env, '/ingest/manifest?layout=3', { headers: syncAuth })).json()) as { cadence: unknown };
    expect(manifest.cadence).toEqual({ pushMs: 5_000, heartbeatMs: 7_000, staleMs: 2 * 7_000 + 60_000, requestGapMs: KV_REQUEST_GAP_MS });
  });

  it('LOKI_SYNC_STALE_SECONDS: a session with no sync for longer reads as stopped', async () => {
    // The clock stands still until moved (the app reads the clock it finds when it is made).
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() });
    const r2 = new MemoryR2();
    const strict: Env = { LOKI_STATE_BUCKET: r2, ...tokens, LOKI_SYNC_STALE_SECONDS: '5', LOKI_METRICS_CACHE_SECONDS: '0' };
    const lenient: Env = { LOKI_STATE_BUCKET: r2, ...tokens, LOKI_METRICS_CACHE_SECONDS: '0' };
    await synced(strict);
    const status = async (env: Env) => value(await text(env, '/metrics', { headers: scrapeAuth }), 'loki_session_status');
    vi.setSystemTime(Date.now() + 5_000);
    expect(await status(strict)).toBe('1');
    vi.setSystemTime(Date.now() + 1);
    expect(await status(strict)).toBe('0');
    // The default (two of R2's heartbeats and a minute) is far off yet.
    expect(await status(lenient)).toBe('1');
  });

  it('a bad variable answers 500 with one line naming it, on every route, and never the secret given', async () => {
    const bad: Env = { LOKI_STATE_BUCKET: new MemoryR2(), LOKI_SYNC_TOKEN: SYNC_TOKEN, LOKI_MAX_ITERATIONS: 'lots' };
    for (const path of ['/metrics', '/health', '/ingest/manifest?layout=3', '/nope']) {
      const res = await call(bad, path, { headers: syncAuth });
      expect({ path, status: res.status }).toEqual({ path, status: 500 });
      expect(await res.text()).toBe('loki-metrics: invalid LOKI_MAX_ITERATIONS "lots": must be a whole number from 1 to 1000000000\n');
    }
    const secret: Env = { LOKI_STATE_BUCKET: new MemoryR2(), LOKI_METRICS_TOKEN: 'short-secret' };
    const res = await call(secret, '/metrics');
    expect(res.status).toBe(500);
    const body = await res.text();
    expect(body).toMatch(/^loki-metrics: invalid LOKI_METRICS_TOKEN: [^\n]+\n$/);
    expect(body).not.toContain('short-secret');
  });
});

describe('one app per env object (per isolate)', () => {
  it('the same env keeps its app: a repeated scrape is one conditional read', async () => {
    const r2 = new MemoryR2();
    const env: Env = { LOKI_STATE_BUCKET: r2, ...tokens, LOKI_METRICS_CACHE_SECONDS: '0' };
    await synced(env);
    r2.reset();
    expect(await text(env, '/metrics', { headers: scrapeAuth })).toContain('\nloki_up 1\n');
    // the beat, the head and the two documents over 1 KiB
    expect(r2.ops().byMethod).toEqual({ get: 4 });
    for (let i = 0; i < 3; i++) {
      r2.reset();
      expect(await text(env, '/metrics', { headers: scrapeAuth })).toContain('\nloki_up 1\n');
      expect(r2.ops().byMethod).toEqual({ get: 1 });
    }
  });

  it('LOKI_METRICS_CACHE_SECONDS is that app’s cache: a scrape within it reads nothing', async () => {
    const r2 = new MemoryR2();
    const env: Env = { LOKI_STATE_BUCKET: r2, ...tokens, LOKI_METRICS_CACHE_SECONDS: '3600' };
    await synced(env);
    const first = await text(env, '/metrics', { headers: scrapeAuth });
    r2.reset();
    expect(comparableSamples(await text(env, '/metrics', { headers: scrapeAuth }))).toEqual(comparableSamples(first));
    expect(r2.ops().byMethod).toEqual({});
  });

  it('another env object gets its own app: a rotated token is enforced at once, the old one refused (fail closed)', async () => {
    const r2 = new MemoryR2();
    const before: Env = { LOKI_STATE_BUCKET: r2, ...tokens };
    await synced(before);
    const rotated = { Authorization: 'Bearer rotated-scrape-token-0123456789' };
    const rotatedSync = { Authorization: 'Bearer rotated-sync-token-0123456789' };
    const after: Env = { ...before, LOKI_METRICS_TOKEN: 'rotated-scrape-token-0123456789', LOKI_SYNC_TOKEN: 'rotated-sync-token-0123456789' };
    expect(await text(before, '/metrics', { headers: scrapeAuth })).toContain('\nloki_up 1\n');
    expect((await call(after, '/metrics', { headers: scrapeAuth })).status).toBe(401);
    expect((await call(after, '/ingest/manifest?layout=3', { headers: syncAuth })).status).toBe(401);
    expect(await text(after, '/metrics', { headers: rotated })).toContain('\nloki_up 1\n');
    expect((await call(after, '/ingest/manifest?layout=3', { headers: rotatedSync })).status).toBe(200);
    // and back: each env is answered with its own config, never the other's
    expect((await call(before, '/metrics', { headers: rotated })).status).toBe(401);
    expect((await call(before, '/metrics', { headers: scrapeAuth })).status).toBe(200);
    // A bad env after a good one is refused, not served by the good one's app.
    expect((await call({ ...before, LOKI_METRICS_CACHE_SECONDS: 'x' }, '/metrics', { headers: scrapeAuth })).status).toBe(500);
  });

  it('another env object over other storage reads that storage, not the first one’s', async () => {
    const a: Env = { LOKI_STATE_BUCKET: new MemoryR2(), ...tokens };
    const b: Env = { LOKI_STATE_BUCKET: new MemoryR2(), ...tokens };
    await synced(a);
    expect(await text(a, '/metrics', { headers: scrapeAuth })).toContain('\nloki_up 1\n');
    expect(await text(b, '/metrics', { headers: scrapeAuth })).toContain('\nloki_up 0\n');
    expect(await text(a, '/metrics', { headers: scrapeAuth })).toContain('\nloki_up 1\n');
  });
});

describe('failures', () => {
  /** An R2 bucket whose reads fail with `reason`. */
  function failing(reason: unknown): MemoryR2 {
    const r2 = new MemoryR2();
    r2.get = () => Promise.reject(reason);
    return r2;
  }

  it('a storage error is a 500 with no detail and no stack; the detail goes to the log', async () => {
    const env: Env = { LOKI_STATE_BUCKET: failing(new Error('R2 is down at /internal/host')), ...tokens };
    const res = await call(env, '/ingest/manifest?layout=3', { headers: syncAuth });
    expect(res.status).toBe(500);
    expect(await res.json()).toEqual({ error: 'internal error' });
    expect(logged.mock.calls.flat().join('\n')).toContain('R2 is down at /internal/host');
  });

  it('something thrown that is no Error is a one-line 500 that does not repeat it', async () => {
    const env: Env = { LOKI_STATE_BUCKET: failing('secret detail'), ...tokens };
    const res = await call(env, '/ingest/manifest?layout=3', { headers: syncAuth });
    expect(res.status).toBe(500);
    const body = await res.text();
    expect(body).toMatch(/^loki-metrics: \S[^\n]*\n$/);
    expect(body).not.toMatch(/secret detail|undefined/);
  });
});

describe('the warm-up at startup', () => {
  it('leaves nothing a request sees: its session is not in a fresh env’s storage, nor listed', async () => {
    const r2 = new MemoryR2();
    const env: Env = { LOKI_STATE_BUCKET: r2, ...tokens };
    expect(await text(env, '/metrics?session=warm-up', { headers: scrapeAuth })).toContain('\nloki_up 0\n');
    expect(await (await call(env, '/targets', { headers: scrapeAuth })).json()).toEqual([]);
    expect(r2.entries()).toEqual([]);
  });
});
