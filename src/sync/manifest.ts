/**
 * What a format-3 session holds, for the sync client to send only what differs: the documents and
 * each set's used buckets in one small answer, then the files a page of buckets at a time (each
 * page a bounded number of reads, so no request nears Cloudflare's per-request limits).
 */
import type { ObjectStore } from '../stores/object-store.js';
import type { FileSetName } from '../stores/store.js';
import { manifestEntry } from './protocol.js';
import { beatKey, BeatSchema, bucketKey, headKey, ManifestBucketSchema, HeadSchema, parseStored, settleBucket, usedBuckets, type Bucket } from './shards.js';

/** Buckets read per manifest page: at 10,000 files per set (~2 KB a bucket) a page stays under 2 ms of CPU. */
export const MANIFEST_PAGE_BUCKETS = 16;

export interface ManifestHead {
  readonly session: string;
  readonly layout: 3;
  /** The beat's time: the client compares it with `previousSyncedAtMs` to see the state move under it. */
  readonly syncedAtMs: number | null;
  readonly documents: Readonly<Record<string, string>>;
  /** Per set, the buckets that hold files (page through them with `manifestPage`). */
  readonly sets: Readonly<Partial<Record<FileSetName, { readonly buckets: readonly number[] }>>>;
}

export async function manifestHead(store: ObjectStore, session: string): Promise<ManifestHead> {
  const [beat, head] = await Promise.all([store.get(beatKey(session)), store.get(headKey(session))]);
  const parsedBeat = parseStored(BeatSchema, beat);
  const parsedHead = parseStored(HeadSchema, head);
  const documents = Object.fromEntries(Object.entries(parsedHead?.docs ?? {}).map(([name, d]) => [name, manifestEntry({ hash: d.h, mtimeMs: d.m })]));
  const sets = Object.fromEntries(Object.entries(parsedHead?.sets ?? {}).map(([name, set]) => [name, { buckets: usedBuckets(set) }]));
  // A head that cannot be read holds nothing the client can build on: it sends everything.
  return { session, layout: 3, syncedAtMs: parsedHead ? (parsedBeat?.syncedAtMs ?? null) : null, documents, sets };
}

/** The files of up to MANIFEST_PAGE_BUCKETS used buckets from bucket `from`; `next` where to go on. */
export async function manifestPage(
  store: ObjectStore,
  session: string,
  set: FileSetName,
  from: number,
): Promise<{ readonly files: Readonly<Record<string, string>>; readonly next: number | null }> {
  const head = parseStored(HeadSchema, await store.get(headKey(session)));
  const setHead = head?.sets[set];
  if (!head || !setHead) return { files: {}, next: null };
  const buckets = usedBuckets(setHead).filter((b) => b >= from);
  const page = buckets.slice(0, MANIFEST_PAGE_BUCKETS);
  const loaded = await Promise.all(page.map((b) => store.get(bucketKey(session, set, setHead.epoch, b))));
  const files: Record<string, string> = {};
  for (const object of loaded) {
    const bucket = parseStored(ManifestBucketSchema, object) as Bucket | undefined;
    if (!bucket) continue;
    for (const [name, record] of Object.entries(settleBucket(bucket, head).files)) files[name] = manifestEntry({ hash: record.h, mtimeMs: record.m });
  }
  return { files, next: buckets.length > page.length ? buckets[page.length]! : null };
}
