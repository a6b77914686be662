/**
 * The write side of format 3 (shards.ts): one sync request applied to a session's objects, reading
 * and writing only what it touches — the beat always, the head when a file changed, one object per
 * changed document and per touched bucket. Every file is checked with the collector's schemas as
 * it arrives and reduced to its contribution; a bad one keeps its last good contribution.
 *
 * All or nothing, as far as the store allows: buckets are written first, each remembering what it
 * replaced; the head is the commit (on R2 a conditional write, so two syncs racing on one session
 * cannot both commit); a bucket whose write the head never committed is undone when next read.
 */
import type { ObjectStore } from '../stores/object-store.js';
import type { Refusal } from './admission.js';
import { FILE_SETS, type DocumentName, type FileSetName } from '../stores/store.js';
import { efficiencyContribution } from '../usage-totals.js';
import { receiptContribution } from '../receipts.js';
import type { EfficiencyRecord } from '../schemas/efficiency.js';
import type { Proof } from '../schemas/proof.js';
import { capProblem, checkContent, DOCUMENT_PARSERS, FILE_SET_PARSERS, type FileSetChanges, type IngestPayload, type SyncedFile } from './protocol.js';
import {
  applyRecord,
  bucketKey,
  BucketSchema,
  bucketOf,
  beatKey,
  BeatSchema,
  docKey,
  docObject,
  INLINE_DOC_BYTES,
  utf8,
  emptyHead,
  emptySetHead,
  FORMAT,
  headKey,
  HeadSchema,
  legacyKey,
  markBucket,
  MAX_BUCKETS_PER_INGEST,
  parseStored,
  RECENT_COMMITS,
  settleBucket,
  usedBuckets,
  type Beat,
  type Bucket,
  type FileRecord,
  type DocEntry,
  type Head,
} from './shards.js';


export interface IngestOptions {
  readonly nowMs: number;
  /** A fresh random id for this write. */
  readonly nonce: string;
  /**
   * Whether a session nothing is stored for may be created (the cap: sync/admission.ts); asked only
   * then: first only looking (`reserve` false), before any work, then to take its place, just before
   * the first write, so a request refused for another reason takes none.
   */
  readonly admit: (session: string, reserve?: boolean) => Promise<Refusal>;
}

export type IngestAnswer =
  | { readonly status: 200; readonly body: { ok: true; session: string; syncedAtMs: number; previousSyncedAtMs: number | null; rejected?: string[] } }
  | { readonly status: 409 | 413 | 422 | 503; readonly body: { error: string } };

const fail = (status: 409 | 413 | 422 | 503, error: string): IngestAnswer => ({ status, body: { error } });

