/**
 * Real `.loki` trees for tests: a fixture copied into a fresh temp directory, with the things a
 * checkout cannot carry (whether `loki.pid` is alive, file ages) set explicitly.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cp, lstat, mkdtemp, readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// Also right when compiled to dist/ (the bench and stress scripts run from there).
export const FIXTURES = new URL('../fixtures/', import.meta.url).pathname.replace('/dist/test/', '/test/');

const made: string[] = [];

/** A pid that existed a moment ago and has exited (so `kill(pid, 0)` gives ESRCH). */
export function deadPid(): number {
  const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(child.stdout);
}

export interface TreeOptions {
  /** What to write into `loki.pid`: a live pid (this process), an exited one, or leave it. */
  readonly pid?: 'alive' | 'dead' | 'keep';
  /** Set every file's mtime to this (ms since the epoch). */
  readonly mtimeMs?: number;
  /**
   * With `pid` alive or dead: when the runner wrote `loki.pid` (its mtime), which the collector takes
   * as the runner's start. Default: long before any fixture's `session_start`, as in a real run.
   */
  readonly runnerStartMs?: number;
}

/** A runner start earlier than every fixture's events. */
export const EARLY_RUNNER_START_MS = Date.parse('2026-01-01T00:00:00Z');

/** Copies `test/fixtures/<name>/.loki` to a temp dir and returns the copy's `.loki` path. */
export async function materialize(name: string, options: TreeOptions = {}): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), `loki-test-${name}-`));
  made.push(root);
  const dir = join(root, '.loki');
  await cp(join(FIXTURES, name, '.loki'), dir, { recursive: true });
  if (options.pid === 'alive') await writeFile(join(dir, 'loki.pid'), `${process.pid}\n`);
  if (options.pid === 'dead') await writeFile(join(dir, 'loki.pid'), `${deadPid()}\n`);
  if (options.mtimeMs !== undefined) await setMtimes(dir, options.mtimeMs);
  if (options.pid === 'alive' || options.pid === 'dead') {
    const at = (options.runnerStartMs ?? EARLY_RUNNER_START_MS) / 1000;
    await utimes(join(dir, 'loki.pid'), at, at);
  }
  return dir;
}

/** An empty temp directory (for trees built by hand). */
export async function tempDir(prefix = 'loki-test-'): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), prefix));
  made.push(root);
  return root;
}

export async function setMtimes(dir: string, mtimeMs: number): Promise<void> {
  for (const file of await listFiles(dir)) await utimes(join(dir, file), mtimeMs / 1000, mtimeMs / 1000);
}

/** Removes every tree made since the last call (use in afterEach/afterAll). */
export async function cleanTrees(): Promise<void> {
  await Promise.all(made.splice(0).map((root) => rm(root, { recursive: true, force: true })));
}

async function listFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath ?? (e as unknown as { path: string }).path, e.name).slice(dir.length + 1))
    .sort();
}

/** A digest of every path, mode, mtime and byte under `dir`: proves a run left the tree untouched. */
export async function treeDigest(dir: string): Promise<string> {
  const hash = createHash('sha256');
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  const paths = entries.map((e) => join(e.parentPath ?? (e as unknown as { path: string }).path, e.name)).sort();
  for (const path of paths) {
    const st = await lstat(path);
    hash.update(`${path.slice(dir.length)}\0${st.mode}\0${st.mtimeMs}\0${st.size}\0`);
    if (st.isFile()) hash.update(await readFile(path));
  }
  return hash.digest('hex');
}
