/**
 * A file-set entry that keeps no bytes between refreshes. Its consumers parse an entry when its
 * version changes and keep what they parsed (the collector keeps the parsed value, the sync client
 * a hash), so the store holds, per entry, its name, version, mtime and size: never its content.
 *
 * The bytes read by a refresh are held until the next refresh starts (the consumers of that
 * reading use them). Asked for later — a reading whose refresh was abandoned (the app's store
 * timeout), or a sync resending an unchanged file — they are read again from disk, with the same
 * checks and caps as the sweep, and held until the next refresh. Those bytes may be newer than
 * `version`: the next refresh then shows the new version, and its consumers parse again.
 */
import type { FileSetEntryRead } from '../store.js';

/** Where an entry's bytes come from when they are asked for again. */
export interface EntrySource {
  /** The entry's current bytes, or undefined when they cannot be read now (gone, too large, ...). */
  load(entry: HeldEntry): Uint8Array | undefined;
  /** Called when an entry starts holding bytes, so they can be released at the next refresh. */
  holding(entry: HeldEntry): void;
}

export class HeldEntry implements FileSetEntryRead {
  readonly present = true;
  readonly name: string;
  readonly version: string;
  readonly mtimeMs: number | undefined;
  /** Bytes the file had when read: what it counts towards its set's cap. */
  readonly size: number;
  readonly #source: EntrySource;
  #bytes: Uint8Array | undefined;

  constructor(name: string, version: string, mtimeMs: number | undefined, bytes: Uint8Array, source: EntrySource) {
    this.name = name;
    this.version = version;
    this.mtimeMs = mtimeMs;
    this.size = bytes.length;
    this.#source = source;
    this.#hold(bytes);
  }

  /** The content: held since this refresh, or read again now. */
  get bytes(): Uint8Array | undefined {
    if (this.#bytes === undefined) {
      const bytes = this.#source.load(this);
      if (bytes !== undefined) this.#hold(bytes);
    }
    return this.#bytes;
  }

  /** Bytes held now (0 once released). */
  get heldBytes(): number {
    return this.#bytes?.buffer.byteLength ?? 0;
  }

  /** Forget the bytes: the next refresh has started. */
  release(): void {
    this.#bytes = undefined;
  }

  #hold(bytes: Uint8Array): void {
    this.#bytes = bytes;
    this.#source.holding(this);
  }
}

/**
 * What one file set may hold, per store (so per project in a fleet). Past a cap the set is reported
 * bad (`FileSetRead.error`: `loki_source_ok 0`, `/health`, one log line) and holds what it has: the
 * files beyond are left out, unread.
 */
export interface FileSetCaps {
  /** One entry's file: a larger one is a bad entry (`too large`), never read. */
  readonly entryBytes: number;
  /** Entries: the set holds the first this many its directory lists. */
  readonly entries: number;
  /** The entries' files together: a file that would take the set past it is left out. */
  readonly bytes: number;
}

const MIB = 1024 * 1024;

/**
 * The caps. Real entries are small: an efficiency file is about 300 bytes, a receipt about 1 KB (a
 * few KB with a signature or attestation), a registry entry 150 bytes, a session's `loki.pid` a few
 * bytes. 1 MiB per entry is a thousand times the largest; 20,000 entries is twice the 10,000 the
 * benchmarks measure (efficiency files are removed at each run start; a receipt is written per run);
 * 32 MiB is 20,000 receipts of 1.6 KB, or a hundred times a 1,000-iteration run's efficiency files.
 */
export const FILE_SET_CAPS: FileSetCaps = { entryBytes: MIB, entries: 20_000, bytes: 32 * MIB };

const size = (bytes: number) => (bytes % MIB === 0 ? `${bytes / MIB} MiB` : `${bytes} bytes`);

/** The set's problem when it is at a cap, else undefined. */
export function capProblems(caps: FileSetCaps, overCount: boolean, overBytes: boolean): string | undefined {
  if (overCount) return `more than ${caps.entries} entries (the cap per set): the rest are left out, unread`;
  if (overBytes) return `more than ${size(caps.bytes)} of files (the cap per set): the rest are left out, unread`;
  return undefined;
}
