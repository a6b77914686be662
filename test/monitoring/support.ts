/**
 * Real processes for the monitoring tests (Prometheus, nginx, promtool): free loopback ports,
 * every spawned process tracked and stopped in afterAll/afterEach (and on exit as a last resort),
 * deadlines on every wait, and the shipped files under monitoring/ loaded as data.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';

export const ROOT = new URL('../../', import.meta.url).pathname;
export const MONITORING = join(ROOT, 'monitoring');
/** nginx lives in /usr/sbin, which a non-root PATH may lack. */
export const NGINX = existsSync('/usr/sbin/nginx') ? '/usr/sbin/nginx' : 'nginx';
/** Debian's python3 (has python3-yaml and python3-prometheus-client); not a pyenv one. */
export const PYTHON = '/usr/bin/python3';

/** A free TCP port on 127.0.0.1 (bound and released; the caller binds it right after). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export interface Tracked {
  readonly child: ChildProcess;
  /** Everything the process printed so far (stdout and stderr), for failure messages. */
  output(): string;
}

const children = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});

/** Spawns a long-running process that stopAll() will end. */
export function start(command: string, args: readonly string[], cwd?: string): Tracked {
  const child = spawn(command, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const keep = (chunk: Buffer) => {
    out = (out + chunk.toString()).slice(-20_000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  child.on('error', (error) => keep(Buffer.from(`spawn error: ${error.message}\n`)));
  children.add(child);
  child.once('exit', () => children.delete(child));
  return { child, output: () => out };
}

/** SIGTERM every tracked process, SIGKILL whatever is still there after 5 s. */
export async function stopAll(): Promise<void> {
  const running = [...children];
  await Promise.all(
    running.map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) {
            children.delete(child);
            return resolve();
          }
          const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
          child.once('exit', () => {
            clearTimeout(timer);
            children.delete(child);
            resolve();
          });
          child.kill('SIGTERM');
        }),
    ),
  );
}

export interface RunResult {
  readonly status: number | null;
  readonly output: string;
}

/** Runs a short command to completion (bounded by timeoutMs). */
export function run(command: string, args: readonly string[], options: { cwd?: string; input?: string; timeoutMs?: number } = {}): RunResult {
  const result = spawnSync(command, args, {
    cwd: options.cwd,
    input: options.input,
    encoding: 'utf8',
    timeout: options.timeoutMs ?? 20_000,
    killSignal: 'SIGKILL',
  });
  return { status: result.status, output: `${result.stdout ?? ''}${result.stderr ?? ''}${result.error ? String(result.error) : ''}` };
}

/** Polls `probe` until it returns a value other than undefined, or throws after `timeoutMs`. */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 30_000, everyMs = 250): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

/** Parses a YAML file with PyYAML's safe_load (Node has no YAML parser in this project). */
export function loadYaml(path: string): unknown {
  const script = 'import sys, json, yaml\nprint(json.dumps(yaml.safe_load(open(sys.argv[1], encoding="utf-8"))))';
  const result = run(PYTHON, ['-c', script, path]);
  if (result.status !== 0) throw new Error(`YAML parse of ${path} failed: ${result.output}`);
  return JSON.parse(result.output) as unknown;
}

const temps: string[] = [];
export async function tempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  temps.push(dir);
  return dir;
}
export async function cleanTemps(): Promise<void> {
  await Promise.all(temps.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
}

/** Replaces each `from` (which must occur in `text`, so a drifted shipped file fails loudly). */
export function substitute(text: string, pairs: readonly (readonly [string, string])[]): string {
  let out = text;
  for (const [from, to] of pairs) {
    if (!out.includes(from)) throw new Error(`placeholder ${JSON.stringify(from)} not found`);
    out = out.split(from).join(to);
  }
  return out;
}

/**
 * Writes `config` (JSON is YAML) into `work`, checks it with promtool, starts Prometheus on a free
 * loopback port with its data under `work`, and resolves with its URL once it is ready. stopAll()
 * stops it.
 */
export async function startPrometheus(work: string, config: object, readyMs = 30_000): Promise<{ url: string; tracked: Tracked }> {
  const configFile = join(work, 'prometheus.yml');
  await writeFile(configFile, JSON.stringify(config, null, 2));
  const promtool = run('promtool', ['check', 'config', configFile]);
  if (promtool.status !== 0) throw new Error(`promtool check config failed: ${promtool.output}`);
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const tracked = start('prometheus', [`--config.file=${configFile}`, `--storage.tsdb.path=${join(work, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn']);
  await waitFor('Prometheus to be ready', async () => {
    if (tracked.child.exitCode !== null) throw new Error(`prometheus exited: ${tracked.output()}`);
    const res = await fetch(`${url}/-/ready`, { signal: AbortSignal.timeout(2_000) });
    return res.ok ? true : undefined;
  }, readyMs);
  return { url, tracked };
}

/** Replaces a shipped value, throwing unless it was the one shipped (so drift fails loudly). */
export function swap(obj: Record<string, unknown>, key: string, shipped: unknown, value: unknown): void {
  if (!isDeepStrictEqual(obj[key], shipped)) throw new Error(`shipped ${key} is ${JSON.stringify(obj[key])}, expected ${JSON.stringify(shipped)}`);
  obj[key] = value;
}

/** GET a Prometheus HTTP API path (`/api/v1/...`) and return its `data`, throwing on an error. */
export async function prometheusApi<T>(base: string, path: string): Promise<T> {
  const res = await fetch(`${base}${path}`, { signal: AbortSignal.timeout(5_000) });
  const body = (await res.json()) as { status: string; data: T; error?: string };
  if (body.status !== 'success') throw new Error(`${path}: ${body.error ?? res.status}`);
  return body.data;
}

/**
 * Uncomments the commented-out `key:` blocks of a shipped YAML file (a `# key:` line and the
 * `#   ...` lines indented under it), throwing unless exactly `count` were found, so that a drifted
 * shipped file fails loudly.
 */
export function uncommentBlocks(text: string, key: string, count: number): string {
  const lines = text.split('\n');
  let found = 0;
  for (let i = 0; i < lines.length; i++) {
    const head = new RegExp(`^(\\s*)# (${key}:)\\s*$`).exec(lines[i]!);
    if (!head) continue;
    const indent = head[1]!;
    lines[i] = `${indent}${head[2]}`;
    found++;
    for (let j = i + 1; j < lines.length; j++) {
      const body = new RegExp(`^${indent}# ( +\\S.*)$`).exec(lines[j]!);
      if (!body) break;
      lines[j] = `${indent}${body[1]}`;
    }
  }
  if (found !== count) throw new Error(`expected ${count} commented ${key} blocks, found ${found}`);
  return lines.join('\n');
}

/** A Prometheus duration (`90s`, `2m`, `1h30m`) in seconds. */
export function durationSeconds(text: string): number {
  const units: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400, w: 604800, y: 31536000 };
  const parts = [...text.matchAll(/(\d+)(ms|s|m|h|d|w|y)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== text) throw new Error(`not a duration: ${text}`);
  return parts.reduce((sum, [, n, unit]) => sum + Number(n) * units[unit!]!, 0);
}
