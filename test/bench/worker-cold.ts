/**
 * The Worker in process, for the Worker bench (worker.bench.ts): its env over the binding doubles,
 * one request measured (CPU of this process, user + system, and wall time), and the bench's child
 * processes:
 *
 *   node --expose-gc dist/test/bench/worker-cold.js first <dump.json> <session>
 *     a fresh isolate: this process loads the Worker module and a storage already holding the
 *     synced session, and measures the very first `/metrics` request only; prints one JSON line.
 *   node --max-old-space-size=128 --expose-gc dist/test/bench/worker-cold.js many <dump.json> <session> <clones>
 *     one env (one isolate) scraping <clones> copies of the session once each; prints one JSON line
 *     before the first scrape (the baseline: the storage double is in this heap too), one per
 *     scrape, then a last one with `done`. Under a 128 MB heap it may die of it: the lines say how
 *     far it got.
 *
 * Only the Worker's public entry (the default export's `fetch`) is used, never its storage modules.
 */
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import worker from '../../src/worker/index.js';
import { fromDump, MemoryR2, type MemoryKV, type StorageDump } from './bindings.js';

export const WORKER_URL = 'https://worker.test';
export const SYNC_TOKEN = 'sync-token-0123456789abcdef';
export const SCRAPE_TOKEN = 'scrape-token-0123456789abcdef';

export type WorkerEnv = Record<string, unknown>;

/** The Worker's default export as the runtime calls it (the env is whatever the bindings are). */
interface WorkerEntry {
  fetch(request: Request, env: WorkerEnv, ctx: ExecutionContextLike): Response | Promise<Response>;
}
interface ExecutionContextLike {
  waitUntil(promise: Promise<unknown>): void;
  passThroughOnException(): void;
  readonly props: Record<string, unknown>;
}
const entry = worker as unknown as WorkerEntry;

/** One Worker env (an isolate keeps one app per env object): the storage binding and the bench's variables. */
export function workerEnv(storage: MemoryR2 | MemoryKV, vars: Record<string, string> = {}): WorkerEnv {
  return {
    [storage instanceof MemoryR2 ? 'LOKI_STATE_BUCKET' : 'LOKI_STATE_KV']: storage,
    LOKI_SYNC_TOKEN: SYNC_TOKEN,
    LOKI_METRICS_TOKEN: SCRAPE_TOKEN,
    LOKI_METRICS_CACHE_SECONDS: '0',
    ...vars,
  };
}

export function scrapeRequest(session: string): Request {
  return new Request(`${WORKER_URL}/metrics?session=${encodeURIComponent(session)}`, { headers: { Authorization: `Bearer ${SCRAPE_TOKEN}` } });
}

export interface Invocation {
  /** The response, its body already read (so it can be read again). */
  readonly response: Response;
  readonly body: Uint8Array;
  /** CPU of the whole process while the request ran (µs), user + system. */
  readonly cpuUs: number;
  readonly wallMs: number;
}

const NULL_BODY = new Set([101, 204, 205, 304]);

/**
 * One request through the Worker's `fetch`, measured from the call until its body is read and
 * everything it handed to `ctx.waitUntil` has settled (that work counts toward the invocation too).
 */
export async function invoke(env: WorkerEnv, request: Request): Promise<Invocation> {
  const pending: Promise<unknown>[] = [];
  const ctx: ExecutionContextLike = { waitUntil: (p) => void pending.push(p), passThroughOnException: () => undefined, props: {} };
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const raw = await entry.fetch(request, env, ctx);
  const body = new Uint8Array(await raw.arrayBuffer());
  while (pending.length > 0) await Promise.allSettled(pending.splice(0));
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(c0);
  const response = new Response(NULL_BODY.has(raw.status) ? null : body, { status: raw.status, statusText: raw.statusText, headers: raw.headers });
  return { response, body, cpuUs: cpu.user + cpu.system, wallMs };
}

const decoder = new TextDecoder();
/** `loki_up`'s value in a scrape's body (NaN when absent). */
export const lokiUp = (body: Uint8Array) => Number(/^loki_up (\S+)$/m.exec(decoder.decode(body))?.[1] ?? NaN);

