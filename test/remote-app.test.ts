/**
 * The remote exporter's Hono app (src/remote-app.ts: the Worker's, over synced state) through its
 * public `fetch`, over the in-memory object store with R2's or KV's semantics
 * (test/support/object-store.ts, every call logged). Sessions are synced by the real sync client
 * (`runSync`, format 3) from real fixture trees, or, for clients from before format 3, by the
 * format 2 payloads they sent (built with the protocol's own helpers). Expected answers come from
 * the layers the app must agree with: the protocol and storage modules (manifests, cadence,
 * per-session tokens), the scrape side's guard (its realm), the Node exporter's output for the same
 * tree, the config's variable names.
 */
import { readFile } from 'node:fs/promises';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { parseConfig } from '../src/config.js';
import { runSync } from '../src/node/sync.js';
import { createRemoteApp, MAX_RETAINED_SESSION_BYTES, type RemoteAppDeps } from '../src/remote-app.js';
import type { ObjectStore } from '../src/stores/object-store.js';
import { parseDoc } from '../src/stores/synced.js';
import { REGISTRY_KEY } from '../src/sync/admission.js';
import { syncCadence } from '../src/sync/cadence.js';
import { manifestHead, manifestPage } from '../src/sync/manifest.js';
import { MAX_INGEST_BYTES, manifestOf, type IngestPayload } from '../src/sync/protocol.js';
import { beatKey, legacyKey } from '../src/sync/shards.js';
import { sessionSyncToken } from '../src/sync/tokens.js';
import { payloadOf, setChanges, shipped } from './support/format3.js';
import { cleanTrees, materialize } from './support/loki-tree.js';
import { comparableSamples, nodeMetrics } from './support/node-metrics.js';
import { MemoryObjectStore } from './support/object-store.js';

const BASE = 'https://worker.test';
const SYNC_TOKEN = 'sync-write-token-0123456789';
const SCRAPE_TOKEN = 'scrape-read-token-0123456789';
const sync = { Authorization: `Bearer ${SYNC_TOKEN}` };
const scrape = { Authorization: `Bearer ${SCRAPE_TOKEN}` };
const START_MS = 1_800_000_000_000;

const realFetch = globalThis.fetch;
afterEach(async () => {
  globalThis.fetch = realFetch;
  vi.restoreAllMocks();
  await cleanTrees();
});

interface Remote {
  readonly app: ReturnType<typeof createRemoteApp>;
  readonly bucket: MemoryObjectStore | undefined;
  readonly logs: string[];
  readonly clock: () => number;
  advance(ms: number): void;
  call(path: string, init?: RequestInit): Promise<Response>;
  json(path: string, init?: RequestInit): Promise<{ status: number; body: Record<string, unknown> }>;
}

/**
 * A remote app with both tokens over a fresh in-memory R2 (or KV, `strong: false`); `vars` are more
 * Worker variables (undefined removes one), `bucket: null` binds none.
 */
function remote(vars: Record<string, string | undefined> = {}, options: { strong?: boolean; bucket?: ObjectStore | null; build?: RemoteAppDeps['build'] } = {}): Remote {
  let now = START_MS;
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries({ LOKI_SYNC_TOKEN: SYNC_TOKEN, LOKI_METRICS_TOKEN: SCRAPE_TOKEN, LOKI_METRICS_CACHE_SECONDS: '0', ...vars })) {
    if (value !== undefined) env[name] = value;
  }
  const bucket = options.bucket === null ? undefined : (options.bucket ?? new MemoryObjectStore(options.strong ?? true));
  const logs: string[] = [];
  const app = createRemoteApp({
    bucket,
    config: parseConfig(env),
    clock: () => now,
    log: (line) => logs.push(line),
    ...(options.build ? { build: options.build } : {}),
  });
  const call = async (path: string, init?: RequestInit): Promise<Response> => app.fetch(new Request(`${BASE}${path}`, init));
  return {
    app,
    bucket: bucket instanceof MemoryObjectStore ? bucket : undefined,
    logs,
    clock: () => now,
    advance: (ms) => void (now += ms),
    call,
    json: async (path, init) => {
      const res = await call(path, init);
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    },
  };
}

/** One cycle of the real sync client (format 3) from `dir` into `r`. */
async function syncTree(r: Remote, dir: string, session = 'default', token = SYNC_TOKEN): Promise<{ code: number; logs: string[] }> {
  const logs: string[] = [];
  globalThis.fetch = ((input: RequestInfo | URL, init?: RequestInit) => r.app.fetch(new Request(input, init))) as typeof fetch;
  try {
    const code = await runSync({ url: BASE, session, dir, token, intervalMs: 1000, once: true, requestGapMs: 0, clock: r.clock, log: (l) => logs.push(l) });
    return { code, logs };
  } finally {
    globalThis.fetch = realFetch;
  }
}

