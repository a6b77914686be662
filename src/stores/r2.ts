import { listSessionKeys, sessionKey, SESSIONS_PREFIX, type SessionBucket } from './session-bucket.js';

/** The slice of Cloudflare's `R2Bucket` binding this adapter uses. */
export interface R2BucketLike {
  get(key: string, options?: { onlyIf?: { etagDoesNotMatch?: string } }): Promise<R2ObjectLike | null>;
  put(key: string, value: string, options?: { httpMetadata?: { contentType?: string } }): Promise<unknown>;
  list(options?: { prefix?: string; cursor?: string; limit?: number }): Promise<{ objects: { key: string }[]; truncated: boolean; cursor?: string }>;
}
interface R2ObjectLike {
  readonly etag: string;
  /** Present on a full read; absent when `onlyIf` matched and no body was sent. */
  text?: () => Promise<string>;
  readonly body?: unknown;
}

/**
 * Session documents in R2: strongly consistent, so a scrape right after a sync sees it. A scrape
 * is one conditional GET (`etagDoesNotMatch`), which skips the download while nothing changed.
 */
export class R2SessionBucket implements SessionBucket {
  constructor(private readonly bucket: R2BucketLike) {}

  async load(session: string, etag?: string) {
    const object = await this.bucket.get(sessionKey(session), etag ? { onlyIf: { etagDoesNotMatch: etag } } : undefined);
    if (object === null) return null;
    if (!('body' in object) || typeof object.text !== 'function') return 'unchanged' as const;
    return { text: await object.text(), etag: object.etag };
  }

  async save(session: string, text: string): Promise<void> {
    await this.bucket.put(sessionKey(session), text, { httpMetadata: { contentType: 'application/json' } });
  }

  async countSessions(atLeast: number): Promise<number> {
    return (await this.listSessions(atLeast)).length;
  }

  listSessions(atMost: number): Promise<string[]> {
    return listSessionKeys(atMost, async (cursor) => {
      const page = await this.bucket.list({ prefix: SESSIONS_PREFIX, limit: 1000, ...(cursor !== undefined ? { cursor } : {}) });
      return { keys: page.objects.map((o) => o.key), next: page.truncated ? page.cursor : undefined };
    });
  }


}
