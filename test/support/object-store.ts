/**
 * An `ObjectStore` over a Map, for unit tests of the Worker's storage logic (the real R2 and KV
 * adapters run in workerd in test/worker/). `strong: true` behaves as R2 (etags, conditional reads
 * and writes), `false` as KV (no etags; every write wins). Every call is logged.
 */
import type { ObjectStore, StoredObject } from '../../src/stores/object-store.js';

export interface Call {
  readonly op: 'get' | 'put' | 'delete' | 'list';
  readonly key: string;
  readonly etag?: string;
  readonly bytes?: number;
}

export class MemoryObjectStore implements ObjectStore {
  readonly objects = new Map<string, { text: string; etag: string }>();
  readonly calls: Call[] = [];
  readonly kind: 'r2' | 'kv';
  #n = 0;

  constructor(readonly strong = true) {
    this.kind = strong ? 'r2' : 'kv';
  }

  async get(key: string, etag?: string): Promise<StoredObject | 'unchanged' | null> {
    this.calls.push({ op: 'get', key, ...(etag !== undefined ? { etag } : {}) });
    const object = this.objects.get(key);
    if (!object) return null;
    if (!this.strong) return { text: object.text };
    return etag === object.etag ? 'unchanged' : { ...object };
  }

  async put(key: string, text: string, ifMatch?: string): Promise<boolean> {
    this.calls.push({ op: 'put', key, bytes: new TextEncoder().encode(text).length, ...(ifMatch !== undefined ? { etag: ifMatch } : {}) });
    if (this.strong && ifMatch !== undefined && this.objects.get(key)?.etag !== ifMatch) return false;
    this.objects.set(key, { text, etag: `e${++this.#n}` });
    return true;
  }

  async delete(keys: readonly string[]): Promise<void> {
    for (const key of keys) {
      this.calls.push({ op: 'delete', key });
      this.objects.delete(key);
    }
  }

  async list(prefix: string, cursor?: string) {
    this.calls.push({ op: 'list', key: prefix });
    const keys = [...this.objects.keys()].filter((k) => k.startsWith(prefix)).sort();
    const start = cursor === undefined ? 0 : Number(cursor);
    const page = keys.slice(start, start + 1000);
    return { keys: page, ...(start + 1000 < keys.length ? { next: String(start + 1000) } : {}) };
  }

  /** Set a key's text directly, as another writer (or an older version) would have. */
  set(key: string, text: string): void {
    this.objects.set(key, { text, etag: `e${++this.#n}` });
  }

  text(key: string): string | undefined {
    return this.objects.get(key)?.text;
  }

  /** Calls since `from` (an index into `calls`) of one kind. */
  count(op: Call['op'], from = 0): number {
    return this.calls.slice(from).filter((c) => c.op === op).length;
  }

  /** Bytes written by puts since `from`. */
  written(from = 0): number {
    return this.calls.slice(from).reduce((sum, c) => sum + (c.op === 'put' ? (c.bytes ?? 0) : 0), 0);
  }
}