// ---- the child processes --------------------------------------------------------------------

export interface FirstResult {
  readonly cpuMs: number;
  readonly wallMs: number;
  readonly status: number;
  readonly up: number;
}

export interface ManyLine {
  readonly scraped: number;
  readonly heapUsed: number;
  readonly external: number;
  readonly done?: true;
  readonly peakHeapUsed?: number;
  readonly peakExternal?: number;
  /** heapUsed after a full GC at the end: what the 100 cached sessions keep. */
  readonly retainedHeapUsed?: number;
  readonly failed?: string;
}

function loadStorage(path: string): MemoryR2 | MemoryKV {
  return fromDump(JSON.parse(readFileSync(path, 'utf8')) as StorageDump);
}

/**
 * Node loads its own web platform (undici's Request, Response and Headers, WebCrypto) lazily on
 * first use, a cost workerd does not have (its are native): paid here, before the measurement.
 */
async function warmNodeInternals(): Promise<void> {
  await new Response('x', { status: 200, headers: { 'content-type': 'text/plain' } }).text();
  await new Response(new Uint8Array(2)).arrayBuffer();
  await Response.json({ a: 1 }).text();
  const request = new Request('https://node.test/x?y=1', { headers: { authorization: 'Bearer x' } });
  request.headers.get('authorization');
  new URL(request.url).searchParams.get('y');
  await crypto.subtle.digest('SHA-256', new TextEncoder().encode('x'));
  new TextDecoder().decode(new Uint8Array(1));
}

async function first(dumpPath: string, session: string): Promise<FirstResult> {
  await warmNodeInternals();
  // The isolate has started (its module evaluated, its startup warm-up done) before a request comes.
  await new Promise((resolve) => setTimeout(resolve, 200));
  const env = workerEnv(loadStorage(dumpPath));
  const request = scrapeRequest(session);
  globalThis.gc?.(); // the dump's garbage is not the Worker's
  const result = await invoke(env, request);
  return { cpuMs: result.cpuUs / 1000, wallMs: result.wallMs, status: result.response.status, up: lokiUp(result.body) };
}

async function many(dumpPath: string, session: string, clones: number): Promise<void> {
  const storage = loadStorage(dumpPath);
  const env = workerEnv(storage);
  const names = Array.from({ length: clones }, (_, i) => `${session}-copy-${String(i + 1).padStart(3, '0')}`);
  for (const name of names) storage.copySession(session, name);
  globalThis.gc?.();
  // This process's heap also holds the storage double (its keys, for every copy): the first line,
  // before any scrape, is that baseline.
  let peakHeapUsed = 0;
  let peakExternal = 0;
  let scraped = 0;
  const line = (extra: Partial<ManyLine> = {}) => {
    const { heapUsed, external } = process.memoryUsage();
    peakHeapUsed = Math.max(peakHeapUsed, heapUsed);
    peakExternal = Math.max(peakExternal, external);
    process.stdout.write(JSON.stringify({ scraped, heapUsed, external, ...extra }) + '\n');
  };
  line();
  for (const name of names) {
    const result = await invoke(env, scrapeRequest(name));
    if (result.response.status !== 200 || lokiUp(result.body) !== 1) {
      line({ failed: `${name}: HTTP ${result.response.status}, loki_up ${lokiUp(result.body)}` });
      return;
    }
    scraped++;
    line();
  }
  globalThis.gc?.();
  line({ done: true, peakHeapUsed, peakExternal, retainedHeapUsed: process.memoryUsage().heapUsed });
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [mode, dumpPath, session, count] = process.argv.slice(2);
  if (mode === 'first' && dumpPath && session) process.stdout.write(JSON.stringify(await first(dumpPath, session)) + '\n');
  else if (mode === 'many' && dumpPath && session && count) await many(dumpPath, session, Number(count));
  else {
    process.stderr.write('usage: worker-cold.js first <dump.json> <session> | many <dump.json> <session> <clones>\n');
    process.exitCode = 2;
  }
}