async function synced(r: Remote, session = 'default', fixture = 'running'): Promise<string> {
  const dir = await materialize(fixture, { pid: 'alive', mtimeMs: Date.now() });
  expect(await syncTree(r, dir, session)).toEqual({ code: 0, logs: [] });
  return dir;
}

/** A format 2 (pre-format-3 client) upload to `session`. */
function legacyPost(r: Remote, session: string | undefined, payload: unknown, headers: Record<string, string> = sync): Promise<Response> {
  return r.call(`/ingest${session === undefined ? '' : `?session=${session}`}`, { method: 'POST', headers: { ...headers, 'Content-Type': 'application/json' }, body: JSON.stringify(payload) });
}

const dashboard = (iteration: number) => JSON.stringify({ mode: 'autonomous', iteration, tasks: { pending: [], inProgress: [], completed: [], failed: [] }, agents: [] });

async function legacyPayload(changes: Partial<IngestPayload> = {}): Promise<IngestPayload> {
  return payloadOf({ documents: { 'dashboard-state.json': await shipped(dashboard(3), 1_000) }, ...changes });
}

const value = (body: string, name: string) => new RegExp(`^${name} (\\S+)$`, 'm').exec(body)?.[1];
const challengeRealm = (res: Response) => /^Bearer realm="([^"]*)"/.exec(res.headers.get('www-authenticate') ?? '')?.[1];

describe('the write side is closed until a sync token of its own is set', () => {
  it('without LOKI_SYNC_TOKEN: ingest answers 503 naming the variable to set, and that variable opens it', async () => {
    const closed = remote({ LOKI_SYNC_TOKEN: undefined });
    for (const [path, method] of [['/ingest/manifest', 'GET'], ['/ingest?session=a', 'POST'], ['/ingest/other', 'PUT']] as const) {
      const res = await closed.call(path, { method, headers: sync });
      expect(res.status, path).toBe(503);
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
      const { error } = (await res.json()) as { error: string };
      expect(error).toMatch(/^ingest is disabled: set the \w+ secret$/);
    }
    const { error } = (await (await closed.call('/ingest/manifest')).json()) as { error: string };
    const variable = /set the (\w+) secret/.exec(error)![1]!;
    const open = remote({ [variable]: 'another-sync-token-0123456789' });
    expect((await open.call('/ingest/manifest?layout=3', { headers: { Authorization: 'Bearer another-sync-token-0123456789' } })).status).toBe(200);
    expect(closed.bucket!.calls).toEqual([]);
  });

  it('a sync token equal to the scrape token disables ingest (a scrape token must never write), and the scrape side stays closed', async () => {
    const r = remote({ LOKI_SYNC_TOKEN: SCRAPE_TOKEN });
    const res = await r.call('/ingest?session=a', { method: 'POST', headers: scrape, body: '{}' });
    expect(res.status).toBe(503);
    const { error } = (await res.json()) as { error: string };
    expect(error).toMatch(/^ingest is disabled: \w+ must differ from \w+$/);
    // the variables it names are the two the config reads as these tokens
    const [, syncVar, scrapeVar] = /(\w+) must differ from (\w+)/.exec(error)!;
    expect(parseConfig({ [syncVar!]: 'x'.repeat(20), [scrapeVar!]: 'y'.repeat(20) })).toMatchObject({ syncToken: 'x'.repeat(20), token: 'y'.repeat(20) });
    expect((await r.call('/metrics')).status).toBe(401);
    expect((await r.call('/metrics', { headers: scrape })).status).toBe(200);
    expect(r.bucket!.calls.filter((c) => c.op === 'put')).toEqual([]);
  });
});

