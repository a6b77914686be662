/**
 * The client side of sync, pure: compare what the local store read with what the remote holds
 * (its manifest) and build the requests that carry only the differences, in batches under the
 * remote's size limit. `events.jsonl` travels as its summary, never as bytes.
 */
import { RunnerProbe, type LivenessMode } from '../liveness.js';
import type { ParseResult } from '../schemas/parse.js';
import { DOCUMENTS, FILE_SET_NAMES, fileSetPath, type DocumentName, type FileRead, type FileSetName, type StateReading } from '../stores/store.js';
import { bucketOf, MAX_BUCKETS_PER_INGEST } from './shards.js';
import {
  bytesToBase64,
  capProblem,
  DOCUMENT_PARSERS,
  MAX_DATE_MS,
  FILE_SET_ENTRY_NAME,
  FILE_SET_PARSERS,
  manifestEntry,
  MAX_INGEST_BYTES,
  MAX_SYNC_FILE_BYTES,
  sha256Hex,
  type FileSetChanges,
  type IngestPayload,
  type Manifest,
  type SyncedFile,
} from './protocol.js';

/** What the client remembers between cycles. */
export class SyncMemory {
  readonly hashes = new HashCache();
  /**
   * Liveness judged here, next to the runner, by the collector's own rule (last valid pid kept
   * while `loki.pid` is caught mid-write), so the Worker reports what a local exporter would.
   */
  readonly runner: RunnerProbe;

  constructor(liveness: LivenessMode = 'auto') {
    this.runner = new RunnerProbe(liveness, () => undefined);
  }
}

/** Content hashes by store version, so unchanged files are not hashed again each cycle. */
export class HashCache {
  private readonly byPath = new Map<string, { version: string; hash: string }>();
  async hash(path: string, read: FileRead): Promise<string> {
    const cached = this.byPath.get(path);
    if (cached && read.version !== '' && cached.version === read.version) return cached.hash;
    const bytes = read.bytes ?? new TextEncoder().encode(`error:${read.error ?? 'unreadable'}`);
    const hash = await sha256Hex(bytes);
    this.byPath.set(path, { version: read.version, hash });
    return hash;
  }
}

export interface Upload {
  readonly payload: IngestPayload;
  /** The manifest entries this payload establishes once the remote accepts it. */
  readonly applies: { documents: Record<string, string | null>; sets: Partial<Record<FileSetName, Record<string, string | null>>> };
}

/**
 * How uploads are cut. A format 2 remote (an older Worker) takes big batches. A format 3 remote
 * writes one object per bucket a request touches, so a request stays small: a few hundred KB, a
 * bounded number of files and buckets, inside a Worker's CPU and per-request operation limits.
 */
export interface UploadLimits {
  readonly layout: 2 | 3;
  readonly bytes: number;
  readonly files: number;
  readonly buckets: number;
}
export const LAYOUT2_LIMITS: UploadLimits = { layout: 2, bytes: Math.floor(MAX_INGEST_BYTES / 2), files: Infinity, buckets: Infinity };
/** 40 files (~0.13 ms of the Worker's CPU each, checked and summed) keep a request under 10 ms. */
export const LAYOUT3_LIMITS: UploadLimits = { layout: 3, bytes: 96 * 1024, files: 40, buckets: Math.floor(MAX_BUCKETS_PER_INGEST * 0.75) };

/** A time as the remote accepts it: within 0..MAX_DATE_MS (a file touched far into the future still syncs). */
const syncTime = (ms: number | undefined) => Math.min(Math.max(ms ?? 0, 0), MAX_DATE_MS);
/** A time that may be before the epoch, within Date's range. */
const anyTime = (ms: number) => Math.min(Math.max(ms, -MAX_DATE_MS), MAX_DATE_MS);

async function syncedFile(path: string, read: FileRead, hashes: HashCache, parse: (b: Uint8Array) => ParseResult<unknown>): Promise<SyncedFile> {
  const hash = await hashes.hash(path, read);
  const mtimeMs = syncTime(read.mtimeMs);
  if (read.error !== undefined || read.bytes === undefined) return { mtimeMs, hash, problem: capProblem(read.error ?? 'unreadable') };
  if (read.bytes.length > MAX_SYNC_FILE_BYTES) return { mtimeMs, hash, problem: `too large to sync (${read.bytes.length} bytes)` };
  const parsed = parse(read.bytes);
  return parsed.ok ? { mtimeMs, hash, b64: bytesToBase64(read.bytes) } : { mtimeMs, hash, problem: capProblem(parsed.problem) };
}

