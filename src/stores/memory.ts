import type { ObjectStore, StoredObject } from './object-store.js';

/**
 * An `ObjectStore` in memory with R2's semantics (etags, conditional reads and writes). The Worker
 * warms up over one at startup (worker/warm-up.ts); tests build on it.
 */
export class MemoryObjectStore implements ObjectStore {
  readonly objects = new Map<string, { text: string; etag: string }>();
  readonly kind: 'r2' | 'kv';
  #n = 0;

  /** `strong` false behaves as KV: no etags, every write wins. */
  constructor(readonly strong = true) {
    this.kind = strong ? 'r2' : 'kv';
  }

  async get(key: string, etag?: string): Promise<StoredObject | 'unchanged' | null> {
    const object = this.objects.get(key);
    if (!object) return null;
    if (!this.strong) return { text: object.text };
    return etag === object.etag ? 'unchanged' : { ...object };
  }

  async put(key: string, text: string, ifMatch?: string | null): Promise<boolean> {
    if (this.strong && ifMatch !== undefined && (this.objects.get(key)?.etag ?? null) !== ifMatch) return false;
    this.set(key, text);
    return true;
  }

  async delete(keys: readonly string[]): Promise<void> {
    for (const key of keys) this.objects.delete(key);
  }

  async list(prefix: string, cursor?: string) {
    const keys = [...this.objects.keys()].filter((k) => k.startsWith(prefix)).sort();
    const start = cursor === undefined ? 0 : Number(cursor);
    return { keys: keys.slice(start, start + 1000), ...(start + 1000 < keys.length ? { next: String(start + 1000) } : {}) };
  }

  /** Sets a key's text directly, as another writer would. */
  set(key: string, text: string): void {
    this.objects.set(key, { text, etag: `e${++this.#n}` });
  }
}
