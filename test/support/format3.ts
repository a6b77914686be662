/**
 * Helpers for the format 3 storage tests (sync/shards.ts, sync/ingest.ts, sync/manifest.ts,
 * stores/synced.ts): the real sync client (planUploads with LAYOUT3_LIMITS) driving the real
 * ingest over a `MemoryObjectStore`, hand-built payloads, and collectors to compare snapshots.
 */
import { createCollector, type Collector } from '../../src/collect.js';
import type { Snapshot } from '../../src/snapshot.js';
import { FsStateStore } from '../../src/stores/fs.js';
import type { StateReading } from '../../src/stores/store.js';
import { ingestShards, type IngestAnswer, type IngestOptions } from '../../src/sync/ingest.js';
import { manifestHead, manifestPage } from '../../src/sync/manifest.js';
import { applyToManifest, LAYOUT3_LIMITS, planUploads, SyncMemory, type Upload } from '../../src/sync/plan.js';
import { bytesToBase64, sha256Hex, type IngestPayload, type Manifest, type SyncedFile } from '../../src/sync/protocol.js';
import { SessionAdmission } from '../../src/sync/admission.js';
import { bucketOf, headKey, HeadSchema, parseStored, type Head } from '../../src/sync/shards.js';
import type { UsageTotals } from '../../src/usage-totals.js';
import { cleanTrees, materialize } from './loki-tree.js';
import type { MemoryObjectStore } from './object-store.js';

const enc = new TextEncoder();

/** A valid shipped file: its bytes (text or raw), their hash, base64. */
export async function shipped(content: string | Uint8Array, mtimeMs = 1): Promise<SyncedFile> {
  const bytes = typeof content === 'string' ? enc.encode(content) : content;
  return { mtimeMs, hash: await sha256Hex(bytes), b64: bytesToBase64(bytes) };
}

/** A live file the client reports bad (no content). */
export const badFile = (problem: string, mtimeMs = 1, hash = 'b'.repeat(64)): SyncedFile => ({ mtimeMs, hash, problem });

/** A format 3 payload: nothing changed unless `changes` says so. */
export function payloadOf(changes: Partial<IngestPayload> = {}): IngestPayload {
  return { available: true, pid: null, pidAlive: false, documents: {}, events: { present: false, lines: 0 }, ...changes };
}

/** A set's changes with defaults. */
export const setChanges = (changes: { upsert?: Record<string, SyncedFile>; remove?: string[]; clear?: boolean; present?: boolean; error?: string } = {}) => ({
  present: changes.present ?? true,
  upsert: changes.upsert ?? {},
  remove: changes.remove ?? [],
  ...(changes.clear !== undefined ? { clear: changes.clear } : {}),
  ...(changes.error !== undefined ? { error: changes.error } : {}),
});

/** Ingest options as the Worker builds them (remote-app.ts): new sessions admitted under the cap (sync/admission.ts). */
export function options(store: MemoryObjectStore, nowMs: number, nonce: string, maxSessions = 100): IngestOptions {
  const admission = new SessionAdmission(store, { maxSessions, clock: () => nowMs });
  return { nowMs, nonce, admit: (session, reserve) => admission.admit(session, reserve) };
}

let nonces = 0;
/** A fresh nonce, as crypto.randomUUID would give. */
export const nextNonce = () => `n${++nonces}`;

/** Ingest, expecting success. */
export async function ingestOk(store: MemoryObjectStore, session: string, payload: IngestPayload, nowMs = 1000): Promise<IngestAnswer & { status: 200 }> {
  const answer = await ingestShards(store, session, payload, options(store, nowMs, nextNonce()));
  if (answer.status !== 200) throw new Error(`ingest failed: ${answer.status} ${JSON.stringify(answer.body)}`);
  return answer as IngestAnswer & { status: 200 };
}

/** The remote's manifest as the sync client fetches it from a format 3 Worker: the head, then each set page by page. */
export async function remoteManifest(store: MemoryObjectStore, session: string): Promise<{ manifest: Manifest; pages: number; syncedAtMs: number | null }> {
  const head = await manifestHead(store, session);
  const sets: Record<string, Record<string, string>> = {};
  let pages = 0;
  for (const set of Object.keys(head.sets) as (keyof typeof head.sets)[]) {
    const files: Record<string, string> = (sets[set] = {});
    for (let from: number | null = 0; from !== null; ) {
      const page = await manifestPage(store, session, set, from);
      pages++;
      Object.assign(files, page.files);
      if (page.next !== null && page.next <= from) throw new Error('manifest pages must move forward');
      from = page.next;
    }
  }
  return { manifest: { documents: { ...head.documents }, sets }, pages, syncedAtMs: head.syncedAtMs };
}

/** One client: what it remembers between cycles (the hash cache, the runner probe). */
export interface Client {
  readonly memory: SyncMemory;
}

/**
 * One sync cycle of the real client against the format 3 ingest: the remote's manifest, the
 * uploads planned with LAYOUT3_LIMITS, each ingested in order. Returns the uploads and answers.
 */
