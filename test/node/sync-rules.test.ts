/**
 * The rules of `loki-metrics sync`'s loop, in process, against a scripted remote (an injected
 * `fetch`) with an injected clock and wait: which failures are retried and which end the run, the
 * backoff, a problem told once until it changes, the manifest an older Worker or a paged one gives,
 * divergence, the cadence and spacing the remote asks for, the URL, redirects, unreadable answers,
 * and a stop. Each test reads what was requested, in order, what was waited, and what was logged.
 */
import { getEventListeners } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseInterval, runSync, type SyncOptions } from '../../src/node/sync.js';
import { LAYOUT3_LIMITS } from '../../src/sync/plan.js';
import { manifestEntry, type SyncedFile } from '../../src/sync/protocol.js';
import { cleanTrees, materialize } from '../support/loki-tree.js';

const realFetch = globalThis.fetch;
afterEach(async () => {
  globalThis.fetch = realFetch;
  await cleanTrees();
});

const NOW = 1_800_000_000_000;
const MTIME = NOW - 60_000;
/** The requests of a format 3 client, as the trace names them. */
const M = 'GET /ingest/manifest?session=default&layout=3';
const P = 'POST /ingest?session=default&layout=3';

interface Call {
  readonly method: string;
  readonly url: string;
  readonly body: any;
  readonly signal: AbortSignal | undefined;
  readonly headers: Headers;
}
type Answer = (call: Call, index: number) => Response | Promise<Response>;

const json = (body: unknown, status = 200) => new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });

/** A format 3 remote that takes every push (its manifest: empty, or `head`). */
function accepting(head: Record<string, unknown> = {}): Answer {
  let synced: number | null = null;
  return (call) => {
    if (call.method === 'GET') return json({ layout: 3, syncedAtMs: synced, documents: {}, sets: {}, ...head });
    const previous = synced;
    synced = (synced ?? 0) + 1;
    return json({ syncedAtMs: synced, previousSyncedAtMs: previous });
  };
}

/**
 * The client against `answer`: `trace` holds each request (`METHOD path?query`) and each wait
 * (`wait <ms>`) in order. The run is stopped (its signal aborted) at the `stopAfterWaits`th wait;
 * with `realSleep` the client's own timer waits instead.
 */
function harness(dir: string, answer: Answer, extra: Partial<SyncOptions> = {}, { stopAfterWaits = 2, realSleep = false } = {}) {
  const trace: string[] = [];
  const logs: string[] = [];
  const calls: Call[] = [];
  const controller = new AbortController();
  globalThis.fetch = (async (input: RequestInfo | URL, init?: RequestInit) => {
    // As fetch does once stopped; and a loop that never waits is stopped after 60 requests.
    if (controller.signal.aborted || calls.length >= 60) throw new DOMException('This operation was aborted', 'AbortError');
    const call: Call = { method: init?.method ?? 'GET', url: String(input), body: typeof init?.body === 'string' ? JSON.parse(init.body) : undefined, signal: init?.signal ?? undefined, headers: new Headers(init?.headers) };
    calls.push(call);
    const url = new URL(call.url);
    trace.push(`${call.method} ${url.pathname}${url.search}`);
    return answer(call, calls.length - 1);
  }) as typeof fetch;
  let waits = 0;
  const sleep = async (ms: number) => {
    trace.push(`wait ${ms}`);
    if (++waits >= stopAfterWaits) controller.abort();
  };
  const options: SyncOptions = {
    url: 'https://worker.test',
    session: 'default',
    dir,
    token: 'sync-write-token-0123456789',
    intervalMs: 5_000,
    once: false,
    log: (line) => logs.push(line),
    signal: controller.signal,
    clock: () => NOW,
    ...(realSleep ? {} : { sleep }),
    ...extra,
  };
  return { trace, logs, calls, controller, run: () => runSync(options) };
}

/** The manifest entries of `dir`'s documents and efficiency files, as a remote holding them lists them. */
async function entriesOf(dir: string) {
  const h = harness(dir, accepting(), { once: true });
  expect(await h.run()).toBe(0);
  const body = h.calls.find((c) => c.method === 'POST')!.body as { documents: Record<string, SyncedFile>; sets: { efficiency: { upsert: Record<string, SyncedFile> } } };
  const entries = (files: Record<string, SyncedFile>) => Object.fromEntries(Object.entries(files).map(([name, file]) => [name, manifestEntry(file)]));
  const documents = entries(body.documents);
  const efficiency = entries(body.sets.efficiency.upsert);
  expect(Object.keys(documents).length).toBeGreaterThan(2);
  expect(Object.keys(efficiency)).toHaveLength(5);
  return { documents, efficiency };
}

