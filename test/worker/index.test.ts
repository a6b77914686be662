/**
 * The Worker in real workerd with real R2/KV (Miniflare): sync → scrape equality with the Node
 * server, storage operations per scrape, multi-session, staleness, auth, bad uploads, KV-only.
 */
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { runSync } from '../../src/node/sync.js';
import { FsStateStore } from '../../src/stores/fs.js';
import { DOCUMENTS } from '../../src/stores/store.js';
import { INLINE_DOC_BYTES } from '../../src/sync/shards.js';
import { planUploads, SyncMemory } from '../../src/sync/plan.js';
import { bytesToBase64, sha256Hex, type Manifest } from '../../src/sync/protocol.js';
import { cleanTrees, FIXTURES, materialize } from '../support/loki-tree.js';
import { SCRAPE_TOKEN, startWorker, SYNC_TOKEN, type TestWorker } from '../support/worker.js';
import { comparableSamples, nodeMetrics } from '../support/node-metrics.js';

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

async function syncOnce(w: TestWorker, dir: string, session = 'default') {
  const logs: string[] = [];
  let bytes = 0;
  const code = await runSync({ url: w.url, session, dir, token: SYNC_TOKEN, intervalMs: 1000, once: true, log: (l) => logs.push(l), onCycle: (s) => (bytes = s.bytesSent) });
  if (code !== 0) throw new Error(`sync failed: ${logs.join('; ')}`);
  return bytes;
}

describe('sync then scrape equals the Node server', () => {
  let w: TestWorker;
  beforeAll(async () => {
    w = await worker();
  });

  const fixtures = readdirSync(FIXTURES).filter((name) => existsSync(join(FIXTURES, name, '.loki'))).sort();
  it('covers every fixture tree', () => expect(fixtures.length).toBeGreaterThanOrEqual(11));
  it.each(fixtures)('on the %s tree, sample for sample', async (fixture) => {
    const dir = await materialize(fixture, { pid: 'alive', mtimeMs: Date.now() });
    await syncOnce(w, dir, fixture);
    const remote = await (await w.fetch(`/metrics?session=${fixture}`)).text();
    const local = await nodeMetrics(dir);
    expect(comparableSamples(remote)).toEqual(comparableSamples(local));
    expect(comparableSamples(remote).length).toBeGreaterThan(20);
    expect(remote).toMatch(/^loki_last_sync_timestamp_seconds \d+(\.\d+)?$/m);
    expect(remote).toContain('loki_up 1\n');
  });

  // The sync client judges liveness next to the runner and ships the verdict: the Worker reports
  // what a local exporter reports in the two sequences seen on the real runner.
  it.each([
    ['SIGKILL: dead wrapper, live status monitor, fresh heartbeat', 'v9-running', { wrapper: 'dead', helpers: 'alive' }, { status: 0, iteration: 4 }],
    ['restart window: a new wrapper before its session_start', 'v9-restart', { wrapper: 'alive', helpers: 'alive' }, { status: 1, iteration: 0 }],
  ] as const)('%s: the Worker equals Node', async (_name, fixture, registry, expected) => {
    const dir = await materialize(fixture, { registry, mtimeMs: Date.now() - 1_000 });
    const session = `${fixture}-${registry.wrapper}`;
    await syncOnce(w, dir, session);
    const remote = await (await w.fetch(`/metrics?session=${session}`)).text();
    const local = await nodeMetrics(dir);
    expect(comparableSamples(remote)).toEqual(comparableSamples(local));
    expect(remote).toContain(`loki_session_status ${expected.status}\n`);
    expect(remote).toMatch(new RegExp(`^loki_iteration_current ${expected.status === 0 ? '\\d+' : expected.iteration}$`, 'm'));
    // uptime differs only by the time between the two scrapes
    const uptime = (body: string) => Number(/^loki_uptime_seconds (\S+)$/m.exec(body)?.[1]);
    expect(Math.abs(uptime(remote) - uptime(local))).toBeLessThan(5);
    if (expected.status === 1) expect(uptime(remote)).toBeGreaterThan(0);
  });

  it('syncs receipts once: a cycle with none changed sends under 1 kB', async () => {
    const dir = await materialize('v9-running', { pid: 'alive', mtimeMs: Date.now() });
    const proof = JSON.stringify({ schema_version: '1.1', honesty: { headline: 'VERIFIED' }, verification: { attestation: { a: 1 } } });
    for (let i = 0; i < 300; i++) {
      await mkdir(join(dir, `proofs/run-bulk-${i}`), { recursive: true });
      await writeFile(join(dir, `proofs/run-bulk-${i}/proof.json`), proof);
    }
    const first = await syncOnce(w, dir, 'receipts');
    expect(first).toBeGreaterThan(300 * proof.length);
    expect(await syncOnce(w, dir, 'receipts')).toBeLessThan(1024);
    const remote = await (await w.fetch('/metrics?session=receipts')).text();
    expect(remote).toContain('loki_receipts_total 305\n');
    expect(remote).toContain('loki_receipts_by_verdict{verdict="verified"} 301\n');
    expect(comparableSamples(remote)).toEqual(comparableSamples(await nodeMetrics(dir)));
  });

  it('serves both formats and /health like the Node app', async () => {
    const dir = await materialize('running', { pid: 'alive', mtimeMs: Date.now() });
    await syncOnce(w, dir, 'formats');
    const om = await w.fetch('/metrics?session=formats', { headers: { Accept: 'application/openmetrics-text;version=1.0.0' } });
    expect(om.headers.get('content-type')).toBe('application/openmetrics-text; version=1.0.0; charset=utf-8');
    expect((await om.text()).endsWith('# EOF\n')).toBe(true);
    const health = (await (await w.fetch('/health?session=formats')).json()) as { status: string };
    expect(health.status).toBe('ok');
  });
});

