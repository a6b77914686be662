/**
 * Issue 19, items 12 and 17, against the real Worker in workerd (real local R2/KV): the session cap
 * holds under concurrent creates, `/targets` lists every session `/metrics` serves (never fewer), a
 * refused create costs no list each time, and a Worker without a scrape token does not enumerate its
 * sessions at `/targets`.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SCRAPE_TOKEN, startWorker, SYNC_TOKEN, type TestWorker, type WorkerOptions } from '../support/worker.js';

const workers: TestWorker[] = [];
const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(workers.map((w) => w.dispose()));
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

async function worker(options: WorkerOptions = {}) {
  const w = await startWorker(options);
  workers.push(w);
  return w;
}

const scrape = { Authorization: `Bearer ${SCRAPE_TOKEN}` };
const write = { Authorization: `Bearer ${SYNC_TOKEN}`, 'Content-Type': 'application/json' };
/** A sync client's first request for a session (format 3): nothing but the beat. */
const FIRST = JSON.stringify({ available: true, pid: null, pidAlive: false, documents: {}, events: { present: false, lines: 0 } });

async function create(w: TestWorker, session: string): Promise<{ session: string; status: number; error?: string }> {
  const res = await w.fetch(`/ingest?session=${session}&layout=3`, { method: 'POST', headers: write, body: FIRST });
  const body = (await res.json()) as { error?: string };
  return { session, status: res.status, ...(body.error !== undefined ? { error: body.error } : {}) };
}

/** The sessions among `names` that /metrics serves (synced state: `loki_up 1`; a name never synced reads `loki_up 0`). */
async function served(w: TestWorker, names: readonly string[]): Promise<string[]> {
  const up = await Promise.all(names.map(async (name) => (await (await w.fetch(`/metrics?session=${name}`, { headers: scrape })).text()).includes('\nloki_up 1\n')));
  return names.filter((_, i) => up[i]).sort();
}

async function targets(w: TestWorker): Promise<string[]> {
  const res = await w.fetch('/targets', { headers: scrape });
  expect(res.status).toBe(200);
  return ((await res.json()) as { labels: { session: string } }[]).map((t) => t.labels.session).sort();
}

const bindings = [
  ['R2', { r2: true }],
  ['KV', { r2: false, kv: true }],
] as const;

describe('the session cap under concurrent creates (item 12)', () => {
  const names = Array.from({ length: 12 }, (_, i) => `s${String(i).padStart(2, '0')}`);

  it.each(bindings)('%s: 12 concurrent first syncs with a cap of 5 create exactly 5 sessions; /targets lists exactly the served ones', async (_name, binding) => {
    const w = await worker({ ...binding, vars: { LOKI_METRICS_TOKEN: SCRAPE_TOKEN, LOKI_MAX_SESSIONS: '5' } });
    const answers = await Promise.all(names.map((name) => create(w, name)));
    // On R2 the registry's conditional writes serialise them; on KV (no conditional writes) one
    // isolate still counts what it admitted (across isolates KV's bound is looser: docs/worker.md).
    expect(answers.filter((a) => a.status === 200)).toHaveLength(5);
    expect(answers.filter((a) => a.status !== 200).map((a) => [a.status, a.error])).toEqual(
      Array.from({ length: 7 }, () => [409, expect.stringMatching(/session limit reached: .*at most 5 sessions/)]),
    );
    const admitted = answers.filter((a) => a.status === 200).map((a) => a.session).sort();
    expect(await served(w, names)).toEqual(admitted);
    expect(await targets(w)).toEqual(admitted);
  });

  it('R2: a session stored before the cap was lowered keeps being served and listed; new ones are refused', async () => {
    const persist = await mkdtemp(join(tmpdir(), 'loki-test-cap-'));
    dirs.push(persist);
    const before = await worker({ persist, vars: { LOKI_MAX_SESSIONS: '10' } });
    const seven = names.slice(0, 7);
    for (const name of seven) expect((await create(before, name)).status).toBe(200);
    await before.dispose();
    workers.splice(workers.indexOf(before), 1);

    const after = await worker({ persist, vars: { LOKI_METRICS_TOKEN: SCRAPE_TOKEN, LOKI_MAX_SESSIONS: '3' } });
    expect(await served(after, names)).toEqual(seven);
    // every served session, not the first three
    expect(await targets(after)).toEqual(seven);
    expect((await create(after, 'newcomer')).status).toBe(409);
    expect((await create(after, 's00')).status).toBe(200); // an existing session keeps syncing
  });
});

describe('a refused create costs no list each time (item 12)', () => {
  it.each(bindings)('%s: ten refused creates cost no list and no write, and at most one read of the registry', async (_name, binding) => {
    const w = await worker({ ...binding, vars: { LOKI_MAX_SESSIONS: '2' } });
    expect((await create(w, 'one')).status).toBe(200);
    expect((await create(w, 'two')).status).toBe(200);
    await w.resetOps();
    for (let i = 0; i < 10; i++) {
      const refused = await create(w, i % 2 ? 'again' : `new-${i}`);
      expect(refused.status).toBe(409);
    }
    const ops = (await w.ops())[binding.r2 ? 'r2' : 'kv'] ?? {};
    expect(ops.list ?? 0).toBe(0);
    expect(ops.put ?? 0).toBe(0);
    // Each refusal reads the session's own beat, head and format 2 document (it is new); the
    // registry (R2) is read once, then the refusal is remembered.
    expect(ops.get).toBeLessThanOrEqual(10 * 3 + 1);
  });
});

describe('a Worker without LOKI_METRICS_TOKEN (item 17)', () => {
  it('does not list its sessions at /targets (403, no storage operation); /metrics stays open for a name one knows', async () => {
    const w = await worker();
    expect((await create(w, 'private-project')).status).toBe(200);
    await w.resetOps();
    for (const method of ['GET', 'HEAD', 'POST']) {
      const res = await w.fetch('/targets', { method });
      expect({ method, status: res.status }).toEqual({ method, status: 403 });
      const text = await res.text();
      if (method !== 'HEAD') expect(text).toBe('discovery is disabled: set the LOKI_METRICS_TOKEN secret (without it, /targets would list every synced session to anyone)\n');
      expect(text).not.toContain('private-project');
    }
    expect(await w.ops()).toEqual({});
    expect(await (await w.fetch('/metrics?session=private-project')).text()).toContain('\nloki_up 1\n');
  });

  it('with the token, /targets lists the sessions to a request that has it only', async () => {
    const w = await worker({ vars: { LOKI_METRICS_TOKEN: SCRAPE_TOKEN } });
    expect((await create(w, 'private-project')).status).toBe(200);
    expect((await w.fetch('/targets')).status).toBe(401);
    expect(await targets(w)).toEqual(['private-project']);
  });
});
