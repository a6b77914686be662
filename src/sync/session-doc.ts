/**
 * The remote side of sync, pure: apply one ingest payload to a session document (all or nothing),
 * and turn a session document back into the `StateReading` the collector takes — so a synced
 * session is collected exactly as the local tree would be.
 */
import type { ParseResult } from '../schemas/parse.js';
import {
  ABSENT,
  ABSENT_SET,
  DOCUMENTS,
  FILE_SET_NAMES,
  FILE_SETS,
  unreadableReading,
  type DocumentName,
  type FileRead,
  type FileSetEntryRead,
  type FileSetName,
  type FileSetRead,
  type FileSets,
  type StateReading,
} from '../stores/store.js';
import {
  base64ToBytes,
  capProblem,
  checkContent,
  DOCUMENT_PARSERS,
  FILE_SET_PARSERS,
  type EventsState,
  type FileSetChanges,
  type IngestPayload,
  type SessionDoc,
  type StoredSet,
  type SyncedFile,
} from './protocol.js';

/**
 * `rejected`: files whose content the remote's schemas refused (client and remote disagreeing,
 * e.g. different versions). They are stored as a problem, with their last good content kept, so
 * one such file never blocks the rest of the upload (nor the heartbeat).
 */
export type IngestResult =
  | { readonly ok: true; readonly doc: SessionDoc; readonly rejected: readonly string[] }
  | { readonly ok: false; readonly problem: string };

/** The set changes of a payload, whichever way the client spelled them. */
function payloadSets(payload: IngestPayload): Partial<Record<FileSetName, FileSetChanges>> {
  return { ...(payload.efficiency ? { efficiency: payload.efficiency } : {}), ...payload.sets } as Partial<Record<FileSetName, FileSetChanges>>;
}

/**
 * Validates every file of `payload` with the collector's own schemas and returns the new document.
 * A malformed payload (content and problem both or neither, content not matching its hash: a
 * partial upload) rejects the whole payload, naming the file, and the stored state stays as it
 * was. Content the schemas refuse is stored as that file's problem instead (see `rejected`).
 */
export async function applyIngest(doc: SessionDoc, payload: IngestPayload, nowMs: number): Promise<IngestResult> {
  const rejected: string[] = [];
  const mergeFile = async (path: string, file: SyncedFile, previous: SyncedFile | undefined, parse: (bytes: Uint8Array) => ParseResult<unknown>) => {
    const merged = await checkFile(path, file, previous, parse);
    if (merged.ok || !('invalid' in merged)) return merged;
    rejected.push(merged.problem);
    const { b64: _refused, ...rest } = file;
    return { ok: true as const, value: { ...rest, problem: capProblem(`refused by the remote: ${merged.invalid}`), ...(previous?.b64 !== undefined ? { b64: previous.b64 } : {}) } };
  };
  const documents = { ...doc.documents };
  for (const [name, file] of Object.entries(payload.documents) as [DocumentName, SyncedFile | null][]) {
    if (file === null) {
      delete documents[name];
      continue;
    }
    const merged = await mergeFile(name, file, documents[name], DOCUMENT_PARSERS[name]);
    if (!merged.ok) return merged;
    documents[name] = merged.value;
  }

  const sets: Partial<Record<FileSetName, StoredSet>> = { ...doc.sets };
  for (const [set, changes] of Object.entries(payloadSets(payload)) as [FileSetName, FileSetChanges][]) {
    const files = changes.present ? { ...doc.sets[set]?.files } : {};
    for (const name of changes.remove) delete files[name];
    for (const [name, file] of Object.entries(changes.upsert)) {
      const merged = await mergeFile(`${FILE_SETS[set].dir}/${name}`, file, files[name], FILE_SET_PARSERS[set]);
      if (!merged.ok) return merged;
      files[name] = merged.value;
    }
    sets[set] = { present: changes.present, ...(changes.error !== undefined ? { error: changes.error } : {}), files };
  }

  return {
    ok: true,
    rejected,
    doc: {
      format: 2,
      syncedAtMs: nowMs,
      available: payload.available,
      ...(payload.problem !== undefined ? { problem: payload.problem } : {}),
      pid: payload.pid ?? null,
      pidAlive: payload.pidAlive,
      ...(payload.runner !== undefined ? { runner: payload.runner } : {}),
      documents,
      sets,
      events: payload.events,
    },
  };
}