describe('concurrent scrapes', () => {
  it('all succeed when many arrive while refreshes are in flight (no promise shared across requests)', async () => {
    const w = await worker({ vars: { LOKI_METRICS_CACHE_SECONDS: '0' } });
    const dir = await materialize('running', { pid: 'alive', mtimeMs: Date.now() });
    await syncOnce(w, dir);
    const statuses: number[] = [];
    const until = Date.now() + 3_000;
    // 32 clients scraping back to back, a synced session and one never synced, for 3 s.
    await Promise.all(
      Array.from({ length: 32 }, async (_, i) => {
        while (Date.now() < until) {
          const res = await w.fetch(i % 2 ? '/metrics' : '/metrics?session=nobody');
          await res.text();
          statuses.push(res.status);
        }
      }),
    );
    expect(statuses.length).toBeGreaterThan(100);
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
  }, 30_000);
});

/** Reads a first scrape of a synced session costs: its beat, its head, and each document too large to ride in the head. */
async function firstScrapeReads(dir: string): Promise<number> {
  let large = 0;
  for (const name of DOCUMENTS) {
    const size = await stat(join(dir, name)).then((s) => s.size, () => 0);
    if (size > INLINE_DOC_BYTES) large++;
  }
  return 2 + large;
}

describe('storage operations per scrape', () => {
  it.each([1, 10_000])('the beat, the head and the large documents, never a list, whatever the files (%i efficiency files); then one read while unchanged', async (count) => {
    const w = await worker();
    const dir = await materialize('running', { pid: 'alive', mtimeMs: Date.now() });
    for (let i = 1; i <= count; i++) {
      await writeFile(join(dir, `metrics/efficiency/extra-${String(i).padStart(5, '0')}.json`), `{"iteration": ${i}, "model": "haiku", "cost_usd": 0.001}`);
    }
    await syncOnce(w, dir);
    await w.resetOps();
    const body = await (await w.fetch('/metrics')).text();
    expect(body).toContain(`loki_cost_usd ${Math.round((3.5313 + count * 0.001) * 1e6) / 1e6}`);
    const ops = await w.ops();
    const total = Object.values(ops.r2 ?? {}).reduce((a, b) => a + b, 0);
    expect(await firstScrapeReads(dir)).toBe(4); // dashboard-state.json and state/agents.json are over 1 KiB
    expect(total).toBe(await firstScrapeReads(dir));
    expect(ops.r2?.list ?? 0).toBe(0);
    await w.resetOps();
    await (await w.fetch('/metrics')).text();
    expect(await w.ops()).toEqual({ r2: { get: 1 } }); // the beat, conditionally: unchanged
  }, 120_000);
});

