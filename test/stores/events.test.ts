/**
 * `EventsTracker` (src/stores/fs/events.ts), the fs store's reader of `events.jsonl`: what each
 * refresh reads (the 64-byte fingerprint, then only the bytes not fed yet, in 1 MiB chunks or
 * through the kept 64 KiB buffer), `events.jsonl.1` read once at a cold start, special files never
 * opened, descriptors closed, and a file that changes under the reads (a short read, a shrink or
 * an append between the stat and a read, a read error part-way).
 *
 * Real files in temp directories. The changes between the stat and a read are staged in-process,
 * deterministically, through the `FileHandle` the tracker reads with: its prototype's `read` (and
 * `stat`) are wrapped for one test, to change the file just before the real read, or to answer a
 * short read as a file system may. Opens are counted by wrapping node:fs/promises `open` (published
 * to the tracker's import with `syncBuiltinESMExports`).
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, readlinkSync, realpathSync } from 'node:fs';
import fsPromises, { appendFile, chmod, open, truncate, utimes, writeFile, type FileHandle } from 'node:fs/promises';
import { syncBuiltinESMExports } from 'node:module';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { EventsTracker } from '../../src/stores/fs/events.js';
import { cleanTrees, tempDir } from '../support/loki-tree.js';

const T1 = '2026-02-14T08:00:00Z';
const T2 = '2026-02-14T09:00:00Z';
const sessionLine = (ts: string) => `{"timestamp":"${ts}","type":"session_start","data":{"provider":"claude"}}\n`;
const iterLine = (n: number) => `{"timestamp":"${T2}","type":"iteration_start","data":{"iteration":${n}}}\n`;
const otherLine = '{"timestamp":"2026-02-14T09:30:00Z","type":"iteration_complete","data":{"iteration":1}}\n';
/** Lines `{"n":i}` of 8 bytes each, for i in [from, to) (single digits). */
const notes = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => `{"n":${from + i}}\n`).join('');

type ReadArgs = [buffer: Uint8Array, offset: number, length: number, position: number];
type ReadResult = { bytesRead: number; buffer: Uint8Array };
type Read = (...args: ReadArgs) => Promise<ReadResult>;
type Stat = (options?: { bigint?: boolean }) => Promise<{ dev: bigint }>;

const handleProto = await (async () => {
  const probe = await open(fileURLToPath(import.meta.url), 'r');
  await probe.close();
  return Object.getPrototypeOf(probe) as { read: Read; stat: Stat };
})();
const realRead = handleProto.read;
const realStat = handleProto.stat;

const realOpen = fsPromises.open;
const servers: Server[] = [];

afterEach(async () => {
  handleProto.read = realRead;
  handleProto.stat = realStat;
  fsPromises.open = realOpen;
  syncBuiltinESMExports();
  for (const server of servers.splice(0)) await new Promise((resolve) => server.close(resolve));
  await cleanTrees();
});

/** A Unix socket bound at `path` (a special file no open() accepts: ENXIO), closed after the test. */
async function socketAt(path: string): Promise<void> {
  const server = createServer();
  servers.push(server);
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(path, resolve));
}

/** Counts the opens (node:fs/promises `open`, as the tracker calls it) of each path. */
function countOpens(): Map<string, number> {
  const opens = new Map<string, number>();
  fsPromises.open = ((path: Parameters<typeof realOpen>[0], ...rest: unknown[]) => {
    opens.set(String(path), (opens.get(String(path)) ?? 0) + 1);
    return (realOpen as (...a: unknown[]) => ReturnType<typeof realOpen>)(path, ...rest);
  }) as typeof realOpen;
  syncBuiltinESMExports();
  return opens;
}

/**
 * Routes every `FileHandle.read` that asks for bytes through `hook` (given the call's number from
 * 1, its arguments and the real read) until the returned function is called. A read of 0 bytes
 * is no I/O (Node answers it without a system call): it is passed through, neither hooked nor
 * numbered. A 200th call fails: a read loop that never ends shows as a read error, not as a hung test.
 */
