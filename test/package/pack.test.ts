/**
 * The npm package as a user gets it: the tarball `npm pack` makes of this repository, installed
 * globally into an empty prefix (`npm install -g`), then run from there. It installs without a
 * warning (no install scripts), its `loki-metrics serve` serves a real tree, and `loki-metrics assets`
 * points at the monitoring assets it ships, which promtool loads and unit-tests from that place.
 * Needs the build (`npm test` runs tsc first), npm, promtool, and the npm registry (the install
 * fetches the runtime dependencies into a temporary cache).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanTrees, materialize } from '../support/loki-tree.js';
import { stopChildren } from '../support/children.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url)).replace(/\/$/, '');
const PACKAGE = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { name: string; version: string; scripts: Record<string, string> };
/** Generous: a cold install fetches the runtime dependencies from the registry (about 2 s here). */
const INSTALL_DEADLINE_MS = 180_000;
/** The lifecycle scripts npm runs when a package is installed (npm 11 warns about each). */
const INSTALL_SCRIPTS = ['preinstall', 'install', 'postinstall', 'preprepare', 'prepare', 'postprepare'];

// The children get this environment without npm's own variables: under `npm test` they are
// npm_config_* settings of that run (a child npm would take them as its configuration and warn about
// ones it does not know), and without LOKI_*, which would configure the exporter.
const ENV = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^(npm_|LOKI_)/i.test(name)));

interface Ran {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly ms: number;
}

/** Runs a command to its end, killed at `timeoutMs`. */
function run(command: string, args: readonly string[], cwd: string, timeoutMs = 60_000): Ran {
  const started = Date.now();
  const result = spawnSync(command, args, { cwd, env: ENV, encoding: 'utf8', timeout: timeoutMs, killSignal: 'SIGKILL' });
  const stderr = `${result.stderr ?? ''}${result.error ? `\n${String(result.error)}` : ''}`;
  return { code: result.status, stdout: result.stdout ?? '', stderr, ms: Date.now() - started };
}

const temps: string[] = [];
const temp = (prefix: string) => {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  temps.push(dir);
  return dir;
};
const children: ChildProcess[] = [];

/** Every file under `dir`, relative to it, sorted. */
const filesUnder = (dir: string): string[] =>
  readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((path) => !statSync(join(dir, path)).isDirectory())
    .sort();

let packed: { filename: string; size: number; unpackedSize: number; files: { path: string }[] };
let install: Ran;
let prefix: string;
let installed: string;
let bin: string;

beforeAll(() => {
  if (!existsSync(join(ROOT, 'dist/src/node/cli.js'))) throw new Error('dist/ is missing: run the build first (npm test does: tsc, then vitest)');
  const work = temp('loki-test-pack-');
  // --ignore-scripts: `npm test` has just built dist/ (tsc, then vitest), and other test files run
  // the CLI from it while this one runs (test/node/cli.test.ts, test/security.test.ts); prepack's tsc
  // would rewrite dist/ under them. That prepack builds is tested on its own, in a copy of the sources.
  const pack = run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work, '--cache', join(work, 'npm-cache')], ROOT);
  if (pack.code !== 0) throw new Error(`npm pack failed (${pack.code}): ${pack.stderr}`);
  packed = (JSON.parse(pack.stdout) as (typeof packed)[])[0]!;
  prefix = join(work, 'prefix');
  install = run('npm', ['install', '-g', '--prefix', prefix, '--cache', join(work, 'npm-cache'), join(work, packed.filename)], work, INSTALL_DEADLINE_MS);
  installed = join(prefix, 'lib/node_modules', PACKAGE.name);
  bin = join(prefix, 'bin/loki-metrics');
}, INSTALL_DEADLINE_MS + 60_000);

