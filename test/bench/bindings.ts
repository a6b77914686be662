/**
 * In-memory doubles of the Worker's storage bindings (Cloudflare's `R2Bucket` and `KVNamespace`),
 * for the Worker bench (worker.bench.ts) and any test that wants them. They implement the public
 * binding API, not this repository's storage adapters, so they keep working whatever keys and
 * operations the Worker's storage layer uses: nothing here knows a key's meaning.
 *
 * - Values are kept as bytes and every read decodes a fresh copy, as a real binding does (the
 *   bytes come over the network), so a cached string in the Worker is never shared with storage.
 * - Every call is counted by kind, with the bytes each write stores: R2's billing classes (class A:
 *   put, list; class B: get, head; delete is free on R2 and counted apart), KV's daily limits
 *   (reads, writes, lists, deletes). `reset()` zeroes the counts, not the data.
 * - `copySession(from, to)` clones one session under another name (every key with a path segment
 *   equal to `from`), without counting, so one synced session can be scraped many times over. Only
 *   keys are renamed, never values: keys the double does not know are copied all the same.
 * - `dump()` / `fromDump()` carry the data to a child process as JSON.
 */

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** What a binding's `put` accepts, as bytes (a string as UTF-8). Streams are read whole. */
async function toBytes(value: unknown): Promise<Uint8Array> {
  if (typeof value === 'string') return encoder.encode(value);
  if (value instanceof Uint8Array) return new Uint8Array(value); // a copy: the caller may reuse its buffer
  if (value instanceof ArrayBuffer) return new Uint8Array(value.slice(0));
  if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer.slice(value.byteOffset, value.byteOffset + value.byteLength));
  if (value === null || value === undefined) return new Uint8Array(0);
  if (typeof (value as ReadableStream).getReader === 'function') return new Uint8Array(await new Response(value as ReadableStream).arrayBuffer());
  if (value instanceof Blob) return new Uint8Array(await value.arrayBuffer());
  throw new TypeError(`unsupported value type for put: ${Object.prototype.toString.call(value)}`);
}

function streamOf(bytes: Uint8Array): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(controller) {
      controller.enqueue(new Uint8Array(bytes));
      controller.close();
    },
  });
}

const metadataBytes = (metadata: unknown) => (metadata === undefined ? 0 : encoder.encode(JSON.stringify(metadata)).length);

/** The key with every path segment equal to `from` replaced by `to`, or undefined when it has none. */
/** Copies every entry whose key names session `from` to the same key naming `to`; how many. */
function copyRenamed<V>(entries: Map<string, V>, from: string, to: string): number {
  let copied = 0;
  for (const [key, stored] of [...entries]) {
    const renamed = renameSessionKey(key, from, to);
    if (renamed === undefined) continue;
    entries.set(renamed, stored);
    copied++;
  }
  return copied;
}

export function renameSessionKey(key: string, from: string, to: string): string | undefined {
  const segments = key.split('/');
  if (!segments.includes(from)) return undefined;
  return segments.map((segment) => (segment === from ? to : segment)).join('/');
}