function interceptReads(hook: (n: number, args: ReadArgs, real: Read) => Promise<ReadResult>): () => void {
  let n = 0;
  handleProto.read = function (this: FileHandle, ...args: ReadArgs) {
    if (args[2] === 0) return realRead.apply(this, args);
    if (++n >= 200) return Promise.reject(new Error('read loop'));
    return hook(n, args, (...a) => realRead.apply(this, a));
  };
  return () => void (handleProto.read = realRead);
}

/** Counts the bytes every `FileHandle.read` returns. */
function countReadBytes(): { bytes: number } {
  const count = { bytes: 0 };
  interceptReads(async (_, args, real) => {
    const result = await real(...args);
    count.bytes += result.bytesRead;
    return result;
  });
  return count;
}

async function tracked(live: string, rotated?: string) {
  const dir = await tempDir();
  const path = join(dir, 'events.jsonl');
  await writeFile(path, live);
  if (rotated !== undefined) await writeFile(`${path}.1`, rotated);
  const counters = { eventBytesRead: 0 };
  return { dir, path, counters, tracker: new EventsTracker(dir, counters) };
}

describe('a cold start without a session_start takes it from events.jsonl.1, reading it once', () => {
  it('read at the first refresh only, not at the next ones', async () => {
    const rotated = sessionLine(T1) + iterLine(2);
    const live = otherLine + otherLine;
    const { path, counters, tracker } = await tracked(live, rotated);
    expect(await tracker.read()).toMatchObject({ present: true, lines: 2, sessionStartMs: Date.parse(T1), iteration: 2 });
    expect(counters.eventBytesRead).toBe(live.length + rotated.length);
    expect(await tracker.read()).toMatchObject({ lines: 2, sessionStartMs: Date.parse(T1), iteration: 2 });
    expect(counters.eventBytesRead).toBe(live.length + rotated.length);
    await appendFile(path, otherLine);
    expect(await tracker.read()).toMatchObject({ lines: 3, sessionStartMs: Date.parse(T1), iteration: 2 });
    expect(counters.eventBytesRead).toBe(live.length + rotated.length + otherLine.length);
  });

  it('not read at all when the live file has its own session_start', async () => {
    const live = sessionLine(T2) + otherLine;
    const { counters, tracker } = await tracked(live, sessionLine(T1) + iterLine(2));
    const events = await tracker.read();
    expect(events).toMatchObject({ present: true, lines: 2, sessionStartMs: Date.parse(T2) });
    expect(events.iteration).toBeUndefined();
    expect(counters.eventBytesRead).toBe(live.length);
  });
});

describe.runIf(process.platform === 'linux')('descriptors', () => {
  /** The descriptors of this process open on `path` (Linux: /proc/self/fd). */
  const openOn = (path: string) =>
    readdirSync('/proc/self/fd').filter((fd) => {
      try {
        return readlinkSync(`/proc/self/fd/${fd}`) === realpathSync(path);
      } catch {
        return false; // the directory's own descriptor, gone by now
      }
    }).length;

  it('events.jsonl and events.jsonl.1 are closed after every refresh', async () => {
    const { path, tracker } = await tracked(otherLine, sessionLine(T1));
    for (let i = 0; i < 5; i++) {
      await appendFile(path, otherLine);
      expect((await tracker.read()).lines).toBe(i + 2);
    }
    expect(openOn(path)).toBe(0);
    expect(openOn(`${path}.1`)).toBe(0);
  });
});

