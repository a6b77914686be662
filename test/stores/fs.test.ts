import { spawn, spawnSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { EventEmitter } from 'node:events';
import { closeSync, existsSync, openSync, renameSync, symlinkSync, type watch } from 'node:fs';
import { appendFile, mkdir, readFile, rename, rm, stat, symlink, truncate, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { isProcessAlive, type FsStateStore } from '../../src/stores/fs.js';
import { inHostPidNamespace } from '../../src/stores/fs/processes.js';
import { OpenedPathCheck, openHooks, SWAPPED, SYMLINK } from '../../src/stores/fs/read-file.js';
import { DOCUMENTS, type StateReading } from '../../src/stores/store.js';
import { deadPid, tempDir, treeDigest } from '../support/loki-tree.js';
import { emptyLokiDir, storesClosedAfterEach } from '../support/fs-stores.js';

const open = storesClosedAfterEach();

const lokiDir = () => emptyLokiDir('metrics/efficiency', 'state');

const text = (bytes: Uint8Array | undefined) => (bytes ? new TextDecoder().decode(bytes) : undefined);
const T1 = '2026-02-14T08:00:00Z';
const T2 = '2026-02-14T09:00:00Z';
const sessionLine = (ts: string) => `{"timestamp":"${ts}","type":"session_start","data":{"provider":"claude"}}\n`;
const iterLine = (n: number | string) => `{"timestamp":"${T2}","type":"iteration_start","data":{"iteration":${JSON.stringify(n)}}}\n`;
const otherLine = '{"timestamp":"2026-02-14T09:30:00Z","type":"iteration_complete","data":{"iteration":1}}\n';

/** Polls `read()` until `check` passes (inotify delivers events asynchronously). */
async function eventually(store: FsStateStore, check: (r: StateReading) => boolean, ms = 1500): Promise<StateReading> {
  const until = Date.now() + ms;
  for (;;) {
    const reading = await store.read();
    if (check(reading) || Date.now() > until) return reading;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const names = (r: StateReading) => r.efficiency.files.map((f) => f.name);
const effText = (r: StateReading, name: string) => text(r.efficiency.files.find((f) => f.name === name)?.bytes);

describe('the state directory', () => {
  it('reports a missing directory, and recovers when it appears', async () => {
    const dir = join(await tempDir(), '.loki');
    const store = open(dir);
    const r = await store.read();
    expect(r.available).toBe(false);
    expect(r.problem).toBe(`missing`);
    for (const name of DOCUMENTS) expect(r.documents[name]).toEqual({ present: false, version: '' });
    expect(r.efficiency).toEqual({ present: false, files: [] });
    expect(r.events).toEqual({ present: false, lines: 0 });
    await mkdir(dir);
    await writeFile(join(dir, 'loki.pid'), '123\n');
    const again = await store.read();
    expect(again.available).toBe(true);
    expect(text(again.documents['loki.pid'].bytes)).toBe('123\n');
  });

  it('reports a file where the directory should be', async () => {
    const path = join(await tempDir(), '.loki');
    await writeFile(path, 'not a dir');
    const r = await open(path).read();
    expect(r.available).toBe(false);
    expect(r.problem).toBe('not a directory');
  });
});

describe('documents', () => {
  it('reads documents with a version that changes only when the file does', async () => {
    const dir = await lokiDir();
    await writeFile(join(dir, 'dashboard-state.json'), '{"mode":"autonomous"}');
    await writeFile(join(dir, 'PAUSE'), '');
    const store = open(dir);
    const first = await store.read();
    const doc = first.documents['dashboard-state.json'];
    expect(doc.present).toBe(true);
    expect(text(doc.bytes)).toBe('{"mode":"autonomous"}');
    expect(doc.mtimeMs).toBeGreaterThan(Date.now() - 60_000);
    expect(doc.version).not.toBe('');
    expect(first.documents.PAUSE).toMatchObject({ present: true });
    expect(first.documents.STOP).toEqual({ present: false, version: '' });
    const reads = store.counters.documentReads;

    const second = await store.read();
    expect(second.documents['dashboard-state.json'].version).toBe(doc.version);
    expect(store.counters.documentReads).toBe(reads); // nothing re-read

    await writeFile(join(dir, 'dashboard-state.json'), '{"mode":"paused"}'); // same size, in place
    const third = await store.read();
    expect(third.documents['dashboard-state.json'].version).not.toBe(doc.version);
    expect(text(third.documents['dashboard-state.json'].bytes)).toBe('{"mode":"paused"}');
    expect(store.counters.documentReads).toBe(reads + 1);

    await rm(join(dir, 'dashboard-state.json'));
    expect((await store.read()).documents['dashboard-state.json']).toEqual({ present: false, version: '' });
  });

  it('does not follow symbolic links, and rejects directories and oversized files', async () => {
    const dir = await lokiDir();
    const outside = join(await tempDir(), 'secret.json');
    await writeFile(outside, '{"secret":true}');
    await symlink(outside, join(dir, 'dashboard-state.json'));
    await mkdir(join(dir, 'loki.pid'));
    await writeFile(join(dir, 'pricing.json'), 'x'.repeat(2000));
    await writeFile(join(dir, 'metrics/budget.json'), 'x'.repeat(1000));
    const r = await open(dir, { maxFileBytes: 1000 }).read();
    expect(r.documents['dashboard-state.json']).toMatchObject({ present: true, error: 'is a symbolic link (not followed)' });
    expect(r.documents['dashboard-state.json'].bytes).toBeUndefined();
    expect(r.documents['loki.pid']).toMatchObject({ present: true, error: 'not a regular file' });
    expect(r.documents['pricing.json']).toMatchObject({ present: true, error: 'too large (2000 bytes)' });
    expect(text(r.documents['metrics/budget.json'].bytes)).toBe('x'.repeat(1000));
  });
});

describe('events.jsonl', () => {
  it('reads only the appended bytes on each refresh', async () => {
    const dir = await lokiDir();
    const path = join(dir, 'events.jsonl');
    const head = sessionLine(T1) + iterLine(1) + otherLine;
    await writeFile(path, head);
    const store = open(dir);
    const first = await store.read();
    expect(first.events).toMatchObject({ present: true, lines: 3, sessionStartMs: Date.parse(T1), iteration: 1 });
    expect(store.counters.eventBytesRead).toBe(head.length);

    await store.read();
    expect(store.counters.eventBytesRead).toBe(head.length); // unchanged: nothing read

    await appendFile(path, iterLine('2'));
    const second = await store.read();
    expect(second.events).toMatchObject({ lines: 4, iteration: 2 });
    expect(store.counters.eventBytesRead).toBe(head.length + iterLine('2').length);
  });

  it('counts a partial last line once it is completed', async () => {
    const dir = await lokiDir();
    const path = join(dir, 'events.jsonl');
    const line = iterLine(5);
    await writeFile(path, sessionLine(T1) + line.slice(0, 20));
    const store = open(dir);
    expect((await store.read()).events).toMatchObject({ lines: 1, sessionStartMs: Date.parse(T1) });
    expect((await store.read()).events.iteration).toBeUndefined();
    await appendFile(path, line.slice(20, 40));
    expect((await store.read()).events.lines).toBe(1);
    await appendFile(path, line.slice(40));
    expect((await store.read()).events).toMatchObject({ lines: 2, iteration: 5 });
  });

  it('recounts from zero after truncation, keeping the session start', async () => {
    const dir = await lokiDir();
    const path = join(dir, 'events.jsonl');
    await writeFile(path, sessionLine(T1) + iterLine(3) + otherLine);
    const store = open(dir);
    expect((await store.read()).events.lines).toBe(3);
    await truncate(path, 0);
    expect((await store.read()).events).toMatchObject({ present: true, lines: 0, sessionStartMs: Date.parse(T1), iteration: 3 });
    await appendFile(path, otherLine);
    expect((await store.read()).events).toMatchObject({ lines: 1, sessionStartMs: Date.parse(T1) });
  });

  it('recounts when the file is rewritten in place with different first bytes', async () => {
    const dir = await lokiDir();
    const path = join(dir, 'events.jsonl');
    await writeFile(path, sessionLine(T1) + otherLine);
    const store = open(dir);
    expect((await store.read()).events.lines).toBe(2);
    // Same inode, longer, different start: another file as far as the counter is concerned.
    await writeFile(path, sessionLine(T2) + otherLine + otherLine + otherLine);
    expect((await store.read()).events).toMatchObject({ lines: 4, sessionStartMs: Date.parse(T2) });
  });

  it('recounts when replaced by a new file (rename over it)', async () => {
    const dir = await lokiDir();
    const path = join(dir, 'events.jsonl');
    await writeFile(path, sessionLine(T1) + otherLine + otherLine);
    const store = open(dir);
    expect((await store.read()).events.lines).toBe(3);
    // Same first bytes and larger, but a new inode.
    await writeFile(join(dir, 'new.tmp'), sessionLine(T1) + otherLine + otherLine + otherLine);
    await rename(join(dir, 'new.tmp'), path);
    expect((await store.read()).events.lines).toBe(4);
  });

  it('remembers the session start across rotation to events.jsonl.1', async () => {
    const dir = await lokiDir();
    const path = join(dir, 'events.jsonl');
    await writeFile(path, sessionLine(T1) + iterLine(4) + otherLine);
    const store = open(dir);
    expect((await store.read()).events).toMatchObject({ lines: 3, sessionStartMs: Date.parse(T1), iteration: 4 });
    await rename(path, `${path}.1`);
    expect((await store.read()).events).toEqual({ present: false, lines: 0, sessionStartMs: Date.parse(T1), iteration: 4 });
    await writeFile(path, otherLine + iterLine(5));
    const after = await store.read();
    expect(after.events).toMatchObject({ present: true, lines: 2, sessionStartMs: Date.parse(T1), iteration: 5 });
  });

  it('takes the session start from events.jsonl.1 at a cold start', async () => {
    const dir = await lokiDir();
    await writeFile(join(dir, 'events.jsonl.1'), sessionLine(T1) + sessionLine(T2) + iterLine(2));
    await writeFile(join(dir, 'events.jsonl'), otherLine + iterLine(3) + otherLine);
    expect((await open(dir).read()).events).toMatchObject({ lines: 3, sessionStartMs: Date.parse(T2), iteration: 3 });
    // Not when the live file has its own session_start.
    await writeFile(join(dir, 'events.jsonl'), sessionLine(T1) + otherLine);
    const fresh = (await open(dir).read()).events;
    expect(fresh).toMatchObject({ lines: 2, sessionStartMs: Date.parse(T1) });
    expect(fresh.iteration).toBeUndefined();
  });

  it('reports a symlink or a directory as an error without throwing', async () => {
    const dir = await lokiDir();
    const target = join(await tempDir(), 'events.jsonl');
    await writeFile(target, otherLine);
    await symlink(target, join(dir, 'events.jsonl'));
    const r = await open(dir).read();
    expect(r.events).toMatchObject({ present: true, lines: 0, error: 'is a symbolic link (not followed)' });
    await rm(join(dir, 'events.jsonl'));
    await mkdir(join(dir, 'events.jsonl'));
    expect((await open(dir).read()).events).toMatchObject({ present: true, lines: 0, error: 'not a regular file' });
  });

  it('reads a file larger than its read buffer in chunks', async () => {
    const dir = await lokiDir();
    const lines = 30_000; // ~2.6 MB, more than one 1 MiB chunk
    await writeFile(join(dir, 'events.jsonl'), sessionLine(T1) + otherLine.repeat(lines) + iterLine(9));
    expect((await open(dir).read()).events).toMatchObject({ lines: lines + 2, sessionStartMs: Date.parse(T1), iteration: 9 });
  });
});

/**
 * Issue 13: a file that shrinks, or is rewritten, while its first bytes (the 64-byte fingerprint)
 * stay the same. The offset kept from the last read must never outlive the content it measured:
 * the count is the lines of the file as it is now, read once (no stale offset past EOF, no old
 * lines counted again).
 */
describe('events.jsonl shrinking or rewritten behind the same first bytes', () => {
  const FINGERPRINT = 64;
  const inode = async (path: string) => (await stat(path)).ino;
  /** One JSON line of exactly `length` bytes (newline included). */
  const noteOf = (length: number) => {
    const [head, tail] = ['{"type":"note","data":{"text":"', '"}}\n'];
    return head + 'x'.repeat(length - head.length - tail.length) + tail;
  };

  it('rewritten in place, shorter, with the same header line: recounted from the start, then appends read once', async () => {
    const dir = await lokiDir();
    const path = join(dir, 'events.jsonl');
    const old = sessionLine(T1) + iterLine(1) + otherLine + otherLine + otherLine;
    await writeFile(path, old);
    const store = open(dir);
    expect((await store.read()).events).toMatchObject({ lines: 5, iteration: 1 });
    const ino = await inode(path);

    const shorter = sessionLine(T1) + iterLine(2);
    expect(shorter.slice(0, FINGERPRINT)).toBe(old.slice(0, FINGERPRINT));
    await writeFile(path, shorter); // O_TRUNC: the same inode, as a truncate-and-rewrite
    expect(await inode(path)).toBe(ino);
    expect((await store.read()).events).toEqual({ present: true, mtimeMs: expect.any(Number), lines: 2, sessionStartMs: Date.parse(T1), iteration: 2 });
    expect(store.counters.eventBytesRead).toBe(old.length + shorter.length);

    await appendFile(path, otherLine);
    expect((await store.read()).events).toMatchObject({ lines: 3, iteration: 2 });
    expect((await store.read()).events.lines).toBe(3);
    expect(store.counters.eventBytesRead).toBe(old.length + shorter.length + otherLine.length);
  });

  it('truncated to a prefix of itself: the lines that remain; cut mid-line, the rest counts once completed', async () => {
    const dir = await lokiDir();
    const path = join(dir, 'events.jsonl');
    const kept = sessionLine(T1) + iterLine(1);
    await writeFile(path, kept + iterLine(2) + otherLine);
    const store = open(dir);
    expect((await store.read()).events).toMatchObject({ lines: 4, iteration: 2 });

    await truncate(path, kept.length); // at a line boundary
    expect((await store.read()).events).toMatchObject({ present: true, lines: 2, sessionStartMs: Date.parse(T1), iteration: 1 });

    const half = Math.floor(iterLine(3).length / 2);
    await appendFile(path, iterLine(3) + otherLine);
    expect((await store.read()).events.lines).toBe(4);
    await truncate(path, kept.length + half); // mid-line: that line is partial again
    expect((await store.read()).events).toMatchObject({ lines: 2, iteration: 1 });
    await appendFile(path, iterLine(3).slice(half));
    expect((await store.read()).events).toMatchObject({ lines: 3, iteration: 3 });
  });

  it('replaced by a file of the same size with the same first bytes: the new lines, not the old count', async () => {
    const dir = await lokiDir();
    const path = join(dir, 'events.jsonl');
    // Same size and the same first bytes, a different number of lines (5 then 2).
    const old = sessionLine(T1) + otherLine + otherLine + otherLine + otherLine;
    const rewritten = sessionLine(T1) + noteOf(old.length - sessionLine(T1).length);
    expect(rewritten.length).toBe(old.length);
    await writeFile(path, old);
    const store = open(dir);
    expect((await store.read()).events.lines).toBe(5);
    await writeFile(join(dir, 'new.tmp'), rewritten);
    await rename(join(dir, 'new.tmp'), path); // a new file of the same size: the inode tells
    expect((await store.read()).events).toMatchObject({ lines: 2, sessionStartMs: Date.parse(T1) });
    expect(store.counters.eventBytesRead).toBe(old.length + rewritten.length);
  });

  // Found by issue 13's review: rewritten IN PLACE (same inode) to the same size with the same
  // first 64 bytes, only the mtime tells (an append always grows the file).
  it('rewritten in place to the same size behind the same first bytes: the new lines (the mtime tells)', async () => {
    const dir = await lokiDir();
    const path = join(dir, 'events.jsonl');
    const old = sessionLine(T1) + otherLine + otherLine + otherLine + otherLine;
    const rewritten = sessionLine(T1) + noteOf(old.length - sessionLine(T1).length);
    await writeFile(path, old);
    const store = open(dir);
    expect((await store.read()).events.lines).toBe(5);
    const ino = await inode(path);
    await sleep(5); // a later mtime
    await writeFile(path, rewritten);
    expect(await inode(path)).toBe(ino);
    expect((await open(dir).read()).events.lines).toBe(2); // what a fresh reader sees
    expect((await store.read()).events.lines).toBe(2);
    // Unchanged since: nothing is read again.
    const before = store.counters.eventBytesRead;
    expect((await store.read()).events.lines).toBe(2);
    expect(store.counters.eventBytesRead).toBe(before);
  });

  it('touched (a new mtime, the same bytes): read again from the start, the same count', async () => {
    const dir = await lokiDir();
    const path = join(dir, 'events.jsonl');
    const text = sessionLine(T1) + iterLine(1) + otherLine;
    await writeFile(path, text);
    const store = open(dir);
    expect((await store.read()).events).toMatchObject({ lines: 3, iteration: 1 });
    const later = new Date(Date.now() + 60_000);
    await utimes(path, later, later);
    expect((await store.read()).events).toMatchObject({ lines: 3, iteration: 1, sessionStartMs: Date.parse(T1) });
    expect(store.counters.eventBytesRead).toBe(2 * text.length);
  });

  it('rotated to events.jsonl.1 between two reads (never seen missing): the new file only, old lines not counted again', async () => {
    const dir = await lokiDir();
    const path = join(dir, 'events.jsonl');
    const old = sessionLine(T1) + iterLine(1) + otherLine + otherLine;
    await writeFile(path, old);
    const store = open(dir);
    expect((await store.read()).events).toMatchObject({ lines: 4, iteration: 1 });

    // Shorter, starting with the same header line.
    await rename(path, `${path}.1`);
    const shorter = sessionLine(T1) + iterLine(2);
    await writeFile(path, shorter);
    expect((await store.read()).events).toMatchObject({ present: true, lines: 2, sessionStartMs: Date.parse(T1), iteration: 2 });

    // Longer this time, again the same header: an append as far as size and first bytes go.
    await rename(path, `${path}.1`);
    const longer = sessionLine(T1) + iterLine(3) + otherLine + otherLine + otherLine + otherLine;
    await writeFile(path, longer);
    expect((await store.read()).events).toMatchObject({ lines: 6, iteration: 3 });
    expect(store.counters.eventBytesRead).toBe(old.length + shorter.length + longer.length);
  });

  it('a rewrite that differs only in the last fingerprinted byte (the 64th) is another file', async () => {
    const dir = await lokiDir();
    const path = join(dir, 'events.jsonl');
    // The text field's byte at offset 63 is the only difference between the two first lines.
    const note = (c: string) => `{"type":"note","data":{"text":"${'n'.repeat(32)}${c}${'n'.repeat(20)}"}}\n`;
    expect(note('a').indexOf('a', 31)).toBe(FINGERPRINT - 1);
    const old = note('a') + otherLine;
    await writeFile(path, old);
    const store = open(dir);
    expect((await store.read()).events.lines).toBe(2);
    // Longer, two lines, the second running past the old end: read as an append it would count 3.
    const rewritten = note('b') + noteOf(200);
    await writeFile(path, rewritten);
    expect((await store.read()).events.lines).toBe(2);
  });
});

describe('metrics/efficiency', () => {
  it('lists *.json files sorted by name, regular files only', async () => {
    const dir = await lokiDir();
    const eff = join(dir, 'metrics/efficiency');
    await writeFile(join(eff, 'iteration-2.json'), '{"iteration":2}');
    await writeFile(join(eff, 'iteration-10.json'), '{"iteration":10}');
    await writeFile(join(eff, 'iteration-1.json'), '{"iteration":1}');
    await writeFile(join(eff, 'notes.txt'), 'x');
    await mkdir(join(eff, 'nested.json'));
    await symlink(join(eff, 'iteration-1.json'), join(eff, 'link.json'));
    const r = await open(dir).read();
    expect(names(r)).toEqual(['iteration-1.json', 'iteration-10.json', 'iteration-2.json', 'link.json']);
    expect(effText(r, 'iteration-10.json')).toBe('{"iteration":10}');
    expect(r.efficiency.files.find((f) => f.name === 'link.json')).toMatchObject({ present: true, error: 'is a symbolic link (not followed)' });
    expect(r.efficiency.present).toBe(true);
    expect(r.efficiency.mtimeMs).toBe(Math.max(...r.efficiency.files.map((f) => f.mtimeMs ?? 0)));
  });

  it('reports a missing directory as absent', async () => {
    const dir = await lokiDir();
    await rm(join(dir, 'metrics/efficiency'), { recursive: true });
    expect((await open(dir).read()).efficiency).toEqual({ present: false, files: [] });
  });

  for (const watch of [true, false]) {
    it(`sees files changed in place, added and deleted (watch: ${watch})`, async () => {
      const dir = await lokiDir();
      const eff = join(dir, 'metrics/efficiency');
      await writeFile(join(eff, 'iteration-1.json'), '{"cost_usd":1}');
      await writeFile(join(eff, 'iteration-2.json'), '{"cost_usd":2}');
      const store = open(dir, { watch });
      const first = await store.read();
      expect(names(first)).toEqual(['iteration-1.json', 'iteration-2.json']);

      await writeFile(join(eff, 'iteration-1.json'), '{"cost_usd":7}'); // same size, in place
      const changed = await eventually(store, (r) => effText(r, 'iteration-1.json') === '{"cost_usd":7}');
      expect(effText(changed, 'iteration-1.json')).toBe('{"cost_usd":7}');

      await writeFile(join(eff, 'iteration-3.json'), '{"cost_usd":3}');
      const added = await eventually(store, (r) => names(r).length === 3);
      expect(names(added)).toEqual(['iteration-1.json', 'iteration-2.json', 'iteration-3.json']);
      expect(effText(added, 'iteration-3.json')).toBe('{"cost_usd":3}');

      await rm(join(eff, 'iteration-2.json'));
      const deleted = await eventually(store, (r) => names(r).length === 2);
      expect(names(deleted)).toEqual(['iteration-1.json', 'iteration-3.json']);

      await rm(eff, { recursive: true });
      expect((await store.read()).efficiency).toEqual({ present: false, files: [] });
      await mkdir(eff);
      await writeFile(join(eff, 'iteration-1.json'), '{"cost_usd":9}');
      const back = await eventually(store, (r) => effText(r, 'iteration-1.json') === '{"cost_usd":9}');
      expect(names(back)).toEqual(['iteration-1.json']);
    });
  }

  it('does not re-stat unchanged files on a warm refresh when watching', async () => {
    const dir = await lokiDir();
    const eff = join(dir, 'metrics/efficiency');
    const count = 2000;
    await Promise.all(Array.from({ length: count }, (_, i) => writeFile(join(eff, `iteration-${i + 1}.json`), `{"iteration":${i + 1}}`)));
    const store = open(dir);
    const cold = await store.read();
    expect(cold.efficiency.files).toHaveLength(count);
    const stats = store.counters.fileSets.efficiency.stats;
    expect(stats).toBeGreaterThanOrEqual(count);
    await new Promise((resolve) => setTimeout(resolve, 50)); // let stray inotify events from the setup arrive
    await store.read();
    const settled = store.counters.fileSets.efficiency.stats;
    for (let i = 0; i < 10; i++) await store.read();
    expect(store.counters.fileSets.efficiency.stats).toBe(settled); // nothing stat'ed (timings: npm run bench)
    // One changed file costs one stat.
    await writeFile(join(eff, 'iteration-7.json'), '{"iteration":77}');
    const changed = await eventually(store, (r) => effText(r, 'iteration-7.json') === '{"iteration":77}');
    expect(effText(changed, 'iteration-7.json')).toBe('{"iteration":77}');
    expect(store.counters.fileSets.efficiency.stats - settled).toBeLessThan(5);
  });

  it('re-stats everything every rescanIntervalMs as a safety net', async () => {
    const dir = await lokiDir();
    await writeFile(join(dir, 'metrics/efficiency/iteration-1.json'), '{}');
    const store = open(dir, { rescanIntervalMs: 0 });
    await store.read();
    await store.read();
    expect(store.counters.fileSets.efficiency.fullScans).toBe(2);
  });
});

describe('mtimes a JS Date cannot hold', () => {
  // ext4 clamps times to 2446; tmpfs keeps `touch -d @99999999999999` (year 3.17 million) as is.
  const shm = existsSync('/dev/shm') ? '/dev/shm' : undefined;
  it.skipIf(!shm)('read as unknown (documents, file-set entries, events.jsonl), cold and warm', async () => {
    const dir = join(await tempDir('loki-test-', shm), '.loki');
    await mkdir(join(dir, 'metrics/efficiency'), { recursive: true });
    await mkdir(join(dir, 'pids'), { recursive: true });
    const far = 99_999_999_999_999; // seconds: ~1e17 ms, beyond Date's 8.64e15 ms
    const files = ['dashboard-state.json', 'metrics/efficiency/iteration-1.json', 'pids/4242.json', 'events.jsonl'];
    for (const file of files) await writeFile(join(dir, file), file === 'events.jsonl' ? sessionLine(T1) : '{}');
    await writeFile(join(dir, 'metrics/efficiency/iteration-2.json'), '{}');
    for (const file of files) await utimes(join(dir, file), far, far);
    const store = open(dir, { watch: false });
    for (let pass = 0; pass < 2; pass++) {
      const r = await store.read();
      const dashboard = r.documents['dashboard-state.json'];
      expect(text(dashboard.bytes)).toBe('{}');
      expect(dashboard.mtimeMs).toBeUndefined();
      expect(r.efficiency.files.find((f) => f.name === 'iteration-1.json')).toMatchObject({ present: true });
      expect(r.efficiency.files.find((f) => f.name === 'iteration-1.json')?.mtimeMs).toBeUndefined();
      // The set's newest mtime is the one representable entry's.
      const normal = r.efficiency.files.find((f) => f.name === 'iteration-2.json')?.mtimeMs;
      expect(normal).toBeGreaterThan(Date.now() - 600_000);
      expect(r.efficiency.mtimeMs).toBe(normal);
      expect(r.pids.files[0]?.mtimeMs).toBeUndefined();
      expect(r.pids.mtimeMs).toBeUndefined();
      expect(r.events.mtimeMs).toBeUndefined();
      expect(r.events.sessionStartMs).toBe(Date.parse(T1));
    }
  });
});

describe('a sub-directory swapped for a symlink between its check and the open', () => {
  afterEach(() => {
    delete openHooks.beforeOpen;
  });

  /** A tree with `state/agents.json` and `proofs/run-1/proof.json`, and look-alikes outside it. */
  async function swapTree() {
    const root = await tempDir();
    const dir = join(root, '.loki');
    const outside = join(root, 'outside');
    for (const d of ['state', 'proofs/run-1']) {
      await mkdir(join(dir, d), { recursive: true });
      await mkdir(join(outside, d), { recursive: true });
    }
    await writeFile(join(dir, 'state/agents.json'), '[]');
    await writeFile(join(dir, 'proofs/run-1/proof.json'), '{}');
    await writeFile(join(outside, 'state/agents.json'), '"outside"');
    await writeFile(join(outside, 'proofs/run-1/proof.json'), '"outside"');
    /** Replaces `dir/<sub>` by a symlink to its look-alike outside, as an attacker's rename would. */
    const swap = (sub: string) => {
      renameSync(join(dir, sub), join(dir, `${sub}.moved`));
      symlinkSync(join(outside, sub), join(dir, sub));
    };
    return { root, dir, outside, swap };
  }

  it('the check itself: a path through a symlinked directory is refused, the real one (or a linked state dir) is not', async () => {
    const { root, dir, outside } = await swapTree();
    symlinkSync(join(outside, 'state'), join(dir, 'linked'));
    symlinkSync(dir, join(root, 'alias'));
    const check = new OpenedPathCheck(join(root, 'alias'));
    const opened = (path: string) => {
      const fd = openSync(path, 'r');
      try {
        return check.check(fd, path);
      } finally {
        closeSync(fd);
      }
    };
    expect(opened(join(root, 'alias/state/agents.json'))).toBeUndefined();
    expect(opened(join(root, 'alias/proofs/run-1/proof.json'))).toBeUndefined();
    expect(opened(join(root, 'alias/linked/agents.json'))).toBe(SWAPPED);
    expect(SWAPPED).toMatch(/swapped for a symbolic link/);
  });

  it('state/ swapped just before a document is opened: refused with a clear problem, outside bytes never served', async () => {
    const { dir, swap } = await swapTree();
    openHooks.beforeOpen = (path) => {
      if (path.endsWith('state/agents.json')) {
        delete openHooks.beforeOpen;
        swap('state');
      }
    };
    const r = await open(dir, { watch: false }).read();
    const agents = r.documents['state/agents.json'];
    expect(agents).toMatchObject({ present: true, error: SWAPPED });
    expect(agents.bytes).toBeUndefined();
  });

  it('proofs/<run>/ swapped just before its file is opened: the entry is refused', async () => {
    const { dir, swap } = await swapTree();
    openHooks.beforeOpen = (path) => {
      if (path.endsWith('run-1/proof.json')) {
        delete openHooks.beforeOpen;
        swap('proofs/run-1');
      }
    };
    const r = await open(dir, { watch: false }).read();
    const entry = r.proofs.files.find((f) => f.name === 'run-1');
    expect(entry).toMatchObject({ present: true, error: SWAPPED });
    expect(entry?.bytes).toBeUndefined();
  });

  it.runIf(process.platform === 'linux')('metrics/efficiency swapped in the middle of a sweep: files keep coming from the directory checked at its start', async () => {
    const root = await tempDir();
    const dir = join(root, '.loki');
    const outside = join(root, 'outside');
    await mkdir(join(dir, 'metrics/efficiency'), { recursive: true });
    await mkdir(outside, { recursive: true });
    const names = Array.from({ length: 40 }, (_, i) => `iteration-${i + 1}.json`); // a sweep, not a few files
    for (const name of names) {
      await writeFile(join(dir, 'metrics/efficiency', name), '{"cost_usd": 1}');
      await writeFile(join(outside, name), '"outside"');
    }
    let swapped = false;
    openHooks.beforeOpen = (path) => {
      if (!swapped && path.endsWith('/iteration-20.json')) {
        swapped = true;
        renameSync(join(dir, 'metrics/efficiency'), join(dir, 'metrics/efficiency.moved'));
        symlinkSync(outside, join(dir, 'metrics/efficiency'));
      }
    };
    const store = open(dir, { watch: false });
    const r = await store.read();
    expect(swapped).toBe(true);
    // opened relative to the directory object checked before the sweep: never the look-alikes
    expect(r.efficiency.files.map((f) => text(f.bytes))).toEqual(names.map(() => '{"cost_usd": 1}'));
    // and the next read sees the symlinked directory for what it is
    expect((await store.read()).efficiency).toMatchObject({ files: [], error: expect.stringMatching(/symbolic link/) });
  });

  it('without a swap, the same reads succeed (the hook alone changes nothing)', async () => {
    const { dir } = await swapTree();
    openHooks.beforeOpen = () => undefined;
    const r = await open(dir, { watch: false }).read();
    expect(text(r.documents['state/agents.json'].bytes)).toBe('[]');
    expect(text(r.proofs.files.find((f) => f.name === 'run-1')?.bytes)).toBe('{}');
  });
});

describe('read-only and robust', () => {
  it('never changes the tree, whatever it reads', async () => {
    const dir = await lokiDir();
    await writeFile(join(dir, 'dashboard-state.json'), '{"mode":"autonomous"}');
    await writeFile(join(dir, 'loki.pid'), `${process.pid}\n`);
    await writeFile(join(dir, 'events.jsonl'), sessionLine(T1) + iterLine(1));
    await writeFile(join(dir, 'events.jsonl.1'), sessionLine(T1));
    await writeFile(join(dir, 'metrics/efficiency/iteration-1.json'), '{"cost_usd":1}');
    await mkdir(join(dir, 'STOP'));
    const before = await treeDigest(dir);
    const store = open(dir);
    for (let i = 0; i < 3; i++) await store.read();
    await open(dir, { watch: false }).read();
    await store.close();
    expect(await treeDigest(dir)).toBe(before);
  });

  it('serialises concurrent reads', async () => {
    const dir = await lokiDir();
    const path = join(dir, 'events.jsonl');
    await writeFile(path, sessionLine(T1));
    const store = open(dir);
    const pending = [store.read(), store.read()];
    await appendFile(path, otherLine);
    pending.push(store.read(), store.read());
    const readings = await Promise.all(pending);
    expect(readings.at(-1)?.events.lines).toBe(2);
    for (const r of readings) expect(r.events.lines === 1 || r.events.lines === 2).toBe(true);
    expect(store.counters.eventBytesRead).toBe(sessionLine(T1).length + otherLine.length);
  });

  it('isProcessAlive: this process yes, an exited child no', async () => {
    const r = await open(await lokiDir()).read();
    expect(r.isProcessAlive(process.pid)).toBe(true);
    expect(isProcessAlive(process.pid)).toBe(true);
    expect(r.isProcessAlive(deadPid())).toBe(false);
  });

  it.runIf(process.platform === 'linux')('isProcessAlive: a zombie (killed, not yet reaped) is dead, though signal 0 still finds it', async () => {
    // `sleep 0.2` becomes the child of `sleep 30` (after exec), which never reaps it.
    const parent = spawn('sh', ['-c', 'sleep 0.2 & echo $!; exec sleep 30'], { stdio: ['ignore', 'pipe', 'ignore'] });
    try {
      const zombie = Number(await new Promise<string>((resolve) => parent.stdout!.once('data', (d: Buffer) => resolve(d.toString()))));
      const deadline = Date.now() + 5_000;
      while (Date.now() < deadline && !(await readFile(`/proc/${zombie}/stat`, 'latin1')).includes(') Z ')) await sleep(50);
      expect(await readFile(`/proc/${zombie}/stat`, 'latin1')).toContain(') Z ');
      expect(() => process.kill(zombie, 0)).not.toThrow();
      expect(isProcessAlive(zombie)).toBe(false);
      expect(isProcessAlive(parent.pid!)).toBe(true);
    } finally {
      parent.kill('SIGKILL');
    }
  });
});

describe('a read error part-way through events.jsonl', () => {
  it('never feeds the same bytes twice: the next read resumes where the failed one stopped', async () => {
    const dir = await lokiDir();
    const line = '{"timestamp":"2026-02-14T09:00:00Z","type":"tool_use","data":{"tool":"Edit","file":"src/a.ts"}}\n';
    await writeFile(join(dir, 'events.jsonl'), line.repeat(50_000)); // ~4.7 MB: several 1 MiB chunks
    const { open: openFile } = await import('node:fs/promises');
    const probe = await openFile(join(dir, 'events.jsonl'), 'r');
    const proto = Object.getPrototypeOf(probe) as { read: (...args: unknown[]) => Promise<{ bytesRead: number }> };
    await probe.close();
    const realRead = proto.read;
    let calls = 0;
    proto.read = function (this: unknown, ...args: unknown[]) {
      // The first file read is the fingerprint; fail the third chunk of the first scan with EIO.
      if (++calls === 4) return Promise.reject(Object.assign(new Error('i/o error'), { code: 'EIO' }));
      return realRead.apply(this, args);
    };
    const store = open(dir);
    try {
      const failed = await store.read();
      expect(failed.events.error).toMatch(/i\/o error|EIO/);
      expect(failed.events.present).toBe(true); // there, unreadable for now: not absent
    } finally {
      proto.read = realRead;
    }
    const recovered = await store.read();
    expect(recovered.events.error).toBeUndefined();
    expect(recovered.events.lines).toBe(50_000);
  });
});

describe('paths the store cannot use', () => {
  it('a state directory below a regular file is "not a directory"; one whose name is too long is reported by its code', async () => {
    const root = await tempDir();
    await writeFile(join(root, 'file'), 'x');
    const below = await open(join(root, 'file', '.loki')).read();
    expect(below).toMatchObject({ available: false, problem: 'not a directory' });
    const long = await open(join(root, 'n'.repeat(300))).read();
    expect(long).toMatchObject({ available: false, problem: 'ENAMETOOLONG' });
  });

  it('a symlinked state/ or metrics/: their documents and file set are refused, with an error version, never read', async () => {
    const root = await tempDir();
    const dir = join(root, '.loki');
    const outside = join(root, 'outside');
    await mkdir(join(outside, 'state'), { recursive: true });
    await mkdir(join(outside, 'metrics', 'efficiency'), { recursive: true });
    await writeFile(join(outside, 'state', 'agents.json'), '"outside"');
    await writeFile(join(outside, 'metrics', 'budget.json'), '"outside"');
    await writeFile(join(outside, 'metrics', 'efficiency', 'iteration-1.json'), '"outside"');
    await mkdir(dir);
    await writeFile(join(dir, 'loki.pid'), '123\n');
    await symlink(join(outside, 'state'), join(dir, 'state'));
    await symlink(join(outside, 'metrics'), join(dir, 'metrics'));
    const store = open(dir, { watch: false });
    const r = await store.read();
    const state = `state/ ${SYMLINK}`;
    const metrics = `metrics/ ${SYMLINK}`;
    expect(r.documents['state/agents.json']).toEqual({ present: true, error: state, version: `error:${state}` });
    expect(r.documents['state/completion.json']).toEqual({ present: true, error: state, version: `error:${state}` });
    expect(r.documents['metrics/budget.json']).toEqual({ present: true, error: metrics, version: `error:${metrics}` });
    expect(r.efficiency).toEqual({ present: true, files: [], error: metrics });
    expect(text(r.documents['loki.pid'].bytes)).toBe('123\n');
    expect(store.counters.documentReads).toBe(1);
    expect(store.counters.fileSets.efficiency.reads).toBe(0);
  });

  it('paths longer than PATH_MAX under a usable state directory: those files are errors, the others read', async () => {
    const root = await tempDir();
    // A state directory whose path is 4,083 bytes long: below it, paths of up to 11 bytes still fit in
    // PATH_MAX (4,096 with its NUL): `loki.pid` and `pids/1.json` do, `events.jsonl` does not.
    let dir = root;
    while (dir.length < 4083 - 201) dir = join(dir, 'd'.repeat(200));
    dir = join(dir, 'e'.repeat(4083 - dir.length - 1));
    expect(dir).toHaveLength(4083);
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'loki.pid'), '123\n');
    await mkdir(join(dir, 'pids'));
    await writeFile(join(dir, 'pids', '1.json'), '{}');
    const r = await open(dir, { watch: false }).read();
    expect(r.available).toBe(true);
    expect(text(r.documents['loki.pid'].bytes)).toBe('123\n');
    expect(r.documents['dashboard-state.json']).toEqual({ present: true, error: 'ENAMETOOLONG', version: 'error:ENAMETOOLONG' });
    expect(r.documents['state/agents.json']).toEqual({ present: true, error: 'ENAMETOOLONG', version: 'error:ENAMETOOLONG' });
    expect(r.events).toMatchObject({ present: true, error: 'ENAMETOOLONG', lines: 0 });
    expect(r.efficiency).toEqual({ present: true, files: [], error: 'ENAMETOOLONG' });
    expect(r.pids.files.map((f) => f.name)).toEqual(['1.json']);
  });

  it('retainedBytes counts the documents it keeps', async () => {
    const dir = await emptyLokiDir();
    await writeFile(join(dir, 'dashboard-state.json'), 'x'.repeat(100));
    await writeFile(join(dir, 'loki.pid'), '12345');
    const store = open(dir, { watch: false });
    expect(store.retainedBytes()).toBe(0);
    await store.read();
    expect(store.retainedBytes()).toBe(105);
    await rm(join(dir, 'loki.pid'));
    await store.read();
    expect(store.retainedBytes()).toBe(100);
  });
});

describe('events.jsonl: special files, a rotated file cut short, a sparse gigabyte', () => {
  it('a FIFO (with no writer) is refused as not a regular file at once, and read again once it is a file', async () => {
    const dir = await lokiDir();
    const path = join(dir, 'events.jsonl');
    const made = spawnSync('mkfifo', [path]);
    if (made.status !== 0) return; // no mkfifo here
    const store = open(dir);
    expect((await store.read()).events).toMatchObject({ present: true, lines: 0, error: 'not a regular file' });
    await rm(path);
    await writeFile(path, sessionLine(T1));
    expect((await store.read()).events).toMatchObject({ present: true, lines: 1, sessionStartMs: Date.parse(T1) });
  });

  it('takes the session start from events.jsonl.1 even when its last line has no newline (the rotated file is complete)', async () => {
    const dir = await lokiDir();
    await writeFile(join(dir, 'events.jsonl.1'), otherLine + sessionLine(T1).trimEnd());
    await writeFile(join(dir, 'events.jsonl'), otherLine);
    expect((await open(dir).read()).events).toMatchObject({ lines: 1, sessionStartMs: Date.parse(T1) });
  });

  it('a rotated file that is not a regular file is ignored', async () => {
    const dir = await lokiDir();
    await mkdir(join(dir, 'events.jsonl.1'));
    await writeFile(join(dir, 'events.jsonl'), otherLine);
    const r = (await open(dir).read()).events;
    expect(r).toMatchObject({ present: true, lines: 1 });
    expect(r.sessionStartMs).toBeUndefined();
  });

  it('grown by 8 MiB without a newline (sparse): read once, in chunks, counted once the line ends', async () => {
    const dir = await lokiDir();
    const path = join(dir, 'events.jsonl');
    await writeFile(path, sessionLine(T1) + otherLine);
    const store = open(dir);
    expect((await store.read()).events.lines).toBe(2);
    const size = (await stat(path)).size;
    const before = store.counters.eventBytesRead;
    await truncate(path, size + 8 * 1024 * 1024); // NUL bytes: one unfinished line
    expect((await store.read()).events.lines).toBe(2);
    expect(store.counters.eventBytesRead - before).toBe(8 * 1024 * 1024);
    await appendFile(path, '\n' + otherLine.repeat(3));
    expect((await store.read()).events.lines).toBe(6); // the NUL line, then three
    expect(store.counters.eventBytesRead - before).toBe(8 * 1024 * 1024 + 1 + otherLine.length * 3);
  });
});

describe('the store\'s options and watches', () => {
  /** A `watchFn` whose watchers are fakes (never fire), or that fails as at the inotify limit. */
  function fakeWatch(fail = false) {
    const made: { closed: number }[] = [];
    const fn = (() => {
      if (fail) throw Object.assign(new Error('ENOSPC'), { code: 'ENOSPC' });
      const w = Object.assign(new EventEmitter(), { closed: 0, close: () => void w.closed++, unref: () => w });
      made.push(w);
      return w;
    }) as unknown as typeof watch;
    return { fn, made };
  }
  const allSets = () => emptyLokiDir('metrics/efficiency', 'proofs', 'pids', 'sessions');

  it('watchStatus: each set\'s directory watched through the watchFn given; polling when every watch fails', async () => {
    const dir = await allSets();
    const fake = fakeWatch();
    const store = open(dir, { watchFn: fake.fn });
    expect(store.watchStatus()).toEqual({ inotify: 0, polling: 0 });
    await store.read();
    expect(store.watchStatus()).toEqual({ inotify: 4, polling: 0 });
    expect(fake.made).toHaveLength(4);
    store.close();
    expect(fake.made.map((w) => w.closed)).toEqual([1, 1, 1, 1]);

    const failing = open(dir, { watchFn: fakeWatch(true).fn });
    await failing.read();
    expect(failing.watchStatus()).toEqual({ inotify: 0, polling: 4 });
    const off = open(dir, { watch: false });
    await off.read();
    expect(off.watchStatus()).toEqual({ inotify: 0, polling: 0 });
  });

  it('hostPidNamespace: as given, else as detected', async () => {
    const dir = await emptyLokiDir();
    expect((await open(dir, { hostPidNamespace: true }).read()).hostPidNamespace).toBe(true);
    expect((await open(dir, { hostPidNamespace: false }).read()).hostPidNamespace).toBe(false);
    expect((await open(dir).read()).hostPidNamespace).toBe(inHostPidNamespace());
  });

  it('by default, a watched set is re-stat\'ed in full once 60 s have passed, not before', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      const now = Math.floor(Date.now() / 1000) * 1000;
      vi.setSystemTime(now);
      const dir = await allSets();
      const store = open(dir, { watchFn: fakeWatch().fn });
      await store.read();
      const scans = () => store.counters.fileSets.pids.fullScans;
      expect(scans()).toBe(1);
      vi.setSystemTime(now + 59_999);
      await store.read();
      expect(scans()).toBe(1);
      vi.setSystemTime(now + 60_000);
      await store.read();
      expect(scans()).toBe(2);
    } finally {
      vi.useRealTimers();
    }
  });
});