describe('the write side\'s credentials', () => {
  it('no or a wrong token: 401 with a Bearer challenge of its own realm (not the scrape side\'s), nosniff, nothing read', async () => {
    const r = remote();
    const scrapeRealm = challengeRealm(await r.call('/metrics'));
    expect(scrapeRealm).toBeTruthy();
    for (const headers of [{}, { Authorization: 'Bearer wrong-token-0123456789' }, scrape]) {
      for (const [path, method] of [['/ingest/manifest', 'GET'], ['/ingest', 'POST']] as const) {
        const res = await r.call(path, { method, headers, ...(method === 'POST' ? { body: '{}' } : {}) });
        expect(res.status, `${method} ${path} ${JSON.stringify(headers)}`).toBe(401);
        expect(res.headers.get('x-content-type-options')).toBe('nosniff');
        expect(res.headers.get('www-authenticate')).toMatch(/^Bearer /);
        if ('Authorization' in headers) continue; // a presented token gets error="invalid_token" (RFC 6750)
        const realm = challengeRealm(res);
        expect(realm).toBeTruthy();
        expect(realm).not.toBe(scrapeRealm);
      }
    }
    expect(r.bucket!.calls).toEqual([]);
  });

  it('tokens match only whole: one character changed, missing or added is refused', async () => {
    const r = remote();
    const near = [SYNC_TOKEN.slice(0, -1) + 'X', SYNC_TOKEN.slice(0, -1), SYNC_TOKEN + '0', 'X' + SYNC_TOKEN.slice(1)];
    for (const token of near) expect((await r.call('/ingest/manifest?layout=3', { headers: { Authorization: `Bearer ${token}` } })).status, token).toBe(401);
    expect((await r.call('/ingest/manifest?layout=3', { headers: sync })).status).toBe(200);
  });

  it('the sync secret writes every session; a session\'s own token (sessionSyncToken) writes that session only', async () => {
    const r = remote();
    const laptop = { Authorization: `Bearer ${await sessionSyncToken(SYNC_TOKEN, 'laptop')}` };
    expect((await legacyPost(r, 'laptop', await legacyPayload(), laptop)).status).toBe(200);
    expect((await legacyPost(r, 'desk', await legacyPayload(), laptop)).status).toBe(401);
    expect((await r.call('/ingest/manifest?session=laptop&layout=3', { headers: laptop })).status).toBe(200);
    expect((await r.call('/ingest/manifest?session=desk&layout=3', { headers: laptop })).status).toBe(401);
    // the default session's own token, for a request naming no session
    const own = { Authorization: `Bearer ${await sessionSyncToken(SYNC_TOKEN, 'default')}` };
    expect((await legacyPost(r, undefined, await legacyPayload(), own)).status).toBe(200);
    expect((await legacyPost(r, 'desk', await legacyPayload())).status).toBe(200);
    // a token derived from another secret is no token
    const forged = { Authorization: `Bearer ${await sessionSyncToken('not-the-secret-0123456789', 'laptop')}` };
    expect((await legacyPost(r, 'laptop', await legacyPayload(), forged)).status).toBe(401);
  });

  it('a per-session token never opens a request whose session name is invalid (not even the token of a session named "undefined")', async () => {
    const r = remote();
    const token = { Authorization: `Bearer ${await sessionSyncToken(SYNC_TOKEN, 'undefined')}` };
    expect((await legacyPost(r, 'undefined', await legacyPayload(), token)).status).toBe(200);
    for (const bad of ['.hidden', '-x', 'a%2Fb', 'x'.repeat(65)]) {
      expect((await legacyPost(r, bad, await legacyPayload(), token)).status, bad).toBe(401);
      expect((await r.call(`/ingest/manifest?session=${bad}`, { headers: token })).status, bad).toBe(401);
    }
  });
});

describe('sessions are named', () => {
  it('an invalid ?session= is a plain 400 saying what a name may hold, on both routes; none is the default session', async () => {
    const r = remote();
    for (const res of [await r.call('/ingest/manifest?session=.x', { headers: sync }), await legacyPost(r, '..', await legacyPayload())]) {
      expect(res.status).toBe(400);
      expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
      expect(await res.text()).toMatch(/^invalid session name: use 1-64 characters/);
    }
    expect(r.bucket!.calls.filter((c) => c.op === 'put')).toEqual([]);
    expect((await legacyPost(r, undefined, await legacyPayload())).status).toBe(200);
    expect(r.bucket!.text(legacyKey('default'))).toBeDefined();
  });
});

