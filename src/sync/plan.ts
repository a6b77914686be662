/**
 * The client side of sync, pure: compare what the local store read with what the remote holds
 * (its manifest) and build the requests that carry only the differences, in batches under the
 * remote's size limit. `events.jsonl` travels as its summary, never as bytes.
 */
import { readPidFile } from '../schemas/pid.js';
import { DOCUMENTS, type DocumentName, type FileRead, type StateReading } from '../stores/store.js';
import {
  bytesToBase64,
  DOCUMENT_PARSERS,
  EFFICIENCY_NAME,
  manifestEntry,
  MAX_INGEST_BYTES,
  MAX_SYNC_FILE_BYTES,
  parseEfficiencyFile,
  sha256Hex,
  type IngestPayload,
  type Manifest,
  type SyncedFile,
} from './protocol.js';
import type { ParseResult } from '../schemas/parse.js';
import { SourceTracker } from '../source-tracker.js';

/** What the client remembers between cycles. */
export class SyncMemory {
  readonly hashes = new HashCache();
  /**
   * `loki.pid` as the collector sees it: the last valid pid is kept while the file is caught
   * mid-write, so the liveness the Worker receives matches what a local exporter would report.
   */
  readonly pid = new SourceTracker('loki.pid', readPidFile, () => undefined);
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
  readonly applies: { documents: Record<string, string | null>; efficiency: Record<string, string | null> };
}

const BATCH_BYTES = Math.floor(MAX_INGEST_BYTES / 2);

async function syncedFile(path: string, read: FileRead, hashes: HashCache, parse: (b: Uint8Array) => ParseResult<unknown>): Promise<SyncedFile> {
  const hash = await hashes.hash(path, read);
  const mtimeMs = read.mtimeMs ?? 0;
  if (read.error !== undefined || read.bytes === undefined) return { mtimeMs, hash, problem: read.error ?? 'unreadable' };
  if (read.bytes.length > MAX_SYNC_FILE_BYTES) return { mtimeMs, hash, problem: `too large to sync (${read.bytes.length} bytes)` };
  const parsed = parse(read.bytes);
  return parsed.ok ? { mtimeMs, hash, b64: bytesToBase64(read.bytes) } : { mtimeMs, hash, problem: parsed.problem };
}

/** Builds the uploads for one cycle: at least one (it is also the heartbeat), more for big changes. */
export async function planUploads(reading: StateReading, manifest: Manifest, memory: SyncMemory): Promise<Upload[]> {
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
    const entry = manifestEntry({ hash, mtimeMs: read.mtimeMs ?? 0 });
    if (manifest.documents[name] === entry) continue;
    documents[name] = await syncedFile(name, read, hashes, DOCUMENT_PARSERS[name]);
    docApplies[name] = entry;
  }

  const pid = memory.pid.update(reading.documents['loki.pid']).value ?? null;
  const { events } = reading;
  const base = {
    available: reading.available,
    ...(reading.problem !== undefined ? { problem: reading.problem.slice(0, 300) } : {}),
    pid,
    pidAlive: pid !== null && reading.isProcessAlive(pid),
    events: {
      present: events.present,
      lines: events.lines,
      ...(events.mtimeMs !== undefined ? { mtimeMs: events.mtimeMs } : {}),
      ...(events.error !== undefined ? { error: events.error.slice(0, 300) } : {}),
      ...(events.sessionStartMs !== undefined ? { sessionStartMs: events.sessionStartMs } : {}),
      ...(events.iteration !== undefined ? { iteration: events.iteration } : {}),
    },
  };
  const efficiencyBase = {
    present: reading.efficiency.present,
    ...(reading.efficiency.error !== undefined ? { error: reading.efficiency.error.slice(0, 300) } : {}),
  };

  // Every change, documents and efficiency files alike, batched so no request nears the remote's
  // limit (one file is at most MAX_SYNC_FILE_BYTES, so any file fits a batch of its own).
  interface Batch {
    documents: IngestPayload['documents'];
    upsert: Record<string, SyncedFile>;
    applies: Upload['applies'];
    bytes: number;
  }
  const batches: Batch[] = [];
  const batchFor = (file: SyncedFile | null): Batch => {
    const size = (file?.b64?.length ?? 0) + 200;
    let batch = batches[batches.length - 1];
    if (!batch || (batch.bytes + size > BATCH_BYTES && batch.bytes > 0)) {
      batches.push((batch = { documents: {}, upsert: {}, applies: { documents: {}, efficiency: {} }, bytes: 0 }));
    }
    batch.bytes += size;
    return batch;
  };
  for (const [name, file] of Object.entries(documents) as [DocumentName, SyncedFile | null][]) {
    const batch = batchFor(file);
    batch.documents[name] = file;
    batch.applies.documents[name] = docApplies[name] ?? null;
  }
  const local = new Set<string>();
  for (const file of reading.efficiency.files) {
    if (!EFFICIENCY_NAME.test(file.name)) continue; // not a name the remote accepts
    local.add(file.name);
    const path = `metrics/efficiency/${file.name}`;
    const hash = await hashes.hash(path, file);
    const entry = manifestEntry({ hash, mtimeMs: file.mtimeMs ?? 0 });
    if (manifest.efficiency[file.name] === entry) continue;
    const synced = await syncedFile(path, file, hashes, parseEfficiencyFile);
    const batch = batchFor(synced);
    batch.upsert[file.name] = synced;
    batch.applies.efficiency[file.name] = entry;
  }
  const first = batches[0] ?? batchFor(null); // at least one request: it is also the heartbeat
  const remove = Object.keys(manifest.efficiency).filter((name) => !local.has(name));
  for (const name of remove) first.applies.efficiency[name] = null;

  return batches.map((batch) => ({
    payload: {
      ...base,
      documents: batch.documents,
      efficiency: { ...efficiencyBase, upsert: batch.upsert, remove: batch === first ? remove : [] },
    },
    applies: batch.applies,
  }));
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
  return { documents: merge(manifest.documents, upload.applies.documents), efficiency: merge(manifest.efficiency, upload.applies.efficiency) };
}
