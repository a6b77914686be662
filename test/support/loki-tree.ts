/**
 * Real `.loki` trees for tests: a fixture copied into a fresh temp directory, with the things a
 * checkout cannot carry (whether `loki.pid` is alive, file ages) set explicitly.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cp, lstat, mkdtemp, readdir, readFile, rm, unlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// Also right when compiled to dist/ (the bench and stress scripts run from there).
export const FIXTURES = new URL('../fixtures/', import.meta.url).pathname.replace('/dist/test/', '/test/');

const made: string[] = [];
const helpers: ChildProcess[] = [];

/** The runner pid the 9.x fixtures name (above this machine's pid_max: never alive until replaced). */
export const FIXTURE_RUNNER_PID = 3999001;

/** A real process that stays alive until `cleanTrees()` (a status monitor, say). */
export function liveHelper(): number {
  const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 120000)'], { stdio: 'ignore' });
  helpers.push(child);
  return child.pid!;
}

/** A pid that existed a moment ago and has exited (so `kill(pid, 0)` gives ESRCH). */
export function deadPid(): number {
  const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(child.stdout);
}

export interface TreeOptions {
  /**
   * What to write into `loki.pid`: a live pid (this process), an exited one, or leave it. A live
   * runner is the one that wrote the tree's latest `session_start` (its `data.pid`, as 5.46 and
   * 9.x write it), so the session is the fixture's and no new run starts with it.
   */
  readonly pid?: 'alive' | 'dead' | 'keep';
  /** Set every file's mtime to this (ms since the epoch). */
  readonly mtimeMs?: number;
  /**
   * With `pid` alive or dead, or `registry`: when the runner wrote `loki.pid` (its mtime), which the
   * collector takes as the runner's start unless a registry entry gives it. Default for a live
   * runner: now, after this process started (on Linux the exporter takes a process that started
   * after the state's time for its runner for another program that reused the pid, and the
   * fixtures' own times are months before any test run). Otherwise: long before any fixture's
   * `session_start`, as in a real run.
   */
  readonly runnerStartMs?: number;
  /**
   * 9.x trees: the `pids/` registry made real. The wrapper (the runner) gets a live pid (this
   * process) or an exited one, everywhere the fixture names `FIXTURE_RUNNER_PID` (loki.pid, its
   * registry entry, autonomy-state.json, session_start); helpers get live processes or exited pids.
   * The registry keeps the fixture's `started` times (the runner's start, for the session); a live
   * wrapper's `loki.pid` is written now (see `runnerStartMs`). Overrides `pid`.
   */
  readonly registry?: { readonly wrapper: 'alive' | 'dead'; readonly helpers: 'alive' | 'dead' };
}

/** A runner start earlier than every fixture's events. */
export const EARLY_RUNNER_START_MS = Date.parse('2026-01-01T00:00:00Z');

/** Copies `test/fixtures/<name>/.loki` to a temp dir and returns the copy's `.loki` path. */
export async function materialize(name: string, options: TreeOptions = {}): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), `loki-test-${name}-`));
  made.push(root);
  const dir = join(root, '.loki');
  await cp(join(FIXTURES, name, '.loki'), dir, { recursive: true });
  if (options.registry) await realiseRegistry(dir, options.registry);
  else if (options.pid === 'alive') await realiseLiveRunner(dir);
  else if (options.pid === 'dead') await writeFile(join(dir, 'loki.pid'), `${deadPid()}\n`);
  if (options.mtimeMs !== undefined) await setMtimes(dir, options.mtimeMs);
  if (options.pid === 'alive' || options.pid === 'dead' || options.registry) {
    const live = options.registry ? options.registry.wrapper === 'alive' : options.pid === 'alive';
    const at = (options.runnerStartMs ?? (live ? Date.now() : EARLY_RUNNER_START_MS)) / 1000;
    await utimes(join(dir, 'loki.pid'), at, at);
  }
  return dir;
}

/** This process as the runner: in `loki.pid`, and named by the latest `session_start` (the one it wrote). */
async function realiseLiveRunner(dir: string): Promise<void> {
  await writeFile(join(dir, 'loki.pid'), `${process.pid}\n`);
  // The live file first; the rotated one holds the session_start only when the live file has none.
  for (const file of ['events.jsonl', 'events.jsonl.1']) {
    const path = join(dir, file);
    const text = await readFile(path, 'utf8').catch(() => undefined);
    const named = text === undefined ? undefined : nameRunnerInLatestSessionStart(text, process.pid);
    if (named === undefined) continue;
    await writeFile(path, named);
    return;
  }
}

/** `text` with its latest complete `session_start` line naming `pid` in `data.pid`; undefined when it has none. */
function nameRunnerInLatestSessionStart(text: string, pid: number): string | undefined {
  const lines = text.split('\n');
  // The last element is an unfinished line (or empty): never touched.
  for (let i = lines.length - 2; i >= 0; i--) {
    let event: { type?: unknown; data?: unknown };
    try {
      event = JSON.parse(lines[i]!) as typeof event;
    } catch {
      continue;
    }
    if (event?.type !== 'session_start') continue;
    const data = typeof event.data === 'object' && event.data !== null ? event.data : {};
    lines[i] = JSON.stringify({ ...event, data: { ...data, pid } });
    return lines.join('\n');
  }
  return undefined;
}

async function realiseRegistry(dir: string, registry: NonNullable<TreeOptions['registry']>): Promise<void> {
  const runner = registry.wrapper === 'alive' ? process.pid : deadPid();
  const placeholder = new RegExp(`\\b${FIXTURE_RUNNER_PID}\\b`, 'g');
  for (const file of ['loki.pid', 'autonomy-state.json', 'events.jsonl']) {
    const path = join(dir, file);
    const text = await readFile(path, 'utf8').catch(() => undefined);
    if (text !== undefined) await writeFile(path, text.replace(placeholder, String(runner)));
  }
  const pidsDir = join(dir, 'pids');
  for (const name of await readdir(pidsDir).catch(() => [] as string[])) {
    const entry = JSON.parse(await readFile(join(pidsDir, name), 'utf8')) as { pid: number; kind?: string; ppid?: number };
    const pid = entry.kind === 'wrapper' ? runner : registry.helpers === 'alive' ? liveHelper() : deadPid();
    await unlink(join(pidsDir, name));
    await writeFile(join(pidsDir, `${pid}.json`), JSON.stringify({ ...entry, pid, ...(entry.kind !== 'wrapper' ? { ppid: runner } : {}) }));
  }
}

/** An empty temp directory (for trees built by hand), under `base` (default the OS temp dir). */
export async function tempDir(prefix = 'loki-test-', base = tmpdir()): Promise<string> {
  const root = await mkdtemp(join(base, prefix));
  made.push(root);
  return root;
}

export async function setMtimes(dir: string, mtimeMs: number): Promise<void> {
  for (const file of await listFiles(dir)) await utimes(join(dir, file), mtimeMs / 1000, mtimeMs / 1000);
}

/** Removes every tree made since the last call (use in afterEach/afterAll). */
export async function cleanTrees(): Promise<void> {
  for (const child of helpers.splice(0)) child.kill('SIGKILL');
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
