/**
 * Issue 10 (security review) against the real Worker in workerd: /health behind the scrape token,
 * per-session write tokens and the session cap, no per-session work for stray requests, times
 * beyond Date's range, and one bad file never blocking a sync.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config.js';
import { runSync } from '../../src/node/sync.js';
import { createRemoteApp } from '../../src/remote-app.js';
import { MemoryObjectStore } from '../support/object-store.js';
import { bytesToBase64, DOCUMENT_PARSERS, emptyDoc, MAX_DATE_MS, MAX_PROBLEM_CHARS, sha256Hex } from '../../src/sync/protocol.js';
import { sessionSyncToken } from '../../src/sync/tokens.js';
import { cleanTrees, materialize } from '../support/loki-tree.js';
import { SCRAPE_TOKEN, startWorker, SYNC_TOKEN, type TestWorker } from '../support/worker.js';

const workers: TestWorker[] = [];
afterEach(cleanTrees);
afterAll(async () => {
  await Promise.all(workers.map((w) => w.dispose()));
});

async function worker(options: Parameters<typeof startWorker>[0] = {}) {
  const w = await startWorker(options);
  workers.push(w);
  return w;
}

async function sync(w: TestWorker, dir: string, session = 'default', token = SYNC_TOKEN) {
  const logs: string[] = [];
  const code = await runSync({ url: w.url, session, dir, token, intervalMs: 1000, once: true, log: (l) => logs.push(l) });
  return { code, logs };
}

const scrape = { Authorization: `Bearer ${SCRAPE_TOKEN}` };
const write = { Authorization: `Bearer ${SYNC_TOKEN}`, 'Content-Type': 'application/json' };
const opsTotal = (ops: Record<string, Record<string, number>>) => Object.values(ops).flatMap((o) => Object.values(o)).reduce((a, b) => a + b, 0);

describe('/health with a scrape token (item 1)', () => {
  it('needs the token unless LOKI_METRICS_HEALTH_PUBLIC=true', async () => {
    const w = await worker({ vars: { LOKI_METRICS_TOKEN: SCRAPE_TOKEN } });
    const dir = await materialize('running', { pid: 'alive', mtimeMs: Date.now() });
    expect((await sync(w, dir)).code).toBe(0);
    const none = await w.fetch('/health');
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toMatch(/^Bearer/);
    const full = (await (await w.fetch('/health', { headers: scrape })).json()) as { status: string; sources: unknown[] };
    expect(full.status).toBe('ok');
    expect(full.sources.length).toBeGreaterThan(0);
  });

  it('with LOKI_METRICS_HEALTH_PUBLIC=true, an unauthenticated probe gets the status only', async () => {
    const w = await worker({ vars: { LOKI_METRICS_TOKEN: SCRAPE_TOKEN, LOKI_METRICS_HEALTH_PUBLIC: 'true' } });
    const dir = await materialize('malformed', { pid: 'alive', mtimeMs: Date.now() });
    expect((await sync(w, dir, 'secret-project')).code).toBe(0);
    for (const headers of [{}, { Authorization: 'Bearer wrong-token-0123456789' }] as Record<string, string>[]) {
      const res = await w.fetch('/health?session=secret-project', { headers });
      expect(res.status).toBe(200);
      expect(await res.text()).toBe('{"status":"degraded"}');
    }
    const full = (await (await w.fetch('/health?session=secret-project', { headers: scrape })).json()) as { status: string; sources: { problem?: string }[] };
    expect(full.status).toBe('degraded');
    expect(full.sources.some((s) => s.problem !== undefined)).toBe(true);
    expect((await w.fetch('/metrics?session=secret-project')).status).toBe(401);
  });

  it('stays open without a scrape token', async () => {
    const w = await worker();
    const body = (await (await w.fetch('/health')).json()) as { status: string; sources: unknown[] };
    expect(body.sources.length).toBeGreaterThan(0);
  });
});

/**
 * Issue 13: the scrape token follows LOKI_METRICS_PATH in the Worker too (real workerd, real R2).
 * The custom path needs it, `/metrics` is no route there, `/targets` (discovery, a storage list)
 * needs it, and requests without it cost no storage operation.
 */