describe('a sync client of format 3 (the real `loki-metrics sync`)', () => {
  it('a synced tree scrapes as the Node exporter serves it, per session, and the sessions are listed for discovery', async () => {
    const r = remote();
    const laptop = await synced(r, 'laptop', 'v9-running');
    await synced(r, 'default', 'running');
    const body = await (await r.call('/metrics?session=laptop', { headers: scrape })).text();
    expect(value(body, 'loki_up')).toBe('1');
    expect(comparableSamples(body)).toEqual(comparableSamples(await nodeMetrics(laptop)));
    expect(value(await (await r.call('/metrics', { headers: scrape })).text(), 'loki_cost_usd')).toBe('3.5313');
    const targets = await r.call('/targets', { headers: scrape });
    expect(targets.status).toBe(200);
    expect(((await targets.json()) as { labels: { project: string; session: string } }[]).map((t) => t.labels)).toMatchObject([
      { project: 'default', session: 'default' },
      { project: 'laptop', session: 'laptop' },
    ]);
  });

  it('the manifest head is the stored one (sync/manifest.ts) with the cadence for the binding (sync/cadence.ts)', async () => {
    for (const strong of [true, false]) {
      const r = remote({ LOKI_SYNC_PUSH_SECONDS: strong ? undefined : '900' }, { strong });
      await synced(r, 'laptop', 'v9-running');
      const { status, body } = await r.json('/ingest/manifest?session=laptop&layout=3', { headers: sync });
      expect(status).toBe(200);
      const config = parseConfig({ LOKI_SYNC_TOKEN: SYNC_TOKEN, ...(strong ? {} : { LOKI_SYNC_PUSH_SECONDS: '900' }) });
      expect(body).toEqual({ ...(await manifestHead(r.bucket!, 'laptop')), cadence: syncCadence(strong ? 'r2' : 'kv', config) });
      expect(body.syncedAtMs).toBe(START_MS);
    }
  });

  it('a manifest page is the stored one, from bucket 0 or `from`; an unknown set or a bad `from` is a 400', async () => {
    const r = remote();
    await synced(r, 'laptop', 'v9-running');
    const page = async (query: string) => r.json(`/ingest/manifest?session=laptop&layout=3&${query}`, { headers: sync });
    const first = await page('set=efficiency');
    expect(first).toEqual({ status: 200, body: await manifestPage(r.bucket!, 'laptop', 'efficiency', 0) });
    expect(Object.keys(first.body.files as object)).toHaveLength(3);
    const { buckets } = ((await manifestHead(r.bucket!, 'laptop')).sets.efficiency!);
    expect(buckets.length).toBeGreaterThan(1);
    const later = await page(`set=efficiency&from=${buckets[1]}`);
    expect(later).toEqual({ status: 200, body: await manifestPage(r.bucket!, 'laptop', 'efficiency', buckets[1]!) });
    expect(Object.keys(later.body.files as object).length).toBeLessThan(3);
    expect(await page('set=proofs&from=0')).toEqual({ status: 200, body: await manifestPage(r.bucket!, 'laptop', 'proofs', 0) });
    expect(await page('set=nope')).toEqual({ status: 400, body: { error: 'unknown file set' } });
    for (const from of ['-1', '1.5', 'x', '9007199254740993', '']) {
      expect(await page(`set=efficiency&from=${from}`), from).toEqual(from === '' ? { status: 200, body: first.body } : { status: 400, body: { error: 'invalid from' } });
    }
  });

  it('LOKI_MAX_SESSIONS: a new session beyond it is refused with 409; the sessions there keep syncing', async () => {
    const r = remote({ LOKI_MAX_SESSIONS: '1' });
    await synced(r, 'one');
    const dir = await materialize('running', { pid: 'alive', mtimeMs: Date.now() });
    const refused = await syncTree(r, dir, 'two');
    expect(refused.code).not.toBe(0);
    expect(refused.logs.join('\n')).toMatch(/409|session limit/);
    expect(r.bucket!.text(beatKey('two'))).toBeUndefined();
    r.advance(60_000);
    expect(await syncTree(r, dir, 'one')).toEqual({ code: 0, logs: [] });
  });

  it('staleness follows the cadence the Worker asks for: no sync for longer than its staleMs reads as a stopped session', async () => {
    const r = remote();
    await synced(r, 'laptop', 'running');
    const { body } = await r.json('/ingest/manifest?session=laptop&layout=3', { headers: sync });
    const { staleMs } = body.cadence as { staleMs: number };
    const status = async () => value(await (await r.call('/metrics?session=laptop', { headers: scrape })).text(), 'loki_session_status');
    expect(await status()).toBe('1');
    r.advance(staleMs);
    expect(await status()).toBe('1');
    r.advance(1);
    expect(await status()).toBe('0');
  });
});

