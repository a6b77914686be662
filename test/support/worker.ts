/**
 * The Worker in real workerd (Miniflare) with real local R2/KV, on 127.0.0.1. The test entry wraps
 * the production Worker only to count storage operations.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';
import { Miniflare } from 'miniflare';
import { COMPATIBILITY_DATE } from './wrangler-toml.js';

// The TypeScript source, also when this helper runs compiled from dist/ (npm run stress).
const ENTRY = new URL('../worker/counting-entry.ts', import.meta.url).pathname.replace('/dist/test/', '/test/');
let bundled: Promise<string> | undefined;

function bundle(): Promise<string> {
  bundled ??= build({
    entryPoints: [ENTRY],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    write: false,
    logLevel: 'silent',
  }).then((result) => result.outputFiles[0]!.text);
  return bundled;
}

export const SYNC_TOKEN = 'sync-write-token-0123456789';
export const SCRAPE_TOKEN = 'scrape-read-token-0123456789';

export interface TestWorker {
  readonly url: string;
  fetch(path: string, init?: RequestInit): Promise<Response>;
  /** What the Worker logged (console.*), captured rather than printed: tests assert on it. */
  logs(): readonly string[];
  /** Storage calls by binding and method since the last reset. */
  ops(): Promise<Record<string, Record<string, number>>>;
  resetOps(): Promise<void>;
  dispose(): Promise<void>;
}

export interface WorkerOptions {
  r2?: boolean;
  kv?: boolean;
  vars?: Record<string, string>;
  port?: number;
  /**
   * A directory for R2/KV's contents that outlives the Worker: a second Worker given the same one
   * (e.g. with other vars, as after a redeploy) sees what the first stored. The caller removes it.
   */
  persist?: string;
}

export async function startWorker(options: WorkerOptions = {}): Promise<TestWorker> {
  const script = await bundle();
  // Miniflare keeps its storage in a `miniflare-<hash>` directory under os.tmpdir() and removes it
  // fire-and-forget on dispose, which a test process can outlive. Give it a directory of ours that
  // dispose() removes for certain (os.tmpdir() reads TMPDIR when Miniflare is constructed).
  const own = await mkdtemp(join(tmpdir(), 'loki-test-workerd-'));
  const logs: string[] = [];
  const previous = process.env.TMPDIR;
  process.env.TMPDIR = own;
  let mf: Miniflare;
  try {
    mf = new Miniflare({
      modules: true,
      script,
      compatibilityDate: COMPATIBILITY_DATE,
      host: '127.0.0.1',
      ...(options.port !== undefined ? { port: options.port } : {}),
      ...(options.r2 !== false ? { r2Buckets: ['LOKI_STATE_BUCKET'] } : {}),
      ...(options.kv ? { kvNamespaces: ['LOKI_STATE_KV'] } : {}),
      ...(options.persist !== undefined ? { r2Persist: join(options.persist, 'r2'), kvPersist: join(options.persist, 'kv') } : {}),
      bindings: { LOKI_SYNC_TOKEN: SYNC_TOKEN, LOKI_METRICS_CACHE_SECONDS: '0', ...options.vars },
      handleStructuredLogs: ({ message }: { message: string }) => void logs.push(message),
    });
  } finally {
    if (previous === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = previous;
  }
  const url = (await mf.ready).href.replace(/\/$/, '');
  return {
    url,
    fetch: (path, init) => fetch(url + path, init),
    logs: () => logs,
    ops: async () => (await (await fetch(`${url}/__ops`)).json()) as Record<string, Record<string, number>>,
    resetOps: async () => void (await fetch(`${url}/__ops/reset`)).text(),
    dispose: async () => {
      await mf.dispose();
      await rm(own, { recursive: true, force: true });
    },
  };
}
