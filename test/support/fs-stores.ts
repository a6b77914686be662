/**
 * The fs store tests' common setup: stores opened by a test are closed after it, with the trees
 * it made; a fresh `.loki` with the sub-directories a test needs.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach } from 'vitest';
import { FsStateStore, type FsStateStoreOptions } from '../../src/stores/fs.js';
import { cleanTrees, tempDir } from './loki-tree.js';

/** Registers the cleanup in the calling test file; returns how to open a store there. */
export function storesClosedAfterEach(): (dir: string, options?: FsStateStoreOptions) => FsStateStore {
  const stores: FsStateStore[] = [];
  afterEach(async () => {
    for (const store of stores.splice(0)) await store.close();
    await cleanTrees();
  });
  return (dir, options) => {
    const store = new FsStateStore(dir, options);
    stores.push(store);
    return store;
  };
}

/** A new `.loki` in a temporary directory, with these sub-directories (e.g. `pids`, `metrics/efficiency`). */
export async function emptyLokiDir(...subdirs: string[]): Promise<string> {
  const dir = join(await tempDir(), '.loki');
  for (const sub of subdirs) await mkdir(join(dir, sub), { recursive: true });
  if (subdirs.length === 0) await mkdir(dir, { recursive: true });
  return dir;
}
