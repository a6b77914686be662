/**
 * How the Worker lays out one synced session over an `ObjectStore` (format 3), so that the cost of
 * every request follows the change, not the session:
 *
 * - `sessions/S/beat.json` — a few hundred bytes written by every sync: when, the runner's verdict,
 *   the events summary, and the head's revision. A heartbeat writes this alone.
 * - `sessions/S/head.json` — written when a file changed: each document's manifest entry, and per
 *   file set its summary (counts, bad entries, totals kept up to date as files come and go), never
 *   its files. A scrape reads the beat, and the head only when its revision moved.
 * - `data/S/docs/<path>` — one per document, its last good content; read when its hash changes.
 * - `data/S/sets/<set>/<epoch>/<bucket>.json` — the set's files spread over `BUCKETS` buckets by
 *   name: per file its manifest entry and its contribution to the totals (parsed values, no bytes).
 *   Only ingest and the manifest read them. Emptying a set starts a new epoch instead of deleting.
 *
 * Before format 3 a session was one document, `sessions/S/state.json` (session-doc.ts): still read
 * until the session's next sync with a current client has moved it over.
 */
import * as v from 'valibot';
import type { ObjectStore, StoredObject } from '../stores/object-store.js';
import { MAX_BAD_NAMED, FILE_SET_NAMES, DOCUMENTS, type BadEntry, type FileSetName } from '../stores/store.js';
import { applyReceipt, emptyReceiptCounts, RECEIPT_VERDICTS, type ReceiptContribution } from '../receipts.js';
import { applyEfficiency, countTop, emptyUsageTotals, MAX_MODEL_KEYS, MAX_MODEL_KEY_LENGTH, type EfficiencyContribution, type UsageTotals } from '../usage-totals.js';
import { jsonObject } from '../schemas/parse.js';
import { base64ToBytes, EventsStateSchema, MAX_DATE_MS, MAX_PROBLEM_CHARS, RunnerVerdictSchema } from './protocol.js';

export const FORMAT = 3;
/** Buckets per file set: at 10,000 files, ~10 per bucket (~1 KB); a new file rewrites one bucket. */
export const BUCKETS = 1024;

/**
 * Documents up to this size ride in the head (one read serves them all); larger ones, such as a
 * running session's `dashboard-state.json`, are objects of their own, rewritten only when they change.
 */
export const INLINE_DOC_BYTES = 1024;

/** Buckets one sync request may touch: two operations each, inside Cloudflare's 1,000 per request. */
export const MAX_BUCKETS_PER_INGEST = 256;

export const SESSIONS_PREFIX = 'sessions/';
export const beatKey = (session: string) => `${SESSIONS_PREFIX}${session}/beat.json`;
export const headKey = (session: string) => `${SESSIONS_PREFIX}${session}/head.json`;
/** Format 1 and 2: the whole session in one document. */
export const legacyKey = (session: string) => `${SESSIONS_PREFIX}${session}/state.json`;
/** A large document's content, by its hash (a new version never overwrites the one a head names). */
export const docKey = (session: string, hash: string) => `data/${session}/docs/${hash}`;
export const bucketKey = (session: string, set: FileSetName, epoch: number, bucket: number) => `data/${session}/sets/${set}/${epoch}/${bucket}.json`;

/** The session a key under `sessions/` names (its beat, or a format 1–2 document), else undefined. */
export function sessionOfKey(key: string): string | undefined {
  if (!key.startsWith(SESSIONS_PREFIX)) return undefined;
  const rest = key.slice(SESSIONS_PREFIX.length);
  const slash = rest.indexOf('/');
  if (slash <= 0) return undefined;
  const file = rest.slice(slash + 1);
  return file === 'beat.json' || file === 'state.json' ? rest.slice(0, slash) : undefined;
}

/** FNV-1a over the name's code units, onto `BUCKETS`: the client batches by it, the Worker stores by it. */
export function bucketOf(name: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) {
    hash ^= name.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash % BUCKETS;
}

