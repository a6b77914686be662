/**
 * The service definitions: the systemd user and system units (monitoring/systemd/) and the macOS
 * launchd agent (monitoring/launchd/). Checked with the real systemd-analyze (verify; security
 * --offline for the system unit's sandboxing) and Python's plistlib, then each is run the way its
 * manager would: the exporter started with the file's own command line and environment (specifiers
 * expanded, a temporary home; only the port, and for the system unit the project and PATH, swapped),
 * pointed at a real fixture tree, and scraped over HTTP.
 * No systemd manager or launchd runs here, so the sandboxing directives and KeepAlive are not
 * applied; the system unit's non-root User= is mirrored with setpriv when the tests run as root.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { chmod, mkdir, readFile, symlink, utimes, writeFile } from 'node:fs/promises';
import { delimiter, dirname, join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { cleanTrees, materialize } from '../support/loki-tree.js';
import { cleanTemps, freePort, MONITORING, PYTHON, ROOT, run, substitute, tempDir, waitFor } from './support.js';

const SYSTEM_UNIT = join(MONITORING, 'systemd/system/loki-metrics.service');
const USER_UNIT = join(MONITORING, 'systemd/user/loki-metrics.service');
const PLIST = join(MONITORING, 'launchd/local.loki-metrics.plist');
/**
 * The system unit's overall exposure as systemd-analyze security --offline=true rates it (Debian
 * 12's systemd 252 measured 1.3, "OK"); losing any of its hardening raises it above.
 */
const EXPOSURE_TARGET = 1.3;
/** Where the shipped system unit and plist name the project, and the plist your home. */
const SHIPPED_SYSTEM_LOKI_DIR = '/home/alice/src/my-project/.loki';
const PLIST_HOME = '/Users/YOU';
/** The directory the user unit and the plist expect the project in, under the home. */
const PROJECT = 'src/my-project/.loki';
const LONG_AGO = Date.now() - 7 * 86_400_000;
const ROOT_USER = process.getuid?.() === 0;

afterEach(stopExporters);
afterAll(async () => {
  await cleanTrees();
  await cleanTemps();
});

// ---- unit files --------------------------------------------------------------------------------

interface Unit {
  /** Every `Key=value` of section [Service], in order, specifiers expanded. */
  readonly service: readonly (readonly [string, string])[];
  readonly argv: readonly string[];
  readonly env: Readonly<Record<string, string>>;
}

/** Expands the specifiers the shipped units use (%h, %%); any other fails, so a new one is noticed. */
function expandSpecifiers(value: string, home: string): string {
  return value.replace(/%(.)/g, (_, c: string) => {
    if (c === 'h') return home;
    if (c === '%') return '%';
    throw new Error(`specifier %${c} is not expanded by this test`);
  });
}

