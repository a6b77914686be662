import type { ObjectStore } from './object-store.js';

/** The slice of Cloudflare's `KVNamespace` binding this adapter uses. */
export interface KvNamespaceLike {
  get(key: string, type: 'text'): Promise<string | null>;
  put(key: string, value: string): Promise<void>;
  delete(key: string): Promise<void>;
  list(options?: { prefix?: string; cursor?: string; limit?: number }): Promise<{ keys: { name: string }[]; list_complete: boolean; cursor?: string }>;
}

/**
 * Objects in Workers KV. KV is eventually consistent: a read served from another location can be up
 * to ~60 s old, and writes are last-writer-wins (no conditional write), so one sync client per
 * session is assumed (see docs/worker.md). No conditional read either: every get downloads.
 */
export class KvObjectStore implements ObjectStore {
  readonly strong = false;
  readonly kind = 'kv';

  constructor(private readonly kv: KvNamespaceLike) {}

  async get(key: string) {
    const text = await this.kv.get(key, 'text');
    return text === null ? null : { text };
  }

  async put(key: string, text: string): Promise<boolean> {
    await this.kv.put(key, text);
    return true;
  }

  async delete(keys: readonly string[]): Promise<void> {
    for (const key of keys) await this.kv.delete(key);
  }

  async list(prefix: string, cursor?: string) {
    const page = await this.kv.list({ prefix, limit: 1000, ...(cursor !== undefined ? { cursor } : {}) });
    return { keys: page.keys.map((k) => k.name), ...(!page.list_complete && page.cursor !== undefined ? { next: page.cursor } : {}) };
  }
}