export async function syncCycle(
  store: MemoryObjectStore,
  session: string,
  reading: StateReading,
  client: Client,
  nowMs: number,
): Promise<{ uploads: Upload[]; answers: IngestAnswer[]; manifest: Manifest }> {
  let { manifest } = await remoteManifest(store, session);
  const uploads = await planUploads(reading, manifest, client.memory, LAYOUT3_LIMITS);
  const answers: IngestAnswer[] = [];
  for (const upload of uploads) {
    const answer = await ingestShards(store, session, upload.payload, options(store, nowMs, nextNonce()));
    answers.push(answer);
    if (answer.status !== 200) throw new Error(`ingest failed: ${answer.status} ${JSON.stringify(answer.body)}`);
    manifest = applyToManifest(manifest, upload);
  }
  return { uploads, answers, manifest };
}

export const newClient = (): Client => ({ memory: new SyncMemory() });

/** A collector as the Worker and the Node server configure it (same options on both sides). */
export function newCollector(): Collector {
  return createCollector({ maxIterations: 1000, heartbeatWindowMs: 30_000, agentsHoldMs: 10_000, version: '9.9.9', log: () => undefined });
}

/** What two runtimes must agree on: every family's samples but the last sync time (Node has none), and the sources. */
export function comparable(snapshot: Snapshot): { samples: [string, unknown][]; sources: unknown; up: boolean } {
  const samples = [...snapshot.samples.entries()].filter(([name]) => name !== 'loki_last_sync_timestamp_seconds').sort(([a], [b]) => (a < b ? -1 : 1));
  return { samples, sources: snapshot.sources, up: snapshot.up };
}

/** The session's head as stored (undefined when absent or unreadable). */
export const headIn = (store: MemoryObjectStore, session: string): Head => parseStored(HeadSchema, store.objects.get(headKey(session)) ?? null)!;

/** Totals with models in key order, entries at 0 and first appearances aside (ingest adds in bucket order, a fold in name order). */
export function canonical(totals: unknown) {
  const t = totals as UsageTotals;
  return { ...t, models: [...t.models].filter((m) => m.n !== 0).map(({ first: _f, firstName: _n, ...m }) => m).sort((a, b) => (a.key < b.key ? -1 : 1)) };
}

/** An efficiency file's text for iteration `n`: two models, tokens growing with n. */
export const record = (n: number, extra: object = {}) =>
  JSON.stringify({ iteration: n, model: n % 2 ? 'sonnet' : 'claude-opus-4-6', input_tokens: 1000 * n, output_tokens: 7 * n, ...extra });

/** `count` efficiency file names in distinct buckets, none of them in `avoid`. */
export function namesInBuckets(count: number, avoid: number[] = [], from = 1000): string[] {
  const names: string[] = [];
  const used = new Set(avoid);
  for (let n = from; names.length < count; n++) {
    const name = `iteration-${n}.json`;
    if (!used.has(bucketOf(name))) {
      used.add(bucketOf(name));
      names.push(name);
    }
  }
  return names;
}

/** Efficiency upserts, each file `record` of the number in its name. */
export async function upserts(names: string[], mtimeMs = 5): Promise<Record<string, SyncedFile>> {
  return Object.fromEntries(await Promise.all(names.map(async (name) => [name, await shipped(record(Number(/\d+/.exec(name)![0])), mtimeMs)] as const)));
}

/** A payload changing the efficiency set only. */
export const effPayload = (change: Parameters<typeof setChanges>[0], extra: Partial<IngestPayload> = {}) =>
  payloadOf({ sets: { efficiency: setChanges(change) }, ...extra });

const open: FsStateStore[] = [];
/** A fixture tree (its runner alive: this process) and an FsStateStore over it; `closeTrees` after each test. */
export async function openTree(fixture: string): Promise<{ dir: string; fs: FsStateStore }> {
  const dir = await materialize(fixture, { pid: 'alive', mtimeMs: Date.now() - 2_000 });
  const fs = new FsStateStore(dir, { watch: false });
  open.push(fs);
  return { dir, fs };
}
export async function closeTrees(): Promise<void> {
  open.splice(0).forEach((fs) => fs.close());
  await cleanTrees();
}

/** Files (documents, upserts, removals), buckets and bytes (as the plan counts them) of one upload. */
export function measure(upload: Upload): { files: number; bytes: number; buckets: number } {
  const { documents, sets } = upload.payload;
  const buckets = new Set<string>();
  let files = Object.keys(documents).length;
  let bytes = Object.values(documents).reduce((sum, f) => sum + (f?.b64?.length ?? 0) + 200, 0);
  for (const [set, change] of Object.entries(sets ?? {})) {
    for (const [name, file] of Object.entries(change!.upsert)) {
      buckets.add(`${set}/${bucketOf(name)}`);
      files++;
      bytes += (file.b64?.length ?? 0) + 200;
    }
    for (const name of change!.remove) {
      buckets.add(`${set}/${bucketOf(name)}`);
      files++;
      bytes += 200;
    }
  }
  return { files, bytes, buckets: buckets.size };
}