describe('sessions and staleness', () => {
  it('serves two sessions side by side, each exactly its own output', async () => {
    const w = await worker();
    const a = await materialize('running', { pid: 'alive', mtimeMs: Date.now() });
    const b = await materialize('paused', { pid: 'alive', mtimeMs: Date.now() });
    await syncOnce(w, a, 'laptop');
    await syncOnce(w, b, 'build-box');
    const laptop = await (await w.fetch('/metrics?session=laptop')).text();
    const box = await (await w.fetch('/metrics?session=build-box')).text();
    expect(laptop).toContain('loki_session_status 1\n');
    expect(box).toContain('loki_session_status 2\n');
    expect(comparableSamples(laptop)).toEqual(comparableSamples(await nodeMetrics(a)));
    expect(comparableSamples(box)).toEqual(comparableSamples(await nodeMetrics(b)));
    expect((await w.fetch('/metrics?session=../etc')).status).toBe(400);
    const unknown = await (await w.fetch('/metrics?session=nobody')).text();
    expect(unknown).toContain('loki_up 0\n');
    // said once, in the Worker's log (captured by the test harness, not printed)
    await expect.poll(() => w.logs().filter((l) => l.includes('nothing synced yet for session "nobody"')).length).toBeGreaterThan(0);
  });

  it('reads a session as stopped once syncs stop for longer than LOKI_SYNC_STALE_SECONDS', async () => {
    const w = await worker({ vars: { LOKI_SYNC_STALE_SECONDS: '1' } });
    const dir = await materialize('running', { pid: 'alive', mtimeMs: Date.now() });
    const before = Date.now();
    await syncOnce(w, dir);
    expect(await (await w.fetch('/metrics')).text()).toContain('loki_session_status 1\n');
    await new Promise((r) => setTimeout(r, 1_500));
    const stale = await (await w.fetch('/metrics')).text();
    expect(stale).toContain('loki_session_status 0\n');
    const lastSync = Number(/^loki_last_sync_timestamp_seconds (\S+)$/m.exec(stale)?.[1]);
    expect(lastSync * 1000).toBeGreaterThanOrEqual(before - 1000);
    expect(lastSync * 1000).toBeLessThanOrEqual(Date.now());
  });

  it('works with only a KV namespace bound', async () => {
    const w = await worker({ r2: false, kv: true });
    const dir = await materialize('running', { pid: 'alive', mtimeMs: Date.now() });
    await syncOnce(w, dir);
    await w.resetOps();
    const body = await (await w.fetch('/metrics')).text();
    expect(comparableSamples(body)).toEqual(comparableSamples(await nodeMetrics(dir)));
    const ops = await w.ops();
    expect(ops.r2).toBeUndefined();
    expect(Object.values(ops.kv ?? {}).reduce((a, b) => a + b, 0)).toBe(await firstScrapeReads(dir));
    expect(ops.kv?.list ?? 0).toBe(0);
  });

  it('answers loki_up 0 when no binding is configured', async () => {
    const w = await worker({ r2: false });
    const res = await w.fetch('/metrics');
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('loki_up 0\n');
  });
});

describe('discovery (/targets) and ?project=', () => {
  for (const binding of ['r2', 'kv'] as const) {
    it(`lists the synced sessions for http_sd_configs with one ${binding} list per minute, and serves each at ?project=`, async () => {
      const vars = { LOKI_METRICS_TOKEN: SCRAPE_TOKEN };
      const w = await worker(binding === 'r2' ? { vars } : { r2: false, kv: true, vars });
      const scrape = { headers: { Authorization: `Bearer ${SCRAPE_TOKEN}` } };
      await syncOnce(w, await materialize('running', { pid: 'alive', mtimeMs: Date.now() }), 'laptop');
      await syncOnce(w, await materialize('paused', { pid: 'alive', mtimeMs: Date.now() }), 'build-box');
      await w.resetOps();
      const origin = new URL(w.url).host;
      for (let i = 0; i < 3; i++) {
        const res = await w.fetch('/targets', scrape);
        expect(res.status).toBe(200);
        expect(await res.json()).toEqual([
          { targets: [origin], labels: { session: 'build-box', project: 'build-box', __param_project: 'build-box' } },
          { targets: [origin], labels: { session: 'laptop', project: 'laptop', __param_project: 'laptop' } },
        ]);
      }
      const ops = await w.ops();
      expect(ops[binding]?.list).toBe(1);
      expect(await (await w.fetch('/metrics?project=build-box', scrape)).text()).toContain('loki_session_status 2\n');
      expect(await (await w.fetch('/metrics?project=laptop', scrape)).text()).toContain('loki_session_status 1\n');
    });
  }

  // Without a scrape token /targets is refused (item 17): test/worker/session-cap.test.ts.
  it('needs the scrape token when one is set', async () => {
    const w = await worker({ vars: { LOKI_METRICS_TOKEN: SCRAPE_TOKEN } });
    expect((await w.fetch('/targets')).status).toBe(401);
    expect((await w.fetch('/targets', { headers: { Authorization: `Bearer ${SCRAPE_TOKEN}` } })).status).toBe(200);
  });
});