describe('what a refresh reads', () => {
  it('the first 64 bytes to recognise the file, then only the bytes not read yet; nothing, not even an open, while nothing is written', async () => {
    const text = notes(0, 10).repeat(12); // 960 bytes
    const { path, counters, tracker } = await tracked(text);
    const read = countReadBytes();
    const opens = countOpens();
    expect((await tracker.read()).lines).toBe(120);
    expect(read.bytes).toBe(64 + text.length);
    expect((await tracker.read()).lines).toBe(120);
    expect((await tracker.read()).lines).toBe(120);
    expect(read.bytes).toBe(64 + text.length);
    expect(opens.get(path)).toBe(1);
    await appendFile(path, notes(0, 2));
    expect((await tracker.read()).lines).toBe(122);
    expect(read.bytes).toBe(64 + text.length + 64 + 16);
    expect(opens.get(path)).toBe(2);
    expect(counters.eventBytesRead).toBe(text.length + 16);
  });

  it('opened and recognised again after anything that moves its mtime or ctime, though the size stays: a rewrite in place, a touch, a chmod', async () => {
    const text = notes(0, 10).repeat(2);
    const { path, tracker } = await tracked(text);
    const opens = countOpens();
    expect((await tracker.read()).lines).toBe(20);
    // Rewritten in place, the same size and a new mtime: another file's lines, counted from the start.
    await writeFile(path, notes(0, 5).repeat(4));
    await utimes(path, new Date(), new Date(Date.now() + 5_000));
    expect((await tracker.read()).lines).toBe(20);
    expect(opens.get(path)).toBe(2);
    await utimes(path, new Date(), new Date(Date.now() + 10_000)); // touched
    expect((await tracker.read()).lines).toBe(20);
    expect(opens.get(path)).toBe(3);
    await chmod(path, 0o600); // ctime only
    expect((await tracker.read()).lines).toBe(20);
    expect(opens.get(path)).toBe(4);
    expect((await tracker.read()).lines).toBe(20);
    expect(opens.get(path)).toBe(4);
  });

  it('opened again, though nothing was written, after a refresh that stopped short of the end (a read error)', async () => {
    const { path, counters, tracker } = await tracked(notes(0, 10));
    const opens = countOpens();
    const restore = interceptReads(async (n, [buffer, offset, length, position], real) => {
      if (n === 3) throw Object.assign(new Error('i/o error'), { code: 'EIO' });
      return real(buffer, offset, n === 2 ? 10 : length, position); // the first chunk: 10 bytes
    });
    expect((await tracker.read()).error).toBe('EIO');
    restore();
    expect(await tracker.read()).toMatchObject({ present: true, lines: 10 });
    expect(opens.get(path)).toBe(2);
    expect(counters.eventBytesRead).toBe(80);
  });
});

describe('reads in chunks: 1 MiB for a large read (a cold start), the kept 64 KiB buffer for an append', () => {
  it('2.5 MiB at a cold start: the fingerprint and three chunk reads; a 64 KiB append: one more (reads of 0 bytes not counted)', async () => {
    const big = notes(0, 10).repeat(32_768); // 2.5 MiB
    const { path, tracker } = await tracked(big);
    let calls = 0;
    interceptReads((_, args, real) => (calls++, real(...args)));
    expect((await tracker.read()).lines).toBe(327_680);
    expect(calls).toBe(1 + 3);
    await appendFile(path, notes(0, 8).repeat(1024)); // 64 KiB
    expect((await tracker.read()).lines).toBe(327_680 + 8192);
    expect(calls).toBe(1 + 3 + 1 + 1);
  });
});

describe('special files: refused as not regular files, never opened', () => {
  it('a Unix socket as events.jsonl: "not a regular file", like a FIFO or a directory', async () => {
    const { path, tracker } = await tracked('');
    await fsPromises.rm(path);
    await socketAt(path);
    const opens = countOpens();
    expect(await tracker.read()).toMatchObject({ present: true, lines: 0, error: 'not a regular file' });
    expect(opens.get(path)).toBeUndefined();
  });

  it('a socket or a FIFO as events.jsonl.1 is not opened (opening a FIFO would release a writer waiting on it); nothing adopted', async () => {
    const { path, tracker } = await tracked(otherLine);
    const rotated = `${path}.1`;
    await socketAt(rotated);
    const opens = countOpens();
    const events = await tracker.read();
    expect(events).toMatchObject({ present: true, lines: 1 });
    expect(events.sessionStartMs).toBeUndefined();
    expect(opens.get(rotated)).toBeUndefined();
    expect(opens.get(path)).toBe(1);
    const other = await tracked(otherLine);
    if (spawnSync('mkfifo', [`${other.path}.1`]).status !== 0) return; // no mkfifo here
    expect((await other.tracker.read()).lines).toBe(1);
    expect(opens.get(`${other.path}.1`)).toBeUndefined();
  });
});