/** Builds the uploads for one cycle: at least one (it is also the heartbeat), more for big changes. */
export async function planUploads(reading: StateReading, manifest: Manifest, memory: SyncMemory, limits: UploadLimits = LAYOUT2_LIMITS): Promise<Upload[]> {
  const { hashes } = memory;
  const documents: IngestPayload['documents'] = {};
  const docApplies: Record<string, string | null> = {};
  for (const name of DOCUMENTS) {
    const read = reading.documents[name];
    if (!read.present) {
      if (manifest.documents[name] !== undefined) {
        documents[name] = null;
        docApplies[name] = null;
      }
      continue;
    }
    const hash = await hashes.hash(name, read);
    const entry = manifestEntry({ hash, mtimeMs: syncTime(read.mtimeMs) });
    if (manifest.documents[name] === entry) continue;
    documents[name] = await syncedFile(name, read, hashes, DOCUMENT_PARSERS[name]);
    docApplies[name] = entry;
  }

  const verdict = memory.runner.probe(reading).verdict;
  const { events } = reading;
  const base = {
    available: reading.available,
    ...(reading.problem !== undefined ? { problem: capProblem(reading.problem) } : {}),
    pid: verdict.pid ?? null,
    pidAlive: verdict.decided && verdict.alive,
    runner: verdict.startedMs !== undefined ? { ...verdict, startedMs: syncTime(verdict.startedMs) } : verdict,
    events: {
      present: events.present,
      lines: events.lines,
      ...(events.mtimeMs !== undefined ? { mtimeMs: syncTime(events.mtimeMs) } : {}),
      ...(events.error !== undefined ? { error: capProblem(events.error) } : {}),
      ...(events.sessionStartMs !== undefined ? { sessionStartMs: anyTime(events.sessionStartMs) } : {}),
      ...(events.iteration !== undefined ? { iteration: events.iteration } : {}),
      ...(events.sessionPid !== undefined ? { sessionPid: events.sessionPid } : {}),
    },
  };

  // Every change, documents and efficiency files alike, batched so no request nears the remote's
  // limit (one file is at most MAX_SYNC_FILE_BYTES, so any file fits a batch of its own).
  interface Batch {
    documents: IngestPayload['documents'];
    upsert: Partial<Record<FileSetName, Record<string, SyncedFile>>>;
    remove: Partial<Record<FileSetName, string[]>>;
    applies: Upload['applies'];
    bytes: number;
    files: number;
    buckets: Set<string>;
  }
  const batches: Batch[] = [];
  /** The batch a file (or a removal: null) goes in; `entry` is its set and name, for its bucket. */
  const batchFor = (file: SyncedFile | null, entry?: { set: FileSetName; name: string }): Batch => {
    const size = (file?.b64?.length ?? 0) + 200;
    const bucket = entry && limits.layout === 3 ? `${entry.set}/${bucketOf(entry.name)}` : undefined;
    let batch = batches[batches.length - 1];
    const full = (b: Batch) =>
      b.bytes + size > limits.bytes || b.files + 1 > limits.files || (bucket !== undefined && !b.buckets.has(bucket) && b.buckets.size + 1 > limits.buckets);
    // A batch holds at least one file (its bytes are never 0), so a file bigger than a batch goes alone.
    if (!batch || full(batch)) {
      batches.push((batch = { documents: {}, upsert: {}, remove: {}, applies: { documents: {}, sets: {} }, bytes: 0, files: 0, buckets: new Set() }));
    }
    batch.bytes += size;
    batch.files++;
    if (bucket !== undefined) batch.buckets.add(bucket);
    return batch;
  };
  for (const [name, file] of Object.entries(documents) as [DocumentName, SyncedFile | null][]) {
    const batch = batchFor(file);
    batch.documents[name] = file;
    batch.applies.documents[name] = docApplies[name] ?? null;
  }
  const removals: Partial<Record<FileSetName, string[]>> = {};
  const clears = new Set<FileSetName>();
  for (const set of FILE_SET_NAMES) {
    const synced = manifest.sets[set] ?? {};
    const local = reading[set].files.filter((file) => FILE_SET_ENTRY_NAME[set].test(file.name)); // names the remote accepts
    // Format 3: files in bucket order, so a batch fills few buckets and a bucket is written once per
    // first upload, not once per batch (10,000 files: ~1,000 bucket writes rather than ~10,000).
    if (limits.layout === 3) sortByBucket(local);
    const names = new Set(local.map((file) => file.name));
    const gone = Object.keys(synced).filter((name) => !names.has(name));
    // Format 3: a set mostly emptied (a run start) is cleared in one word and what is left sent again,
    // rather than every removal touching its bucket.
    const clear = limits.layout === 3 && gone.length > 0 && gone.length >= Object.keys(synced).length - gone.length;
    if (clear) clears.add(set);
    removals[set] = clear ? [] : gone;
    if (limits.layout === 3) sortByBucket(removals[set]!.map((name) => ({ name }))).forEach((file, i) => (removals[set]![i] = file.name));
    for (const file of local) {
      const path = fileSetPath(set, file.name);
      const hash = await hashes.hash(path, file);
      const entry = manifestEntry({ hash, mtimeMs: syncTime(file.mtimeMs) });
      if (!clear && synced[file.name] === entry) continue;
      const shipped = await syncedFile(path, file, hashes, FILE_SET_PARSERS[set]);
      const batch = batchFor(shipped, { set, name: file.name });
      (batch.upsert[set] ??= {})[file.name] = shipped;
      (batch.applies.sets[set] ??= {})[file.name] = entry;
    }
  }
  if (limits.layout === 3) {
    // Removals touch buckets too: batched like files.
    for (const set of FILE_SET_NAMES) {
      for (const name of removals[set]!) {
        const batch = batchFor(null, { set, name });
        (batch.remove[set] ??= []).push(name);
        (batch.applies.sets[set] ??= {})[name] = null;
      }
    }
  }
  const first = batches[0] ?? batchFor(null); // at least one request: it is also the heartbeat
  for (const set of FILE_SET_NAMES) {
    if (clears.has(set)) {
      // Everything the remote held is gone unless this cycle sends it again.
      for (const name of Object.keys(manifest.sets[set] ?? {})) if (first.applies.sets[set]?.[name] === undefined) (first.applies.sets[set] ??= {})[name] = null;
    }
    if (limits.layout === 2) for (const name of removals[set]!) (first.applies.sets[set] ??= {})[name] = null;
  }

  return batches.map((batch, index) => {
    const changes = (set: FileSetName): FileSetChanges => {
      const read = reading[set];
      return {
        present: read.present,
        ...(read.error !== undefined ? { error: capProblem(read.error) } : {}),
        ...(batch === first && clears.has(set) ? { clear: true } : {}),
        upsert: batch.upsert[set] ?? {},
        remove: limits.layout === 3 ? (batch.remove[set] ?? []) : batch === first ? removals[set]! : [],
      };
    };
    if (limits.layout === 3) {
      const sets = Object.fromEntries(FILE_SET_NAMES.map((set) => [set, changes(set)]));
      return { payload: { ...base, documents: batch.documents, sets, ...(index === batches.length - 1 ? { final: true } : {}) }, applies: batch.applies };
    }
    // The efficiency set travels where clients before file sets sent it, so an older Worker still
    // takes it; the other sets ride in `sets`, which an older Worker ignores.
    const sets = Object.fromEntries(FILE_SET_NAMES.filter((set) => set !== 'efficiency').map((set) => [set, changes(set)]));
    return { payload: { ...base, documents: batch.documents, efficiency: changes('efficiency'), sets }, applies: batch.applies };
  });
}