describe('what is retried and what ends the run', () => {
  it.each([
    [500, true],
    [502, true],
    [503, true],
    [429, true],
    [422, true],
    [400, false],
    [401, false],
    [403, false],
    [404, false],
    [409, false],
    [413, false],
    [499, false],
  ])('an upload answered HTTP %i: retried %s', async (status, retried) => {
    const dir = await materialize('running', { mtimeMs: MTIME });
    const remote = accepting();
    const h = harness(dir, (call, i) => (call.method === 'POST' ? json({ error: 'no' }, status) : remote(call, i)));
    if (retried) {
      expect(await h.run()).toBe(0); // stopped while retrying
      expect(h.trace).toEqual([M, P, 'wait 1000', P, 'wait 2000']);
      expect(h.logs).toEqual([expect.stringMatching(new RegExp(`\\(?${status}\\)?: .*; retrying with backoff$`))]);
    } else {
      expect(await h.run()).toBe(1);
      expect(h.trace).toEqual([M, P]);
      expect(h.logs).toEqual([expect.stringMatching(new RegExp(`^loki-metrics sync: .*${status}[^;]*$`))]);
    }
  });

  it('doubles the wait after each failure up to 30 s, tells a problem once until it changes, and starts again at 1 s after a success', async () => {
    const dir = await materialize('running', { mtimeMs: MTIME });
    const h = harness(
      dir,
      (call, i) => {
        if (i < 7) return json({ error: 'busy' }, 503);
        if (i < 9) return json({ error: 'slow down' }, 429);
        if (i === 9) return json({ layout: 3, syncedAtMs: 7, documents: {}, sets: {} });
        if (i === 10) return json({ syncedAtMs: 8, previousSyncedAtMs: 7 });
        return json({ error: 'busy' }, 503);
      },
      {},
      { stopAfterWaits: 11 },
    );
    expect(await h.run()).toBe(0);
    expect(h.trace).toEqual([
      ...[1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000, 30_000, 30_000].flatMap((ms) => [M, `wait ${ms}`]),
      M,
      P,
      'wait 5000', // the look interval after a success
      P,
      'wait 1000',
    ]);
    expect(h.logs).toEqual([
      'loki-metrics sync: the remote answered HTTP 503: busy; retrying with backoff',
      'loki-metrics sync: the remote answered HTTP 429: slow down; retrying with backoff',
      'loki-metrics sync: ok again (session "default")',
      'loki-metrics sync: the remote answered HTTP 503: busy; retrying with backoff',
    ]);
  });

  it('retries an answer it cannot use (not JSON)', async () => {
    const dir = await materialize('running', { mtimeMs: MTIME });
    const h = harness(dir, () => new Response('<html>maintenance</html>', { status: 200 }));
    expect(await h.run()).toBe(0);
    expect(h.trace).toEqual([M, 'wait 1000', M, 'wait 2000']);
    expect(h.logs).toEqual([expect.stringMatching(/^loki-metrics sync: .*; retrying with backoff$/)]);
  });
});

