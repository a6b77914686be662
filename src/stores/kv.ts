import { listSessionKeys, sessionKey, SESSIONS_PREFIX, type SessionBucket } from './session-bucket.js';

/** The slice of Cloudflare's `KVNamespace` binding this adapter uses. */
export interface KvNamespaceLike {
  get(key: string, type: 'text'): Promise<string | null>;
  put(key: string, value: string): Promise<void>;
  list(options?: { prefix?: string; cursor?: string; limit?: number }): Promise<{ keys: { name: string }[]; list_complete: boolean; cursor?: string }>;
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

  async countSessions(atLeast: number): Promise<number> {
    return (await this.listSessions(atLeast)).length;
  }

  listSessions(atMost: number): Promise<string[]> {
    return listSessionKeys(atMost, async (cursor) => {
      const page = await this.kv.list({ prefix: SESSIONS_PREFIX, limit: 1000, ...(cursor !== undefined ? { cursor } : {}) });
      return { keys: page.keys.map((k) => k.name), next: page.list_complete ? undefined : page.cursor };
    });
  }


}
