/**
 * The sync protocol between `loki-metrics sync` (next to Loki Mode) and a remote exporter (the
 * Worker), and the one document per session the remote keeps. Runtime-free.
 *
 * Design: the sync client runs the same fs store locally, so it ships what the collector needs —
 * changed files (validated on both sides with the same schemas), the *summary* of `events.jsonl`
 * (never its bytes), pid liveness — and the remote answers a scrape with one storage read.
 */
import * as v from 'valibot';
import { readAgents } from '../schemas/agents.js';
import { readBudget, readBudgetSignal } from '../schemas/budget.js';
import { readCurrentTask } from '../schemas/current-task.js';
import { readDashboardState } from '../schemas/dashboard-state.js';
import { readEfficiencyFile } from '../schemas/efficiency.js';
import { readOrchestrator } from '../schemas/orchestrator.js';
import { MAX_COUNT, type ParseResult } from '../schemas/parse.js';
import { readPidFile } from '../schemas/pid.js';
import { readPricing } from '../schemas/pricing.js';
import { DOCUMENTS, type DocumentName } from '../stores/store.js';

/** Session names: what `?session=` and `--session` accept; safe as a storage key segment. */
export const SESSION_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
export const DEFAULT_SESSION = 'default';

/** Largest ingest request body the remote accepts (413 beyond). The client batches below it. */
export const MAX_INGEST_BYTES = 8 * 1024 * 1024;
/** Largest single file the sync sends (the fs store reads at most 16 MiB; the remote holds less). */
export const MAX_SYNC_FILE_BYTES = 4 * 1024 * 1024;

/** Each document's validator: the same parsers the collector uses. Marker files are presence-only. */
const presence = (): ParseResult<true> => ({ ok: true, value: true });
export const DOCUMENT_PARSERS: Readonly<Record<DocumentName, (bytes: Uint8Array) => ParseResult<unknown>>> = {
  'dashboard-state.json': readDashboardState,
  'loki.pid': readPidFile,
  'state/agents.json': readAgents,
  'state/orchestrator.json': readOrchestrator,
  'queue/current-task.json': readCurrentTask,
  'pricing.json': readPricing,
  'metrics/budget.json': readBudget,
  'signals/BUDGET_EXCEEDED': readBudgetSignal,
  PAUSE: presence,
  STOP: presence,
};
export const parseEfficiencyFile = readEfficiencyFile;

/** Efficiency file names: plain `*.json` names, never a path. */
export const EFFICIENCY_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}\.json$/;

const mtimeMs = v.pipe(v.number(), v.finite(), v.minValue(0));
const hash = v.pipe(v.string(), v.regex(/^[0-9a-f]{64}$/, 'Expected a sha-256 hex digest'));
const problem = v.pipe(v.string(), v.maxLength(300));

/**
 * One file as shipped and stored: valid content (`b64`, `hash` = sha-256 of the bytes), or a
 * `problem` saying why the live file is invalid (the remote then serves its last good content,
 * kept in `b64`, and reports the source bad — as a local exporter would).
 */
export const SyncedFileSchema = v.object({
  mtimeMs,
  /** Fingerprint of what the client last saw (content hash, or of the invalid bytes). */
  hash,
  // Not v.base64(): its grouped regex overflows the stack on multi-megabyte strings in V8.
  b64: v.optional(
    v.pipe(
      v.string(),
      v.maxLength(Math.ceil(MAX_SYNC_FILE_BYTES / 3) * 4 + 4),
      v.check((text) => text.length % 4 === 0 && /^[A-Za-z0-9+/]*={0,2}$/.test(text), 'Expected base64'),
    ),
  ),
  problem: v.optional(problem),
});
export type SyncedFile = v.InferOutput<typeof SyncedFileSchema>;

export const EventsStateSchema = v.object({
  present: v.boolean(),
  mtimeMs: v.optional(mtimeMs),
  error: v.optional(problem),
  lines: v.pipe(v.number(), v.safeInteger(), v.minValue(0), v.maxValue(MAX_COUNT)),
  sessionStartMs: v.optional(v.pipe(v.number(), v.finite())),
  iteration: v.optional(v.pipe(v.number(), v.safeInteger(), v.minValue(0), v.maxValue(MAX_COUNT))),
});
export type EventsState = v.InferOutput<typeof EventsStateSchema>;

const documentName = v.picklist(DOCUMENTS, 'Expected a known .loki file');
const efficiencyName = v.pipe(v.string(), v.regex(EFFICIENCY_NAME, 'Expected an efficiency file name such as iteration-3.json'));

/** One sync request: only what changed since the client's manifest (`null` = the file is gone). */
export const IngestPayloadSchema = v.object({
  /** The state directory as a whole: readable or not. */
  available: v.boolean(),
  problem: v.optional(problem),
  pid: v.optional(v.nullable(v.pipe(v.number(), v.safeInteger(), v.minValue(1)))),
  pidAlive: v.boolean(),
  documents: v.record(documentName, v.nullable(SyncedFileSchema)),
  efficiency: v.object({
    present: v.boolean(),
    error: v.optional(problem),
    upsert: v.record(efficiencyName, SyncedFileSchema),
    remove: v.array(efficiencyName),
  }),
  events: EventsStateSchema,
});
export type IngestPayload = v.InferOutput<typeof IngestPayloadSchema>;

/** What the remote stores per session, and serves a scrape from (one read). */
export const SessionDocSchema = v.object({
  format: v.literal(1),
  syncedAtMs: mtimeMs,
  available: v.boolean(),
  problem: v.optional(problem),
  pid: v.optional(v.nullable(v.number())),
  pidAlive: v.boolean(),
  documents: v.record(v.string(), SyncedFileSchema),
  efficiency: v.object({ present: v.boolean(), error: v.optional(problem), files: v.record(v.string(), SyncedFileSchema) }),
  events: EventsStateSchema,
});
export type SessionDoc = v.InferOutput<typeof SessionDocSchema>;

/** What the client needs to send only changes: each file's `hash@mtimeMs` as the remote holds it. */
export interface Manifest {
  readonly documents: Readonly<Record<string, string>>;
  readonly efficiency: Readonly<Record<string, string>>;
}

/** A file's manifest entry: its content fingerprint and mtime (the heartbeat is in the mtime). */
export const manifestEntry = (file: Pick<SyncedFile, 'hash' | 'mtimeMs'>) => `${file.hash}@${file.mtimeMs}`;

export function manifestOf(doc: SessionDoc | undefined): Manifest {
  if (!doc) return { documents: {}, efficiency: {} };
  const hashes = (files: Record<string, SyncedFile>) => Object.fromEntries(Object.entries(files).map(([name, f]) => [name, manifestEntry(f)]));
  return { documents: hashes(doc.documents), efficiency: hashes(doc.efficiency.files) };
}

export function emptyDoc(): SessionDoc {
  return {
    format: 1,
    syncedAtMs: 0,
    available: false,
    pidAlive: false,
    documents: {},
    efficiency: { present: false, files: {} },
    events: { present: false, lines: 0 },
  };
}

export function bytesToBase64(bytes: Uint8Array): string {
  let binary = '';
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}

export function base64ToBytes(b64: string): Uint8Array {
  const binary = atob(b64);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>));
  let hex = '';
  for (const b of digest) hex += b.toString(16).padStart(2, '0');
  return hex;
}