export async function ingestShards(store: ObjectStore, session: string, payload: IngestPayload, options: IngestOptions): Promise<IngestAnswer> {
  const [beatObject, headObject] = await Promise.all([store.get(beatKey(session)), store.get(headKey(session))]);
  const beat = parseStored(BeatSchema, beatObject);
  const storedHead = parseStored(HeadSchema, headObject) as Head | undefined;
  let head = storedHead;
  let creating = false;
  // The head is written only if it is still what was read (R2): this version, or still absent.
  const headEtag = headObject === null ? null : headObject !== 'unchanged' ? headObject.etag : undefined;
  if (!head) {
    const legacy = await store.get(legacyKey(session));
    creating = legacy === null && beat === undefined;
    const refusal = creating ? await options.admit(session, false) : undefined;
    if (refusal) return fail(refusal.status, refusal.error);
    // A head that cannot be read starts over in new epochs; the client sees the reset and resends.
    head = emptyHead(legacy !== null);
  }
  const next = structuredClone(head);
  const rev = head.rev + 1;
  const rejected: string[] = [];

  // ---- documents: a large one's content is an object named by its hash, written before the head
  // that names it and removed only after a head that no longer does.
  const docWrites: [string, string][] = [];
  const docDeletes: string[] = [];
  const stored = (entry: DocEntry | undefined) => (entry?.g !== undefined && entry.t === undefined ? docKey(session, entry.g) : undefined);
  for (const [name, file] of Object.entries(payload.documents) as [DocumentName, SyncedFile | null][]) {
    const before = next.docs[name];
    if (file === null) {
      delete next.docs[name];
    } else {
      const checked = await checkContent(name, file, DOCUMENT_PARSERS[name]);
      if (checked.kind === 'malformed') return fail(422, checked.problem);
      if (checked.kind === 'good') {
        const text = checked.bytes.length <= INLINE_DOC_BYTES ? utf8(checked.bytes) : undefined;
        next.docs[name] = { h: file.hash, m: file.mtimeMs, g: file.hash, ...(text !== undefined ? { t: text } : {}) };
        const key = stored(next.docs[name]);
        if (key !== undefined && key !== stored(before)) docWrites.push([key, docObject(file.hash, checked.bytes, file.b64!)]);
      } else {
        const why = checked.kind === 'refused' ? capProblem(`refused by the remote: ${checked.problem}`) : checked.problem;
        if (checked.kind === 'refused') rejected.push(`${name}: ${checked.problem}`);
        // The last good content stays, inline or stored.
        const lastGood = before?.g !== undefined ? { g: before.g, ...(before.t !== undefined ? { t: before.t } : {}) } : {};
        next.docs[name] = { h: file.hash, m: file.mtimeMs, p: why, ...lastGood };
      }
    }
    const old = stored(before);
    if (old !== undefined && old !== stored(next.docs[name])) docDeletes.push(old);
  }

  // ---- file sets: group by bucket, read those buckets, apply
  const changes = Object.entries(payloadSets(payload)) as [FileSetName, FileSetChanges][];
  const touched = new Map<string, { set: FileSetName; bucket: number; epoch: number; removes: string[]; upserts: [string, SyncedFile][] }>();
  const cleared = new Set<FileSetName>();
  for (const [set, change] of changes) {
    // A set new to the head (or to a head that could not be read) starts in an epoch no earlier
    // bucket can be in: the time.
    const setHead = (next.sets[set] ??= emptySetHead(options.nowMs));
    if ((change.clear || !change.present) && (setHead.count > 0 || setHead.buckets !== '' || setHead.totals !== undefined)) {
      // Everything goes, the totals too.
      delete setHead.totals;
      Object.assign(setHead, emptySetHead(setHead.epoch + 1));
      cleared.add(set);
    }
    setHead.present = change.present;
    if (change.error !== undefined) setHead.error = change.error;
    else delete setHead.error;
    const touch = (name: string) => {
      const bucket = bucketOf(name);
      const key = bucketKey(session, set, setHead.epoch, bucket);
      let entry = touched.get(key);
      if (!entry) touched.set(key, (entry = { set, bucket, epoch: setHead.epoch, removes: [], upserts: [] }));
      return entry;
    };
    if (!change.clear && change.present) for (const name of change.remove) touch(name).removes.push(name);
    for (const [name, file] of Object.entries(change.upsert)) touch(name).upserts.push([name, file]);
  }
  if (touched.size > MAX_BUCKETS_PER_INGEST) {
    return fail(413, `this upload touches ${touched.size} buckets; at most ${MAX_BUCKETS_PER_INGEST} per request (upgrade loki-metrics sync, which batches by bucket)`);
  }

  const keys = [...touched.keys()];
  // A set emptied by this request has no buckets in its new epoch to read.
  const loaded = await Promise.all(keys.map((key) => (cleared.has(touched.get(key)!.set) ? null : store.get(key))));
  const bucketWrites: [string, string, string | null][] = [];
  for (let k = 0; k < keys.length; k++) {
    const key = keys[k]!;
    const { set, bucket: index, removes, upserts } = touched.get(key)!;
    const setHead = next.sets[set]!;
    const stored = parseStored(BucketSchema, loaded[k]!) as Bucket | undefined;
    const bucket = stored ? settleBucket(stored, head) : { rev: 0, nonce: '', files: {} };
    const files: Record<string, FileRecord> = { ...bucket.files };
    const undo: Record<string, FileRecord | null> = {};
    const replace = (name: string, record: FileRecord | undefined) => {
      const before = files[name];
      if (!(name in undo)) undo[name] = before ?? null;
      if (before) applyRecord(set, setHead, name, before, -1);
      if (record) {
        files[name] = record;
        applyRecord(set, setHead, name, record, 1);
      } else delete files[name];
    };
    for (const name of removes) if (files[name]) replace(name, undefined);
    for (const [name, file] of upserts) {
      const path = `${FILE_SETS[set].dir}/${name}`;
      const checked = await checkContent(path, file, FILE_SET_PARSERS[set]);
      if (checked.kind === 'malformed') return fail(422, checked.problem);
      if (checked.kind === 'good') {
        replace(name, { h: file.hash, m: file.mtimeMs, c: contribution(set, name, checked.value) });
      } else {
        if (checked.kind === 'refused') rejected.push(`${path}: ${checked.problem}`);
        const why = checked.kind === 'refused' ? capProblem(`refused by the remote: ${checked.problem}`) : checked.problem;
        const lastGood = files[name]?.c;
        replace(name, { h: file.hash, m: file.mtimeMs, p: why, ...(lastGood !== undefined ? { c: lastGood } : {}) });
      }
    }
    markBucket(setHead, index, Object.keys(files).length > 0);
    const previous = loaded[k];
    const previousText = previous && previous !== 'unchanged' ? previous.text : null;
    bucketWrites.push([key, JSON.stringify({ rev, nonce: options.nonce, files, undo }), previousText]);
  }

  const finishing = payload.final === true && next.filling === true;
  if (finishing) delete next.filling;
  // A session's first request writes a head even if it carries nothing: a beat always has one.
  const headChanged =
    !storedHead || docWrites.length + docDeletes.length + bucketWrites.length > 0 || finishing ||
    JSON.stringify(next.docs) !== JSON.stringify(head.docs) || JSON.stringify(next.sets) !== JSON.stringify(head.sets);

  if (creating) {
    const refusal = await options.admit(session);
    if (refusal) return fail(refusal.status, refusal.error);
  }
  let committedRev = head.rev;
  if (headChanged) {
    // Contents first, the head last: it is what makes them count.
    await Promise.all([...docWrites.map(([key, text]) => store.put(key, text)), ...bucketWrites.map(([key, text]) => store.put(key, text))]);
    next.rev = rev;
    next.nonce = options.nonce;
    next.recent = [...head.recent, [rev, options.nonce] as [number, string]].slice(-RECENT_COMMITS);
    // Not committed (another sync came first, or the write failed): put back what was there.
    const undo = () =>
      Promise.all([
        ...bucketWrites.map(([key, , previous]) => (previous === null ? store.delete([key]) : store.put(key, previous))),
        store.delete(docWrites.map(([key]) => key)),
      ]);
    let committed: boolean;
    try {
      committed = await store.put(headKey(session), JSON.stringify(next), headEtag);
    } catch (error) {
      await undo().catch(() => undefined);
      throw error;
    }
    if (!committed) {
      await undo();
      return fail(503, 'another sync changed this session at the same time; retry');
    }
    committedRev = rev;
    if (docDeletes.length > 0) await store.delete(docDeletes);
    await dropDeadEpochs(store, session, head, next);
    if (finishing) await store.delete([legacyKey(session)]);
  }

  const newBeat: Beat = {
    format: FORMAT,
    syncedAtMs: options.nowMs,
    rev: committedRev,
    available: payload.available,
    ...(payload.problem !== undefined ? { problem: payload.problem } : {}),
    pid: payload.pid ?? null,
    pidAlive: payload.pidAlive,
    ...(payload.runner !== undefined ? { runner: payload.runner } : {}),
    events: payload.events,
  };
  await store.put(beatKey(session), JSON.stringify(newBeat));
  return {
    status: 200,
    body: { ok: true, session, syncedAtMs: options.nowMs, previousSyncedAtMs: beat?.syncedAtMs ?? null, ...(rejected.length > 0 ? { rejected } : {}) },
  };
}

