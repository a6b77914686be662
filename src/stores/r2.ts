import type { ObjectStore } from './object-store.js';

/** The slice of Cloudflare's `R2Bucket` binding this adapter uses. */
export interface R2BucketLike {
  get(key: string, options?: { onlyIf?: { etagDoesNotMatch?: string } }): Promise<R2ObjectLike | null>;
  put(key: string, value: string, options?: { httpMetadata?: { contentType?: string }; onlyIf?: { etagMatches?: string; etagDoesNotMatch?: string } }): Promise<unknown>;
  delete(keys: string | string[]): Promise<unknown>;
  list(options?: { prefix?: string; cursor?: string; limit?: number }): Promise<{ objects: { key: string }[]; truncated: boolean; cursor?: string }>;
}
interface R2ObjectLike {
  readonly etag: string;
  /** Present on a full read; absent when `onlyIf` matched and no body was sent. */
  text?: () => Promise<string>;
  readonly body?: unknown;
}

/**
 * Objects in R2: strongly consistent, with conditional reads (`etagDoesNotMatch`: no download
 * while unchanged) and conditional writes (`etagMatches`: a head written by another sync first is
 * not overwritten; `etagDoesNotMatch: '*'`: written only while absent).
 */
export class R2ObjectStore implements ObjectStore {
  readonly strong = true;
  readonly kind = 'r2';

  constructor(private readonly bucket: R2BucketLike) {}

  async get(key: string, etag?: string) {
    const object = await this.bucket.get(key, etag ? { onlyIf: { etagDoesNotMatch: etag } } : undefined);
    if (object === null) return null;
    if (!('body' in object) || typeof object.text !== 'function') return 'unchanged' as const;
    return { text: await object.text(), etag: object.etag };
  }

  async put(key: string, text: string, ifMatch?: string | null): Promise<boolean> {
    const written = await this.bucket.put(key, text, {
      httpMetadata: { contentType: 'application/json' },
      ...(ifMatch === null ? { onlyIf: { etagDoesNotMatch: '*' } } : ifMatch !== undefined ? { onlyIf: { etagMatches: ifMatch } } : {}),
    });
    // R2 answers null when the condition failed.
    return written !== null;
  }

  async delete(keys: readonly string[]): Promise<void> {
    // One call takes up to 1,000 keys.
    for (let i = 0; i < keys.length; i += 1000) await this.bucket.delete(keys.slice(i, i + 1000));
  }

  async list(prefix: string, cursor?: string) {
    const page = await this.bucket.list({ prefix, limit: 1000, ...(cursor !== undefined ? { cursor } : {}) });
    return { keys: page.objects.map((o) => o.key), ...(page.truncated && page.cursor !== undefined ? { next: page.cursor } : {}) };
  }
}
