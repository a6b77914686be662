/**
 * The remote side of sync, pure: apply one ingest payload to a session document (all or nothing),
 * and turn a session document back into the `StateReading` the collector takes — so a synced
 * session is collected exactly as the local tree would be.
 */
import type { ParseResult } from '../schemas/parse.js';
import { ABSENT, DOCUMENTS, type DocumentName, type EfficiencyFileRead, type FileRead, type StateReading } from '../stores/store.js';
import {
  base64ToBytes,
  DOCUMENT_PARSERS,
  parseEfficiencyFile,
  sha256Hex,
  type IngestPayload,
  type SessionDoc,
  type SyncedFile,
} from './protocol.js';

export type IngestResult = { readonly ok: true; readonly doc: SessionDoc } | { readonly ok: false; readonly problem: string };

/**
 * Validates every file of `payload` with the collector's own schemas and returns the new document.
 * Any invalid file rejects the whole payload, naming the file: the stored state stays as it was.
 */
export async function applyIngest(doc: SessionDoc, payload: IngestPayload, nowMs: number): Promise<IngestResult> {
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

  const files = payload.efficiency.present ? { ...doc.efficiency.files } : {};
  for (const name of payload.efficiency.remove) delete files[name];
  for (const [name, file] of Object.entries(payload.efficiency.upsert)) {
    const merged = await mergeFile(`metrics/efficiency/${name}`, file, files[name], parseEfficiencyFile);
    if (!merged.ok) return merged;
    files[name] = merged.value;
  }

  return {
    ok: true,
    doc: {
      format: 1,
      syncedAtMs: nowMs,
      available: payload.available,
      ...(payload.problem !== undefined ? { problem: payload.problem } : {}),
      pid: payload.pid ?? null,
      pidAlive: payload.pidAlive,
      documents,
      efficiency: {
        present: payload.efficiency.present,
        ...(payload.efficiency.error !== undefined ? { error: payload.efficiency.error } : {}),
        files,
      },
      events: payload.events,
    },
  };
}

async function mergeFile(
  path: string,
  file: SyncedFile,
  previous: SyncedFile | undefined,
  parse: (bytes: Uint8Array) => ParseResult<unknown>,
): Promise<ParseResult<SyncedFile>> {
  if (file.b64 !== undefined && file.problem !== undefined) return { ok: false, problem: `${path}: send either content or a problem, not both` };
  if (file.b64 === undefined) {
    if (file.problem === undefined) return { ok: false, problem: `${path}: no content and no problem` };
    // The live file is invalid: remember why, and keep the last good content to serve.
    return { ok: true, value: { ...file, ...(previous?.b64 !== undefined ? { b64: previous.b64 } : {}) } };
  }
  const bytes = base64ToBytes(file.b64);
  if ((await sha256Hex(bytes)) !== file.hash) return { ok: false, problem: `${path}: hash does not match the content (partial upload?)` };
  const parsed = parse(bytes);
  if (!parsed.ok) return { ok: false, problem: `${path}: ${parsed.problem}` };
  return { ok: true, value: file };
}

function fileRead(file: SyncedFile | undefined): FileRead {
  if (!file) return ABSENT;
  const bytes = file.b64 !== undefined ? base64ToBytes(file.b64) : undefined;
  if (file.problem === undefined && bytes) return { present: true, bytes, mtimeMs: file.mtimeMs, version: file.hash };
  if (bytes) return { present: true, bytes, mtimeMs: file.mtimeMs, stale: file.problem, version: `stale:${file.hash}` };
  return { present: true, mtimeMs: file.mtimeMs, error: file.problem ?? 'unreadable', version: '' };
}

/** The collector's view of a synced session; `doc` undefined means nothing was synced yet. */
export function readingFromDoc(doc: SessionDoc | undefined, session: string): StateReading {
  const documents = Object.fromEntries(DOCUMENTS.map((name) => [name, fileRead(doc?.documents[name])])) as Record<DocumentName, FileRead>;
  const names = Object.keys(doc?.efficiency.files ?? {}).sort();
  const files: EfficiencyFileRead[] = names.map((name) => ({ ...fileRead(doc!.efficiency.files[name]), name }));
  let newest: number | undefined;
  for (const f of files) if (f.mtimeMs !== undefined && (newest === undefined || f.mtimeMs > newest)) newest = f.mtimeMs;
  if (!doc) {
    return {
      available: false,
      problem: `nothing synced yet for session "${session}"`,
      documents,
      efficiency: { present: false, files: [] },
      events: { present: false, lines: 0 },
      isProcessAlive: () => false,
    };
  }
  const { events } = doc;
  return {
    available: doc.available,
    ...(doc.problem !== undefined ? { problem: doc.problem } : {}),
    documents,
    efficiency: {
      present: doc.efficiency.present,
      files,
      ...(newest !== undefined ? { mtimeMs: newest } : {}),
      ...(doc.efficiency.error !== undefined ? { error: doc.efficiency.error } : {}),
    },
    events: {
      present: events.present,
      lines: events.lines,
      ...(events.mtimeMs !== undefined ? { mtimeMs: events.mtimeMs } : {}),
      ...(events.error !== undefined ? { error: events.error } : {}),
      ...(events.sessionStartMs !== undefined ? { sessionStartMs: events.sessionStartMs } : {}),
      ...(events.iteration !== undefined ? { iteration: events.iteration } : {}),
    },
    // Only the machine running Loki Mode can tell; the sync shipped the answer for this pid.
    isProcessAlive: (pid) => doc.pidAlive && doc.pid === pid,
    lastSyncMs: doc.syncedAtMs,
  };
}
