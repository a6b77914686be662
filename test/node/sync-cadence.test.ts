/**
 * The sync cadence (issue 18): a change is pushed at most once per push interval, nothing changed
 * is a heartbeat per heartbeat interval, both as the Worker asks unless flags say otherwise, and the
 * Worker's staleness follows its heartbeat. In process: the real client and the real remote app
 * over an in-memory R2, with one clock both share.
 */
import { appendFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config.js';
import { runSync, type SyncOptions } from '../../src/node/sync.js';
import { createRemoteApp } from '../../src/remote-app.js';
import { CADENCE_DEFAULTS, staleAfter, syncCadence } from '../../src/sync/cadence.js';
import { LAYOUT3_LIMITS } from '../../src/sync/plan.js';
import { cleanTrees, materialize } from '../support/loki-tree.js';
import { MemoryObjectStore } from '../support/object-store.js';

const SYNC_TOKEN = 'sync-write-token-0123456789';
const realFetch = globalThis.fetch;
afterEach(async () => {
  globalThis.fetch = realFetch;
  await cleanTrees();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The remote app answering the client's fetches in process; `posts` counts ingest requests. */
function remote(vars: Record<string, string>, strong = true) {
  let now = 1_800_000_000_000;
  const clock = () => now;
  const bucket = new MemoryObjectStore(strong);
  const app = createRemoteApp({ bucket, config: parseConfig({ LOKI_SYNC_TOKEN: SYNC_TOKEN, LOKI_METRICS_CACHE_SECONDS: '0', ...vars }), clock, log: () => {} });
  const posts: number[] = [];
  globalThis.fetch = (async (input: RequestInfo | URL, init?: RequestInit) => {
    const request = new Request(input, init);
    const response = await app.fetch(request);
    if (request.method === 'POST') posts.push(now); // counted once stored: a scrape then sees it
    return response;
  }) as typeof fetch;
  return { app, bucket, posts, clock, advance: (ms: number) => void (now += ms) };
}

async function start(dir: string, clock: () => number, extra: Partial<SyncOptions> = {}) {
  const controller = new AbortController();
  const running = runSync({ url: 'https://worker.test', session: 'default', dir, token: SYNC_TOKEN, intervalMs: 5, once: false, log: () => {}, signal: controller.signal, clock, ...extra });
  return { stop: async () => (controller.abort(), expect(await running).toBe(0)) };
}

const value = async (app: ReturnType<typeof remote>['app'], name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(await (await app.request('/metrics')).text())?.[1]);

describe('the Worker sets the cadence', () => {
  it('pushes a change once the push interval has passed, and a heartbeat when nothing changed', async () => {
    const r = remote({ LOKI_SYNC_PUSH_SECONDS: '60', LOKI_SYNC_HEARTBEAT_SECONDS: '300' });
    const dir = await materialize('running', { pid: 'alive', mtimeMs: Date.now() });
    const sync = await start(dir, r.clock);
    try {
      while (r.posts.length === 0) await sleep(5);
      const first = r.posts.length; // the first look pushes everything at once
      await sleep(150); // many looks, nothing changed, no time passed
      expect(r.posts.length).toBe(first);

      await appendFile(join(dir, 'events.jsonl'), '{"type":"tool_use"}\n'.repeat(3));
      r.advance(59_999);
      await sleep(150); // changed, but the push interval has not passed
      expect(r.posts.length).toBe(first);
      r.advance(1);
      while (r.posts.length === first) await sleep(5);
      expect(await value(r.app, 'loki_events_total')).toBe(53);

      const pushed = r.posts.length;
      r.advance(299_999);
      await sleep(150); // nothing changed: no push before the heartbeat is due
      expect(r.posts.length).toBe(pushed);
      r.advance(1);
      while (r.posts.length === pushed) await sleep(5);
      expect(r.posts.length).toBe(pushed + 1); // one request: the heartbeat
      expect(await value(r.app, 'loki_last_sync_timestamp_seconds')).toBe(r.clock() / 1000);
    } finally {
      await sync.stop();
    }
  });

  it('lets the flags override the Worker: --push-interval 0s pushes at every look that sees a change', async () => {
    const r = remote({});
    const dir = await materialize('running', { pid: 'alive', mtimeMs: Date.now() });
    const sync = await start(dir, r.clock, { pushMs: 0 });
    try {
      while (r.posts.length === 0) await sleep(5);
      const first = r.posts.length;
      await appendFile(join(dir, 'events.jsonl'), '{"type":"tool_use"}\n');
      while (r.posts.length === first) await sleep(5);
      expect(await value(r.app, 'loki_events_total')).toBe(51);
    } finally {
      await sync.stop();
    }
  });

  it('reads a session as stopped after two missed heartbeats and a minute, not before', async () => {
    const r = remote({ LOKI_SYNC_HEARTBEAT_SECONDS: '300' });
    const dir = await materialize('running', { pid: 'alive', mtimeMs: Date.now() });
    expect(await runSync({ url: 'https://worker.test', session: 'default', dir, token: SYNC_TOKEN, intervalMs: 5, once: true, log: () => {}, clock: r.clock })).toBe(0);
    expect(await value(r.app, 'loki_session_status')).toBe(1);
    r.advance(staleAfter(300_000));
    expect(await value(r.app, 'loki_session_status')).toBe(1);
    r.advance(1);
    expect(await value(r.app, 'loki_session_status')).toBe(0);
  });
});

describe('a push of several requests', () => {
  it('spaces them as KV needs (one write a second to a key), and not on R2', async () => {
    for (const strong of [false, true]) {
      const r = remote({}, strong);
      const times: number[] = [];
      const inner = globalThis.fetch;
      globalThis.fetch = (async (input: RequestInfo | URL, init?: RequestInit) => {
        if (init?.method === 'POST') times.push(performance.now());
        return inner(input, init);
      }) as typeof fetch;
      const dir = await materialize('running', { pid: 'alive', mtimeMs: Date.now() });
      // One request more than a request holds: two requests.
      for (let i = 10; i < 10 + LAYOUT3_LIMITS.files; i++) await writeFile(join(dir, `metrics/efficiency/iteration-${i}.json`), `{"iteration": ${i}, "cost_usd": 0.01}`);
      expect(await runSync({ url: 'https://worker.test', session: 'default', dir, token: SYNC_TOKEN, intervalMs: 5, once: true, log: () => {}, clock: r.clock })).toBe(0);
      expect(times.length).toBe(2);
      const gap = times[1]! - times[0]!;
      if (strong) expect(gap).toBeLessThan(1_000);
      else expect(gap).toBeGreaterThanOrEqual(1_090);
    }
  });
});

describe('syncCadence', () => {
  it('defaults by binding, a heartbeat never shorter than the push interval, staleness from the heartbeat', () => {
    expect(syncCadence('r2', {})).toEqual({ pushMs: 60_000, heartbeatMs: 300_000, staleMs: 660_000, requestGapMs: 0 });
    expect(syncCadence('kv', {})).toEqual({ pushMs: 600_000, heartbeatMs: 1_200_000, staleMs: 2_460_000, requestGapMs: 1_100 });
    expect(syncCadence('r2', { syncPushMs: 600_000 })).toEqual({ pushMs: 600_000, heartbeatMs: 600_000, staleMs: 1_260_000, requestGapMs: 0 });
    expect(syncCadence('kv', { syncStaleMs: 5_000 }).staleMs).toBe(5_000);
    // The defaults are what docs/worker.md's plan table is computed from.
    expect(CADENCE_DEFAULTS).toEqual({ r2: { pushMs: 60_000, heartbeatMs: 300_000 }, kv: { pushMs: 600_000, heartbeatMs: 1_200_000 } });
  });

  it('is told to the client with the manifest', async () => {
    const r = remote({ LOKI_SYNC_PUSH_SECONDS: '90' }, false);
    const answer = (await (await r.app.request('/ingest/manifest?session=s&layout=3', { headers: { Authorization: `Bearer ${SYNC_TOKEN}` } })).json()) as { cadence: unknown };
    expect(answer.cadence).toEqual({ pushMs: 90_000, heartbeatMs: 1_200_000, staleMs: staleAfter(1_200_000), requestGapMs: 1_100 });
  });
});
