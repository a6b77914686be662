import * as v from 'valibot';
import { SessionDocSchema, type SessionDoc } from '../sync/protocol.js';
import { readingFromDoc } from '../sync/session-doc.js';
import type { SessionBucket } from './session-bucket.js';
import type { StateReading, StateStore } from './store.js';

/**
 * One synced session, read from a remote bucket: one storage operation per refresh. The parsed
 * document is kept, so an unchanged R2 object is neither downloaded nor parsed again.
 */
export class SyncedStateStore implements StateStore {
  private cached: { doc: SessionDoc; etag: string } | undefined;

  constructor(
    private readonly bucket: SessionBucket,
    private readonly session: string,
  ) {}

  async read(): Promise<StateReading> {
    const loaded = await this.bucket.load(this.session, this.cached?.etag);
    if (loaded === 'unchanged' && this.cached) return readingFromDoc(this.cached.doc, this.session);
    if (loaded === null || loaded === 'unchanged') {
      this.cached = undefined;
      return readingFromDoc(undefined, this.session);
    }
    const doc = parseDoc(loaded.text);
    if (!doc) throw new Error(`stored state for session "${this.session}" is unreadable`);
    this.cached = loaded.etag !== undefined ? { doc, etag: loaded.etag } : undefined;
    return readingFromDoc(doc, this.session);
  }
}

/** A stored document, validated (it was written by us, but storage is not trusted blindly). */
export function parseDoc(text: string): SessionDoc | undefined {
  try {
    const result = v.safeParse(SessionDocSchema, JSON.parse(text));
    return result.success ? result.output : undefined;
  } catch {
    return undefined;
  }
}