afterAll(async () => {
  await stopChildren(children);
  await cleanTrees();
  for (const dir of temps.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe('package.json', () => {
  it('has no install-time lifecycle script, and builds in prepack', () => {
    expect(Object.keys(PACKAGE.scripts).filter((name) => INSTALL_SCRIPTS.includes(name))).toEqual([]);
    expect(PACKAGE.scripts.prepack).toBeDefined();
  });

  it('npm pack runs prepack, which builds dist/ from the sources (in a copy of them)', () => {
    const copy = temp('loki-test-prepack-');
    for (const file of ['package.json', 'tsconfig.json']) cpSync(join(ROOT, file), join(copy, file));
    cpSync(join(ROOT, 'src'), join(copy, 'src'), { recursive: true });
    symlinkSync(realpathSync(join(ROOT, 'node_modules')), join(copy, 'node_modules'));
    mkdirSync(join(copy, 'out'));
    const pack = run('npm', ['pack', '--json', '--pack-destination', join(copy, 'out'), '--cache', join(copy, 'npm-cache')], copy, 150_000);
    expect(pack.code, pack.stderr).toBe(0);
    const paths = (JSON.parse(pack.stdout.slice(pack.stdout.indexOf('['))) as (typeof packed)[])[0]!.files.map((f) => f.path);
    expect(paths).toContain('dist/src/node/cli.js');
    expect(paths).toContain('dist/src/node/cli/assets.js');
    expect(run(process.execPath, [join(copy, 'dist/src/node/cli.js'), '--version'], copy).stdout).toBe(`${PACKAGE.version}\n`);
  }, 180_000);
});

describe('the tarball', () => {
  it('holds the built CLI, all of monitoring/ (the promtool tests too) and the docs, and nothing else', () => {
    const paths = packed.files.map((f) => f.path).sort();
    const repo = (dir: string) => filesUnder(join(ROOT, dir)).map((file) => `${dir}/${file}`);
    for (const path of ['package.json', 'README.md', 'dist/src/node/cli.js', 'dist/src/node/cli/assets.js', ...repo('monitoring'), ...repo('docs')]) {
      expect(paths).toContain(path);
    }
    expect(paths).toContain('monitoring/prometheus/loki-alerts.test.yml');
    expect(paths.filter((path) => !/^(dist\/src\/|monitoring\/|docs\/)/.test(path) && path !== 'package.json' && path !== 'README.md')).toEqual([]);
    // The build of the tests (dist/test/, 4 MB) or node_modules would take it far past this.
    expect(packed.size).toBeLessThan(1_000_000);
  });

  it('has every relative link of its README and docs pointing at a file it holds', () => {
    const paths = new Set(packed.files.map((f) => f.path));
    const broken: string[] = [];
    for (const page of [...paths].filter((path) => path.endsWith('.md'))) {
      const text = readFileSync(join(installed, page), 'utf8');
      for (const [, target] of text.matchAll(/\]\(([^)\s#]+)(?:#[^)]*)?\)/g)) {
        if (/^[a-z]+:/i.test(target!)) continue; // http(s), mailto
        const path = normalize(join(dirname(page), target!)).replace(/\/$/, '');
        if (!paths.has(path) && ![...paths].some((p) => p.startsWith(`${path}/`))) broken.push(`${page} -> ${target}`);
      }
    }
    expect(broken).toEqual([]);
  });
});

describe('npm install -g of the tarball', () => {
  it(`installs into an empty prefix with exit 0 and no warning, within ${INSTALL_DEADLINE_MS / 1000} s`, () => {
    expect(install.code, install.stderr).toBe(0);
    expect(install.stderr.split('\n').filter((line) => /^npm warn/i.test(line))).toEqual([]);
    expect(install.ms).toBeLessThan(INSTALL_DEADLINE_MS);
    expect(realpathSync(bin)).toBe(realpathSync(join(installed, 'dist/src/node/cli.js')));
  });

  it('serves a .loki tree with the installed loki-metrics serve', async () => {
    const dir = await materialize('running', { pid: 'alive', mtimeMs: Date.now() });
    const port = await freePort();
    const child = spawn(bin, ['serve', '--dir', dir, '--host', '127.0.0.1', '--port', String(port)], { env: ENV, cwd: temp('loki-test-cwd-') });
    children.push(child);
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const body = await metrics(`http://127.0.0.1:${port}/metrics`, child, () => output);
    for (const sample of ['loki_up 1', 'loki_session_status 1', 'loki_iteration_current 6', 'loki_tasks_total{status="completed"} 5', 'loki_cost_usd 3.5313']) {
      expect(body.split('\n')).toContain(sample);
    }
    // Run from the installed copy, not this checkout: no git revision to read there.
    expect(body).toMatch(new RegExp(`^loki_exporter_build_info\\{version="${PACKAGE.version}",demo="false",revision="unknown",nodeversion="v[^"]+"\\} 1$`, 'm'));
    expect(output).toContain(`serving ${dir} at http://127.0.0.1:${port}/metrics`);
  });

  it('points loki-metrics assets at the installed monitoring/, which holds what this repository\'s does', () => {
    const where = run(bin, ['assets'], temp('loki-test-cwd-'));
    expect(where).toMatchObject({ code: 0, stdout: `${realpathSync(join(installed, 'monitoring'))}\n`, stderr: '' });
    const listed = run(bin, ['assets', '--list'], temp('loki-test-cwd-'));
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stdout.split('\n').filter(Boolean)).toEqual(filesUnder(join(ROOT, 'monitoring')));
  });

  it('ships rules promtool checks and unit-tests from the installed place (the tests find their rules beside them)', () => {
    const assets = run(bin, ['assets'], temp('loki-test-cwd-')).stdout.trim();
    const tests = run(bin, ['assets', '--list'], temp('loki-test-cwd-')).stdout.split('\n').filter((file) => file.endsWith('.test.yml'));
    expect(tests.length).toBeGreaterThanOrEqual(3);
    // From an empty directory: a rule file named in a test file must be found relative to the test file.
    const cwd = temp('loki-test-cwd-');
    const check = run('promtool', ['check', 'rules', `${assets}/prometheus/loki-alerts.yml`, `${assets}/prometheus/loki-recording.yml`], cwd);
    expect(check.code, check.stdout + check.stderr).toBe(0);
    const test = run('promtool', ['test', 'rules', ...tests.map((file) => `${assets}/${file}`)], cwd, 120_000);
    expect(test.code, test.stdout + test.stderr).toBe(0);
    expect(test.stdout.match(/SUCCESS/g)).toHaveLength(tests.length);
    const config = run('promtool', ['check', 'config', `${assets}/prometheus/scrape-plain.yml`], cwd);
    expect(config.code, config.stdout + config.stderr).toBe(0);
    expect(config.stdout).toContain('SUCCESS: 2 rule files found');
  }, 150_000);
});

/** The exporter's /metrics once it answers 200, or an error with what it printed (20 s at most). */
async function metrics(url: string, child: ChildProcess, output: () => string): Promise<string> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`loki-metrics serve exited ${child.exitCode}: ${output()}`);
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
      if (res.status === 200) return await res.text();
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`no 200 from ${url} within 20 s: ${output()}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** A port nothing listens on a moment ago, on 127.0.0.1. */
async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
      .once('error', reject)
      .listen(0, '127.0.0.1', () => {
        const port = (server.address() as { port: number }).port;
        server.close(() => resolve(port));
      });
  });
}
