import * as v from 'valibot';
import { StoredDocSchema, type SessionDoc } from '../sync/protocol.js';
import { eventsSummary, readingFromDoc } from '../sync/session-doc.js';
import { beatKey, BeatSchema, docContent, docKey, headKey, HeadSchema, legacyKey, parseStored, type Beat, type DocEntry, type Head } from '../sync/shards.js';
import type { ObjectStore } from './object-store.js';
import {
  ABSENT,
  ABSENT_SET,
  DOCUMENTS,
  FILE_SET_NAMES,
  type DocumentName,
  type FileRead,
  type FileSetRead,
  type FileSets,
  type RunnerVerdict,
  type StateReading,
  type StateStore,
} from './store.js';

/**
 * One synced session, read for a scrape (format 3, sync/shards.ts): the beat every time (a few
 * hundred bytes), the head only when its revision moved, a document only when its hash changed.
 * What is kept between scrapes is the head and the documents' bytes: the same few KB at 10 files or
 * 100,000. A session still in its format 1–2 document is read as before (one download per change).
 */
export class SyncedStateStore implements StateStore {
  #beat: { etag?: string; text: string; rev: number; reading: StateReading } | undefined;
  #head: { head: Head; sets: FileSets; size: number } | undefined;
  readonly #docs = new Map<DocumentName, { g: string; bytes: Uint8Array }>();
  #legacy: { text: string; etag?: string; reading: StateReading } | undefined;

  constructor(
    private readonly store: ObjectStore,
    private readonly session: string,
  ) {}