/** A stored object validated (we wrote it, but storage is not trusted blindly); undefined if absent or unreadable. */
export function parseStored<S extends v.GenericSchema>(schema: S, object: StoredObject | 'unchanged' | null): v.InferOutput<S> | undefined {
  if (object === null || object === 'unchanged') return undefined;
  try {
    const result = v.safeParse(schema, JSON.parse(object.text));
    return result.success ? result.output : undefined;
  } catch {
    return undefined;
  }
}

// ---- stored shapes --------------------------------------------------------------------------

const count = v.pipe(v.number(), v.safeInteger(), v.minValue(0));
const signedCount = v.pipe(v.number(), v.safeInteger());
const time = v.pipe(v.number(), v.finite(), v.minValue(0), v.maxValue(MAX_DATE_MS));
const hash = v.pipe(v.string(), v.regex(/^[0-9a-f]{64}$/));
const problem = v.pipe(v.string(), v.maxLength(MAX_PROBLEM_CHARS));
const quad = v.tuple([v.number(), v.number(), v.number(), v.number()]);

export const BeatSchema = jsonObject(
  v.object({
    format: v.literal(FORMAT),
    syncedAtMs: time,
    /** The head's revision when this beat was written: a scrape re-reads the head when it moves. */
    rev: count,
    available: v.boolean(),
    problem: v.optional(problem),
    pid: v.nullable(v.pipe(v.number(), v.safeInteger(), v.minValue(1))),
    pidAlive: v.boolean(),
    runner: v.optional(RunnerVerdictSchema),
    events: EventsStateSchema,
  }),
);
export type Beat = v.InferOutput<typeof BeatSchema>;

const UsageTotalsSchema = v.object({
  models: v.pipe(
    v.array(
      v.object({
        key: v.pipe(v.string(), v.maxLength(MAX_MODEL_KEY_LENGTH + 1)),
        overflow: v.optional(v.pipe(v.string(), v.maxLength(16))),
        n: signedCount,
        first: v.number(),
        firstName: v.pipe(v.string(), v.maxLength(128)),
        tokens: quad,
        priced: quad,
        nanoUsd: v.number(),
      }),
    ),
    v.maxLength(MAX_MODEL_KEYS + 16),
  ),
  outcomes: v.tuple([signedCount, signedCount]),
  slots: v.array(signedCount),
  durationMs: v.number(),
  durations: signedCount,
  iterations: v.array(v.tuple([v.number(), signedCount])),
});

const ReceiptTotalsSchema = v.object({
  total: signedCount,
  byVerdict: v.object(Object.fromEntries(RECEIPT_VERDICTS.map((verdict) => [verdict, signedCount])) as Record<(typeof RECEIPT_VERDICTS)[number], typeof signedCount>),
  withProvenance: v.object({ attestation: signedCount, gpg: signedCount }),
});

const SetHeadSchema = v.object({
  present: v.boolean(),
  error: v.optional(problem),
  /** Bumped when the set is emptied: the buckets of earlier epochs are dead. */
  epoch: count,
  count,
  bad: count,
  badEntries: v.pipe(v.array(v.object({ name: v.string(), problem: v.string(), stale: v.boolean() })), v.maxLength(MAX_BAD_NAMED)),
  /** The newest file modification times with their counts, newest first. */
  mtimes: v.array(v.tuple([v.number(), signedCount])),
  /** Which buckets hold files: BUCKETS bits as hex. */
  buckets: v.pipe(v.string(), v.regex(/^[0-9a-f]*$/)),
  totals: v.optional(v.union([UsageTotalsSchema, ReceiptTotalsSchema])),
});
export type SetHead = v.InferOutput<typeof SetHeadSchema>;