describe('answers it cannot read', () => {
  /** 17 MB, a MB at a time. */
  const huge = (status: number) => {
    const chunk = new Uint8Array(1024 * 1024).fill(0x61);
    let sent = 0;
    return new Response(new ReadableStream({ pull: (c) => (sent++ < 17 ? c.enqueue(chunk) : c.close()) }), { status });
  };

  it.each([
    [200, true],
    [500, true],
    [404, false],
  ])('refuses an answer larger than 16 MB (HTTP %i), retried %s', async (status, retried) => {
    const dir = await materialize('running', { mtimeMs: MTIME });
    const h = harness(dir, () => huge(status));
    const line = `loki-metrics sync: the remote's answer is larger than 16777216 bytes (HTTP ${status}); not read`;
    if (retried) {
      expect(await h.run()).toBe(0);
      expect(h.trace).toEqual([M, 'wait 1000', M, 'wait 2000']);
      expect(h.logs).toEqual([`${line}; retrying with backoff`]);
    } else {
      expect(await h.run()).toBe(1);
      expect(h.trace).toEqual([M]);
      expect(h.logs).toEqual([line]);
    }
  });

  it.each([
    [new TypeError('terminated'), 'terminated'],
    ['reset', 'error'],
  ])('says an answer broke off while read (%s), and retries it', async (reason, said) => {
    const dir = await materialize('running', { mtimeMs: MTIME });
    const broken = () => new Response(new ReadableStream({ pull: (c) => c.error(reason) }), { status: 200 });
    const once = harness(dir, broken, { once: true });
    expect(await once.run()).toBe(1);
    expect(once.logs).toEqual([`loki-metrics sync: cannot read the remote's answer (${said})`]);
    const h = harness(dir, broken);
    expect(await h.run()).toBe(0);
    expect(h.trace).toEqual([M, 'wait 1000', M, 'wait 2000']);
    expect(h.logs).toEqual([`loki-metrics sync: cannot read the remote's answer (${said}); retrying with backoff`]);
  });

  it('reads an answer of exactly 16 MB, and refuses one a byte longer', async () => {
    const dir = await materialize('running', { mtimeMs: MTIME });
    const head = (size: number) => {
      const start = '{"layout":3,"syncedAtMs":null,"documents":{},"sets":{},"pad":"';
      return `${start}${'a'.repeat(size - start.length - 2)}"}`;
    };
    for (const [size, code] of [
      [16 * 1024 * 1024, 0],
      [16 * 1024 * 1024 + 1, 1],
    ] as const) {
      const remote = accepting();
      const h = harness(dir, (call, i) => (call.method === 'GET' ? new Response(head(size)) : remote(call, i)), { once: true });
      expect(await h.run()).toBe(code);
      expect(h.trace).toEqual(code === 0 ? [M, P] : [M]);
    }
  });

  it('quotes a refusal\'s text without the blank around it', async () => {
    const dir = await materialize('running', { mtimeMs: MTIME });
    const h = harness(dir, () => new Response('  taken by another sync\n', { status: 409 }), { once: true });
    expect(await h.run()).toBe(1);
    expect(h.logs).toEqual(['loki-metrics sync: the remote refused the session (409): taken by another sync']);
  });

  it('quotes an answer without a body as nothing', async () => {
    const dir = await materialize('running', { mtimeMs: MTIME });
    const h = harness(dir, () => new Response(null, { status: 409 }), { once: true });
    expect(await h.run()).toBe(1);
    expect(h.logs).toEqual(['loki-metrics sync: the remote refused the session (409): ']);
  });
});

describe('a remote it cannot reach', () => {
  it.each([
    ['a system error', new TypeError('fetch failed', { cause: { code: 'ECONNREFUSED' } }), 'ECONNREFUSED'],
    ['the first of several addresses', new TypeError('fetch failed', { cause: { errors: [{ code: 'ENETUNREACH' }, { code: 'EHOSTUNREACH' }] } }), 'ENETUNREACH'],
    ['a cause with no code', new TypeError('fetch failed', { cause: { errors: [], message: 'other side closed' } }), 'other side closed'],
    ['a cause with a message only', new TypeError('fetch failed', { cause: { message: 'getaddrinfo ENOTFOUND worker.test' } }), 'getaddrinfo ENOTFOUND worker.test'],
    ['no cause', new Error('socket hang up'), 'socket hang up'],
    ['not an Error', 'reset', 'error'],
  ])('names the cause: %s', async (_, thrown, said) => {
    const dir = await materialize('running', { mtimeMs: MTIME });
    const h = harness(
      dir,
      () => {
        throw thrown;
      },
      { once: true },
    );
    expect(await h.run()).toBe(1);
    expect(h.logs).toEqual([`loki-metrics sync: cannot reach https://worker.test (${said})`]);
  });
});