/** Parses a unit file's [Service] section: ExecStart= into argv, Environment= into variables. */
function parseUnit(text: string, home: string): Unit {
  const service: [string, string][] = [];
  let section = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) section = header[1]!;
    else if (section === 'Service') {
      const eq = line.indexOf('=');
      service.push([line.slice(0, eq), expandSpecifiers(line.slice(eq + 1), home)]);
    }
  }
  const exec = service.filter(([k]) => k === 'ExecStart').map(([, v]) => v);
  expect(exec).toHaveLength(1);
  // Quoting, escapes and the prefixes (-@:+!) are systemd syntax this test does not parse: none used.
  expect(exec[0]).toMatch(/^\/[^"'\\\s]*( [^"'\\\s]+)*$/);
  const env: Record<string, string> = {};
  for (const [, assignment] of service.filter(([k]) => k === 'Environment')) {
    expect(assignment).toMatch(/^[A-Z_]+=[^"'\\\s]*$/); // one unquoted assignment a line
    const eq = assignment.indexOf('=');
    env[assignment.slice(0, eq)] = assignment.slice(eq + 1);
  }
  return { service, argv: exec[0]!.split(' '), env };
}

const values = (unit: Unit, key: string) => unit.service.filter(([k]) => k === key).map(([, v]) => v);

// ---- the exporter, run as a service manager would ----------------------------------------------

const exporters = new Set<ChildProcess>();

async function stopExporters(): Promise<void> {
  await Promise.all([...exporters].map((child) => stopExporter(child)));
}

/** SIGTERM (what systemd and launchd send), SIGKILL after 5 s; resolves with the exit code. */
function stopExporter(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    const done = () => {
      exporters.delete(child);
      resolve(child.exitCode);
    };
    if (child.exitCode !== null || child.signalCode !== null) return done();
    const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    child.once('exit', () => {
      clearTimeout(timer);
      done();
    });
    child.kill('SIGTERM');
  });
}

interface Launch {
  readonly argv: readonly string[];
  /** The whole environment: nothing of this test's own is passed on. */
  readonly env: Readonly<Record<string, string>>;
  readonly cwd: string;
  /** A file for stdout and stderr (launchd's StandardOutPath); otherwise kept in memory. */
  readonly logFile?: string;
  /** Run as nobody (with no new privileges) when this test is root: the system unit's User=. */
  readonly asNobody?: boolean;
}

interface Running {
  readonly child: ChildProcess;
  output(): Promise<string>;
}

function launch({ argv, env, cwd, logFile, asNobody }: Launch): Running {
  const drop = asNobody && ROOT_USER ? ['/usr/bin/setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '--no-new-privs'] : [];
  const [command, ...args] = [...drop, ...argv];
  const fd = logFile ? openSync(logFile, 'a') : undefined;
  const child = spawn(command!, args, { cwd, env: { ...env }, stdio: ['ignore', fd ?? 'pipe', fd ?? 'pipe'] });
  if (fd !== undefined) closeSync(fd);
  exporters.add(child);
  let out = '';
  const keep = (chunk: Buffer) => (out = (out + chunk.toString()).slice(-20_000));
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  child.on('error', (error) => keep(Buffer.from(`spawn error: ${error.message}\n`)));
  return { child, output: async () => (logFile ? readFile(logFile, 'utf8') : out) };
}

/** The URL the startup line announces, once it is printed; throws at once if the process exited. */
async function served(exporter: Running, timeoutMs = 15_000): Promise<URL> {
  const seen = await waitFor('the exporter\'s startup line', async () => {
    const out = await exporter.output();
    if (exporter.child.exitCode !== null) return { exited: `exited ${exporter.child.exitCode}: ${out}` };
    const url = / serving \S+ at (http:\/\/\S+)/.exec(out)?.[1];
    return url === undefined ? undefined : { url: new URL(url) };
  }, timeoutMs, 100);
  if ('exited' in seen) throw new Error(seen.exited);
  return seen.url;
}

async function get(url: URL, path: string): Promise<{ status: number; body: string }> {
  const res = await fetch(new URL(path, url), { signal: AbortSignal.timeout(5_000) });
  return { status: res.status, body: await res.text() };
}

const sample = (text: string, name: string) => Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text)?.[1]);

/** The running fixture's values (test/fixtures/running/README.md), read over HTTP. */
async function expectRunningFixture(url: URL): Promise<void> {
  const metrics = await get(url, '/metrics');
  expect(metrics.status).toBe(200);
  expect(sample(metrics.body, 'loki_up')).toBe(1);
  expect(sample(metrics.body, 'loki_session_status')).toBe(1);
  expect(sample(metrics.body, 'loki_iteration_current')).toBe(6);
  expect(sample(metrics.body, 'loki_cost_usd')).toBeCloseTo(3.5313, 6);
  expect(metrics.body).toContain(`nodeversion="${process.version}"`); // the Node under test, not /usr/bin's
  const health = await get(url, '/health');
  expect(health.status).toBe(200);
  expect(JSON.parse(health.body)).toMatchObject({ status: 'ok', up: true });
}

/**
 * A temporary home with the running fixture at PROJECT and `loki-metrics` in `binRelative`, where
 * `npm install -g` would link it: a stand-in that, like the real bin's `#!/usr/bin/env node`, runs
 * the built CLI with the first node on PATH.
 */
async function home(binRelative: string): Promise<{ home: string; tree: string; bin: string }> {
  const home = await tempDir('loki-service-home-');
  await chmod(home, 0o755); // nobody (the system unit's stand-in user) walks through it
  const tree = join(home, PROJECT);
  await mkdir(dirname(tree), { recursive: true });
  const fixture = await materialize('running', { pid: 'alive', mtimeMs: Date.now() });
  expect(run('cp', ['-a', fixture, tree]).status).toBe(0);
  const bin = join(home, binRelative);
  await mkdir(bin, { recursive: true });
  await writeFile(join(bin, 'loki-metrics'), `#!/bin/sh\nexec node ${await installedCopy(home)} "$@"\n`, { mode: 0o755 });
  return { home, tree, bin };
}

/**
 * The built package as npm installs it (dist/src, package.json, the runtime dependencies) under
 * `home`, so that nobody can read it: a checkout may sit in a directory only its owner can enter
 * (CI's clone is in a mktemp -d, mode 0700). Returns its CLI.
 */
