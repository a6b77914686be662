import * as v from 'valibot';
import { StoredDocSchema, type SessionDoc } from '../sync/protocol.js';
import { readingFromDoc } from '../sync/session-doc.js';
import type { SessionBucket } from './session-bucket.js';
import type { StateReading, StateStore } from './store.js';

/**
 * One synced session, read from a remote bucket: one storage operation per refresh. The parsed
 * document is kept, so an unchanged R2 object is neither downloaded nor parsed again.
 */
export class SyncedStateStore implements StateStore {
  /** The last document read, as text and as the collector's reading (decoding 10k files is not free). */
  private cached: { text: string; etag?: string; reading: StateReading } | undefined;

  constructor(
    private readonly bucket: SessionBucket,
    private readonly session: string,
  ) {}

  async read(): Promise<StateReading> {
    const loaded = await this.bucket.load(this.session, this.cached?.etag);
    if (loaded === 'unchanged' && this.cached) return this.cached.reading;
    if (loaded === null || loaded === 'unchanged') {
      this.cached = undefined;
      return readingFromDoc(undefined, this.session);
    }
    // KV has no etag: an identical text is the same document.
    if (this.cached?.text === loaded.text) return this.cached.reading;
    const doc = parseDoc(loaded.text);
    if (!doc) throw new Error(`stored state for session "${this.session}" is unreadable`);
    const reading = readingFromDoc(doc, this.session);
    this.cached = { text: loaded.text, ...(loaded.etag !== undefined ? { etag: loaded.etag } : {}), reading };
    return reading;
  }
}

/** A stored document, validated (it was written by us, but storage is not trusted blindly). */
export function parseDoc(text: string): SessionDoc | undefined {
  try {
    const result = v.safeParse(StoredDocSchema, JSON.parse(text));
    return result.success ? result.output : undefined;
  } catch {
    return undefined;
  }
}
