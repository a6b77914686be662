/**
 * The in-memory `ObjectStore` (src/stores/memory.ts) with every call logged, for unit tests of the
 * Worker's storage logic (the real R2 and KV adapters run in workerd in test/worker/).
 */
import { MemoryObjectStore as Memory } from '../../src/stores/memory.js';
import type { StoredObject } from '../../src/stores/object-store.js';

export interface Call {
  readonly op: 'get' | 'put' | 'delete' | 'list';
  readonly key: string;
  readonly etag?: string;
  readonly bytes?: number;
}

export class MemoryObjectStore extends Memory {
  readonly calls: Call[] = [];

  override get(key: string, etag?: string): Promise<StoredObject | 'unchanged' | null> {
    this.calls.push({ op: 'get', key, ...(etag !== undefined ? { etag } : {}) });
    return super.get(key, etag);
  }

  override put(key: string, text: string, ifMatch?: string | null): Promise<boolean> {
    this.calls.push({ op: 'put', key, bytes: new TextEncoder().encode(text).length, ...(ifMatch !== undefined ? { etag: ifMatch ?? '(absent)' } : {}) });
    return super.put(key, text, ifMatch);
  }

  override delete(keys: readonly string[]): Promise<void> {
    for (const key of keys) this.calls.push({ op: 'delete', key });
    return super.delete(keys);
  }

  override list(prefix: string, cursor?: string) {
    this.calls.push({ op: 'list', key: prefix });
    return super.list(prefix, cursor);
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