async function installedCopy(home: string): Promise<string> {
  const pkg = join(home, 'lib/node_modules/loki-metrics');
  await mkdir(join(pkg, 'dist'), { recursive: true });
  expect(run('cp', ['-a', join(ROOT, 'dist/src'), join(pkg, 'dist/src')]).status).toBe(0);
  expect(run('cp', ['-a', join(ROOT, 'package.json'), pkg]).status).toBe(0);
  const { dependencies } = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
  for (const name of Object.keys(dependencies)) {
    await mkdir(dirname(join(pkg, 'node_modules', name)), { recursive: true });
    expect(run('cp', ['-a', join(ROOT, 'node_modules', name), join(pkg, 'node_modules', name)]).status).toBe(0);
  }
  return join(pkg, 'dist/src/node/cli.js');
}

/**
 * Puts the Node this suite runs on in `bin`, first on the unit's PATH, so the service runs on the
 * major under test (CI runs the suite on each: docs/development.md) rather than on whatever node
 * /usr/bin has: the step docs/service.md gives nvm users. Copied for a user who may not be able to
 * reach this node's own directory (nobody, when the Node came from npx's cache under /root).
 */
async function nodeFirst(bin: string, path: string, forOtherUser = false): Promise<void> {
  expect(path.split(delimiter)[0]).toBe(bin);
  if (forOtherUser) expect(run('cp', [process.execPath, join(bin, 'node')]).status).toBe(0);
  else await symlink(process.execPath, join(bin, 'node'));
}

/** systemd-analyze, with a runtime directory of its own (--user needs one). */
async function analyze(args: readonly string[]): Promise<{ status: number | null; output: string }> {
  const runtime = await tempDir('loki-service-runtime-');
  const result = spawnSync('systemd-analyze', args, { encoding: 'utf8', timeout: 30_000, killSignal: 'SIGKILL', env: { ...process.env, XDG_RUNTIME_DIR: runtime, SYSTEMD_PAGER: '' } });
  return { status: result.status, output: `${result.stdout ?? ''}${result.stderr ?? ''}${result.error ? String(result.error) : ''}` };
}

// ---- the tests ---------------------------------------------------------------------------------