describe('a custom LOKI_METRICS_PATH keeps the token', () => {
  const CUSTOM = '/custom/scrape';
  const WRONG = 'wrong-scrape-token-0123456789';

  it('401 without or with a wrong token, 200 with it; /metrics is a 404; /targets needs the token; no storage work without it', async () => {
    const w = await worker({ vars: { LOKI_METRICS_TOKEN: SCRAPE_TOKEN, LOKI_METRICS_PATH: CUSTOM } });
    const dir = await materialize('running', { pid: 'alive', mtimeMs: Date.now() });
    expect((await sync(w, dir)).code).toBe(0);
    expect((await sync(w, dir, 'other')).code).toBe(0);
    await w.resetOps();

    for (const path of [CUSTOM, `${CUSTOM}?session=default`, `${CUSTOM}?project=other`, `${CUSTOM}?session=never-synced`, '/targets']) {
      for (const method of ['GET', 'HEAD', 'POST']) {
        const none = await w.fetch(path, { method });
        expect({ path, method, status: none.status }).toEqual({ path, method, status: 401 });
        expect(none.headers.get('www-authenticate')).toBe('Bearer realm="loki-metrics"');
        expect(await none.text()).not.toMatch(/loki_|default|other/);
      }
      const wrong = await w.fetch(path, { headers: { Authorization: `Bearer ${WRONG}` } });
      expect({ path, status: wrong.status }).toEqual({ path, status: 401 });
      expect(wrong.headers.get('www-authenticate')).toBe('Bearer error="invalid_token"');
      expect(await wrong.text()).not.toMatch(/loki_|default|other/);
    }
    // A session token is no scrape token on the custom path either.
    const own = await w.fetch(CUSTOM, { headers: { Authorization: `Bearer ${await sessionSyncToken(SYNC_TOKEN, 'default')}` } });
    expect(own.status).toBe(401);
    await own.text();
    // None of that read or listed anything.
    expect(await w.ops()).toEqual({});

    // The old path is no route, with or without the token, and costs nothing either.
    for (const headers of [{}, scrape] as Record<string, string>[]) {
      for (const path of ['/metrics', '/metrics?session=default']) {
        const res = await w.fetch(path, { headers });
        expect({ path, status: res.status }).toEqual({ path, status: 404 });
        expect(await res.text()).toBe(`not found: metrics are at ${CUSTOM}\n`);
      }
    }
    expect(await w.ops()).toEqual({});

    for (const path of [CUSTOM, `${CUSTOM}?session=default`]) {
      const res = await w.fetch(path, { headers: scrape });
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
      expect(await res.text()).toContain('\nloki_up 1\n');
    }
    expect(await (await w.fetch(`${CUSTOM}?project=other`, { headers: scrape })).text()).toContain('\nloki_up 1\n');
    const targets = await w.fetch('/targets', { headers: scrape });
    expect(targets.status).toBe(200);
    const host = new URL(w.url).host;
    expect(await targets.json()).toEqual([
      { targets: [host], labels: { session: 'default', project: 'default', __param_project: 'default' } },
      { targets: [host], labels: { session: 'other', project: 'other', __param_project: 'other' } },
    ]);
  });
});

describe('per-session write tokens and the session cap (item 4)', () => {
  it('a session token writes its own session only; the sync secret writes every session', async () => {
    const w = await worker({ vars: { LOKI_METRICS_TOKEN: SCRAPE_TOKEN } });
    const dir = await materialize('running', { pid: 'alive', mtimeMs: Date.now() });
    const alpha = await sessionSyncToken(SYNC_TOKEN, 'alpha');
    expect(await sync(w, dir, 'alpha', alpha)).toEqual({ code: 0, logs: [] });
    const other = await sync(w, dir, 'beta', alpha);
    expect(other.code).toBe(1);
    expect(other.logs.join('\n')).toMatch(/rejected the sync token \(401\)/);
    for (const session of ['beta', 'default']) {
      const res = await w.fetch(`/ingest/manifest?session=${session}`, { headers: { Authorization: `Bearer ${alpha}` } });
      expect(res.status).toBe(401);
    }
    // No `?session=` is the session `default`, and its own token writes it.
    expect((await w.fetch('/ingest/manifest', { headers: { Authorization: `Bearer ${await sessionSyncToken(SYNC_TOKEN, 'default')}` } })).status).toBe(200);
    expect((await sync(w, dir, 'beta')).code).toBe(0);
    expect((await sync(w, dir, 'alpha')).code).toBe(0);
    // A session token is never a scrape token, and the scrape token never writes.
    expect((await w.fetch('/metrics?session=alpha', { headers: { Authorization: `Bearer ${alpha}` } })).status).toBe(401);
    expect((await w.fetch('/ingest/manifest?session=alpha', { headers: scrape })).status).toBe(401);
    expect(await (await w.fetch('/metrics?session=alpha', { headers: scrape })).text()).toContain('loki_up 1\n');
  });

  it.each([
    ['R2', { r2: true }],
    ['KV', { r2: false, kv: true }],
  ] as const)('%s: refuses a new session beyond LOKI_MAX_SESSIONS with 409; existing sessions keep syncing, without a list', async (_name, bindings) => {
    const w = await worker({ ...bindings, vars: { LOKI_MAX_SESSIONS: '2' } });
    const dir = await materialize('running', { pid: 'alive', mtimeMs: Date.now() });
    expect((await sync(w, dir, 'one')).code).toBe(0);
    expect((await sync(w, dir, 'two')).code).toBe(0);
    const third = await sync(w, dir, 'three');
    expect(third.code).toBe(1);
    expect(third.logs).toEqual([expect.stringMatching(/refused the session \(409\): session limit reached: .*at most 2 sessions \(LOKI_MAX_SESSIONS\)/)]);
    const res = await w.fetch('/ingest?session=four', {
      method: 'POST',
      headers: write,
      body: JSON.stringify({ available: true, pidAlive: false, documents: {}, events: { present: false, lines: 0 } }),
    });
    expect(res.status).toBe(409);
    expect(((await res.json()) as { error: string }).error).toMatch(/session limit reached/);
    expect(await (await w.fetch('/metrics?session=three')).text()).toContain('loki_up 0\n');
    await w.resetOps();
    expect((await sync(w, dir, 'one')).code).toBe(0);
    expect((await sync(w, dir, 'two')).code).toBe(0);
    const ops = await w.ops();
    expect(ops.r2?.list ?? ops.kv?.list ?? 0).toBe(0);
  });
});