describe('a sync client from before format 3 (format 2: one document per session)', () => {
  it('an upload is stored whole and answered with its time and the one it replaced; its manifest is the document\'s', async () => {
    const r = remote();
    const empty = await r.json('/ingest/manifest?session=old', { headers: sync });
    expect(empty).toEqual({ status: 200, body: { session: 'old', syncedAtMs: null, manifest: { ...manifestOf(undefined), efficiency: {} } } });

    const first = await r.json('/ingest?session=old', { method: 'POST', headers: sync, body: JSON.stringify(await legacyPayload()) });
    expect(first).toEqual({ status: 200, body: { ok: true, session: 'old', syncedAtMs: START_MS, previousSyncedAtMs: null } });
    const stored = parseDoc(r.bucket!.text(legacyKey('old'))!);
    expect(stored?.syncedAtMs).toBe(START_MS);

    r.advance(5_000);
    const efficiency = setChanges({ upsert: { 'iteration-1.json': await shipped(JSON.stringify({ iteration: 1, model: 'sonnet', input_tokens: 1000, output_tokens: 100, cost_usd: 0.5 }), 2_000) } });
    const second = await r.json('/ingest?session=old', { method: 'POST', headers: sync, body: JSON.stringify(await legacyPayload({ sets: { efficiency } })) });
    expect(second).toEqual({ status: 200, body: { ok: true, session: 'old', syncedAtMs: START_MS + 5_000, previousSyncedAtMs: START_MS } });

    const manifest = await r.json('/ingest/manifest?session=old', { headers: sync });
    const doc = parseDoc(r.bucket!.text(legacyKey('old'))!);
    const expected = manifestOf(doc);
    expect(Object.keys(expected.sets.efficiency ?? {})).toEqual(['iteration-1.json']);
    expect(manifest).toEqual({ status: 200, body: { session: 'old', syncedAtMs: START_MS + 5_000, manifest: { ...expected, efficiency: expected.sets.efficiency } } });
    // and it scrapes
    const body = await (await r.call('/metrics?session=old', { headers: scrape })).text();
    expect(value(body, 'loki_up')).toBe('1');
    expect(value(body, 'loki_cost_usd')).toBe('0.5');
  });

  it('content the schemas refuse is stored as a problem and named in `rejected`; a partial upload (hash mismatch) writes nothing', async () => {
    const r = remote();
    const bad = await shipped('{"tasks": 5', 1_000); // not JSON: the dashboard's parser refuses it
    const answer = await r.json('/ingest?session=s', { method: 'POST', headers: sync, body: JSON.stringify(payloadOf({ documents: { 'dashboard-state.json': bad } })) });
    expect(answer.status).toBe(200);
    expect(answer.body.rejected).toEqual([expect.stringMatching(/^dashboard-state\.json: /)]);
    expect(parseDoc(r.bucket!.text(legacyKey('s'))!)?.documents['dashboard-state.json']?.problem).toMatch(/^refused by the remote: /);

    const good = await shipped(dashboard(1));
    const partial = { ...good, hash: (await shipped(dashboard(2))).hash };
    const before = r.bucket!.text(legacyKey('s'));
    const refused = await r.json('/ingest?session=s', { method: 'POST', headers: sync, body: JSON.stringify(payloadOf({ documents: { 'dashboard-state.json': partial } })) });
    expect(refused.status).toBe(422);
    expect(refused.body.error).toMatch(/hash does not match/);
    expect(r.bucket!.text(legacyKey('s'))).toBe(before);
    const fresh = await r.json('/ingest?session=fresh', { method: 'POST', headers: sync, body: JSON.stringify(payloadOf({ documents: { 'dashboard-state.json': partial } })) });
    expect(fresh.status).toBe(422);
    expect(r.bucket!.text(legacyKey('fresh'))).toBeUndefined();
  });

  it('a body that is no JSON is a 400, one that is no payload a 422 naming what is wrong; nothing is written', async () => {
    const r = remote();
    expect(await r.json('/ingest?session=s', { method: 'POST', headers: sync, body: '{"available": tru' })).toEqual({ status: 400, body: { error: 'body is not JSON' } });
    const invalid = await r.json('/ingest?session=s', { method: 'POST', headers: sync, body: JSON.stringify({ available: 'yes' }) });
    expect(invalid.status).toBe(422);
    expect(invalid.body.error).toMatch(/^invalid payload: .*available/);
    const layout3 = await r.json('/ingest?session=s&layout=3', { method: 'POST', headers: sync, body: JSON.stringify([]) });
    expect(layout3.status).toBe(422);
    expect(r.bucket!.calls.filter((c) => c.op === 'put')).toEqual([]);
  });

  it('once a session is stored in format 3, an old client is told to upgrade (409), on both routes, and writes nothing', async () => {
    const r = remote();
    await synced(r, 'moved');
    const puts = r.bucket!.count('put');
    for (const res of [await r.call('/ingest/manifest?session=moved', { headers: sync }), await legacyPost(r, 'moved', await legacyPayload())]) {
      expect(res.status).toBe(409);
      const { error } = (await res.json()) as { error: string };
      const pkg = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8')) as { name: string };
      expect(error).toMatch(/format 3/);
      expect(error).toContain(`upgrade ${pkg.name} sync`);
      expect(error).toContain(`npm i -g ${pkg.name}`);
    }
    expect(r.bucket!.count('put')).toBe(puts);
    expect(r.bucket!.text(legacyKey('moved'))).toBeUndefined();
  });

  it('LOKI_MAX_SESSIONS: a new session beyond it is refused with 409 before any work; existing ones sync without asking the registry', async () => {
    const r = remote({ LOKI_MAX_SESSIONS: '1' });
    expect((await legacyPost(r, 'a', await legacyPayload())).status).toBe(200);
    const refused = await r.json('/ingest?session=b', { method: 'POST', headers: sync, body: JSON.stringify(await legacyPayload()) });
    expect(refused.status).toBe(409);
    expect(refused.body.error).toMatch(/^session limit reached: .*"b"/);
    expect(r.bucket!.text(legacyKey('b'))).toBeUndefined();

    // before any work: a malformed upload of a new session is refused for the cap, not examined
    const partial = { ...(await shipped(dashboard(1))), hash: (await shipped(dashboard(2))).hash };
    expect((await r.json('/ingest?session=b', { method: 'POST', headers: sync, body: JSON.stringify(payloadOf({ documents: { 'dashboard-state.json': partial } })) })).status).toBe(409);

    const from = r.bucket!.calls.length;
    r.advance(1_000);
    expect((await legacyPost(r, 'a', await legacyPayload())).status).toBe(200);
    expect(r.bucket!.calls.slice(from).filter((c) => c.key === REGISTRY_KEY)).toEqual([]);
  });

  it('LOKI_MAX_SESSIONS: an upload refused for another reason (422) takes no place', async () => {
    const r = remote({ LOKI_MAX_SESSIONS: '1' });
    const partial = { ...(await shipped(dashboard(1))), hash: (await shipped(dashboard(2))).hash };
    expect((await r.json('/ingest?session=broken', { method: 'POST', headers: sync, body: JSON.stringify(payloadOf({ documents: { 'dashboard-state.json': partial } })) })).status).toBe(422);
    expect((await legacyPost(r, 'good', await legacyPayload())).status).toBe(200);
    expect((await legacyPost(r, 'broken', await legacyPayload())).status).toBe(409);
  });

  it('LOKI_MAX_SESSIONS: a new session admitted by the early look but refused when it registers (no registry yet) writes nothing', async () => {
    const r = remote({ LOKI_MAX_SESSIONS: '1' });
    expect((await legacyPost(r, 'a', await legacyPayload())).status).toBe(200);
    // as after an upgrade from a version without the registry: the early look finds none
    await r.bucket!.delete([REGISTRY_KEY]);
    const refused = await r.json('/ingest?session=b', { method: 'POST', headers: sync, body: JSON.stringify(await legacyPayload()) });
    expect(refused.status).toBe(409);
    expect(refused.body.error).toMatch(/^session limit reached: .*"b"/);
    expect(r.bucket!.text(legacyKey('b'))).toBeUndefined();
  });
});