describe('redirects', () => {
  it.each([
    [302, {}, 'no Location'],
    [302, { Location: '/v2/ingest' }, 'https://worker.test'],
    [302, { Location: 'https://elsewhere.example/ingest' }, 'https://elsewhere.example'],
    [302, { Location: 'http://[' }, 'an invalid Location'],
    [300, { Location: 'https://elsewhere.example/ingest' }, 'https://elsewhere.example'],
    [399, { Location: 'https://elsewhere.example/ingest' }, 'https://elsewhere.example'],
  ])('HTTP %i (Location %j) ends the run naming where it points (%s), without a body to read', async (status, headers, where) => {
    const dir = await materialize('running', { mtimeMs: MTIME });
    const h = harness(dir, () => new Response(null, { status, headers }));
    expect(await h.run()).toBe(1);
    expect(h.trace).toEqual([M]);
    expect(h.logs).toEqual([`loki-metrics sync: the remote answered with a redirect (HTTP ${status}) to ${where}; not followed: use the final URL as --url`]);
  });
});

describe('the URL', () => {
  it.each([
    ['https://worker.test//', 'https://worker.test/ingest'],
    ['https://worker.test/sync///', 'https://worker.test/sync/ingest'],
  ])('drops every trailing slash of %s', async (url, ingest) => {
    const dir = await materialize('running', { mtimeMs: MTIME });
    const h = harness(dir, accepting(), { url, once: true });
    expect(await h.run()).toBe(0);
    expect(h.calls.map((c) => c.url)).toEqual([`${ingest}/manifest?session=default&layout=3`, `${ingest}?session=default&layout=3`]);
  });

  it('sends the token and the content type with every request', async () => {
    const dir = await materialize('running', { mtimeMs: MTIME });
    const h = harness(dir, accepting(), { once: true });
    expect(await h.run()).toBe(0);
    expect(h.calls.map((c) => [c.headers.get('authorization'), c.headers.get('content-type')])).toEqual([
      ['Bearer sync-write-token-0123456789', 'application/json'],
      ['Bearer sync-write-token-0123456789', 'application/json'],
    ]);
  });

  it.each(['ftp://worker.test', 'file:///srv/loki', 'ws://worker.test'])('refuses %s before sending anything', async (url) => {
    const dir = await materialize('running', { mtimeMs: MTIME });
    const h = harness(dir, accepting(), { url });
    expect(await h.run()).toBe(1);
    expect(h.calls).toEqual([]);
    expect(h.logs).toEqual([`loki-metrics sync: ${new URL(url).protocol} URLs are not supported: use https://`]);
  });
});

