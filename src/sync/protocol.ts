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
import { readAutonomyState } from '../schemas/autonomy-state.js';
import { readBudget, readBudgetSignal } from '../schemas/budget.js';
import { readCompletion } from '../schemas/completion.js';
import { readCurrentTask } from '../schemas/current-task.js';
import { readDashboardState } from '../schemas/dashboard-state.js';
import { readEfficiencyFile } from '../schemas/efficiency.js';
import { readOrchestrator } from '../schemas/orchestrator.js';
import { jsonObject, MAX_COUNT, type ParseResult } from '../schemas/parse.js';
import { readPidEntry } from '../schemas/pid-entry.js';
import { readPidFile } from '../schemas/pid.js';
import { readPricing } from '../schemas/pricing.js';
import { readProof } from '../schemas/proof.js';
import { DOCUMENTS, FILE_SET_NAMES, FILE_SETS, type DocumentName, type FileSetName } from '../stores/store.js';

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
  'autonomy-state.json': readAutonomyState,
  'state/completion.json': readCompletion,
};

/** Each file set's entry validator: the same parsers the collector uses. */
export const FILE_SET_PARSERS: Readonly<Record<FileSetName, (bytes: Uint8Array) => ParseResult<unknown>>> = {
  efficiency: readEfficiencyFile,
  proofs: readProof,
  pids: readPidEntry,
  sessions: readPidFile,
};

/** Entry names: plain `*.json` file names, or plain sub-directory names; never a path. */
const FILE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}\.json$/;
const DIR_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
export const FILE_SET_ENTRY_NAME: Readonly<Record<FileSetName, RegExp>> = Object.fromEntries(
  FILE_SET_NAMES.map((name) => [name, FILE_SETS[name].depth === 1 ? FILE_NAME : DIR_NAME]),
) as Record<FileSetName, RegExp>;

/** Largest time JavaScript's Date holds (ms since the epoch, either way): a time beyond it cannot be shown. */
export const MAX_DATE_MS = 8.64e15;
/** Longest problem/error text a payload may carry; the client cuts its texts to this. */
export const MAX_PROBLEM_CHARS = 300;
/** `text` cut to what the remote accepts. */
export const capProblem = (text: string) => (text.length > MAX_PROBLEM_CHARS ? `${text.slice(0, MAX_PROBLEM_CHARS - 1)}…` : text);

const mtimeMs = v.pipe(v.number(), v.finite(), v.minValue(0), v.maxValue(MAX_DATE_MS));
const hash = v.pipe(v.string(), v.regex(/^[0-9a-f]{64}$/, 'Expected a sha-256 hex digest'));
const problem = v.pipe(v.string(), v.maxLength(MAX_PROBLEM_CHARS));

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
  sessionStartMs: v.optional(v.pipe(v.number(), v.finite(), v.minValue(-MAX_DATE_MS), v.maxValue(MAX_DATE_MS))),
  iteration: v.optional(v.pipe(v.number(), v.safeInteger(), v.minValue(0), v.maxValue(MAX_COUNT))),
  sessionPid: v.optional(v.pipe(v.number(), v.safeInteger(), v.minValue(1))),
});
export type EventsState = v.InferOutput<typeof EventsStateSchema>;

const documentName = v.picklist(DOCUMENTS, 'Expected a known .loki file');
const entryName = (set: FileSetName) =>
  v.pipe(v.string(), v.regex(FILE_SET_ENTRY_NAME[set], `Expected a ${FILE_SETS[set].dir} entry name`));

/** One file set's changes: entries added or changed, entries gone. */
const fileSetChanges = (set: FileSetName) =>
  v.object({
    present: v.boolean(),
    error: v.optional(problem),
    /** Format 3: every entry the remote holds is gone (the set was emptied) before `upsert` applies. */
    clear: v.optional(v.boolean()),
    upsert: jsonObject(v.record(entryName(set), SyncedFileSchema)),
    remove: v.array(entryName(set)),
  });
export type FileSetChanges = { present: boolean; error?: string; clear?: boolean; upsert: Record<string, SyncedFile>; remove: string[] };

/** Liveness as the client judged it next to the runner (see liveness.ts). */
export const RunnerVerdictSchema = v.object({
  decided: v.boolean(),
  alive: v.boolean(),
  pid: v.optional(v.pipe(v.number(), v.safeInteger(), v.minValue(1))),
  startedMs: v.optional(mtimeMs),
});

/**
 * One sync request: only what changed since the client's manifest (`null` = the file is gone).
 * Records and all-optional objects go through jsonObject: valibot would take `[]` for them.
 */