describe('stray requests do no per-session work (item 5)', () => {
  it('unknown paths and unauthenticated requests cost no storage operation', async () => {
    const w = await worker({ vars: { LOKI_METRICS_TOKEN: SCRAPE_TOKEN } });
    const dir = await materialize('running', { pid: 'alive', mtimeMs: Date.now() });
    expect((await sync(w, dir)).code).toBe(0);
    await w.resetOps();
    for (let i = 0; i < 20; i++) {
      // Each its own answer: the routes need the token (401), anything else is no route (404).
      const expected: [string, number][] = [
        [`/nope?session=s${i}`, 404],
        [`/metrics?session=s${i}`, 401],
        [`/health?session=s${i}`, 401],
        [`/metrics/x?session=s${i}`, 404],
        ['/favicon.ico', 404],
      ];
      for (const [path, status] of expected) {
        const res = await w.fetch(path);
        expect({ path, status: res.status }).toEqual({ path, status });
        await res.text();
      }
    }
    expect(await w.ops()).toEqual({});
    expect((await w.fetch('/nope', { headers: scrape })).status).toBe(404);
    expect(await w.ops()).toEqual({});
    expect(await (await w.fetch('/metrics', { headers: scrape })).text()).toContain('loki_up 1\n');
    // One session's own reads: its beat, its head and its two large documents (dashboard-state.json, state/agents.json).
    expect(opsTotal(await w.ops())).toBe(4);
  });

  it('cannot push a real session out of the session-app cache', async () => {
    const text = JSON.stringify({ ...emptyDoc(), syncedAtMs: Date.now(), available: true });
    const bucket = new MemoryObjectStore();
    // A session in its format 2 document: read with its etag once it is known.
    bucket.set('sessions/real/state.json', text);
    const etag = bucket.objects.get('sessions/real/state.json')!.etag;
    const loads = () => bucket.calls.filter((c) => c.op === 'get' && c.key === 'sessions/real/state.json').map((c) => ({ session: 'real', ...(c.etag !== undefined ? { etag: c.etag } : {}) }));
    // The same on a custom LOKI_METRICS_PATH (issue 13): its token is checked before any session app is made.
    for (const env of [{}, { LOKI_METRICS_TOKEN: SCRAPE_TOKEN }, { LOKI_METRICS_TOKEN: SCRAPE_TOKEN, LOKI_METRICS_PATH: '/custom/scrape' }] as Record<string, string>[]) {
      bucket.calls.length = 0;
      const path = env.LOKI_METRICS_PATH ?? '/metrics';
      const app = createRemoteApp({ bucket, config: parseConfig({ LOKI_METRICS_CACHE_SECONDS: '0', ...env }), log: () => undefined });
      const headers = 'LOKI_METRICS_TOKEN' in env ? scrape : {};
      expect((await app.request(`${path}?session=real`, { headers })).status).toBe(200);
      // Far more distinct sessions than the cache holds, on paths that are no route (and without the token).
      for (let i = 0; i < 600; i++) expect((await app.request(`/x${i}?session=s${i}`)).status).toBe(404);
      // More than the catalog's 1024 stores too: the etag lives in the session's store, so only
      // once that is dropped would a request that got past the token show as an unconditional read.
      if ('LOKI_METRICS_TOKEN' in env) {
        for (const route of [path, '/health']) for (let i = 0; i < 1100; i++) expect((await app.request(`${route}?session=s${i}`)).status).toBe(401);
      }
      expect((await app.request(`${path}?session=real`, { headers })).status).toBe(200);
      // The second scrape is a conditional read by the same session app: it was never evicted.
      expect(loads()).toEqual([{ session: 'real' }, { session: 'real', etag }]);
      // and nothing but the real session's keys was read
      expect(bucket.calls.every((c) => c.key.startsWith('sessions/real/'))).toBe(true);
    }
  });
});

