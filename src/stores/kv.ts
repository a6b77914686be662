import { sessionKey, type SessionBucket } from './session-bucket.js';

/** The slice of Cloudflare's `KVNamespace` binding this adapter uses. */
export interface KvNamespaceLike {
  get(key: string, type: 'text'): Promise<string | null>;
  put(key: string, value: string): Promise<void>;
}

/**
 * Session documents in Workers KV. KV is eventually consistent: a scrape served from another
 * location can see a document up to ~60 s old, so values lag and `loki_last_sync_timestamp_seconds`
 * shows how much; keep `LOKI_SYNC_STALE_SECONDS` above 60 (default 120) so the lag alone never
 * reads as a stopped session. One GET per scrape; KV has no conditional read.
 */
export class KvSessionBucket implements SessionBucket {
  constructor(private readonly kv: KvNamespaceLike) {}

  async load(session: string) {
    const text = await this.kv.get(sessionKey(session), 'text');
    return text === null ? null : { text };
  }

  async save(session: string, text: string): Promise<void> {
    await this.kv.put(sessionKey(session), text);
  }
}