export const IngestPayloadSchema = jsonObject(
  v.object({
    /** The state directory as a whole: readable or not. */
    available: v.boolean(),
    problem: v.optional(problem),
    /** `loki.pid` and whether it is alive: what clients before `runner` sent; still sent. */
    pid: v.optional(v.nullable(v.pipe(v.number(), v.safeInteger(), v.minValue(1)))),
    pidAlive: v.boolean(),
    runner: v.optional(RunnerVerdictSchema),
    documents: jsonObject(v.record(documentName, v.nullable(SyncedFileSchema))),
    /** The efficiency set as clients before `sets` sent it. */
    efficiency: v.optional(fileSetChanges('efficiency')),
    /** Changes per file set; a set left out is unchanged. */
    sets: v.optional(jsonObject(v.object(Object.fromEntries(FILE_SET_NAMES.map((set) => [set, v.optional(fileSetChanges(set))])) as {
      [K in FileSetName]: v.OptionalSchema<ReturnType<typeof fileSetChanges>, undefined>;
    }))),
    events: EventsStateSchema,
    /** Format 3: the last request of a cycle (a session moving over from format 2 is then complete). */
    final: v.optional(v.boolean()),
  }),
);
export type IngestPayload = v.InferOutput<typeof IngestPayloadSchema>;

const StoredSetSchema = v.object({ present: v.boolean(), error: v.optional(problem), files: jsonObject(v.record(v.string(), SyncedFileSchema)) });
export type StoredSet = v.InferOutput<typeof StoredSetSchema>;

const docFields = {
  syncedAtMs: mtimeMs,
  available: v.boolean(),
  problem: v.optional(problem),
  pid: v.optional(v.nullable(v.number())),
  pidAlive: v.boolean(),
  documents: jsonObject(v.record(v.string(), SyncedFileSchema)),
  events: EventsStateSchema,
};

/** What the remote stores per session, and serves a scrape from (one read). */
export const SessionDocSchema = v.object({
  format: v.literal(2),
  ...docFields,
  runner: v.optional(RunnerVerdictSchema),
  sets: jsonObject(v.record(v.picklist(FILE_SET_NAMES), StoredSetSchema)),
});
export type SessionDoc = v.InferOutput<typeof SessionDocSchema>;

/** Format 1 (before file sets): read, and upgraded, so a deploy never loses stored state. */
const SessionDocV1Schema = v.pipe(
  v.object({ format: v.literal(1), ...docFields, efficiency: StoredSetSchema }),
  v.transform(({ efficiency, format: _format, ...rest }): SessionDoc => ({ format: 2, ...rest, sets: { efficiency } })),
);
export const StoredDocSchema = v.union([SessionDocSchema, SessionDocV1Schema]);

/**
 * One shipped file checked as the remote must before storing it: `good` content (its hash matches,
 * the collector's schema takes it), a `bad` live file the client reported (`problem`), content the
 * schema `refused` (client and remote disagreeing: stored as a problem), or `malformed` (content and
 * problem both or neither, a hash that does not match: a partial upload, refused whole).
 */
export type CheckedContent =
  | { readonly kind: 'good'; readonly bytes: Uint8Array; readonly value: unknown }
  | { readonly kind: 'bad'; readonly problem: string }
  | { readonly kind: 'refused' | 'malformed'; readonly problem: string };

export async function checkContent(path: string, file: SyncedFile, parse: (bytes: Uint8Array) => ParseResult<unknown>): Promise<CheckedContent> {
  if (file.b64 !== undefined && file.problem !== undefined) return { kind: 'malformed', problem: `${path}: send either content or a problem, not both` };
  if (file.b64 === undefined) {
    return file.problem === undefined ? { kind: 'malformed', problem: `${path}: no content and no problem` } : { kind: 'bad', problem: file.problem };
  }
  const bytes = base64ToBytes(file.b64);
  if ((await sha256Hex(bytes)) !== file.hash) return { kind: 'malformed', problem: `${path}: hash does not match the content (partial upload?)` };
  const parsed = parse(bytes);
  return parsed.ok ? { kind: 'good', bytes, value: parsed.value } : { kind: 'refused', problem: parsed.problem };
}

/** What the client needs to send only changes: each file's `hash@mtimeMs` as the remote holds it. */
export interface Manifest {
  readonly documents: Readonly<Record<string, string>>;
  readonly sets: Readonly<Partial<Record<FileSetName, Readonly<Record<string, string>>>>>;
}

/** A file's manifest entry: its content fingerprint and mtime (the heartbeat is in the mtime). */
export const manifestEntry = (file: Pick<SyncedFile, 'hash' | 'mtimeMs'>) => `${file.hash}@${file.mtimeMs}`;

export function manifestOf(doc: SessionDoc | undefined): Manifest {
  if (!doc) return { documents: {}, sets: {} };
  const hashes = (files: Record<string, SyncedFile>) => Object.fromEntries(Object.entries(files).map(([name, f]) => [name, manifestEntry(f)]));
  const sets: Partial<Record<FileSetName, Record<string, string>>> = {};
  for (const [name, set] of Object.entries(doc.sets) as [FileSetName, StoredSet][]) sets[name] = hashes(set.files);
  return { documents: hashes(doc.documents), sets };
}

export function emptyDoc(): SessionDoc {
  return {
    format: 2,
    syncedAtMs: 0,
    available: false,
    pidAlive: false,
    documents: {},
    sets: {},
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