describe('the manifest', () => {
  it('takes an older Worker\'s manifest (documents, efficiency) and sends only what it lacks, in its format', async () => {
    const dir = await materialize('running', { mtimeMs: MTIME });
    const held = await entriesOf(dir);
    const h = harness(
      dir,
      (call) => (call.method === 'GET' ? json({ manifest: { documents: held.documents, efficiency: held.efficiency }, syncedAtMs: 7 }) : json({ syncedAtMs: 8, previousSyncedAtMs: 7 })),
      { once: true },
    );
    expect(await h.run()).toBe(0);
    expect(h.trace).toEqual([M, 'POST /ingest?session=default']);
    const body = h.calls[1]!.body;
    expect(body.documents).toEqual({});
    expect(body.efficiency.upsert).toEqual({});
  });

  it('takes an older Worker that holds nothing yet, and sends everything', async () => {
    const dir = await materialize('running', { mtimeMs: MTIME });
    const h = harness(dir, (call) => (call.method === 'GET' ? json({ syncedAtMs: null }) : json({ syncedAtMs: 8, previousSyncedAtMs: null })), { once: true });
    expect(await h.run()).toBe(0);
    expect(h.trace).toEqual([M, 'POST /ingest?session=default']);
    expect(Object.keys(h.calls[1]!.body.documents).length).toBeGreaterThan(2);
    expect(Object.keys(h.calls[1]!.body.efficiency.upsert)).toHaveLength(5);
  });

  it('reads a set\'s pages while they move forward, and stops at one that does not', async () => {
    const dir = await materialize('running', { mtimeMs: MTIME });
    const { efficiency } = await entriesOf(dir);
    const names = Object.keys(efficiency);
    const part = (from: number, to: number) => Object.fromEntries(names.slice(from, to).map((n) => [n, efficiency[n]]));
    const h = harness(
      dir,
      (call) => {
        if (call.method === 'POST') return json({ syncedAtMs: 8, previousSyncedAtMs: 7 });
        const from = new URL(call.url).searchParams.get('from');
        if (from === null) return json({ layout: 3, syncedAtMs: 7, documents: {}, sets: { efficiency: { buckets: [1, 2] } } });
        if (from === '0') return json({ files: part(0, 3), next: 4 });
        if (from === '4') return json({ files: part(3, 5), next: 4 }); // not forward
        return json({ files: {}, next: null });
      },
      { once: true },
    );
    expect(await h.run()).toBe(0);
    expect(h.trace).toEqual([M, `${M}&set=efficiency&from=0`, `${M}&set=efficiency&from=4`, P]);
    expect(h.calls[3]!.body.sets.efficiency.upsert).toEqual({}); // both pages count
  });

  it('stops a push at a request the remote answers as diverged, and repairs at once, whatever the push interval', async () => {
    const dir = await materialize('running', { mtimeMs: MTIME });
    // One file more than a request holds: two requests.
    for (let i = 10; i < 10 + LAYOUT3_LIMITS.files; i++) await writeFile(join(dir, `metrics/efficiency/iteration-${i}.json`), `{"iteration": ${i}, "cost_usd": 0.01}`);
    let synced: number | null = null;
    let posts = 0;
    const h = harness(
      dir,
      (call) => {
        if (call.method === 'GET') return json({ layout: 3, syncedAtMs: synced, documents: {}, sets: {}, cadence: { pushMs: 60_000, heartbeatMs: 300_000 } });
        const previous = posts++ === 0 ? 49 : synced; // the first: another client wrote in between
        synced = 50 + posts;
        return json({ syncedAtMs: synced, previousSyncedAtMs: previous });
      },
      {},
      { stopAfterWaits: 1 },
    );
    expect(await h.run()).toBe(0);
    expect(h.trace).toEqual([M, P, M, P, P, 'wait 5000']);
    expect(h.logs).toEqual([]);
  });

  it('tells the first 20 files the remote refused', async () => {
    const dir = await materialize('running', { mtimeMs: MTIME });
    const refused = Array.from({ length: 25 }, (_, i) => `metrics/efficiency/iteration-${i}.json: not JSON`);
    const h = harness(dir, (call) => (call.method === 'GET' ? json({ layout: 3, syncedAtMs: null, documents: {}, sets: {} }) : json({ syncedAtMs: 1, previousSyncedAtMs: null, rejected: refused })), { once: true });
    expect(await h.run()).toBe(0);
    expect(h.logs).toEqual(refused.slice(0, 20).map((problem) => `loki-metrics sync: the remote refused ${problem}`));
  });

  it('asks for the manifest again at once when the remote diverged, twice in a row at most, then at the look interval', async () => {
    const dir = await materialize('running', { mtimeMs: MTIME });
    const h = harness(dir, (call, i) => (call.method === 'GET' ? json({ layout: 3, syncedAtMs: 7, documents: {}, sets: {} }) : json({ syncedAtMs: 100 + i, previousSyncedAtMs: 1 })), {}, { stopAfterWaits: 3 });
    expect(await h.run()).toBe(0);
    expect(h.trace).toEqual([M, P, M, P, M, P, 'wait 5000', M, P, 'wait 5000', M, P, 'wait 5000']);
  });
});

describe('the cadence and spacing the remote asks for', () => {
  it('without a heartbeat from the remote or the flags, every look pushes (a push interval alone given)', async () => {
    const dir = await materialize('running', { mtimeMs: MTIME });
    const h = harness(dir, accepting(), { pushMs: 60_000 }, { stopAfterWaits: 3 });
    expect(await h.run()).toBe(0);
    expect(h.trace).toEqual([M, P, 'wait 5000', P, 'wait 5000', P, 'wait 5000']);
  });

  it('with the remote\'s heartbeat, a look that sees nothing changed pushes nothing', async () => {
    const dir = await materialize('running', { mtimeMs: MTIME });
    const h = harness(dir, accepting({ cadence: { pushMs: 60_000, heartbeatMs: 300_000 } }), {}, { stopAfterWaits: 3 });
    expect(await h.run()).toBe(0);
    expect(h.trace).toEqual([M, P, 'wait 5000', 'wait 5000', 'wait 5000']);
  });

  it.each([
    [{ requestGapMs: 1_100 }, ['wait 1100']],
    [{ requestGapMs: 0 }, []],
    [{}, []],
  ])('spaces the requests of one push as the remote asks (%j)', async (gap, between) => {
    const dir = await materialize('running', { mtimeMs: MTIME });
    // One file more than a request holds: two requests.
    for (let i = 10; i < 10 + LAYOUT3_LIMITS.files; i++) await writeFile(join(dir, `metrics/efficiency/iteration-${i}.json`), `{"iteration": ${i}, "cost_usd": 0.01}`);
    const h = harness(dir, accepting({ cadence: { pushMs: 0, heartbeatMs: 0, ...gap } }), { once: true });
    expect(await h.run()).toBe(0);
    expect(h.trace).toEqual([M, P, ...between, P]);
  });
});

