/**
 * `npm run bench` (part 4): the Cloudflare Worker against the Free plan's limits, in Node, over the
 * real entry: the Worker's default export `fetch(request, env)` with in-memory R2 and KV doubles
 * (bindings.ts), fed by the real sync client (`runSync`), whose `fetch` is pointed at the Worker in
 * this process. Each Worker request is measured as the CPU time of this process while it runs
 * (`process.cpuUsage`, user + system: V8's helper threads included) and its wall time, by route.
 *
 * Per tree (the v9-running fixture, 1k + 1k and 10k + 10k efficiency files + receipts) and per
 * binding: the initial sync, a manifest read by a fresh client, scrapes (after a sync, warm),
 * heartbeats and small changes (CPU and bytes written), a fresh isolate's first scrape (a child
 * process, worker-cold.ts) and memory per cached session; at 10k + 10k also 100 sessions in one
 * isolate under a 128 MB heap (a child process). A benchmark, not a test: it prints figures.
 *
 * Only public entry points are used (the Worker's fetch, runSync): the storage layout may change
 * under it. `BENCH_ONLY=worker` runs this part alone; `BENCH_WORKER_SIZES=fixture,1k` some sizes.
 */
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runSync } from '../../src/node/sync.js';
import { MemoryKV, MemoryR2 } from './bindings.js';
import { benchWanted, fillTree, writeEfficiencyFile } from './trees.js';
import { invoke, lokiUp, scrapeRequest, SYNC_TOKEN, WORKER_URL, workerEnv, type FirstResult, type ManyLine, type WorkerEnv } from './worker-cold.js';

const SESSION = 'bench-session';
const FIXTURE = new URL('../fixtures/v9-running/.loki', import.meta.url).pathname.replace('/dist/test/', '/test/');
const CHILD = fileURLToPath(new URL('./worker-cold.js', import.meta.url));
/** The sync client's default interval (`loki-metrics sync --interval 2s`). */
const DEFAULT_LOOK_MS = 2_000;
const KIB = 1024;
const MB = 1_000_000;

interface Size {
  readonly key: string;
  readonly label: string;
  /** Makes the tree under `root`; returns its `.loki` and the next free efficiency file number. */
  readonly make: (root: string) => { dir: string; nextEfficiency: number };
  /** Heartbeat and small-change cycles, warm scrapes, fresh clients, fresh isolates, clones. */
  readonly reps: number;
  readonly warm: number;
  readonly manifests: number;
  readonly isolates: number;
  readonly clones: number;
}

const generated = (efficiency: number, receipts: number) => (root: string) => ({
  dir: fillTree(join(root, `tree-${efficiency}`, '.loki'), { events: 100, efficiency, receipts }),
  nextEfficiency: efficiency + 1,
});

const SIZES: readonly Size[] = [
  {
    key: 'fixture',
    label: 'v9-running fixture (3 efficiency files, 5 receipts, 3 pids)',
    make: (root) => {
      const dir = join(root, 'fixture', '.loki');
      cpSync(FIXTURE, dir, { recursive: true });
      return { dir, nextEfficiency: 4 };
    },
    reps: 10,
    warm: 20,
    manifests: 5,
    isolates: 5,
    clones: 100,
  },
  { key: '1k', label: '1,000 efficiency files + 1,000 receipts (100 events)', make: generated(1_000, 1_000), reps: 6, warm: 10, manifests: 5, isolates: 5, clones: 100 },
  { key: '10k', label: '10,000 efficiency files + 10,000 receipts (100 events)', make: generated(10_000, 10_000), reps: 3, warm: 5, manifests: 3, isolates: 5, clones: 20 },
];

// ---- measuring Worker requests ----------------------------------------------------------------

interface Sample {
  readonly phase: string;
  readonly route: string;
  readonly cpuMs: number;
  readonly wallMs: number;
  readonly status: number;
}

type Storage = MemoryR2 | MemoryKV;

/** Bytes stored and storage calls, whichever binding. */
function storageOps(storage: Storage): { bytesWritten: number; writes: number; reads: number; lists: number; deletes: number } {
  if (storage instanceof MemoryR2) {
    const o = storage.ops();
    return { bytesWritten: o.bytesWritten, writes: o.byMethod.put ?? 0, reads: o.classB, lists: o.byMethod.list ?? 0, deletes: o.deletes };
  }
  const o = storage.ops();
  return { bytesWritten: o.bytesWritten, writes: o.writes, reads: o.reads, lists: o.lists, deletes: o.deletes };
}