function sortByBucket<T extends { name: string }>(files: T[]): T[] {
  const keyed = new Map(files.map((file) => [file.name, bucketOf(file.name)]));
  return files.sort((a, b) => keyed.get(a.name)! - keyed.get(b.name)! || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** Whether an upload carries a change of any file (else it is a heartbeat, the beat's facts aside). */
export function carriesFiles(upload: Upload): boolean {
  const { documents, sets } = upload.applies;
  return Object.keys(documents).length > 0 || Object.values(sets).some((changes) => Object.keys(changes ?? {}).length > 0);
}

/** The manifest after the remote accepted `upload`. */
export function applyToManifest(manifest: Manifest, upload: Upload): Manifest {
  const merge = (current: Readonly<Record<string, string>>, changes: Record<string, string | null>) => {
    const next: Record<string, string> = { ...current };
    for (const [name, entry] of Object.entries(changes)) {
      if (entry === null) delete next[name];
      else next[name] = entry;
    }
    return next;
  };
  const sets: Partial<Record<FileSetName, Record<string, string>>> = { ...manifest.sets };
  for (const [set, changes] of Object.entries(upload.applies.sets) as [FileSetName, Record<string, string | null>][]) {
    sets[set] = merge(manifest.sets[set] ?? {}, changes);
  }
  return { documents: merge(manifest.documents, upload.applies.documents), sets };
}