describe('systemd units (monitoring/systemd/)', () => {
  it.each([[SYSTEM_UNIT, []], [USER_UNIT, ['--user']]] as const)('%s passes systemd-analyze verify with no warning, as shipped', async (file, mode) => {
    // ExecStart is /usr/bin/env, which exists, so the shipped files are verified as they are; the
    // loki-metrics it looks up on PATH is what the tests below run.
    const result = await analyze([...mode, 'verify', file]);
    // verify exits 0 on an unknown key or a bad value, with a warning naming the file: none allowed.
    expect(result.output.trim(), result.output).toBe('');
    expect(result.status, result.output).toBe(0);
  });

  it(`the system unit's exposure (systemd-analyze security --offline=true) is at most ${EXPOSURE_TARGET}, with the sandboxing it needs and none that hides /proc`, async () => {
    const result = await analyze(['security', '--offline=true', '--no-pager', SYSTEM_UNIT]);
    expect(result.status, result.output).toBe(0);
    const exposure = Number(/Overall exposure level for loki-metrics\.service: (\d+\.\d)/.exec(result.output)?.[1]);
    expect(exposure, result.output).toBeLessThanOrEqual(EXPOSURE_TARGET);
    const verdict = (check: string) => result.output.split('\n').find((line) => line.slice(2).startsWith(`${check} `))?.trim();
    expect(verdict('User=/DynamicUser=')).toMatch(/^✓ .*static non-root user/);
    expect(verdict('NoNewPrivileges=')).toMatch(/^✓ /);
    expect(verdict('PrivateTmp=')).toMatch(/^✓ /);
    expect(verdict('ProtectSystem=')).toMatch(/^✓ .*strict read-only access/);
    // Read-only home, not hidden: the watched .loki is usually under /home.
    expect(verdict('ProtectHome=')).toMatch(/read-only access to home directories/);
    // The liveness rule reads /proc/<pid>/stat of another user's processes, and /proc/stat.
    expect(verdict('ProtectProc=')).toMatch(/full access to process tree/);
    expect(verdict('ProcSubset=')).toMatch(/full access to non-process \/proc files/);
  });

  it('a bad setting stops the unit\'s command with exit 2, which RestartPreventExitStatus= keeps from restarting', async () => {
    const text = await readFile(USER_UNIT, 'utf8');
    const { home: h, bin } = await home('.local/bin');
    const unit = parseUnit(text, h);
    expect(values(unit, 'Restart')).toEqual(['on-failure']);
    expect(values(unit, 'RestartPreventExitStatus')).toEqual(['2']);
    await nodeFirst(bin, unit.env.PATH!);
    const exporter = launch({ argv: unit.argv, env: { ...unit.env, HOME: h, LOKI_METRICS_PORT: 'not-a-port' }, cwd: h });
    const code = await new Promise<number | null>((resolve) => exporter.child.once('exit', resolve));
    expect(code, await exporter.output()).toBe(2);
    expect(await exporter.output()).toContain('LOKI_METRICS_PORT');
  });

  it('the user unit\'s command line and environment (%h a temporary home) serve the project\'s .loki on 127.0.0.1', async () => {
    const text = await readFile(USER_UNIT, 'utf8');
    const { home: h, tree, bin } = await home('.local/bin');
    const shippedPort = parseUnit(text, h).env.LOKI_METRICS_PORT!;
    const port = await freePort(); // the shipped port may be taken on this machine: only it is swapped
    const unit = parseUnit(substitute(text, [[`LOKI_METRICS_PORT=${shippedPort}`, `LOKI_METRICS_PORT=${port}`]]), h);
    expect(unit.env.LOKI_DIR).toBe(tree);
    expect(unit.env.PATH!.split(delimiter)[0]).toBe(bin); // ~/.local/bin, where the stand-in is
    await nodeFirst(bin, unit.env.PATH!);
    // A user manager passes HOME and starts the service in it.
    const exporter = launch({ argv: unit.argv, env: { ...unit.env, HOME: h }, cwd: h });
    const url = await served(exporter);
    expect(url.host).toBe(`127.0.0.1:${port}`);
    await expectRunningFixture(url);
    expect(await stopExporter(exporter.child)).toBe(0); // a clean stop is no failure to restart
  });

  it('the system unit\'s command line and environment serve the project as a non-root user, which reads another user\'s runner through /proc: live, reused pid, zombie', async () => {
    const text = await readFile(SYSTEM_UNIT, 'utf8');
    const shipped = parseUnit(text, '/root');
    expect(values(shipped, 'User')).toEqual(['loki-metrics']);
    const port = await freePort();
    const { tree, bin } = await home('bin');
    // Swapped: the project, the port, and a directory holding the stand-in bin put first on PATH.
    const unit = parseUnit(substitute(text, [
      [`LOKI_DIR=${SHIPPED_SYSTEM_LOKI_DIR}`, `LOKI_DIR=${tree}`],
      [`LOKI_METRICS_PORT=${shipped.env.LOKI_METRICS_PORT}`, `LOKI_METRICS_PORT=${port}`],
      [`PATH=${shipped.env.PATH}`, `PATH=${bin}${delimiter}${shipped.env.PATH}`],
    ]), '/root');
    await nodeFirst(bin, unit.env.PATH!, true);
    // A system service starts in /. The runner (this process) is root, the exporter nobody.
    const exporter = launch({ argv: unit.argv, env: unit.env, cwd: '/', asNobody: true });
    const url = await served(exporter);
    expect(url.host).toBe(`127.0.0.1:${port}`);
    await expectRunningFixture(url);

    if (ROOT_USER) expect(await readFile(`/proc/${exporter.child.pid}/status`, 'utf8')).toMatch(/^Uid:\t65534\t/m);

    // From here the heartbeat is old, so only the pids decide, through /proc/<pid>/stat of a root
    // process read by nobody: its state (Z) and its start time (with /proc/stat's btime).
    const { zombie, parent } = await zombieProcess();
    let runner = process.pid;
    const runnerIs = async (pid: number, pidFileWrittenMs: number, status: number, what: string) => {
      await writeFile(join(tree, 'loki.pid'), `${pid}\n`);
      const events = join(tree, 'events.jsonl');
      await writeFile(events, substitute(await readFile(events, 'utf8'), [[`"pid":${runner}`, `"pid":${pid}`]]));
      runner = pid;
      for (const file of ['dashboard-state.json', 'events.jsonl', 'autonomy-state.json']) await utimes(join(tree, file), LONG_AGO / 1000, LONG_AGO / 1000);
      await utimes(join(tree, 'loki.pid'), pidFileWrittenMs / 1000, pidFileWrittenMs / 1000);
      await waitFor(what, async () => (sample((await get(url, '/metrics')).body, 'loki_session_status') === status ? true : undefined), 10_000);
    };
    // A live process that started after the state says the runner started: another program that
    // got the dead runner's number.
    await runnerIs(parent, LONG_AGO, 0, 'a reused pid to read as stopped');
    await runnerIs(process.pid, Date.now(), 1, 'the live runner to read as running again');
    // The runner was SIGKILLed and is a zombie until its parent reaps it.
    await runnerIs(zombie, Date.now(), 0, 'a zombie runner to read as stopped');
    expect(await stopExporter(exporter.child)).toBe(0);
  }, 60_000);
});