const DocEntrySchema = v.object({
  /** Manifest entry: hash and mtime of what the client last saw. */
  h: hash,
  m: time,
  /** Why the live file is bad. */
  p: v.optional(problem),
  /** Hash of the last good content: inline in `t`, or (larger ones) stored at `docKey(session, g)`. */
  g: v.optional(hash),
  /** The last good content itself, when it is UTF-8 of at most INLINE_DOC_BYTES. */
  t: v.optional(v.pipe(v.string(), v.maxLength(INLINE_DOC_BYTES))),
});
export type DocEntry = v.InferOutput<typeof DocEntrySchema>;

export const HeadSchema = jsonObject(
  v.object({
    format: v.literal(FORMAT),
    rev: count,
    nonce: v.string(),
    /** The latest commits (rev, nonce): a bucket written by any other write was never committed. */
    recent: v.array(v.tuple([count, v.string()])),
    /** Moving over from a format 1–2 document: scrapes keep reading that until the first full pass ends. */
    filling: v.optional(v.boolean()),
    docs: v.record(v.picklist(DOCUMENTS), DocEntrySchema),
    sets: v.record(v.picklist(FILE_SET_NAMES), SetHeadSchema),
  }),
);
export type Head = v.InferOutput<typeof HeadSchema>;

/**
 * A document object: its hash on the first line, `text` or `b64` on the second, then the content as
 * it is (no JSON escaping: a 4 KB file is ~4 KB stored).
 */
export function docObject(hash: string, bytes: Uint8Array, b64: string): string {
  const text = utf8(bytes);
  return text !== undefined ? `${hash}\ntext\n${text}` : `${hash}\nb64\n${b64}`;
}

/** A document object's content when it is the one with `hash`, else undefined. */
export function docContent(object: StoredObject | 'unchanged' | null, hash: string): Uint8Array | undefined {
  if (object === null || object === 'unchanged' || !object.text.startsWith(`${hash}\n`)) return undefined;
  const rest = object.text.slice(hash.length + 1);
  if (rest.startsWith('text\n')) return new TextEncoder().encode(rest.slice(5));
  if (rest.startsWith('b64\n') && /^[A-Za-z0-9+/]*={0,2}$/.test(rest.slice(4))) return base64ToBytes(rest.slice(4));
  return undefined;
}

/** The text of UTF-8 bytes, or undefined when they are not UTF-8. */
export function utf8(bytes: Uint8Array): string | undefined {
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    return undefined;
  }
}

const FileRecordSchema = v.object({ h: hash, m: time, p: v.optional(problem), c: v.optional(v.unknown()) });
/** One file as a bucket keeps it: its manifest entry, why it is bad, its last good contribution. */
export type FileRecord = { h: string; m: number; p?: string; c?: unknown };

export const BucketSchema = jsonObject(
  v.object({
    rev: count,
    nonce: v.string(),
    files: jsonObject(v.record(v.string(), FileRecordSchema)),
    /** What the write at (rev, nonce) replaced, so a write that was never committed can be undone. */
    undo: v.optional(jsonObject(v.record(v.string(), v.nullable(FileRecordSchema)))),
  }),
);
export type Bucket = { rev: number; nonce: string; files: Record<string, FileRecord>; undo?: Record<string, FileRecord | null> };

/**
 * A bucket as the manifest reads it: only each file's manifest entry is checked (the contributions,
 * which only ingest uses, are half the work of a full check and not needed there).
 */
const ManifestRecordSchema = v.looseObject({ h: hash, m: time });
export const ManifestBucketSchema = jsonObject(
  v.looseObject({
    rev: count,
    nonce: v.string(),
    files: jsonObject(v.record(v.string(), ManifestRecordSchema)),
    undo: v.optional(jsonObject(v.record(v.string(), v.nullable(ManifestRecordSchema)))),
  }),
);

/** Commits remembered in the head; a bucket older than all of them counts as committed. */
export const RECENT_COMMITS = 32;

