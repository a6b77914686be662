/**
 * `events.jsonl` on disk, fed incrementally to the `EventsScanner`: a stat (all a refresh costs when
 * nothing was written), a 64-byte read to recognise the file, and the appended bytes only. Rotation (`events.jsonl.1`), truncation and a
 * rewrite in place (the same size with a new mtime; an append always grows the file) start the
 * line count over; the session start is remembered.
 */
import type { BigIntStats } from 'node:fs';
import { lstat, open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { EventsScanner, type SequenceSearch } from '../../events.js';
import { EVENTS_FILE, type EventsSummary } from '../store.js';
import { isMissing, lstatIfThere, mtimeMsOf, NOT_REGULAR, OPEN_FLAGS, reason, SYMLINK } from './read-file.js';

const EVENTS_CHUNK_BYTES = 1024 * 1024;
/** The read buffer a store keeps between refreshes (appends between two scrapes are small). */
const KEPT_BUFFER_BYTES = 64 * 1024;
const FINGERPRINT_BYTES = 64;

/** Native sequence search for the Buffers this store feeds the scanner. */
const bufferSearch: SequenceSearch = (haystack, needle, from) => (haystack as Buffer).indexOf(needle, from);

interface LiveFile {
  readonly dev: bigint;
  readonly ino: bigint;
  offset: number;
  fingerprint: Uint8Array;
  /** Size and mtime at the last read: the same size with a new mtime is a rewrite, not an append. */
  seenSize: number;
  seenMtimeNs: bigint;
  /** The inode's change time at the last read: any write, rename or chmod moves it. */
  seenCtimeNs: bigint;
}

export class EventsTracker {
  readonly #path: string;
  readonly #rotatedPath: string;
  readonly #counters: { eventBytesRead: number };
  readonly #scanner = new EventsScanner({ search: bufferSearch });
  #file: LiveFile | undefined;
  #buffer: Buffer | undefined;
  #cold = true;

  constructor(dir: string, counters: { eventBytesRead: number }) {
    this.#path = join(dir, EVENTS_FILE);
    this.#rotatedPath = `${this.#path}.1`;
    this.#counters = counters;
  }

  async read(): Promise<EventsSummary> {
    const result = await this.#readLive();
    if (this.#cold) {
      this.#cold = false;
      if (!this.#scanner.sawSessionStart) await this.#adoptRotated();
    }
    return { ...result, ...this.#scanner.summary() };
  }

  async #readLive(): Promise<Omit<EventsSummary, 'lines'>> {
    let st: BigIntStats | undefined;
    try {
      st = lstatIfThere(this.#path);
    } catch (error) {
      return { present: true, error: reason(error) };
    }
    if (st === undefined) {
      this.#forget();
      return { present: false };
    }
    const mtimeMs = mtimeMsOf(st);
    if (st.isSymbolicLink()) return this.#forget(), { present: true, mtimeMs, error: SYMLINK };
    if (!st.isFile()) return this.#forget(), { present: true, mtimeMs, error: NOT_REGULAR };
    // Nothing written since the last read, which took the file to its end: the same inode with the
    // same size, mtime and ctime (a rewrite, a rename over it or a truncation moves ctime), so the
    // open, fstat, fingerprint read and close are not needed. Most refreshes end here.
    const file = this.#file;
    if (file !== undefined && file.dev === st.dev && file.ino === st.ino && file.offset === Number(st.size) && file.seenSize === Number(st.size) && file.seenMtimeNs === st.mtimeNs && file.seenCtimeNs === st.ctimeNs) {
      return { present: true, mtimeMs };
    }
    let handle: FileHandle | undefined;
    try {
      handle = await open(this.#path, OPEN_FLAGS);
      const fst = await handle.stat({ bigint: true });
      if (!fst.isFile()) return this.#forget(), { present: true, mtimeMs, error: NOT_REGULAR };
      const size = Number(fst.size);
      await this.#catchUp(handle, fst, size);
      return { present: true, mtimeMs: mtimeMsOf(fst) };
    } catch (error) {
      if (isMissing(error)) {
        this.#forget();
        return { present: false };
      }
      return { present: true, mtimeMs, error: reason(error) };
    } finally {
      await handle?.close().catch(() => undefined);
    }
  }

  /** Feeds the scanner what is new in the open file, starting over if it is another file now. */
  async #catchUp(handle: FileHandle, { dev, ino, mtimeNs, ctimeNs }: BigIntStats, size: number): Promise<void> {
    const head = new Uint8Array(Math.min(FINGERPRINT_BYTES, size));
    if (head.length > 0) {
      let got = 0;
      while (got < head.length) {
        const { bytesRead } = await handle.read(head, got, head.length - got, got);
        if (bytesRead === 0) break;
        got += bytesRead;
      }
      if (got < head.length) size = got; // shrank while we looked
    }
    let file = this.#file;
    const same =
      file !== undefined &&
      file.dev === dev &&
      file.ino === ino &&
      size >= file.offset &&
      (size !== file.seenSize || mtimeNs === file.seenMtimeNs) &&
      file.fingerprint.every((byte, i) => head[i] === byte);
    if (!same) {
      if (file !== undefined) this.#scanner.reset();
      file = { dev, ino, offset: 0, fingerprint: new Uint8Array(0), seenSize: -1, seenMtimeNs: 0n, seenCtimeNs: 0n };
      this.#file = file;
    }
    if (!file) return;
    file.seenSize = size;
    file.seenMtimeNs = mtimeNs;
    file.seenCtimeNs = ctimeNs;
    try {
      // The offset moves with every chunk fed, so a read error part-way never feeds a chunk twice.
      await this.#feed(handle, file.offset, size, this.#scanner, (pos) => (file.offset = pos));
    } finally {
      const known = Math.min(file.offset, FINGERPRINT_BYTES);
      if (file.fingerprint.length < known) file.fingerprint = head.slice(0, known);
    }
  }

  /** Feeds [from, to) to `scanner` in chunks, reporting the position after each chunk fed. */
  async #feed(handle: FileHandle, from: number, to: number, scanner: EventsScanner, fed: (pos: number) => void = () => undefined): Promise<void> {
    // A small buffer is kept for the usual appends; a large read (a cold start) gets a transient
    // one, so a fleet of idle projects does not hold a megabyte each.
    const buffer = to - from <= KEPT_BUFFER_BYTES ? (this.#buffer ??= Buffer.allocUnsafe(KEPT_BUFFER_BYTES)) : Buffer.allocUnsafe(EVENTS_CHUNK_BYTES);
    let pos = from;
    while (pos < to) {
      const { bytesRead } = await handle.read(buffer, 0, Math.min(buffer.length, to - pos), pos);
      if (bytesRead === 0) break;
      scanner.feed(buffer.subarray(0, bytesRead));
      pos += bytesRead;
      fed(pos);
      this.#counters.eventBytesRead += bytesRead;
    }
  }

  /** Cold start without a `session_start` in the live file: take it from `events.jsonl.1`. */
  async #adoptRotated(): Promise<void> {
    let handle: FileHandle | undefined;
    try {
      const st = await lstat(this.#rotatedPath, { bigint: true });
      if (!st.isFile()) return;
      handle = await open(this.#rotatedPath, OPEN_FLAGS);
      const fst = await handle.stat({ bigint: true });
      if (!fst.isFile()) return;
      const scanner = new EventsScanner({ search: bufferSearch });
      await this.#feed(handle, 0, Number(fst.size), scanner);
      scanner.feed(Buffer.from('\n')); // the rotated file is complete
      this.#scanner.adoptEarlier(scanner.summary());
    } catch {
      // An unreadable backup just leaves the session start unknown.
    } finally {
      await handle?.close().catch(() => undefined);
    }
  }

  #forget(): void {
    if (this.#file !== undefined) this.#scanner.reset();
    this.#file = undefined;
  }

  /** The state directory is unreadable: lines 0, the session start remembered. */
  unavailable(): EventsSummary {
    this.#forget();
    return { present: false, ...this.#scanner.summary() };
  }
}