/**
 * A zombie of this user's and its live parent: `sh` starts a child that exits after a second, by
 * when sh has exec'd `sleep` over itself, which never reaps it. Stopped with the exporters (the zombie goes with it).
 */
async function zombieProcess(): Promise<{ zombie: number; parent: number }> {
  // The child exits after a second, once sh has exec'd into `sleep` (dash reaps a job that ends before).
  const parent = spawn('/bin/sh', ['-c', 'sleep 1 & echo $!; exec sleep 60'], { stdio: ['ignore', 'pipe', 'ignore'] });
  exporters.add(parent);
  const zombie = await new Promise<number>((resolve, reject) => {
    parent.stdout!.once('data', (chunk: Buffer) => resolve(Number(chunk.toString().trim())));
    parent.once('error', reject);
  });
  await waitFor('the child to be a zombie', async () => {
    const stat = await readFile(`/proc/${zombie}/stat`, 'latin1');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z') ? true : undefined;
  }, 5_000, 50);
  return { zombie, parent: parent.pid! };
}

describe('launchd agent (monitoring/launchd/local.loki-metrics.plist)', () => {
  /** The plist as JSON, from Python's plistlib (the same XML format launchd reads). */
  function loadPlist(path: string): Record<string, unknown> {
    const result = run(PYTHON, ['-c', 'import sys, json, plistlib\nprint(json.dumps(plistlib.load(open(sys.argv[1], "rb"))))', path]);
    expect(result.status, result.output).toBe(0);
    return JSON.parse(result.output) as Record<string, unknown>;
  }

  it('is a plist with the keys launchd needs to run and restart it', () => {
    const plist = loadPlist(PLIST);
    expect(plist.Label).toBe('local.loki-metrics');
    expect(PLIST.endsWith(`/${plist.Label as string}.plist`)).toBe(true); // launchctl's convention
    expect(plist.ProgramArguments).toEqual(['/usr/bin/env', 'loki-metrics', 'serve']);
    expect(plist.RunAtLoad).toBe(true);
    expect(plist.KeepAlive).toEqual({ SuccessfulExit: false });
    const env = plist.EnvironmentVariables as Record<string, string>;
    expect(Object.keys(env).sort()).toEqual(['LOKI_DIR', 'LOKI_METRICS_HOST', 'LOKI_METRICS_PORT', 'PATH']);
    expect(env.LOKI_METRICS_HOST).toBe('127.0.0.1');
    expect(env.PATH!.split(':')).toEqual(expect.arrayContaining(['/opt/homebrew/bin', '/usr/local/bin', '/usr/bin']));
    expect(plist.StandardOutPath).toBe(`${PLIST_HOME}/Library/Logs/loki-metrics.log`);
    expect(plist.StandardErrorPath).toBe(plist.StandardOutPath);
  });

  it('its arguments and environment (with /Users/YOU replaced as docs/service.md says) serve the project, logging to StandardOutPath', async () => {
    const text = await readFile(PLIST, 'utf8');
    const shippedEnv = loadPlist(PLIST).EnvironmentVariables as Record<string, string>;
    const { home: h, tree, bin } = await home('.local/bin');
    const port = await freePort();
    // `sed "s|/Users/YOU|$HOME|g"`, and the port swapped.
    const file = join(h, 'local.loki-metrics.plist');
    await writeFile(file, substitute(text, [[PLIST_HOME, h], [`<string>${shippedEnv.LOKI_METRICS_PORT}</string>`, `<string>${port}</string>`]]));
    const plist = loadPlist(file);
    const env = plist.EnvironmentVariables as Record<string, string>;
    expect(env.LOKI_DIR).toBe(tree);
    expect(env.PATH!.split(delimiter)[0]).toBe(bin);
    await nodeFirst(bin, env.PATH!);
    await mkdir(join(h, 'Library/Logs'), { recursive: true }); // always there on macOS
    const exporter = launch({ argv: plist.ProgramArguments as string[], env, cwd: plist.WorkingDirectory as string, logFile: plist.StandardOutPath as string });
    const url = await served(exporter);
    expect(url.host).toBe(`127.0.0.1:${port}`);
    await expectRunningFixture(url);
    expect(await stopExporter(exporter.child)).toBe(0); // SuccessfulExit: false does not restart it
    expect(await exporter.output()).toContain('loki-metrics: stopped');
  });
});