  /** The beat's and head's text and the documents' bytes (what is parsed from them is about as much again). */
  retainedBytes(): number {
    let bytes = (this.#beat?.text.length ?? 0) + (this.#head?.size ?? 0) + (this.#legacy?.text.length ?? 0);
    for (const doc of this.#docs.values()) bytes += doc.bytes.length;
    return bytes;
  }

  async read(): Promise<StateReading> {
    const loaded = await this.store.get(beatKey(this.session), this.#beat?.etag);
    if (loaded === 'unchanged' && this.#beat) return this.#beat.reading;
    const object = loaded === 'unchanged' ? null : loaded;
    if (object === null) {
      this.#beat = undefined;
      return this.#readLegacy();
    }
    // KV has no etag: an identical beat is the same state, once the head it names was read (KV may
    // have served an older head last time).
    if (this.#beat?.text === object.text && this.#head?.head.rev === this.#beat.rev) return this.#beat.reading;
    const beat = parseStored(BeatSchema, object);
    if (!beat) throw new Error(`stored state for session "${this.session}" is unreadable`);
    if (this.#head?.head.rev !== beat.rev) {
      const object = await this.store.get(headKey(this.session));
      const head = parseStored(HeadSchema, object);
      // A head older than the beat says (KV lagging) serves until the next read finds the newer one.
      if (head) this.#head = { head, sets: setReads(head), size: object && object !== 'unchanged' ? object.text.length : 0 };
      else if (!this.#head) throw new Error(`stored state for session "${this.session}" is unreadable`);
    }
    const { head, sets } = this.#head!;
    if (head.filling) {
      // Moving over from format 2: until the first full pass ends, the old document is the whole truth.
      const legacy = await this.#readLegacy();
      if (legacy.available || this.#legacy) return legacy;
    }
    const reading: StateReading = {
      available: beat.available,
      ...(beat.problem !== undefined ? { problem: beat.problem } : {}),
      documents: await this.#documents(head),
      ...sets,
      events: eventsSummary(beat.events),
      runner: verdictOf(beat),
      isProcessAlive: (pid) => beat.pidAlive && beat.pid === pid,
      hostPidNamespace: false,
      lastSyncMs: beat.syncedAtMs,
    };
    this.#beat = { text: object.text, rev: beat.rev, ...(object.etag !== undefined ? { etag: object.etag } : {}), reading };
    return reading;
  }

  async #documents(head: Head): Promise<Record<DocumentName, FileRead>> {
    const wanted = (Object.entries(head.docs) as [DocumentName, DocEntry][]).filter(([name, d]) => d.g !== undefined && this.#docs.get(name)?.g !== d.g);
    // Small documents are in the head; a larger one is read only when its content changed.
    const loaded = await Promise.all(wanted.map(([name, d]) => (d.t !== undefined ? null : this.store.get(docKey(this.session, d.g!)))));
    wanted.forEach(([name, entry], i) => {
      const bytes = entry.t !== undefined ? new TextEncoder().encode(entry.t) : docContent(loaded[i]!, entry.g!);
      if (bytes) this.#docs.set(name, { g: entry.g!, bytes });
    });
    for (const name of this.#docs.keys()) if (head.docs[name] === undefined) this.#docs.delete(name);
    return Object.fromEntries(DOCUMENTS.map((name) => [name, documentRead(head.docs[name], this.#docs.get(name))])) as Record<DocumentName, FileRead>;
  }

  async #readLegacy(): Promise<StateReading> {
    const loaded = await this.store.get(legacyKey(this.session), this.#legacy?.etag);
    if (loaded === 'unchanged' && this.#legacy) return this.#legacy.reading;
    if (loaded === null || loaded === 'unchanged') {
      this.#legacy = undefined;
      return readingFromDoc(undefined, this.session);
    }
    // KV has no etag: an identical text is the same document.
    if (this.#legacy?.text === loaded.text) return this.#legacy.reading;
    const doc = parseDoc(loaded.text);
    if (!doc) throw new Error(`stored state for session "${this.session}" is unreadable`);
    const reading = readingFromDoc(doc, this.session);
    this.#legacy = { text: loaded.text, ...(loaded.etag !== undefined ? { etag: loaded.etag } : {}), reading };
    return reading;
  }
}

/** A document as the collector reads it: its last good bytes, and why the live file is bad. */
function documentRead(entry: DocEntry | undefined, good: { g: string; bytes: Uint8Array } | undefined): FileRead {
  if (!entry) return ABSENT;
  const bytes = good && good.g === entry.g ? good.bytes : undefined;
  if (entry.p === undefined && bytes) return { present: true, bytes, mtimeMs: entry.m, version: entry.h };
  if (bytes) return { present: true, bytes, mtimeMs: entry.m, stale: entry.p ?? 'unreadable', version: `stale:${entry.h}` };
  return { present: true, mtimeMs: entry.m, error: entry.p ?? 'content not stored', version: '' };
}

/** The head's set summaries as the collector's file sets (built once per head: the collector memoises on them). */
function setReads(head: Head): FileSets {
  return Object.fromEntries(
    FILE_SET_NAMES.map((name): [string, FileSetRead] => {
      const set = head.sets[name];
      if (!set) return [name, ABSENT_SET];
      const newest = set.mtimes[0]?.[0];
      return [
        name,
        {
          present: set.present,
          files: [],
          ...(newest !== undefined ? { mtimeMs: newest } : {}),
          ...(set.error !== undefined ? { error: set.error } : {}),
          summary: { count: set.count, bad: set.bad, badEntries: set.badEntries, ...(set.totals !== undefined ? { totals: set.totals } : {}) },
        },
      ];
    }),
  ) as unknown as FileSets;
}

/** The client's verdict; a beat without one says only whether `loki.pid` was alive. */
function verdictOf(beat: Beat): RunnerVerdict {
  if (beat.runner) return beat.runner;
  return beat.pidAlive && beat.pid !== null ? { decided: true, alive: true, pid: beat.pid } : { decided: false, alive: false };
}

/** A stored format 1–2 document, validated (it was written by us, but storage is not trusted blindly). */
export function parseDoc(text: string): SessionDoc | undefined {
  try {
    const result = v.safeParse(StoredDocSchema, JSON.parse(text));
    return result.success ? result.output : undefined;
  } catch {
    return undefined;
  }
}

