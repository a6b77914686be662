/**
 * `events.jsonl` changing between the lstat that decides to read it and the open that reads it:
 * removed (absent, the count forgotten), or swapped for a FIFO (refused as not a regular file, no
 * hang). Staged in-process, deterministically: `open` of node:fs/promises is wrapped (through
 * `syncBuiltinESMExports`, which the store's own import sees) to change the file just before the
 * real open.
 */
import { spawnSync } from 'node:child_process';
import fsPromises from 'node:fs/promises';
import { rm, writeFile } from 'node:fs/promises';
import { syncBuiltinESMExports } from 'node:module';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { StateReading } from '../../src/stores/store.js';
import { emptyLokiDir, storesClosedAfterEach } from '../support/fs-stores.js';

const open = storesClosedAfterEach();
const realOpen = fsPromises.open;
afterEach(() => {
  fsPromises.open = realOpen;
  syncBuiltinESMExports();
});

const line = '{"timestamp":"2026-02-14T09:00:00Z","type":"tool_use","data":{"tool":"Edit"}}\n';

/** Runs `before(path)` once, just before the store opens `name`, then opens it for real. */
function beforeOpening(name: string, before: (path: string) => Promise<void>): void {
  let done = false;
  fsPromises.open = (async (path: Parameters<typeof realOpen>[0], ...rest: unknown[]) => {
    if (!done && String(path).endsWith(`/${name}`)) {
      done = true;
      await before(String(path));
    }
    return (realOpen as (...a: unknown[]) => ReturnType<typeof realOpen>)(path, ...rest);
  }) as typeof realOpen;
  syncBuiltinESMExports();
}

describe('events.jsonl between its lstat and its open', () => {
  it('removed: absent, and the lines counted so far forgotten', async () => {
    const dir = await emptyLokiDir();
    const path = join(dir, 'events.jsonl');
    await writeFile(path, line.repeat(3));
    const store = open(dir, { watch: false });
    expect((await store.read()).events).toMatchObject({ present: true, lines: 3 });
    await writeFile(path, line.repeat(4));
    beforeOpening('events.jsonl', (p) => rm(p));
    const gone: StateReading = await store.read();
    expect(gone.events).toMatchObject({ present: false, lines: 0 });
    expect(gone.events.error).toBeUndefined();
    // back, with other lines: counted from the start
    await writeFile(path, line.repeat(2));
    expect((await store.read()).events).toMatchObject({ present: true, lines: 2 });
  });

  it('swapped for a FIFO: refused as not a regular file, at once (no hang), the count forgotten', async () => {
    const dir = await emptyLokiDir();
    const path = join(dir, 'events.jsonl');
    await writeFile(path, line.repeat(3));
    const store = open(dir, { watch: false });
    expect((await store.read()).events.lines).toBe(3);
    await writeFile(path, line.repeat(4));
    let fifo = false;
    beforeOpening('events.jsonl', async (p) => {
      await rm(p);
      fifo = spawnSync('mkfifo', [p]).status === 0;
    });
    const swapped = await store.read();
    if (!fifo) return; // no mkfifo here
    expect(swapped.events).toMatchObject({ present: true, lines: 0, error: 'not a regular file' });
    expect(swapped.events.mtimeMs).toEqual(expect.any(Number));
    await rm(path);
    await writeFile(path, line.repeat(5));
    expect((await store.read()).events).toMatchObject({ present: true, lines: 5 });
  });
});
