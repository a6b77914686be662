/**
 * The Worker's storage as keys and small text objects: what R2 and KV both offer, one storage
 * operation per call. Everything above this interface is runtime-free (sync/shards.ts lays a
 * session out over it; synced.ts reads it back for a scrape).
 */
export interface StoredObject {
  readonly text: string;
  /** R2's etag; KV has none. */
  readonly etag?: string;
}

export interface ObjectStore {
  /** The object; `'unchanged'` when it still has `etag` (R2 sends no body then); null when absent. */
  get(key: string, etag?: string): Promise<StoredObject | 'unchanged' | null>;
  /**
   * Writes `text`. With `ifMatch`, only while the stored object still has that etag; with `null`,
   * only while there is no object: false when the condition fails (another writer came first). A
   * store without conditional writes (KV) always writes.
   */
  put(key: string, text: string, ifMatch?: string | null): Promise<boolean>;
  /** Removes keys (absent ones are fine). */
  delete(keys: readonly string[]): Promise<void>;
  /** One page of the keys under `prefix` (at most 1,000), and where the next page starts. */
  list(prefix: string, cursor?: string): Promise<{ readonly keys: readonly string[]; readonly next?: string }>;
  /**
   * R2: reads see the latest write and writes can be conditional. KV: neither (a read may be up
   * to ~60 s old elsewhere, and the last writer wins), which sync/shards.ts plans for.
   */
  readonly strong: boolean;
  /** The binding's name in messages and cadence defaults: `r2` or `kv`. */
  readonly kind: 'r2' | 'kv';
}