describe('a format 2 session document is bounded', () => {
  /** An efficiency file of about `bytes` bytes (the schema keeps what it knows and ignores the padding). */
  const paddedFile = (iteration: number, bytes: number) => shipped(JSON.stringify({ iteration, model: 'sonnet', input_tokens: 10, output_tokens: 1, cost_usd: 0, pad: 'x'.repeat(bytes) }), 1_000);
  const upload = async (r: Remote, files: Record<string, Awaited<ReturnType<typeof paddedFile>>>, problem?: string) =>
    r.json('/ingest?session=huge', { method: 'POST', headers: sync, body: JSON.stringify(await legacyPayload({ sets: { efficiency: setChanges({ upsert: files }) }, ...(problem !== undefined ? { problem } : {}) })) });
  const stored = (r: Remote) => r.bucket!.text(legacyKey('huge'))!.length;

  it('an upload that would make it larger than the limit it names is refused (413) and stores nothing; exactly the limit is stored', { timeout: 60_000 }, async () => {
    const r = remote();
    // grow it by ~7 MB a request until it is refused
    let refusal: { status: number; body: Record<string, unknown> } | undefined;
    for (let round = 0; round < 6 && !refusal; round++) {
      const files = Object.fromEntries(await Promise.all([1, 2, 3, 4, 5].map(async (i) => [`iteration-${round * 5 + i}.json`, await paddedFile(round * 5 + i, 1024 * 1024)] as const)));
      const answer = await upload(r, files);
      if (answer.status !== 200) refusal = answer;
    }
    expect(refusal?.status).toBe(413);
    const limit = Number(/^session state would exceed (\d+) bytes \(too many or too large files\): upgrade loki-metrics sync$/.exec(String(refusal!.body.error))?.[1]);
    // below what one KV value may hold (25 MiB), which is why there is a limit
    expect(limit).toBeLessThan(25 * 1024 * 1024);
    expect(stored(r)).toBeLessThanOrEqual(limit);
    expect(stored(r)).toBeGreaterThan(limit - 8 * 1024 * 1024);

    // more files to bring it just below the limit (base64: 4 characters per 3 bytes); the last one resized until it fits
    let iteration = 100;
    while (limit - stored(r) > 1_500_000) {
      expect((await upload(r, { [`iteration-${iteration}.json`]: await paddedFile(iteration, 1024 * 1024) })).status).toBe(200);
      iteration++;
    }
    let size = Math.floor(((limit - 150 - stored(r) - 120) * 3) / 4);
    for (let attempt = 0; attempt < 4; attempt++) {
      expect((await upload(r, { 'iteration-99.json': await paddedFile(99, size) })).status).toBe(200);
      const gap = limit - 150 - stored(r);
      if (Math.abs(gap) < 100) break;
      size += Math.floor((gap * 3) / 4);
    }
    // then the payload's `problem` text (up to 300 characters) to reach it exactly
    expect((await upload(r, {}, 'p')).status).toBe(200);
    const k = limit - stored(r) + 1;
    expect(k).toBeGreaterThan(1);
    expect(k).toBeLessThanOrEqual(300);
    expect((await upload(r, {}, 'p'.repeat(k))).status).toBe(200);
    expect(stored(r)).toBe(limit);
    const before = r.bucket!.text(legacyKey('huge'));
    const over = await upload(r, {}, 'p'.repeat(k + 1));
    expect(over).toEqual({ status: 413, body: { error: refusal!.body.error } });
    expect(r.bucket!.text(legacyKey('huge'))).toBe(before);
  });
});