async function checkFile(
  path: string,
  file: SyncedFile,
  previous: SyncedFile | undefined,
  parse: (bytes: Uint8Array) => ParseResult<unknown>,
): Promise<{ ok: true; value: SyncedFile } | { ok: false; problem: string; invalid?: string }> {
  const checked = await checkContent(path, file, parse);
  switch (checked.kind) {
    case 'malformed':
      return { ok: false, problem: checked.problem };
    case 'refused':
      return { ok: false, problem: `${path}: ${checked.problem}`, invalid: checked.problem };
    case 'bad':
      // The live file is invalid: remember why, and keep the last good content to serve.
      return { ok: true, value: { ...file, ...(previous?.b64 !== undefined ? { b64: previous.b64 } : {}) } };
    case 'good':
      return { ok: true, value: file };
  }
}

function fileRead(file: SyncedFile | undefined): FileRead {
  if (!file) return ABSENT;
  const bytes = file.b64 !== undefined ? base64ToBytes(file.b64) : undefined;
  if (file.problem === undefined && bytes) return { present: true, bytes, mtimeMs: file.mtimeMs, version: file.hash };
  if (bytes) return { present: true, bytes, mtimeMs: file.mtimeMs, stale: file.problem, version: `stale:${file.hash}` };
  return { present: true, mtimeMs: file.mtimeMs, error: file.problem ?? 'unreadable', version: '' };
}

function setRead(set: StoredSet | undefined): FileSetRead {
  if (!set) return ABSENT_SET;
  const files: FileSetEntryRead[] = Object.keys(set.files)
    .sort()
    .map((name) => ({ ...fileRead(set.files[name]), name }));
  let newest: number | undefined;
  for (const f of files) if (f.mtimeMs !== undefined && (newest === undefined || f.mtimeMs > newest)) newest = f.mtimeMs;
  return {
    present: set.present,
    files,
    ...(newest !== undefined ? { mtimeMs: newest } : {}),
    ...(set.error !== undefined ? { error: set.error } : {}),
  };
}

/** The events summary as synced, as the collector takes it (absent fields left out). */
export function eventsSummary(events: EventsState): StateReading['events'] {
  return {
    present: events.present,
    lines: events.lines,
    ...(events.mtimeMs !== undefined ? { mtimeMs: events.mtimeMs } : {}),
    ...(events.error !== undefined ? { error: events.error } : {}),
    ...(events.sessionStartMs !== undefined ? { sessionStartMs: events.sessionStartMs } : {}),
    ...(events.iteration !== undefined ? { iteration: events.iteration } : {}),
    ...(events.sessionPid !== undefined ? { sessionPid: events.sessionPid } : {}),
  };
}

/** The collector's view of a synced session; `doc` undefined means nothing was synced yet. */
export function readingFromDoc(doc: SessionDoc | undefined, session: string): StateReading {
  if (!doc) return unreadableReading(`nothing synced yet for session "${session}"`);
  const documents = Object.fromEntries(DOCUMENTS.map((name) => [name, fileRead(doc.documents[name])])) as Record<DocumentName, FileRead>;
  const sets = Object.fromEntries(FILE_SET_NAMES.map((name) => [name, setRead(doc.sets[name])])) as unknown as FileSets;
  const { events } = doc;
  return {
    available: doc.available,
    ...(doc.problem !== undefined ? { problem: doc.problem } : {}),
    documents,
    ...sets,
    events: eventsSummary(events),
    // Only the machine running Loki Mode can tell. Clients that ship a verdict are trusted with it;
    // older ones shipped the answer for `loki.pid` alone.
    isProcessAlive: (pid) => doc.pidAlive && doc.pid === pid,
    hostPidNamespace: false,
    ...(doc.runner !== undefined ? { runner: doc.runner } : {}),
    lastSyncMs: doc.syncedAtMs,
  };
}