describe('times beyond Date (item 7)', () => {
  async function ingest(w: TestWorker, mtimeMs: number, session: string) {
    const bytes = new TextEncoder().encode('{"limit": 99}');
    return w.fetch(`/ingest?session=${session}`, {
      method: 'POST',
      headers: write,
      body: JSON.stringify({
        available: true,
        pid: null,
        pidAlive: false,
        documents: { 'metrics/budget.json': { mtimeMs, hash: await sha256Hex(bytes), b64: bytesToBase64(bytes) } },
        events: { present: true, lines: 1, mtimeMs },
      }),
    });
  }

  it('ingest refuses a modification time beyond Date with 422; /health never answers 500', async () => {
    const w = await worker();
    for (const mtimeMs of [1e300, MAX_DATE_MS + 1]) {
      const res = await ingest(w, mtimeMs, 'future');
      expect(res.status).toBe(422);
      expect(((await res.json()) as { error: string }).error).toMatch(/mtimeMs/);
    }
    expect((await ingest(w, MAX_DATE_MS, 'edge')).status).toBe(200);
    for (const session of ['future', 'edge']) {
      const res = await w.fetch(`/health?session=${session}`);
      expect(res.status).toBe(200);
      await res.json();
    }
    const edge = (await (await w.fetch('/health?session=edge')).json()) as { sources: { source: string; modified?: string }[] };
    expect(edge.sources.find((s) => s.source === 'metrics/budget.json')?.modified).toBe(new Date(MAX_DATE_MS).toISOString());
  });
});

describe('one bad file never blocks a sync (item 3)', () => {
  const parsers = DOCUMENT_PARSERS as Record<string, (typeof DOCUMENT_PARSERS)['state/agents.json']>;
  const original = parsers['state/agents.json']!;
  afterEach(() => {
    parsers['state/agents.json'] = original;
  });

  it('a problem longer than the remote accepts is cut to fit, and the heartbeat goes through', async () => {
    const w = await worker();
    const dir = await materialize('running', { pid: 'alive', mtimeMs: Date.now() });
    const long = `agents: ${'very long problem '.repeat(100)}`;
    parsers['state/agents.json'] = () => ({ ok: false, problem: long });
    const first = await sync(w, dir);
    expect(first).toEqual({ code: 0, logs: [] });
    const health = (await (await w.fetch('/health')).json()) as { sources: { source: string; ok: boolean; problem?: string }[] };
    const agents = health.sources.find((s) => s.source === 'state/agents.json')!;
    expect(agents.ok).toBe(false);
    expect(agents.problem!.length).toBeLessThanOrEqual(MAX_PROBLEM_CHARS);
    expect(agents.problem).toMatch(/^agents: very long problem/);
    expect(await (await w.fetch('/metrics')).text()).toContain('loki_up 1\n');
  });

  it('a file the remote refuses (client and remote disagreeing) is stored as bad; the rest syncs', async () => {
    const w = await worker();
    const dir = await materialize('running', { pid: 'alive', mtimeMs: Date.now() });
    expect((await sync(w, dir)).code).toBe(0);
    // A client whose schema accepts what this Worker's refuses (another version).
    parsers['state/agents.json'] = () => ({ ok: true, value: [] });
    await writeFile(join(dir, 'state/agents.json'), '{"not": "agents"}');
    await writeFile(join(dir, 'metrics/efficiency/iteration-6.json'), '{"iteration": 6, "model": "sonnet", "cost_usd": 0.5}');
    const second = await sync(w, dir);
    expect(second.code).toBe(0);
    expect(second.logs).toEqual([expect.stringMatching(/^loki-metrics sync: the remote refused state\/agents\.json: /)]);
    const body = await (await w.fetch('/metrics')).text();
    expect(body).toContain('loki_cost_usd 4.0313\n'); // the other file arrived
    expect(body).toContain('loki_source_ok{source="state/agents.json"} 0\n');
    const health = (await (await w.fetch('/health')).json()) as { sources: { source: string; problem?: string }[] };
    expect(health.sources.find((s) => s.source === 'state/agents.json')?.problem).toMatch(/^refused by the remote: /);
    // Nothing is sent again while the file stays as it is: the next cycle is a plain heartbeat.
    expect(await sync(w, dir)).toEqual({ code: 0, logs: [] });
  });
});