describe('ingest authentication', () => {
  it('needs the write token; the scrape token can never write', async () => {
    const w = await worker({ vars: { LOKI_METRICS_TOKEN: SCRAPE_TOKEN } });
    const post = (token?: string) =>
      w.fetch('/ingest?session=x', { method: 'POST', body: '{}', headers: token ? { Authorization: `Bearer ${token}` } : {} });
    for (const res of [await post(), await post('wrong-token-0123456789'), await post(SCRAPE_TOKEN)]) {
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
    }
    expect((await post(SYNC_TOKEN)).status).toBe(422); // authenticated, then refused as invalid
    expect((await w.fetch('/metrics')).status).toBe(401);
    expect((await w.fetch('/metrics', { headers: { Authorization: `Bearer ${SCRAPE_TOKEN}` } })).status).toBe(200);
  });

  it('disables ingest when the two tokens are equal', async () => {
    const w = await worker({ vars: { LOKI_METRICS_TOKEN: SYNC_TOKEN } });
    const res = await w.fetch('/ingest?session=x', { method: 'POST', body: '{}', headers: { Authorization: `Bearer ${SYNC_TOKEN}` } });
    expect(res.status).toBe(503);
    expect(((await res.json()) as { error: string }).error).toMatch(/must differ/);
    // The scrape side stays behind the token all the same.
    expect((await w.fetch('/metrics')).status).toBe(401);
    expect((await w.fetch('/health')).status).toBe(401);
    expect((await w.fetch('/metrics', { headers: { Authorization: `Bearer ${SYNC_TOKEN}` } })).status).toBe(200);
  });
});