/** A route by method and path only (query parameters are the client's business). */
function routeOf(request: Request): string {
  const path = new URL(request.url).pathname.replace(/(.)\/+$/, '$1');
  return `${request.method} ${path}`;
}

/** One Worker env (one isolate) over one storage, recording every request it serves. */
class Harness {
  readonly samples: Sample[] = [];
  phase = '';
  /** The sync client now being served (its requests wait at its gate), if any. */
  client: DrivenClient | undefined;
  /** The cadence the Worker asks sync clients for, when its manifest names one. */
  cadence: { pushMs: number; heartbeatMs: number } | undefined;

  constructor(
    readonly storage: Storage,
    readonly env: WorkerEnv,
  ) {}

  async call(request: Request): Promise<{ response: Response; body: Uint8Array }> {
    const route = routeOf(request);
    const { response, body, cpuUs, wallMs } = await invoke(this.env, request);
    this.samples.push({ phase: this.phase, route, cpuMs: cpuUs / 1000, wallMs, status: response.status });
    return { response, body };
  }

  async scrape(session = SESSION): Promise<number> {
    const { response, body } = await this.call(scrapeRequest(session));
    if (response.status !== 200) throw new Error(`scrape of ${session}: HTTP ${response.status}: ${new TextDecoder().decode(body).slice(0, 200)}`);
    return lokiUp(body);
  }

  /** Samples of `phase` on `route`. */
  of(phase: string, route: string): Sample[] {
    return this.samples.filter((s) => s.phase === phase && s.route === route);
  }

  /** `globalThis.fetch` for the sync client: the request goes to this Worker, in process. */
  readonly fetch = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const request = new Request(input, init);
    const client = this.client;
    if (client) await client.admit();
    try {
      const { response, body } = await this.call(request);
      if (!response.ok) client?.fail(`${routeOf(request)}: HTTP ${response.status}: ${new TextDecoder().decode(body).slice(0, 300)}`);
      else if (routeOf(request) === 'GET /ingest/manifest') this.cadence ??= cadenceOf(body);
      return response;
    } catch (error) {
      client?.fail(`${routeOf(request)}: ${error instanceof Error ? error.message : String(error)}`);
      throw error;
    }
  };
}

/** The `cadence` a manifest answer carries (`{ pushMs, heartbeatMs }`), if any. */
function cadenceOf(body: Uint8Array): { pushMs: number; heartbeatMs: number } | undefined {
  try {
    const cadence = (JSON.parse(new TextDecoder().decode(body)) as { cadence?: { pushMs?: unknown; heartbeatMs?: unknown } }).cadence;
    return typeof cadence?.pushMs === 'number' && typeof cadence.heartbeatMs === 'number' ? { pushMs: cadence.pushMs, heartbeatMs: cadence.heartbeatMs } : undefined;
  } catch {
    return undefined;
  }
}

/** How long a cycle may take before the bench gives up on it (the 10k initial sync: 500 requests). */
const CYCLE_TIMEOUT_MS = 420_000;
/** How long to wait for the client to come back to its gate after a cycle before measuring anyway. */
const IDLE_TIMEOUT_MS = 10_000;

/**
 * A long-running sync client (`runSync` without `once`), advanced one cycle at a time: between
 * cycles its next request waits at a gate, so nothing of it runs while the bench scrapes. A change
 * to the tree for the next cycle is made in `prepareNext`, before the client reads the tree again.
 */
class DrivenClient {
  readonly logs: string[] = [];
  /** Cycles after which the client did not come back to its gate within IDLE_TIMEOUT_MS. */
  notIdle = 0;
  readonly #controller = new AbortController();
  readonly #done: Promise<number>;
  #open = false;
  #release: (() => void) | undefined;
  #parked: { promise: Promise<void>; resolve: () => void };
  #cycle: { resolve: (stats: { bytesSent: number; requests: number }) => void; reject: (error: Error) => void; prepareNext?: () => void; last: boolean } | undefined;
  #failure: string | undefined;

  constructor(harness: Harness, dir: string, session: string) {
    this.#parked = deferred();
    // Before runSync: its first request (the manifest) is sent before the constructor returns.
    harness.client = this;
    // Every look pushes (a heartbeat when nothing changed): a client that follows the Worker's
    // cadence pushes minutes apart. Not a literal, so a runSync without these options compiles too.
    const options = {
      url: WORKER_URL,
      session,
      dir,
      token: SYNC_TOKEN,
      intervalMs: 100,
      pushMs: 0,
      heartbeatMs: 0,
      // KV's 1.1 s between a push's requests would only stretch the bench (its CPU is per request).
      requestGapMs: 0,
      once: false,
      log: (line: string) => void this.logs.push(line),
      signal: this.#controller.signal,
      onCycle: (stats: { bytesSent: number; requests: number }) => this.#onCycle(stats),
    };
    this.#done = runSync(options);
    void this.#done.then(() => this.#parked.resolve());
  }