describe('request bodies beyond MAX_INGEST_BYTES', () => {
  /** A body of `chunks` MiB pulled on demand (or endless), recording what was read and whether it was cancelled. */
  function body(chunks: number | 'endless') {
    const chunk = new Uint8Array(1024 * 1024).fill(0x20);
    const seen = { pulled: 0, cancelled: false };
    const stream = new ReadableStream<Uint8Array>(
      {
        pull(controller) {
          if (chunks !== 'endless' && seen.pulled >= chunks) return controller.close();
          seen.pulled++;
          controller.enqueue(chunk);
        },
        cancel() {
          seen.cancelled = true;
        },
      },
      { highWaterMark: 0 },
    );
    return { stream, seen };
  }

  const post = (r: Remote, stream: ReadableStream<Uint8Array>, length: number) =>
    r.json('/ingest?session=big', { method: 'POST', headers: { ...sync, 'Content-Length': String(length) }, body: stream, duplex: 'half' } as RequestInit);

  it('are refused with 413 naming the limit, after reading what the client sends (so it sees the answer), up to 4 times the limit', async () => {
    const r = remote();
    const nine = body(9);
    expect(await post(r, nine.stream, 9 * 1024 * 1024)).toEqual({ status: 413, body: { error: `payload larger than ${MAX_INGEST_BYTES} bytes` } });
    expect(nine.seen).toEqual({ pulled: 9, cancelled: false });
    // exactly 4 times the limit is still read to its end
    const limit = (4 * MAX_INGEST_BYTES) / (1024 * 1024);
    const four = body(limit);
    expect((await post(r, four.stream, 4 * MAX_INGEST_BYTES)).status).toBe(413);
    expect(four.seen).toEqual({ pulled: limit, cancelled: false });
    expect(r.bucket!.calls).toEqual([]);
  });

  it('a client that sends on and on is cut off once 4 times the limit is read', async () => {
    const r = remote();
    const endless = body('endless');
    expect((await post(r, endless.stream, 1024 * 1024 * 1024)).status).toBe(413);
    expect(endless.seen).toEqual({ pulled: (4 * MAX_INGEST_BYTES) / (1024 * 1024) + 1, cancelled: true });
  });

  it('a body without Content-Length is refused as soon as it passes the limit (413, not an error)', async () => {
    const r = remote();
    const res = await r.call('/ingest?session=big', { method: 'POST', headers: sync, body: 'x'.repeat(MAX_INGEST_BYTES + 1) });
    expect(res.status).toBe(413);
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(r.logs).toEqual([]);
  });
});

describe('without storage bound', () => {
  it('ingest says what to bind (503), scrapes answer loki_up 0 saying why, /targets lists nothing', async () => {
    const r = remote({}, { bucket: null });
    for (const res of [await r.call('/ingest/manifest?layout=3', { headers: sync }), await legacyPost(r, 'a', await legacyPayload())]) {
      expect(res.status).toBe(503);
      expect(await res.json()).toEqual({ error: 'no R2 bucket or KV namespace is bound' });
    }
    const metrics = await r.call('/metrics', { headers: scrape });
    expect(metrics.status).toBe(200);
    expect(value(await metrics.text(), 'loki_up')).toBe('0');
    expect(await (await r.call('/health', { headers: scrape })).json()).toMatchObject({ status: 'degraded', up: false, problem: expect.stringMatching(/no R2 bucket or KV namespace is bound/) });
    expect(await (await r.call('/targets', { headers: scrape })).json()).toEqual([]);
  });
});