/** The set changes of a payload, whichever way the client spelled them. */
function payloadSets(payload: IngestPayload): Partial<Record<FileSetName, FileSetChanges>> {
  return { ...(payload.efficiency ? { efficiency: payload.efficiency } : {}), ...payload.sets } as Partial<Record<FileSetName, FileSetChanges>>;
}

function contribution(set: FileSetName, name: string, value: unknown): unknown {
  if (set === 'efficiency') return efficiencyContribution(name, value as EfficiencyRecord);
  if (set === 'proofs') return receiptContribution(value as Proof);
  return 1; // pids, sessions: the runner's verdict comes with the beat; the set is counted only
}

/** Buckets of an epoch a set left behind (emptied): removed where one call removes many (R2). */
async function dropDeadEpochs(store: ObjectStore, session: string, before: Head, after: Head): Promise<void> {
  if (!store.strong) return; // KV deletes one key per call, each a billed write: left to expire unread
  const dead: string[] = [];
  for (const [set, old] of Object.entries(before.sets) as [FileSetName, Head['sets'][FileSetName]][]) {
    if (old && after.sets[set] && after.sets[set].epoch !== old.epoch) for (const b of usedBuckets(old)) dead.push(bucketKey(session, set, old.epoch, b));
  }
  if (dead.length > 0) await store.delete(dead);
}