  /** Called by the fetch for each of this client's requests: waits while no cycle is allowed. */
  admit(): Promise<void> {
    if (this.#open) return Promise.resolve();
    const wait = new Promise<void>((resolve) => (this.#release = resolve));
    this.#parked.resolve();
    return wait;
  }

  fail(why: string): void {
    this.#failure ??= why;
    this.#controller.abort();
    this.#cycle?.reject(new Error(`sync failed: ${why}`));
    this.#cycle = undefined;
  }

  #onCycle(stats: { bytesSent: number; requests: number }): void {
    const cycle = this.#cycle;
    this.#cycle = undefined;
    this.#open = false;
    this.#parked = deferred();
    cycle?.prepareNext?.();
    if (cycle?.last) this.#controller.abort();
    cycle?.resolve(stats);
  }

  /** Lets one cycle through; resolves when it is done and the client is idle again (waiting at the gate, or stopped). */
  async cycle(options: { prepareNext?: () => void; last?: boolean } = {}): Promise<{ bytesSent: number; requests: number }> {
    if (this.#failure) throw new Error(`sync failed: ${this.#failure}`);
    const done = new Promise<{ bytesSent: number; requests: number }>((resolve, reject) => {
      this.#cycle = { resolve, reject, last: options.last ?? false, ...(options.prepareNext ? { prepareNext: options.prepareNext } : {}) };
    });
    this.#open = true;
    this.#release?.();
    this.#release = undefined;
    const stopped = this.#done.then((code) => {
      throw new Error(`the sync client stopped (exit ${code}): ${this.logs.join(' | ')}`);
    });
    stopped.catch(() => undefined);
    let cycleTimer: NodeJS.Timeout | undefined;
    let idleTimer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      cycleTimer = setTimeout(() => reject(new Error(`no sync cycle within ${CYCLE_TIMEOUT_MS / 1000} s: ${this.logs.join(' | ') || 'the client logged nothing'}`)), CYCLE_TIMEOUT_MS);
    });
    timeout.catch(() => undefined);
    try {
      const stats = await Promise.race([done, stopped, timeout]);
      // Idle again: waiting at the gate with its next request (or stopped). A client that does not
      // come back (nothing to push) is measured around anyway.
      const idle = await Promise.race([this.#parked.promise.then(() => true), new Promise<false>((resolve) => (idleTimer = setTimeout(() => resolve(false), IDLE_TIMEOUT_MS)))]);
      if (!idle) this.notIdle++;
      return stats;
    } finally {
      clearTimeout(cycleTimer);
      clearTimeout(idleTimer);
    }
  }

  async stop(): Promise<void> {
    this.#controller.abort();
    this.#open = true;
    this.#release?.();
    await this.#done;
  }
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

/** Runs `fn` with `globalThis.fetch` pointed at the harness's Worker. */
async function withWorkerFetch<T>(harness: Harness, fn: () => Promise<T>): Promise<T> {
  const real = globalThis.fetch;
  globalThis.fetch = harness.fetch as typeof fetch;
  try {
    return await fn();
  } finally {
    globalThis.fetch = real;
  }
}

// ---- the tree's small change ----------------------------------------------------------------

/** Rewrites dashboard-state.json with one value changed and adds one efficiency file. */
function smallChange(dir: string, efficiency: number): void {
  const path = join(dir, 'dashboard-state.json');
  const state = JSON.parse(readFileSync(path, 'utf8')) as { iteration?: unknown };
  state.iteration = (typeof state.iteration === 'number' ? state.iteration : 0) + 1;
  writeFileSync(path, JSON.stringify(state, null, 2));
  writeEfficiencyFile(dir, efficiency);
}

// ---- one tree, one binding ------------------------------------------------------------------

interface Cpu {
  readonly n: number;
  readonly median: number;
  readonly max: number;
  readonly wallMedian: number;
}

interface Written {
  readonly n: number;
  /** Bytes written per cycle: median and max. */
  readonly median: number;
  readonly max: number;
  /** Storage calls per cycle (median). */
  readonly writes: number;
  readonly reads: number;
  readonly lists: number;
  readonly deletes: number;
}

interface Run {
  readonly storageKeys: number;
  readonly storageBytes: number;
  readonly initial: { requests: number; bytesWritten: number; writes: number; reads: number; lists: number; bytesSent: number };
  readonly initialManifest: Cpu;
  readonly initialIngest: Cpu;
  readonly manifest: Cpu;
  readonly scrapeAfterInitial: Cpu;
  readonly firstScrape: Cpu;
  readonly scrapeAfterHeartbeat: Cpu;
  readonly scrapeAfterChange: Cpu;
  readonly warm: Cpu;
  readonly heartbeat: Cpu;
  readonly heartbeatWritten: Written;
  readonly heartbeatSent: number;
  readonly change: Cpu;
  readonly changeWritten: Written;
  readonly changeSent: number;
  readonly scrapeReads: number;
  readonly isolate: Cpu & { readonly failures: string[] };
  readonly memoryPerSession: number;
  readonly memoryClones: number;
  /** Manifest requests per fresh client. */
  readonly manifestRequests: number;
  readonly cadence: { pushMs: number; heartbeatMs: number } | undefined;
  readonly notes: string[];
  readonly seconds: number;
}

const median = (xs: readonly number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const cpuOf = (samples: readonly Sample[]): Cpu => ({
  n: samples.length,
  median: median(samples.map((s) => s.cpuMs)),
  max: samples.length ? Math.max(...samples.map((s) => s.cpuMs)) : NaN,
  wallMedian: median(samples.map((s) => s.wallMs)),
});
const writtenOf = (cycles: readonly ReturnType<typeof storageOps>[]): Written => ({
  n: cycles.length,
  median: median(cycles.map((c) => c.bytesWritten)),
  max: cycles.length ? Math.max(...cycles.map((c) => c.bytesWritten)) : NaN,
  writes: median(cycles.map((c) => c.writes)),
  reads: median(cycles.map((c) => c.reads)),
  lists: median(cycles.map((c) => c.lists)),
  deletes: median(cycles.map((c) => c.deletes)),
});

const memory = () => {
  const m = process.memoryUsage();
  return m.heapUsed + m.external;
};

/** Full GCs until the heap and external memory settle (ArrayBuffer memory is freed behind the GC). */
async function gc(): Promise<void> {
  if (!globalThis.gc) return;
  let last = Infinity;
  for (let i = 0; i < 10; i++) {
    globalThis.gc();
    await new Promise((resolve) => setTimeout(resolve, 20));
    const now = memory();
    if (Math.abs(now - last) < 64 * 1024) return;
    last = now;
  }
}

async function runOne(size: Size, binding: 'r2' | 'kv', root: string): Promise<Run> {
  const t0 = performance.now();
  const notes: string[] = [];
  const { dir, nextEfficiency } = size.make(join(root, binding));
  let efficiency = nextEfficiency;
  const storage: Storage = binding === 'r2' ? new MemoryR2() : new MemoryKV();
  const harness = new Harness(storage, workerEnv(storage));
  const cycleOps: Record<'heartbeat' | 'change', ReturnType<typeof storageOps>[]> = { heartbeat: [], change: [] };
  const sent: Record<'heartbeat' | 'change', number[]> = { heartbeat: [], change: [] };
  let initial!: Run['initial'];
  let stored = { keys: 0, bytes: 0 };
  const ups: number[] = [];
  let scrapeReads = 0;

  await withWorkerFetch(harness, async () => {
    // A long-running client: the initial sync, heartbeats, small changes.
    const client = new DrivenClient(harness, dir, SESSION);
    try {
      harness.phase = 'initial sync';
      storage.reset();
      const first = await client.cycle();
      const ops = storageOps(storage);
      initial = { requests: harness.samples.filter((s) => s.phase === 'initial sync').length, bytesWritten: ops.bytesWritten, writes: ops.writes, reads: ops.reads, lists: ops.lists, bytesSent: first.bytesSent };
      const entries = storage.entries();
      stored = { keys: entries.length, bytes: entries.reduce((sum, e) => sum + e.size, 0) };

      // The initial sync's garbage is not the scrape's to collect.
      globalThis.gc?.();
      harness.phase = 'scrape after the initial sync';
      ups.push(await harness.scrape());
      harness.phase = 'warm scrape';
      storage.reset();
      for (let i = 0; i < size.warm; i++) ups.push(await harness.scrape());
      scrapeReads = storageOps(storage).reads / size.warm;

      for (let i = 0; i < size.reps; i++) {
        harness.phase = 'heartbeat';
        storage.reset();
        const last = i === size.reps - 1;
        // The last heartbeat cycle prepares the first small change.
        const stats = await client.cycle(last ? { prepareNext: () => smallChange(dir, efficiency++) } : {});
        cycleOps.heartbeat.push(storageOps(storage));
        sent.heartbeat.push(stats.bytesSent);
        harness.phase = 'scrape after a heartbeat';
        ups.push(await harness.scrape());
      }
      for (let i = 0; i < size.reps; i++) {
        harness.phase = 'small change';
        storage.reset();
        const last = i === size.reps - 1;
        const stats = await client.cycle(last ? { last: true } : { prepareNext: () => smallChange(dir, efficiency++) });
        cycleOps.change.push(storageOps(storage));
        sent.change.push(stats.bytesSent);
        harness.phase = 'scrape after a small change';
        ups.push(await harness.scrape());
      }
    } finally {
      harness.client = undefined;
      await client.stop();
    }
    if (client.logs.length) notes.push(...client.logs.map((l) => `sync client: ${l}`));
    if (client.notIdle > 0) notes.push(`!! after ${client.notIdle} cycle(s) the client did not come back to its gate within ${IDLE_TIMEOUT_MS / 1000} s: it may have run during the scrapes`);

    // Fresh clients: each asks for the manifest first.
    harness.phase = 'fresh client';
    for (let i = 0; i < size.manifests; i++) {
      const logs: string[] = [];
      const code = await runSync({ url: WORKER_URL, session: SESSION, dir, token: SYNC_TOKEN, intervalMs: 1000, once: true, log: (l) => logs.push(l) });
      if (code !== 0) throw new Error(`a fresh sync client failed (exit ${code}): ${logs.join(' | ')}`);
    }
  });

  if (ups.some((up) => up !== 1)) notes.push(`!! some scrapes answered loki_up ${[...new Set(ups)].join(', ')} (expected 1)`);
  if (median(sent.change) <= median(sent.heartbeat)) notes.push('!! the small-change cycles sent no more than a heartbeat: the change was not seen');

  // A fresh isolate: child processes over a dump of this storage.
  const dump = join(root, `${binding}-${size.key}.json`);
  writeFileSync(dump, JSON.stringify(storage.dump()));
  const isolates: FirstResult[] = [];
  const failures: string[] = [];
  for (let i = 0; i < size.isolates; i++) {
    const result = spawnSync(process.execPath, ['--expose-gc', CHILD, 'first', dump, SESSION], { encoding: 'utf8', maxBuffer: 1 << 20 });
    try {
      const parsed = JSON.parse(result.stdout.trim().split('\n').pop() ?? '') as FirstResult;
      if (parsed.status !== 200 || parsed.up !== 1) failures.push(`HTTP ${parsed.status}, loki_up ${parsed.up}`);
      isolates.push(parsed);
    } catch {
      failures.push((result.stderr || `exit ${result.status}`).split('\n').find((l) => l.trim() !== '') ?? 'crashed');
    }
  }

  // Memory per cached session: clones of the synced session in this same env, each scraped once.
  // Each is that session's first scrape in this isolate: its app built, its state read whole.
  harness.phase = 'first scrape of a session';
  const clones = Array.from({ length: size.clones }, (_, i) => `${SESSION}-clone-${String(i + 1).padStart(3, '0')}`);
  for (const name of clones) storage.copySession(SESSION, name);
  await gc();
  const before = memory();
  for (const name of clones) {
    const up = await harness.scrape(name);
    if (up !== 1) notes.push(`!! the clone ${name} answered loki_up ${up}`);
  }
  await gc();
  const memoryPerSession = (memory() - before) / size.clones;

  const all = (phase: string, route: string) => cpuOf(harness.of(phase, route));
  return {
    storageKeys: stored.keys,
    storageBytes: stored.bytes,
    initial,
    initialManifest: all('initial sync', 'GET /ingest/manifest'),
    initialIngest: all('initial sync', 'POST /ingest'),
    manifest: all('fresh client', 'GET /ingest/manifest'),
    scrapeAfterInitial: all('scrape after the initial sync', 'GET /metrics'),
    firstScrape: all('first scrape of a session', 'GET /metrics'),
    scrapeAfterHeartbeat: all('scrape after a heartbeat', 'GET /metrics'),
    scrapeAfterChange: all('scrape after a small change', 'GET /metrics'),
    warm: all('warm scrape', 'GET /metrics'),
    heartbeat: all('heartbeat', 'POST /ingest'),
    heartbeatWritten: writtenOf(cycleOps.heartbeat),
    heartbeatSent: median(sent.heartbeat),
    change: all('small change', 'POST /ingest'),
    changeWritten: writtenOf(cycleOps.change),
    changeSent: median(sent.change),
    scrapeReads,
    isolate: {
      n: isolates.length,
      median: median(isolates.map((r) => r.cpuMs)),
      max: isolates.length ? Math.max(...isolates.map((r) => r.cpuMs)) : NaN,
      wallMedian: median(isolates.map((r) => r.wallMs)),
      failures,
    },
    memoryPerSession,
    memoryClones: size.clones,
    manifestRequests: harness.of('fresh client', 'GET /ingest/manifest').length / size.manifests,
    cadence: harness.cadence,
    notes,
    seconds: (performance.now() - t0) / 1000,
  };
}

/** 100 copies of the 10k + 10k session scraped in one isolate, in a child with a 128 MB heap. */
async function manyUnder128(
  dump: string,
  clones: number,
): Promise<{ completed: boolean; scraped: number; baselineHeapUsed: number; peakHeapUsed: number; peakExternal: number; retainedHeapUsed?: number; why?: string; seconds: number }> {
  const t0 = performance.now();
  const child = spawn(process.execPath, ['--max-old-space-size=128', '--expose-gc', CHILD, 'many', dump, SESSION, String(clones)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-20_000)));
  const code = await new Promise<number | null>((resolve) => child.on('close', (c, signal) => resolve(c ?? (signal ? -1 : null))));
  const lines = stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as ManyLine);
  const last = lines[lines.length - 1];
  const peakHeapUsed = Math.max(0, ...lines.map((l) => l.heapUsed));
  const peakExternal = Math.max(0, ...lines.map((l) => l.external));
  const completed = code === 0 && last?.done === true;
  const why = completed
    ? undefined
    : (last?.failed ?? stderr.split('\n').find((l) => /heap|memory|Error/i.test(l))?.trim() ?? `exit ${code}`);
  return {
    completed,
    scraped: last?.scraped ?? 0,
    baselineHeapUsed: lines[0]?.heapUsed ?? NaN,
    peakHeapUsed,
    peakExternal,
    ...(last?.retainedHeapUsed !== undefined ? { retainedHeapUsed: last.retainedHeapUsed } : {}),
    ...(why !== undefined ? { why } : {}),
    seconds: (performance.now() - t0) / 1000,
  };
}

// ---- printing -------------------------------------------------------------------------------

const ms = (x: number) => (!Number.isFinite(x) ? 'n/a' : x < 10 ? x.toFixed(2) : x < 100 ? x.toFixed(1) : x.toFixed(0));
function bytes(n: number): string {
  if (!Number.isFinite(n)) return 'n/a';
  if (n < 10 * KIB) return `${Math.round(n)} B`;
  if (n < MB) return `${(n / KIB).toFixed(1)} KiB`;
  return `${(n / MB).toFixed(2)} MB`;
}
const verdict = (value: number, limit: number) => (!Number.isFinite(value) ? '' : value <= limit ? ' ok' : ' OVER');

const LABEL = 50;
const CELL = 36;
function row(label: string, r2: string, kv: string, target = ''): void {
  console.log(`${label.padEnd(LABEL)}${r2.padEnd(CELL)}${kv.padEnd(CELL)}${target}`);
}
/** A CPU cell: median / max (wall median), with the verdict on the median. */
const cpuCell = (c: Cpu, limit?: number) => (c.n === 0 ? 'n/a' : `${ms(c.median)} / ${ms(c.max)} (${ms(c.wallMedian)})${limit !== undefined ? verdict(c.median, limit) : ''}`);
const writtenCell = (w: Written, limit?: number) =>
  `${bytes(w.median)} in ${w.writes} write${w.writes === 1 ? '' : 's'}${limit !== undefined ? verdict(w.median, limit) : ''}`;

/**
 * The cadence the Worker asks for and what it makes of the heartbeat's writes per day. Without one
 * (a Worker before cadences) every look of the client pushes: 2 s by default.
 */
function cadenceCell(run: Run): string {
  const heartbeatMs = run.cadence?.heartbeatMs ?? DEFAULT_LOOK_MS;
  const perDay = Math.round((run.heartbeatWritten.writes * 86_400_000) / heartbeatMs).toLocaleString('en-US');
  const asked = run.cadence ? `push ${run.cadence.pushMs / 1000} s, beat ${run.cadence.heartbeatMs / 1000} s` : `none (${DEFAULT_LOOK_MS / 1000} s looks)`;
  return `${asked}; ${perDay}`;
}

function printSize(size: Size, r2: Run, kv: Run): void {
  console.log(`\n== ${size.label}`);
  console.log(`   stored after the initial sync: R2 ${r2.storageKeys} object(s), ${bytes(r2.storageBytes)}; KV ${kv.storageKeys} key(s), ${bytes(kv.storageBytes)}; measured in ${r2.seconds.toFixed(1)} s (R2) + ${kv.seconds.toFixed(1)} s (KV)`);
  row('CPU ms per request: median / max (wall median)', 'R2', 'KV', 'target');
  const n = (label: string, c: Cpu) => `${label} (n=${c.n})`;
  row(
    'initial sync: requests, bytes written',
    `${r2.initial.requests} req, ${bytes(r2.initial.bytesWritten)} in ${r2.initial.writes} write(s)`,
    `${kv.initial.requests} req, ${bytes(kv.initial.bytesWritten)} in ${kv.initial.writes} write(s)`,
  );
  row(n('initial sync: GET /ingest/manifest', r2.initialManifest), cpuCell(r2.initialManifest), cpuCell(kv.initialManifest));
  row(n('initial sync: POST /ingest', r2.initialIngest), cpuCell(r2.initialIngest), cpuCell(kv.initialIngest));
  row(n(`manifest read (fresh client: ${r2.manifestRequests} req)`, r2.manifest), cpuCell(r2.manifest, 2), cpuCell(kv.manifest, 2), '<= 2 ms');
  row(n('scrape after the initial sync', r2.scrapeAfterInitial), cpuCell(r2.scrapeAfterInitial, 2), cpuCell(kv.scrapeAfterInitial, 2), '<= 2 ms');
  row(n('first scrape of a session (its clones)', r2.firstScrape), cpuCell(r2.firstScrape, 2), cpuCell(kv.firstScrape, 2), '<= 2 ms');
  row(n('scrape after a heartbeat', r2.scrapeAfterHeartbeat), cpuCell(r2.scrapeAfterHeartbeat, 2), cpuCell(kv.scrapeAfterHeartbeat, 2), '<= 2 ms');
  row(n('warm scrape, nothing changed', r2.warm), cpuCell(r2.warm), cpuCell(kv.warm));
  row(n('heartbeat: POST /ingest', r2.heartbeat), cpuCell(r2.heartbeat), cpuCell(kv.heartbeat));
  row('heartbeat: bytes written per cycle', writtenCell(r2.heartbeatWritten, KIB), writtenCell(kv.heartbeatWritten, KIB), '<= 1 KiB');
  row(n('small change: POST /ingest', r2.change), cpuCell(r2.change, 3), cpuCell(kv.change, 3), '<= 3 ms');
  row('small change: bytes written per cycle', writtenCell(r2.changeWritten, 8 * KIB), writtenCell(kv.changeWritten, 8 * KIB), '<= 8 KiB');
  row(n('scrape after a small change', r2.scrapeAfterChange), cpuCell(r2.scrapeAfterChange, 2), cpuCell(kv.scrapeAfterChange, 2), '<= 2 ms');
  row(n('fresh isolate: first /metrics', r2.isolate), cpuCell(r2.isolate, 10), cpuCell(kv.isolate, 10), '<= 10 ms');
  row(
    `memory per cached session (${r2.memoryClones} clones)`,
    `${bytes(r2.memoryPerSession)}${verdict(r2.memoryPerSession, MB)}`,
    `${bytes(kv.memoryPerSession)}${verdict(kv.memoryPerSession, MB)}`,
    '<= 1 MB',
  );
  const calls = (w: Written) => `${w.reads}r ${w.writes}w${w.lists ? ` ${w.lists}l` : ''}${w.deletes ? ` ${w.deletes}d` : ''}`;
  row('storage calls: scrape; heartbeat; change', `${r2.scrapeReads}r; ${calls(r2.heartbeatWritten)}; ${calls(r2.changeWritten)}`, `${kv.scrapeReads}r; ${calls(kv.heartbeatWritten)}; ${calls(kv.changeWritten)}`);
  row('sync client: bytes sent, heartbeat; small change', `${bytes(r2.heartbeatSent)}; ${bytes(r2.changeSent)}`, `${bytes(kv.heartbeatSent)}; ${bytes(kv.changeSent)}`);
  row('cadence asked; heartbeat writes a day', cadenceCell(r2), cadenceCell(kv));
  for (const [name, run] of [['R2', r2], ['KV', kv]] as const) {
    for (const failure of run.isolate.failures) console.log(`   !! ${name} fresh isolate: ${failure}`);
    for (const note of run.notes) console.log(`   ${name}: ${note}`);
  }
}

/**
 * Warms this process up (module loading, JIT) with a sync and scrapes of the fixture on both
 * bindings, so the first measured requests are not also the process's first: the cold case is the
 * fresh-isolate figure, measured in child processes.
 */
async function warmUp(root: string): Promise<void> {
  for (const storage of [new MemoryR2(), new MemoryKV()]) {
    const dir = join(root, 'warm-up', '.loki');
    cpSync(FIXTURE, dir, { recursive: true });
    const harness = new Harness(storage, workerEnv(storage));
    await withWorkerFetch(harness, async () => {
      for (let i = 0; i < 3; i++) {
        const code = await runSync({ url: WORKER_URL, session: SESSION, dir, token: SYNC_TOKEN, intervalMs: 1000, once: true, log: () => undefined });
        if (code !== 0) throw new Error('the warm-up sync failed');
        for (let j = 0; j < 5; j++) await harness.scrape();
      }
    });
    rmSync(join(root, 'warm-up'), { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  if (!benchWanted('worker')) return;
  const wanted = process.env.BENCH_WORKER_SIZES?.split(',').map((s) => s.trim());
  const sizes = SIZES.filter((s) => !wanted || wanted.includes(s.key));
  if (!globalThis.gc) console.log('(run with node --expose-gc for the memory figures)');
  const t0 = performance.now();
  const root = mkdtempSync(join(tmpdir(), 'loki-bench-worker-'));
  try {
    console.log(`\nloki-metrics Worker bench — node ${process.version}; the Worker's fetch in process over in-memory R2 and KV, fed by runSync`);
    console.log('CPU = process.cpuUsage() (user + system) around each Worker request, body read included; "ok"/"OVER" judge the median');
    console.log(`fresh isolate = a new node process that loads the Worker over a copy of the storage; its first /metrics request only`);
    await warmUp(root);
    let big: { r2: string; kv: string } | undefined;
    for (const size of sizes) {
      const r2 = await runOne(size, 'r2', root);
      const kv = await runOne(size, 'kv', root);
      printSize(size, r2, kv);
      if (size.key === '10k') big = { r2: join(root, 'r2-10k.json'), kv: join(root, 'kv-10k.json') };
      else for (const b of ['r2', 'kv']) rmSync(join(root, `${b}-${size.key}.json`), { force: true });
      rmSync(join(root, 'r2'), { recursive: true, force: true });
      rmSync(join(root, 'kv'), { recursive: true, force: true });
      await gc();
    }
    if (big) {
      console.log('\n== 100 sessions of 10,000 + 10,000 in one isolate (a child process with --max-old-space-size=128)');
      for (const [name, dump] of [['R2', big.r2], ['KV', big.kv]] as const) {
        const result = await manyUnder128(dump, 100);
        const verdictText = result.completed && result.peakHeapUsed < 128 * 1024 * 1024 ? 'ok' : 'OVER';
        console.log(
          `${name}: ${result.completed ? 'completed' : `did not complete (${result.why})`}, ${result.scraped} of 100 scraped; heapUsed ${bytes(result.baselineHeapUsed)} before the first scrape (the storage double and its copies), peak ${bytes(result.peakHeapUsed)} (sampled after each scrape; external ${bytes(result.peakExternal)}, the storage's bytes)${result.retainedHeapUsed !== undefined ? `, ${bytes(result.retainedHeapUsed)} after a full GC at the end` : ''}; ${result.seconds.toFixed(1)} s — target: all 100 under a 128 MB heap: ${verdictText}`,
        );
      }
    }
    console.log(
      '\nFree plan context: 10 ms CPU per request, 128 MB per isolate; R2: 1M class A operations (writes, lists) a month, about 33,000 a day; KV: 1,000 writes a day, at most one write a second to one key. The bench makes its client push on every look; the cadence row says what the Worker asks real clients for.',
    );
    console.log(`targets: scrape after a sync <= 2 ms CPU, small-change ingest <= 3 ms, manifest read <= 2 ms, fresh isolate first request <= 10 ms, heartbeat writes <= 1 KiB, a small change <= 8 KiB, memory per cached session <= 1 MB, 100 x 10k+10k sessions under a 128 MB heap`);
    console.log(`worker bench: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

await main();