/** Whether the bucket's last write was committed by the head `head`; if not, it is rolled back. */
export function settleBucket(bucket: Bucket, head: Pick<Head, 'rev' | 'recent'>): Bucket {
  const committed =
    head.recent.some(([rev, nonce]) => rev === bucket.rev && nonce === bucket.nonce) ||
    (bucket.rev <= head.rev && !head.recent.some(([rev]) => rev === bucket.rev)) ||
    bucket.undo === undefined;
  if (committed) return bucket;
  const files = { ...bucket.files };
  for (const [name, before] of Object.entries(bucket.undo!)) {
    if (before === null) delete files[name];
    else files[name] = before;
  }
  return { rev: 0, nonce: '', files };
}

// ---- the head's set summaries, kept up to date -------------------------------------------------

export function emptySetHead(epoch = 0): SetHead {
  return { present: false, epoch, count: 0, bad: 0, badEntries: [], mtimes: [], buckets: '' };
}

export function emptyHead(filling: boolean): Head {
  return { format: FORMAT, rev: 0, nonce: '', recent: [], ...(filling ? { filling: true } : {}), docs: {}, sets: {} };
}

/** Marks a bucket as holding files or not, in the set's hex bitmap. */
export function markBucket(set: SetHead, bucket: number, used: boolean): void {
  const hex = set.buckets.padEnd(BUCKETS / 4, '0').split('');
  const digit = Math.floor(bucket / 4);
  const bit = 1 << (bucket % 4);
  const value = parseInt(hex[digit]!, 16);
  hex[digit] = (used ? value | bit : value & ~bit).toString(16);
  set.buckets = hex.join('').replace(/0+$/, '');
}

/** The buckets that hold files, in order. */
export function usedBuckets(set: SetHead): number[] {
  const used: number[] = [];
  for (let digit = 0; digit < set.buckets.length; digit++) {
    const value = parseInt(set.buckets[digit]!, 16);
    for (let bit = 0; bit < 4; bit++) if (value & (1 << bit)) used.push(digit * 4 + bit);
  }
  return used;
}

/** Adds (1) or takes out (-1) one file record: count, bad entries, mtimes and totals. */
export function applyRecord(setName: FileSetName, set: SetHead, name: string, record: FileRecord, sign: 1 | -1): void {
  set.count += sign;
  countTop(set.mtimes, record.m, sign, 16);
  if (record.p !== undefined) {
    set.bad += sign;
    const at = set.badEntries.findIndex((b) => b.name === name);
    if (at !== -1) set.badEntries.splice(at, 1);
    if (sign > 0) insertBad(set.badEntries, { name, problem: record.p, stale: record.c !== undefined });
  }
  if (record.c === undefined) return;
  if (setName === 'efficiency') {
    set.totals ??= emptyUsageTotals();
    applyEfficiency(set.totals as UsageTotals, name, record.c as EfficiencyContribution, sign);
  } else if (setName === 'proofs') {
    set.totals ??= emptyReceiptCounts();
    applyReceipt(set.totals as ReturnType<typeof emptyReceiptCounts>, record.c as ReceiptContribution, sign);
  }
}

/** Keeps the first MAX_BAD_NAMED bad entries by name. */
function insertBad(entries: BadEntry[], entry: BadEntry): void {
  let at = entries.findIndex((b) => b.name > entry.name);
  if (at === -1) at = entries.length;
  entries.splice(at, 0, entry);
  if (entries.length > MAX_BAD_NAMED) entries.pop();
}

/** The stored sessions' names (beats and format 1–2 documents), at most `atMost`; one list per 1,000 keys. */
export async function listSessions(store: { list: ObjectStore['list'] }, atMost: number): Promise<string[]> {
  const sessions = new Set<string>();
  let cursor: string | undefined;
  do {
    const page = await store.list(SESSIONS_PREFIX, cursor);
    for (const key of page.keys) {
      const session = sessionOfKey(key);
      if (session !== undefined && sessions.size < atMost) sessions.add(session);
    }
    cursor = page.next;
  } while (cursor !== undefined && sessions.size < atMost);
  return [...sessions];
}