/** Keys in order, recomputed only after a change (lists would otherwise sort every time). */
class SortedKeys {
  #sorted: string[] | undefined;
  constructor(private readonly map: Map<string, unknown>) {}
  invalidate(): void {
    this.#sorted = undefined;
  }
  get(): string[] {
    this.#sorted ??= [...this.map.keys()].sort();
    return this.#sorted;
  }
  /** Index of the first key > `after` (binary search), 0 without `after`. */
  from(after: string | undefined): number {
    const keys = this.get();
    if (after === undefined) return 0;
    let lo = 0;
    let hi = keys.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (keys[mid]! <= after) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

// ---- R2 ---------------------------------------------------------------------------------------

interface StoredR2 {
  readonly bytes: Uint8Array;
  readonly etag: string;
  readonly uploaded: Date;
  readonly version: string;
  readonly httpMetadata?: Record<string, unknown>;
  readonly customMetadata?: Record<string, string>;
}

export interface R2Conditional {
  readonly etagMatches?: string | string[];
  readonly etagDoesNotMatch?: string | string[];
  readonly uploadedBefore?: Date;
  readonly uploadedAfter?: Date;
}

export interface R2Ops {
  /** put, list (and the multipart calls, which the doubles do not have). */
  classA: number;
  /** get, head. */
  classB: number;
  /** delete calls (R2 does not bill them); keys deleted in `deletedKeys`. */
  deletes: number;
  deletedKeys: number;
  /** Calls per method. */
  byMethod: Record<string, number>;
  /** Puts that stored something, and puts refused by their condition. */
  puts: number;
  putsRefused: number;
  /** Bytes stored by the puts (value plus custom metadata as JSON). */
  bytesWritten: number;
  /** Bytes returned by reads with a body. */
  bytesRead: number;
}

const newR2Ops = (): R2Ops => ({ classA: 0, classB: 0, deletes: 0, deletedKeys: 0, byMethod: {}, puts: 0, putsRefused: 0, bytesWritten: 0, bytesRead: 0 });

/** An etag list as R2 parses it: `*`, `"x"`, `W/"x"` or plain `x`, comma-separated or as an array. */
function etagList(condition: string | string[]): { wildcard: boolean; values: Set<string> } {
  const parts = (Array.isArray(condition) ? condition : condition.split(',')).map((p) => p.trim()).filter((p) => p !== '');
  const values = new Set<string>();
  let wildcard = false;
  for (const part of parts) {
    if (part === '*') wildcard = true;
    else values.add(part.replace(/^W\//, '').replace(/^"(.*)"$/, '$1'));
  }
  return { wildcard, values };
}

/** Whether `onlyIf` holds for `object` (undefined: absent), as R2 (and Miniflare) decide. */
function conditionHolds(onlyIf: R2Conditional | undefined, object: StoredR2 | undefined): boolean {
  if (!onlyIf) return true;
  if (!object) return onlyIf.etagMatches === undefined && onlyIf.uploadedAfter === undefined;
  const matches = (condition: string | string[]) => {
    const { wildcard, values } = etagList(condition);
    return wildcard || values.has(object.etag);
  };
  const ifMatch = onlyIf.etagMatches === undefined || matches(onlyIf.etagMatches);
  const ifNoneMatch = onlyIf.etagDoesNotMatch === undefined || !matches(onlyIf.etagDoesNotMatch);
  const uploaded = object.uploaded.getTime();
  const ifModifiedSince = onlyIf.uploadedAfter === undefined || onlyIf.uploadedAfter.getTime() < uploaded || (onlyIf.etagDoesNotMatch !== undefined && ifNoneMatch);
  const ifUnmodifiedSince = onlyIf.uploadedBefore === undefined || uploaded < onlyIf.uploadedBefore.getTime() || (onlyIf.etagMatches !== undefined && ifMatch);
  return ifMatch && ifNoneMatch && ifModifiedSince && ifUnmodifiedSince;
}

/** R2's `R2Object`: the metadata, no body (what `head`, `put` and a failed conditional `get` return). */
export class MemoryR2Object {
  readonly key: string;
  readonly etag: string;
  readonly httpEtag: string;
  readonly size: number;
  readonly version: string;
  readonly uploaded: Date;
  readonly httpMetadata: Record<string, unknown>;
  readonly customMetadata: Record<string, string>;
  readonly checksums = {};
  readonly storageClass = 'Standard';

  constructor(key: string, stored: StoredR2) {
    this.key = key;
    this.etag = stored.etag;
    this.httpEtag = `"${stored.etag}"`;
    this.size = stored.bytes.length;
    this.version = stored.version;
    this.uploaded = stored.uploaded;
    this.httpMetadata = { ...stored.httpMetadata };
    this.customMetadata = { ...stored.customMetadata };
  }

  writeHttpMetadata(headers: Headers): void {
    for (const [name, value] of Object.entries(this.httpMetadata)) if (typeof value === 'string') headers.set(name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`), value);
  }
}

/** R2's `R2ObjectBody`: the metadata and the content (`body` is made on first use). */
export class MemoryR2ObjectBody extends MemoryR2Object {
  #bytes: Uint8Array;
  #body: ReadableStream<Uint8Array> | undefined;
  #used = false;

  constructor(key: string, stored: StoredR2) {
    super(key, stored);
    this.#bytes = stored.bytes;
  }

  get body(): ReadableStream<Uint8Array> {
    this.#body ??= streamOf(this.#bytes);
    return this.#body;
  }
  get bodyUsed(): boolean {
    return this.#used;
  }
  #use(): Uint8Array {
    if (this.#used) throw new TypeError('body already used');
    this.#used = true;
    return this.#bytes;
  }
  async text(): Promise<string> {
    return decoder.decode(this.#use());
  }
  async json<T = unknown>(): Promise<T> {
    return JSON.parse(decoder.decode(this.#use())) as T;
  }
  async arrayBuffer(): Promise<ArrayBuffer> {
    const bytes = this.#use();
    return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  }
  async bytes(): Promise<Uint8Array> {
    return new Uint8Array(this.#use());
  }
  async blob(): Promise<Blob> {
    return new Blob([this.#use() as Uint8Array<ArrayBuffer>]);
  }
}

export interface R2GetOptions {
  readonly onlyIf?: R2Conditional;
  readonly range?: { readonly offset?: number; readonly length?: number; readonly suffix?: number };
}

export interface R2PutOptions {
  readonly onlyIf?: R2Conditional;
  readonly httpMetadata?: Record<string, unknown>;
  readonly customMetadata?: Record<string, string>;
}

export interface R2ListOptions {
  readonly prefix?: string;
  readonly cursor?: string;
  readonly limit?: number;
  readonly delimiter?: string;
  readonly startAfter?: string;
  readonly include?: readonly ('httpMetadata' | 'customMetadata')[];
}

let versions = 0;
const newEtag = () => crypto.randomUUID().replaceAll('-', '');

export class MemoryR2 {
  readonly #objects = new Map<string, StoredR2>();
  readonly #keys = new SortedKeys(this.#objects);
  #ops = newR2Ops();

  /** Counts since the last `reset()` (a copy). */
  ops(): R2Ops {
    return { ...this.#ops, byMethod: { ...this.#ops.byMethod } };
  }
  reset(): void {
    this.#ops = newR2Ops();
  }
  #count(method: string, kind: 'classA' | 'classB' | 'deletes'): void {
    this.#ops[kind]++;
    this.#ops.byMethod[method] = (this.#ops.byMethod[method] ?? 0) + 1;
  }

  async head(key: string): Promise<MemoryR2Object | null> {
    this.#count('head', 'classB');
    const stored = this.#objects.get(key);
    return stored ? new MemoryR2Object(key, stored) : null;
  }

  async get(key: string, options?: R2GetOptions): Promise<MemoryR2ObjectBody | MemoryR2Object | null> {
    this.#count('get', 'classB');
    const stored = this.#objects.get(key);
    if (!stored) return null;
    // A failed condition: R2 answers with the object's metadata and no body.
    if (!conditionHolds(options?.onlyIf, stored)) return new MemoryR2Object(key, stored);
    let bytes = stored.bytes;
    const range = options?.range;
    if (range) {
      const size = bytes.length;
      const start = range.suffix !== undefined ? Math.max(0, size - range.suffix) : Math.min(range.offset ?? 0, size);
      const end = range.suffix !== undefined ? size : Math.min(size, range.length !== undefined ? start + range.length : size);
      bytes = bytes.subarray(start, end);
    }
    this.#ops.bytesRead += bytes.length;
    return new MemoryR2ObjectBody(key, { ...stored, bytes });
  }

  async put(key: string, value: unknown, options?: R2PutOptions): Promise<MemoryR2Object | null> {
    this.#count('put', 'classA');
    const bytes = await toBytes(value);
    if (!conditionHolds(options?.onlyIf, this.#objects.get(key))) {
      this.#ops.putsRefused++;
      return null;
    }
    const stored: StoredR2 = {
      bytes,
      etag: newEtag(),
      uploaded: new Date(),
      version: String(++versions),
      ...(options?.httpMetadata ? { httpMetadata: { ...options.httpMetadata } } : {}),
      ...(options?.customMetadata ? { customMetadata: { ...options.customMetadata } } : {}),
    };
    if (!this.#objects.has(key)) this.#keys.invalidate();
    this.#objects.set(key, stored);
    this.#ops.puts++;
    this.#ops.bytesWritten += bytes.length + metadataBytes(options?.customMetadata);
    return new MemoryR2Object(key, stored);
  }

  async delete(keys: string | readonly string[]): Promise<void> {
    this.#count('delete', 'deletes');
    for (const key of typeof keys === 'string' ? [keys] : keys) {
      if (this.#objects.delete(key)) this.#keys.invalidate();
      this.#ops.deletedKeys++;
    }
  }

  async list(options: R2ListOptions = {}): Promise<{ objects: MemoryR2Object[]; truncated: boolean; cursor?: string; delimitedPrefixes: string[] }> {
    this.#count('list', 'classA');
    const prefix = options.prefix ?? '';
    const limit = Math.max(1, Math.min(options.limit ?? 1000, 1000));
    const after = [options.cursor, options.startAfter].filter((k): k is string => k !== undefined).sort().pop();
    const keys = this.#keys.get();
    const objects: MemoryR2Object[] = [];
    const delimitedPrefixes = new Set<string>();
    let i = this.#keys.from(after);
    let last: string | undefined;
    for (; i < keys.length && objects.length + delimitedPrefixes.size < limit; i++) {
      const key = keys[i]!;
      if (!key.startsWith(prefix)) {
        if (key > prefix) break; // sorted: no later key has the prefix
        continue;
      }
      last = key;
      if (options.delimiter) {
        const at = key.indexOf(options.delimiter, prefix.length);
        if (at >= 0) {
          const group = key.slice(0, at + options.delimiter.length);
          delimitedPrefixes.add(group);
          // Skip the rest of the group.
          while (i + 1 < keys.length && keys[i + 1]!.startsWith(group)) last = keys[++i]!;
          continue;
        }
      }
      const stored = this.#objects.get(key)!;
      const object = new MemoryR2Object(key, stored);
      // Without `include`, R2 leaves metadata out of a listing.
      if (!options.include?.includes('customMetadata')) (object as { customMetadata?: unknown }).customMetadata = undefined;
      if (!options.include?.includes('httpMetadata')) (object as { httpMetadata?: unknown }).httpMetadata = undefined;
      objects.push(object);
    }
    let more = false;
    for (let j = i; j < keys.length; j++) {
      if (keys[j]!.startsWith(prefix)) {
        more = true;
        break;
      }
      if (keys[j]! > prefix) break;
    }
    return { objects, truncated: more, ...(more && last !== undefined ? { cursor: last } : {}), delimitedPrefixes: [...delimitedPrefixes] };
  }

  // ---- for the bench (not part of R2's API; not counted)

  /**
   * Clones every key with a path segment equal to `from` under `to`. A clone shares its original's
   * record (bytes, etag: never mutated, a put replaces the record), so clones cost this double
   * little memory; equal content with an equal etag is what R2 does too (a single-part upload's
   * etag is its content's MD5).
   */
  copySession(from: string, to: string): number {
    const copied = copyRenamed(this.#objects, from, to);
    this.#keys.invalidate();
    return copied;
  }

  /** Every key with its size. */
  entries(): { key: string; size: number }[] {
    return this.#keys.get().map((key) => ({ key, size: this.#objects.get(key)!.bytes.length }));
  }

  dump(): R2Dump {
    return {
      kind: 'r2',
      objects: [...this.#objects].map(([key, s]) => ({
        key,
        b64: Buffer.from(s.bytes).toString('base64'),
        etag: s.etag,
        uploaded: s.uploaded.getTime(),
        ...(s.httpMetadata ? { httpMetadata: s.httpMetadata } : {}),
        ...(s.customMetadata ? { customMetadata: s.customMetadata } : {}),
      })),
    };
  }

  static fromDump(dump: R2Dump): MemoryR2 {
    const r2 = new MemoryR2();
    for (const o of dump.objects) {
      r2.#objects.set(o.key, {
        bytes: new Uint8Array(Buffer.from(o.b64, 'base64')),
        etag: o.etag,
        uploaded: new Date(o.uploaded),
        version: String(++versions),
        ...(o.httpMetadata ? { httpMetadata: o.httpMetadata } : {}),
        ...(o.customMetadata ? { customMetadata: o.customMetadata } : {}),
      });
    }
    return r2;
  }
}

export interface R2Dump {
  readonly kind: 'r2';
  readonly objects: readonly { key: string; b64: string; etag: string; uploaded: number; httpMetadata?: Record<string, unknown>; customMetadata?: Record<string, string> }[];
}

// ---- KV ---------------------------------------------------------------------------------------

interface StoredKv {
  readonly bytes: Uint8Array;
  readonly metadata?: unknown;
  readonly expiration?: number;
}

export interface KvOps {
  reads: number;
  writes: number;
  lists: number;
  deletes: number;
  byMethod: Record<string, number>;
  /** Bytes stored by the writes (value plus metadata as JSON). */
  bytesWritten: number;
  bytesRead: number;
}

const newKvOps = (): KvOps => ({ reads: 0, writes: 0, lists: 0, deletes: 0, byMethod: {}, bytesWritten: 0, bytesRead: 0 });

type KvType = 'text' | 'json' | 'arrayBuffer' | 'stream';

export class MemoryKV {
  readonly #values = new Map<string, StoredKv>();
  readonly #keys = new SortedKeys(this.#values);
  #ops = newKvOps();

  ops(): KvOps {
    return { ...this.#ops, byMethod: { ...this.#ops.byMethod } };
  }
  reset(): void {
    this.#ops = newKvOps();
  }
  #count(method: string, kind: 'reads' | 'writes' | 'lists' | 'deletes'): void {
    this.#ops[kind]++;
    this.#ops.byMethod[method] = (this.#ops.byMethod[method] ?? 0) + 1;
  }

  #decode(bytes: Uint8Array, type: KvType): unknown {
    this.#ops.bytesRead += bytes.length;
    switch (type) {
      case 'json':
        return JSON.parse(decoder.decode(bytes));
      case 'arrayBuffer':
        return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
      case 'stream':
        return streamOf(bytes);
      default:
        return decoder.decode(bytes);
    }
  }

  async get(key: string | readonly string[], options?: KvType | { type?: KvType; cacheTtl?: number }): Promise<unknown> {
    this.#count('get', 'reads');
    const type = (typeof options === 'string' ? options : options?.type) ?? 'text';
    // KV's bulk get (an array of keys) answers a Map.
    if (typeof key !== 'string') return new Map(key.map((k) => [k, this.#values.has(k) ? this.#decode(this.#values.get(k)!.bytes, type) : null]));
    const stored = this.#values.get(key);
    return stored ? this.#decode(stored.bytes, type) : null;
  }

  async getWithMetadata(key: string, options?: KvType | { type?: KvType; cacheTtl?: number }): Promise<{ value: unknown; metadata: unknown; cacheStatus: null }> {
    this.#count('getWithMetadata', 'reads');
    const type = (typeof options === 'string' ? options : options?.type) ?? 'text';
    const stored = this.#values.get(key);
    return { value: stored ? this.#decode(stored.bytes, type) : null, metadata: stored?.metadata ?? null, cacheStatus: null };
  }

  async put(key: string, value: unknown, options?: { metadata?: unknown; expiration?: number; expirationTtl?: number }): Promise<void> {
    this.#count('put', 'writes');
    const bytes = await toBytes(value);
    const expiration = options?.expiration ?? (options?.expirationTtl !== undefined ? Math.floor(Date.now() / 1000) + options.expirationTtl : undefined);
    if (!this.#values.has(key)) this.#keys.invalidate();
    this.#values.set(key, { bytes, ...(options?.metadata !== undefined ? { metadata: options.metadata } : {}), ...(expiration !== undefined ? { expiration } : {}) });
    this.#ops.bytesWritten += bytes.length + metadataBytes(options?.metadata);
  }

  async delete(key: string): Promise<void> {
    this.#count('delete', 'deletes');
    if (this.#values.delete(key)) this.#keys.invalidate();
  }

  async list(options: { prefix?: string; cursor?: string; limit?: number } = {}): Promise<{ keys: { name: string; expiration?: number; metadata?: unknown }[]; list_complete: boolean; cursor?: string }> {
    this.#count('list', 'lists');
    const prefix = options.prefix ?? '';
    const limit = Math.max(1, Math.min(options.limit ?? 1000, 1000));
    const keys = this.#keys.get();
    const out: { name: string; expiration?: number; metadata?: unknown }[] = [];
    let i = this.#keys.from(options.cursor || undefined);
    for (; i < keys.length && out.length < limit; i++) {
      const name = keys[i]!;
      if (!name.startsWith(prefix)) {
        if (name > prefix) break;
        continue;
      }
      const stored = this.#values.get(name)!;
      out.push({ name, ...(stored.expiration !== undefined ? { expiration: stored.expiration } : {}), ...(stored.metadata !== undefined ? { metadata: stored.metadata } : {}) });
    }
    let more = false;
    for (let j = i; j < keys.length; j++) {
      if (keys[j]!.startsWith(prefix)) {
        more = true;
        break;
      }
      if (keys[j]! > prefix) break;
    }
    return more ? { keys: out, list_complete: false, cursor: out[out.length - 1]!.name } : { keys: out, list_complete: true };
  }

  // ---- for the bench (not part of KV's API; not counted)

  /** Clones every key with a path segment equal to `from` under `to` (sharing the original's record: never mutated). */
  copySession(from: string, to: string): number {
    const copied = copyRenamed(this.#values, from, to);
    this.#keys.invalidate();
    return copied;
  }

  entries(): { key: string; size: number }[] {
    return this.#keys.get().map((key) => ({ key, size: this.#values.get(key)!.bytes.length }));
  }

  dump(): KvDump {
    return {
      kind: 'kv',
      values: [...this.#values].map(([key, s]) => ({
        key,
        b64: Buffer.from(s.bytes).toString('base64'),
        ...(s.metadata !== undefined ? { metadata: s.metadata } : {}),
        ...(s.expiration !== undefined ? { expiration: s.expiration } : {}),
      })),
    };
  }

  static fromDump(dump: KvDump): MemoryKV {
    const kv = new MemoryKV();
    for (const v of dump.values) {
      kv.#values.set(v.key, {
        bytes: new Uint8Array(Buffer.from(v.b64, 'base64')),
        ...(v.metadata !== undefined ? { metadata: v.metadata } : {}),
        ...(v.expiration !== undefined ? { expiration: v.expiration } : {}),
      });
    }
    return kv;
  }
}

export interface KvDump {
  readonly kind: 'kv';
  readonly values: readonly { key: string; b64: string; metadata?: unknown; expiration?: number }[];
}

export type StorageDump = R2Dump | KvDump;

/** A binding double back from its dump. */
export function fromDump(dump: StorageDump): MemoryR2 | MemoryKV {
  return dump.kind === 'r2' ? MemoryR2.fromDump(dump) : MemoryKV.fromDump(dump);
}