describe('the scrape side', () => {
  it('without a scrape token, /targets is refused with 403 naming the variable to set; set, it needs that token and lists', async () => {
    const r = remote({ LOKI_METRICS_TOKEN: undefined });
    await synced(r, 'laptop');
    for (const method of ['GET', 'POST']) {
      const res = await r.call('/targets', { method });
      expect(res.status).toBe(403);
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
      expect(await res.text()).toMatch(/^discovery is disabled: set the \w+ secret \(without it, \/targets would list every synced session to anyone\)\n$/);
    }
    // /metrics stays open without the token, for a session one knows
    expect(value(await (await r.call('/metrics?session=laptop')).text(), 'loki_up')).toBe('1');
    const variable = /set the (\w+) secret/.exec(await (await r.call('/targets')).text())![1]!;
    const guarded = remote({ [variable]: 'a-new-scrape-token-0123456789' }, { bucket: r.bucket! });
    expect((await guarded.call('/targets')).status).toBe(401);
    const listed = await guarded.call('/targets', { headers: { Authorization: 'Bearer a-new-scrape-token-0123456789' } });
    expect(((await listed.json()) as { labels: { session: string } }[]).map((t) => t.labels.session)).toEqual(['laptop']);
  });

  it('loki_exporter_build_info carries the revision given (no nodeversion on the Worker), `unknown` without one', async () => {
    const withRevision = remote({}, { build: { revision: 'c0ffee' } });
    expect(await (await withRevision.call('/metrics', { headers: scrape })).text()).toMatch(/^loki_exporter_build_info\{version="[^"]+",demo="false",revision="c0ffee"\} 1$/m);
    const without = remote();
    expect(await (await without.call('/metrics', { headers: scrape })).text()).toMatch(/^loki_exporter_build_info\{version="[^"]+",demo="false",revision="unknown"\} 1$/m);
  });

  it('concurrent scrapes of one session each do their own read (no request waits on another\'s I/O, as workerd requires)', async () => {
    // a store whose beat reads wait at a gate, so the three scrapes are in flight at once
    let gate: (() => void) | undefined;
    const opened = new Promise<void>((resolve) => (gate = resolve));
    let held = false;
    const waiting: string[] = [];
    class Gated extends MemoryObjectStore {
      override async get(key: string, etag?: string) {
        if (held && key === beatKey('laptop')) {
          waiting.push(key);
          await opened;
        }
        return super.get(key, etag);
      }
    }
    const r = remote({}, { bucket: new Gated() });
    await synced(r, 'laptop');
    expect((await r.call('/metrics?session=laptop', { headers: scrape })).status).toBe(200);
    held = true;
    const answers = Promise.all([1, 2, 3].map(() => r.call('/metrics?session=laptop', { headers: scrape })));
    await vi.waitFor(() => expect(waiting).toHaveLength(3), { timeout: 5_000 });
    gate!();
    expect((await answers).map((a) => a.status)).toEqual([200, 200, 200]);
  });

  it('/targets lists the sessions as of the last listing for a minute (on the app\'s clock), then lists again', async () => {
    const r = remote();
    await synced(r, 'a');
    const listed = async () => ((await (await r.call('/targets', { headers: scrape })).json()) as { labels: { session: string } }[]).map((t) => t.labels.session);
    expect(await listed()).toEqual(['a']);
    await synced(r, 'b');
    expect(await listed()).toEqual(['a']);
    r.advance(60_000);
    expect(await listed()).toEqual(['a', 'b']);
  });

  it('keeps each session\'s app (and what its store holds) while they fit MAX_RETAINED_SESSION_BYTES: a scrape after another session\'s is one conditional read', async () => {
    expect(MAX_RETAINED_SESSION_BYTES).toBeLessThan(128 * 1024 * 1024); // an isolate's memory
    const r = remote();
    await synced(r, 'a', 'v9-running');
    await synced(r, 'b', 'running');
    await r.call('/metrics?session=a', { headers: scrape });
    await r.call('/metrics?session=b', { headers: scrape });
    const from = r.bucket!.calls.length;
    const body = await (await r.call('/metrics?session=a', { headers: scrape })).text();
    expect(value(body, 'loki_up')).toBe('1');
    const reads = r.bucket!.calls.slice(from);
    expect(reads).toHaveLength(1);
    expect(reads[0]).toMatchObject({ op: 'get', key: beatKey('a'), etag: expect.any(String) });
  });

  it('other paths are 404s, and the landing page is served', async () => {
    const r = remote();
    expect((await r.call('/nope', { headers: scrape })).status).toBe(404);
    const landing = await r.call('/');
    expect(landing.status).toBe(200);
    expect(await landing.text()).toContain('href="/metrics"');
  });
});

describe('failures', () => {
  /** An object store whose every read fails with `error`. */
  function failing(error: unknown): ObjectStore {
    return new (class extends MemoryObjectStore {
      override get(): Promise<never> {
        return Promise.reject(error);
      }
    })();
  }

  it('a storage error on the write side is a JSON 500 without detail; the detail goes to the log in one line', async () => {
    const r = remote({}, { bucket: failing(new Error('R2 is down at /secret/path')) });
    const res = await r.call('/ingest/manifest?session=s', { headers: sync });
    expect(res.status).toBe(500);
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(await res.json()).toEqual({ error: 'internal error' });
    expect(r.logs).toEqual(['loki-metrics: internal error on GET /ingest/manifest: R2 is down at /secret/path']);
  });

  it('without a log given, the line goes to stderr (console.error); without a clock, Date.now is the time', async () => {
    const printed = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    const bucket = failing(new Error('boom'));
    const app = createRemoteApp({ bucket, config: parseConfig({ LOKI_SYNC_TOKEN: SYNC_TOKEN }) });
    expect((await app.fetch(new Request(`${BASE}/ingest/manifest`, { headers: sync }))).status).toBe(500);
    expect(printed.mock.calls).toEqual([['loki-metrics: internal error on GET /ingest/manifest: boom']]);

    const store = new MemoryObjectStore();
    const timed = createRemoteApp({ bucket: store, config: parseConfig({ LOKI_SYNC_TOKEN: SYNC_TOKEN }), log: () => undefined });
    const before = Date.now();
    const res = await timed.fetch(new Request(`${BASE}/ingest?session=t`, { method: 'POST', headers: sync, body: JSON.stringify(await legacyPayload()) }));
    const { syncedAtMs } = (await res.json()) as { syncedAtMs: number };
    expect(syncedAtMs).toBeGreaterThanOrEqual(before);
    expect(syncedAtMs).toBeLessThanOrEqual(Date.now());
  });
});