describe('a file changing under the reads', () => {
  it('a short read (a file system answering part of a read): the rest is asked for, every byte read once', async () => {
    const text = notes(0, 10); // 80 bytes
    const { counters, tracker } = await tracked(text);
    // The first read (the fingerprint's) returns 16 bytes of the 64 asked for.
    interceptReads((n, [buffer, offset, length, position], real) => real(buffer, offset, n === 1 ? Math.min(length, 16) : length, position));
    const events = await tracker.read();
    expect(events.error).toBeUndefined();
    expect(events.lines).toBe(10);
    expect(counters.eventBytesRead).toBe(80);
  });

  it('shrunk between the stat and the fingerprint: the bytes there are read; grown back, only the new ones', async () => {
    const { path, counters, tracker } = await tracked(notes(0, 10)); // 80 bytes as stat'ed
    const restore = interceptReads(async (n, args, real) => {
      if (n === 1) await truncate(path, 24); // three lines left
      return real(...args);
    });
    const shrunk = await tracker.read();
    restore();
    expect(shrunk.error).toBeUndefined();
    expect(shrunk).toMatchObject({ present: true, lines: 3 });
    expect(counters.eventBytesRead).toBe(24);
    // Appended back to the size first stat'ed, with a new mtime: an append, not a rewrite.
    await appendFile(path, notes(3, 10));
    await utimes(path, new Date('2030-01-01T00:00:00Z'), new Date('2030-01-01T00:00:00Z'));
    expect((await tracker.read()).lines).toBe(10);
    expect(counters.eventBytesRead).toBe(80);
  });

  it('shrunk between the fingerprint and the first chunk: the bytes there, no endless reading at the end', async () => {
    const { path, counters, tracker } = await tracked(notes(0, 10));
    interceptReads(async (n, args, real) => {
      if (n === 2) await truncate(path, 40);
      return real(...args);
    });
    const events = await tracker.read();
    expect(events.error).toBeUndefined();
    expect(events.lines).toBe(5);
    expect(counters.eventBytesRead).toBe(40);
  });

  it('appended to between the stat and the read: this refresh stops at the size it stat\'ed, the next reads the rest', async () => {
    const { path, counters, tracker } = await tracked(notes(0, 5)); // 40 bytes
    expect((await tracker.read()).lines).toBe(5);
    await appendFile(path, notes(5, 7)); // stat'ed at 56
    const restore = interceptReads(async (n, args, real) => {
      if (n === 2) await appendFile(path, notes(7, 10)); // just before the chunk read
      return real(...args);
    });
    expect((await tracker.read()).lines).toBe(7);
    restore();
    expect(counters.eventBytesRead).toBe(56);
    expect((await tracker.read()).lines).toBe(10);
    expect(counters.eventBytesRead).toBe(80);
  });

  it('a read error after 10 bytes: the next refresh goes on from there, though bytes 10-63 were rewritten since', async () => {
    const { path, counters, tracker } = await tracked(notes(0, 10));
    const restore = interceptReads(async (n, [buffer, offset, length, position], real) => {
      if (n === 3) throw Object.assign(new Error('i/o error'), { code: 'EIO' });
      return real(buffer, offset, n === 2 ? 10 : length, position); // the first chunk: 10 bytes
    });
    const failed = await tracker.read();
    restore();
    expect(failed).toMatchObject({ present: true, lines: 1 });
    expect(failed.error).toBe('EIO');
    expect(counters.eventBytesRead).toBe(10);
    // Rewritten in place: the 10 bytes read are the same, the rest of the first 64 are not.
    const rewritten = notes(0, 1) + '{"m":1}\n{"m":2}\n' + notes(3, 10) + notes(0, 3);
    expect(rewritten.slice(0, 10)).toBe(notes(0, 10).slice(0, 10));
    await writeFile(path, rewritten);
    expect(await tracker.read()).toMatchObject({ present: true, lines: 13 });
    expect(counters.eventBytesRead).toBe(rewritten.length); // each byte once
  });

  it('the same inode number on another device (another file system mounted there) is another file', async () => {
    const { path, counters, tracker } = await tracked(notes(0, 10));
    expect((await tracker.read()).lines).toBe(10);
    // The same first 64 bytes, then one 16-byte line where there were two, then two more.
    await writeFile(path, notes(0, 8) + `${'x'.repeat(15)}\n` + notes(0, 2));
    handleProto.stat = async function (this: FileHandle, ...args) {
      const st = await realStat.apply(this, args);
      st.dev += 1n;
      return st;
    };
    expect((await tracker.read()).lines).toBe(11);
    expect(counters.eventBytesRead).toBe(80 + 96);
  });
});