describe('bad uploads leave the stored state intact', () => {
  const auth = { Authorization: `Bearer ${SYNC_TOKEN}`, 'Content-Type': 'application/json' };

  async function syncedWorker() {
    const w = await worker();
    const dir = await materialize('running', { pid: 'alive', mtimeMs: Date.now() });
    await syncOnce(w, dir);
    return { w, before: comparableSamples(await (await w.fetch('/metrics')).text()) };
  }

  function payload(documents: Record<string, unknown>) {
    return {
      available: true,
      pid: null,
      pidAlive: true,
      documents,
      efficiency: { present: true, upsert: {}, remove: [] },
      events: { present: true, lines: 1 },
    };
  }

  it('stores a file its schemas refuse as bad (last good content kept, named in `rejected`), and the rest of the upload', async () => {
    const { w, before } = await syncedWorker();
    const torn = new TextEncoder().encode('{"mode": "autonomous", "tasks": {');
    const good = new TextEncoder().encode('{"limit": 99}');
    const res = await w.fetch('/ingest?layout=3', {
      method: 'POST',
      headers: auth,
      body: JSON.stringify(
        payload({
          'metrics/budget.json': { mtimeMs: Date.now(), hash: await sha256Hex(good), b64: bytesToBase64(good) },
          'dashboard-state.json': { mtimeMs: Date.now(), hash: await sha256Hex(torn), b64: bytesToBase64(torn) },
        }),
      ),
    });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { rejected: string[] }).rejected).toEqual([expect.stringMatching(/^dashboard-state\.json: not valid JSON/)]);
    const after = comparableSamples(await (await w.fetch('/metrics')).text());
    expect(after).toContain('loki_budget_limit_usd 99');
    expect(after).toContain('loki_source_ok{source="dashboard-state.json"} 0');
    // The last good dashboard content is still what is served.
    const tasks = (lines: string[]) => lines.filter((l) => l.startsWith('loki_tasks_total'));
    expect(tasks(after)).toEqual(tasks(before));
    expect(tasks(after).length).toBeGreaterThan(0);
  });

  it('rejects content whose hash does not match (a partial upload), unknown paths, and bad shapes', async () => {
    const { w, before } = await syncedWorker();
    const bytes = new TextEncoder().encode('{"limit": 99}');
    const partial = await w.fetch('/ingest?layout=3', {
      method: 'POST',
      headers: auth,
      body: JSON.stringify(payload({ 'metrics/budget.json': { mtimeMs: 1, hash: await sha256Hex(new TextEncoder().encode('{"limit": 99, "x": 1}')), b64: bytesToBase64(bytes) } })),
    });
    expect(partial.status).toBe(422);
    expect(((await partial.json()) as { error: string }).error).toMatch(/hash does not match/);
    const traversal = await w.fetch('/ingest?layout=3', { method: 'POST', headers: auth, body: JSON.stringify(payload({ '../../etc/passwd': null })) });
    expect(traversal.status).toBe(422);
    expect(((await traversal.json()) as { error: string }).error).toMatch(/known \.loki file/);
    const notJson = await w.fetch('/ingest?layout=3', { method: 'POST', headers: auth, body: '{"available": tru' });
    expect(notJson.status).toBe(400);
    expect(comparableSamples(await (await w.fetch('/metrics')).text())).toEqual(before);
  });

  it('refuses an oversize body with 413', async () => {
    const { w, before } = await syncedWorker();
    const res = await w.fetch('/ingest?layout=3', { method: 'POST', headers: auth, body: 'x'.repeat(8 * 1024 * 1024 + 16) });
    expect(res.status).toBe(413);
    expect(comparableSamples(await (await w.fetch('/metrics')).text())).toEqual(before);
  });
});

describe('sync clients from before format 3 (one document per session)', () => {
  /** What such a client did: the whole manifest in one answer, big batches, no `layout=3`. */
  async function legacySync(w: TestWorker, dir: string): Promise<Response[]> {
    const headers = { Authorization: `Bearer ${SYNC_TOKEN}`, 'Content-Type': 'application/json' };
    const manifestAnswer = await w.fetch('/ingest/manifest?session=default', { headers });
    if (manifestAnswer.status !== 200) return [manifestAnswer];
    const { manifest } = (await manifestAnswer.json()) as { manifest: Manifest };
    const store = new FsStateStore(dir, { watch: false });
    try {
      const uploads = await planUploads(await store.read(), manifest, new SyncMemory());
      const answers: Response[] = [];
      for (const upload of uploads) answers.push(await w.fetch('/ingest?session=default', { method: 'POST', headers, body: JSON.stringify(upload.payload) }));
      return answers;
    } finally {
      await store.close();
    }
  }

  it('keep their document; a current client moves the session over with nothing lost; then the old client is told to upgrade', async () => {
    const w = await worker();
    const dir = await materialize('v9-running', { pid: 'alive', mtimeMs: Date.now() });
    const expected = comparableSamples(await nodeMetrics(dir));

    const before = await legacySync(w, dir);
    expect(before.map((r) => r.status)).toEqual(before.map(() => 200));
    expect(comparableSamples(await (await w.fetch('/metrics')).text())).toEqual(expected);

    await syncOnce(w, dir); // moves it over (the last request of its first pass completes the move)
    expect(comparableSamples(await (await w.fetch('/metrics')).text())).toEqual(expected);
    await w.resetOps();
    await (await w.fetch('/metrics')).text();
    expect(await w.ops()).toEqual({ r2: { get: 1 } }); // format 3 now: the beat alone while unchanged

    const after = await legacySync(w, dir);
    expect(after.map((r) => r.status)).toEqual([409]);
    expect(((await after[0]!.json()) as { error: string }).error).toMatch(/format 3: upgrade loki-metrics sync/);
    expect(comparableSamples(await (await w.fetch('/metrics')).text())).toEqual(expected);
  });
});