describe('a stop', () => {
  it('reaches the request in flight', async () => {
    const dir = await materialize('running', { mtimeMs: MTIME });
    let reached: boolean | undefined;
    const h = harness(dir, (call) => {
      h.controller.abort();
      reached = call.signal?.aborted;
      throw new DOMException('This operation was aborted', 'AbortError');
    });
    expect(await h.run()).toBe(0);
    expect(reached).toBe(true);
    // Stopped, not failed: no backoff wait and no "cannot reach … retrying" line.
    expect(h.trace).toEqual([M]);
    expect(h.logs.filter((line) => /retrying|cannot reach/.test(line))).toEqual([]);
  });

  it('during the last request of a look ends the run then, not after the look interval', async () => {
    const dir = await materialize('running', { mtimeMs: MTIME });
    const remote = accepting();
    const h = harness(
      dir,
      (call, i) => {
        if (call.method === 'POST') h.controller.abort();
        return remote(call, i);
      },
      { intervalMs: 3_600_000 },
      { realSleep: true },
    );
    expect(await h.run()).toBe(0);
    expect(h.trace).toEqual([M, P]);
  });

  it('while waiting ends the wait at once', async () => {
    const dir = await materialize('running', { mtimeMs: MTIME });
    let looked!: () => void;
    const first = new Promise<void>((resolve) => (looked = resolve));
    const h = harness(dir, accepting(), { intervalMs: 3_600_000, onCycle: () => looked() }, { realSleep: true });
    const running = h.run();
    await first; // the client is now in its hour-long wait
    expect(getEventListeners(h.controller.signal, 'abort')).toHaveLength(1);
    h.controller.abort();
    expect(await running).toBe(0);
    expect(h.trace).toEqual([M, P]);
    expect(getEventListeners(h.controller.signal, 'abort')).toHaveLength(0);
  });

  it('leaves no listener behind from the waits that ended', async () => {
    const dir = await materialize('running', { mtimeMs: MTIME });
    const listening: number[] = [];
    const h = harness(
      dir,
      accepting(),
      {
        intervalMs: 1,
        onCycle: () => {
          listening.push(getEventListeners(h.controller.signal, 'abort').length);
          if (listening.length === 10) h.controller.abort();
        },
      },
      { realSleep: true },
    );
    expect(await h.run()).toBe(0);
    expect(listening).toEqual(Array(10).fill(0));
  });
});

describe('the end of a run', () => {
  /** The inotify watches this process holds (Linux: one `inotify wd:` line each in /proc/self/fdinfo). */
  const watches = () => {
    let count = 0;
    for (const fd of readdirSync('/proc/self/fdinfo')) {
      try {
        count += (readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8').match(/^inotify wd:/gm) ?? []).length;
      } catch {
        // closed since listed
      }
    }
    return count;
  };

  it.skipIf(process.platform !== 'linux')('leaves no watch of the state directory behind', async () => {
    const dir = await materialize('running', { mtimeMs: MTIME });
    const before = watches();
    let during = 0;
    const h = harness(dir, accepting(), { once: true, onCycle: () => (during = watches()) });
    expect(await h.run()).toBe(0);
    expect(during).toBeGreaterThan(before); // it watched while it ran
    expect(watches()).toBe(before);
  });
});

describe('parseInterval', () => {
  it.each([
    ['100ms', 100],
    ['0.1', 100],
    ['1.5s', 1_500],
    ['1.25s', 1_250],
    [' 2s\n', 2_000],
    ['60m', 3_600_000],
    ['3600', 3_600_000],
  ])('reads %j as %i ms', (text, ms) => expect(parseInterval(text)).toBe(ms));

  it.each(['99ms', '0.09s', '61m', '3600.5', 'x2s', '2s!', '2 s', '1.s', '.5s', '-1s', '1.xs', '1.5.5s', '2h', ''])('refuses %j', (text) => expect(parseInterval(text)).toBeUndefined());
});
