/**
 * The real `loki-metrics` binary (the compiled `dist/src/node/cli.js` that `bin` points at), run as
 * a child process: exit codes, output streams and signals are part of what is tested.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ENV as CONFIG_ENV } from '../../src/config.js';
import { sessionSyncToken } from '../../src/sync/tokens.js';
import { bcryptHash, issue, makeCa } from '../support/certs.js';
import { cleanTrees, materialize, tempDir, treeDigest } from '../support/loki-tree.js';
import { stopChildren } from '../support/children.js';

// LOKI_METRICS_TEST_CLI: run these tests against another build (to show a test fails without a fix).
const CLI = process.env.LOKI_METRICS_TEST_CLI ?? new URL('../../dist/src/node/cli.js', import.meta.url).pathname;
const children: ChildProcess[] = [];
const servers: Server[] = [];

// The children's TMPDIR: where a demo makes its temporary directory, checked empty after each test.
const CHILD_TMPDIR = mkdtempSync(join(tmpdir(), 'loki-test-cli-tmp-'));
const demoDirs = () => readdirSync(CHILD_TMPDIR);

beforeAll(() => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run the build first (npm test does: tsc, then vitest)`);
});

afterAll(() => rmSync(CHILD_TMPDIR, { recursive: true, force: true }));

afterEach(async () => {
  await stopChildren(children);
  for (const server of servers.splice(0)) await new Promise((resolve) => server.close(resolve));
  await cleanTrees();
  expect(demoDirs()).toEqual([]);
});

const ENV = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', TMPDIR: CHILD_TMPDIR };

function run(args: string[], env: Record<string, string> = {}, cwd?: string) {
  const result = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...ENV, ...env }, timeout: 15_000, ...(cwd ? { cwd } : {}) });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** `run` without blocking this process's event loop (for tests that serve the child something). */
function runAsync(args: string[], env: Record<string, string> = {}) {
  const child = spawn(process.execPath, [CLI, ...args], { env: { ...ENV, ...env } });
  children.push(child);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => child.once('close', (code) => resolve({ code, stdout, stderr })));
}

/** Polls until `check` holds (output arrives on two pipes, in no fixed order). */
async function until(check: () => boolean, what: () => string, ms = 5_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting: ${what()}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => resolve(port));
    });
  });
}

/** Starts `serve` and resolves once it printed its startup line. */
async function serve(args: string[], env: Record<string, string> = {}, cwd?: string) {
  const child = spawn(process.execPath, [CLI, 'serve', ...args], { env: { ...ENV, ...env }, ...(cwd ? { cwd } : {}) });
  children.push(child);
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not start: ${stderr}`)), 10_000);
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (stdout.includes('\n')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => reject(new Error(`serve exited ${code}: ${stderr}`)));
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, startup: () => stdout, stderr: () => stderr, exited };
}

describe('loki-metrics (no command, --help, --version)', () => {
  it('prints usage and the version', () => {
    const help = run(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/Usage: loki-metrics <command>/);
    expect(help.stdout).toContain('LOKI_METRICS_PORT');
    expect(run(['--version']).stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
    for (const command of ['serve', 'scrape', 'check']) {
      const sub = run([command, '--help']);
      expect(sub.code).toBe(0);
      expect(sub.stdout).toContain(`Usage: loki-metrics ${command}`);
    }
  });

  it('rejects unknown commands and flags with exit 2', () => {
    const unknown = run(['frobnicate']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/unknown command "frobnicate"/);
    const flag = run(['scrape', '--bogus']);
    expect(flag.code).toBe(2);
    expect(flag.stderr).toMatch(/--bogus/);
  });

  it('stops on a bad setting with one line and exit 2', () => {
    const bad = run(['serve'], { LOKI_MAX_ITERATIONS: 'many' });
    expect(bad.code).toBe(2);
    expect(bad.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^loki-metrics: invalid LOKI_MAX_ITERATIONS "many"/)]);
  });

  it('names the flag when a flag is bad, the variable when the environment is', () => {
    const flag = run(['serve', '--port', 'abc']);
    expect(flag.code).toBe(2);
    expect(flag.stderr).toBe('loki-metrics: invalid --port "abc": must be a whole number from 1 to 65535\n');
    const env = run(['serve'], { LOKI_METRICS_PORT: 'abc' });
    expect(env.stderr).toBe('loki-metrics: invalid LOKI_METRICS_PORT "abc": must be a whole number from 1 to 65535\n');
    expect(run(['scrape', '--path', 'metrics']).stderr).toMatch(/^loki-metrics: invalid --path "metrics"/);
    expect(run(['check', '--dir', ' ']).stderr).toMatch(/^loki-metrics: invalid --dir/);
  });

  it('follows the usual conventions: help <command>, -V and version, one error prefix', () => {
    for (const command of ['serve', 'scrape', 'check', 'sync', 'token']) {
      const help = run(['help', command]);
      expect(help.code).toBe(0);
      expect(help.stdout).toContain(`Usage: loki-metrics ${command}`);
    }
    expect(run(['help', 'bogus']).code).toBe(2);
    for (const flag of ['-V', '-v', '--version', 'version']) expect(run([flag]).stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
    const serveHelp = run(['serve', '--help']).stdout;
    for (const name of Object.keys(CONFIG_ENV)) expect(serveHelp).toContain(name);
    expect(serveHelp).toContain('LOKI_LIVENESS');
    expect(serveHelp).toContain('LOKI_MAX_SESSIONS');
    const both = run(['serve', '--demo', '--dir', '/tmp']);
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/^loki-metrics: --demo and --dir cannot be combined/);
  });
});

describe('loki-metrics token', () => {
  it("prints a session's write token derived from LOKI_SYNC_TOKEN", async () => {
    const secret = 'sync-secret-0123456789abcdef';
    const printed = run(['token', '--session', 'proj-a'], { LOKI_SYNC_TOKEN: secret });
    expect(printed.code).toBe(0);
    expect(printed.stdout).toBe(`${await sessionSyncToken(secret, 'proj-a')}\n`);
    expect(printed.stdout).not.toBe(`${await sessionSyncToken(secret, 'proj-b')}\n`);
    const unset = run(['token', '--session', 'proj-a']);
    expect(unset.code).toBe(2);
    expect(unset.stderr).toMatch(/^loki-metrics: LOKI_SYNC_TOKEN is not set/);
    const bad = run(['token', '--session', '../x'], { LOKI_SYNC_TOKEN: secret });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^loki-metrics: --session must be/);
  });
});

describe('loki-metrics sync', () => {
  it('needs LOKI_SYNC_TOKEN and a URL, and says so in one line', async () => {
    const dir = await materialize('running');
    const noToken = run(['sync', '--url', 'http://127.0.0.1:8787', '--once', '--dir', dir]);
    expect(noToken.code).toBe(2);
    expect(noToken.stderr).toMatch(/LOKI_SYNC_TOKEN is not set/);
    const noUrl = run(['sync', '--once'], { LOKI_SYNC_TOKEN: 'sync-token-0123456789abc' });
    expect(noUrl.code).toBe(2);
    expect(noUrl.stderr).toMatch(/--url must be/);
    const badSession = run(['sync', '--url', 'http://127.0.0.1:8787', '--session', '../x'], { LOKI_SYNC_TOKEN: 'sync-token-0123456789abc' });
    expect(badSession.code).toBe(2);
  });

  it('says what is wrong with a --url and a missing directory', async () => {
    const env = { LOKI_SYNC_TOKEN: 'sync-token-0123456789abc' };
    const scheme = run(['sync', '--url', 'ftp://example.com', '--once', '--dir', await materialize('running')], env);
    expect(scheme.code).toBe(2);
    expect(scheme.stderr).toMatch(/^loki-metrics: --url must be https:\/\/ \(or http:\/\/ for a local Worker\), not ftp:\/\//);
    const notUrl = run(['sync', '--url', 'example.com', '--once'], env);
    expect(notUrl.stderr).toMatch(/^loki-metrics: --url "example\.com" is not a URL/);
    const missing = run(['sync', '--url', 'http://127.0.0.1:8787', '--once', '--dir', '/nonexistent/.loki'], env);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toBe('loki-metrics: no state directory at /nonexistent/.loki: nothing to sync (pass --dir or set LOKI_DIR)\n');
    // --allow-http is a flag sync knows (runSync's allowHttp)
    expect(run(['sync', '--url', 'http://127.0.0.1:8787', '--allow-http', '--once', '--dir', '/nonexistent/.loki'], env).stderr).not.toMatch(/Unknown option/);
  });

  it('prints a summary after --once, and a line when a loop is stopped', async () => {
    let syncedAtMs: number | null = null;
    const remote = createHttpServer((req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => {
        res.setHeader('Content-Type', 'application/json');
        if (req.method === 'GET') return res.end(JSON.stringify({ manifest: { documents: {}, sets: {} }, syncedAtMs }));
        const previousSyncedAtMs = syncedAtMs;
        syncedAtMs = (syncedAtMs ?? 0) + 1;
        res.end(JSON.stringify({ syncedAtMs, previousSyncedAtMs }));
      });
    });
    servers.push(remote);
    await new Promise<void>((resolve) => remote.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(remote.address() as { port: number }).port}`;
    const env = { LOKI_SYNC_TOKEN: 'sync-token-0123456789abc' };
    const dir = await materialize('running');

    const once = await runAsync(['sync', '--url', url, '--once', '--dir', dir, '--session', 's1'], env);
    expect(once.code, once.stderr).toBe(0);
    expect(once.stdout).toMatch(/^loki-metrics sync: [1-9]\d* requests?, [1-9]\d* bytes sent to http:\/\/127\.0\.0\.1:\d+ \(session "s1"\)\n$/);

    const loop = spawn(process.execPath, [CLI, 'sync', '--url', url, '--dir', dir, '--interval', '100ms'], { env: { ...ENV, ...env } });
    children.push(loop);
    let stderr = '';
    loop.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => loop.once('exit', (code) => resolve(code)));
    await until(() => stderr.includes('looking every 100 ms'), () => stderr);
    await new Promise((r) => setTimeout(r, 300));
    loop.kill('SIGINT');
    expect(await exited).toBe(0);
    expect(stderr).toMatch(/loki-metrics sync: stopped; \d+ requests?, \d+ bytes sent to http:\/\/127\.0\.0\.1:\d+ \(session "default"\)\n$/);
  });
});

describe('loki-metrics check', () => {
  it('prints each source verdict and exits 0 for a clean tree, 1 for a broken one', async () => {
    const good = run(['check', '--dir', await materialize('running')]);
    expect(good.code).toBe(0);
    expect(good.stdout).toMatch(/dashboard-state\.json\s+ok/);
    expect(good.stdout).toMatch(/signals\/BUDGET_EXCEEDED\s+absent/);
    const bad = run(['check', '--dir', await materialize('malformed')]);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toMatch(/dashboard-state\.json\s+BAD\s+not valid JSON/);
    expect(bad.stdout).not.toMatch(/\x1b\[/); // not a terminal: no colour
  });

  it('reports a missing directory', () => {
    const missing = run(['check', '--dir', '/nonexistent/.loki']);
    expect(missing.code).toBe(1);
    expect(missing.stdout).toMatch(/unreadable/);
  });
});

describe('loki-metrics serve and scrape', () => {
  it('serves a tree, scrapes it as a table, raw and JSON, stops cleanly, and never writes the tree', async () => {
    const dir = await materialize('running', { pid: 'alive', mtimeMs: Date.now() });
    const before = await treeDigest(dir);
    const port = String(await freePort());
    const server = await serve(['--dir', dir, '--port', port]);
    expect(server.startup()).toContain(`serving ${dir} at http://127.0.0.1:${port}/metrics`);

    const table = run(['scrape', '--port', port]);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/Session\s+running/);
    expect(table.stdout).toMatch(/Cost\s+\$3\.53 of \$25\.00 budget/);
    expect(table.stdout).toMatch(/Tasks\s+3 pending, 2 in progress, 5 completed, 1 failed/);
    expect(table.stdout).toMatch(/Uptime\s+\d+h \d+m \d+s/);

    const raw = run(['scrape', '--port', port, '--raw']);
    expect(raw.stdout.split('\n').filter((l) => l.startsWith('loki_cost_usd'))).toEqual(['loki_cost_usd 3.5313']);
    const json = JSON.parse(run(['scrape', '--port', port, '--json']).stdout) as { name: string; value: number }[];
    expect(json.find((s) => s.name === 'loki_events_total')?.value).toBe(50);

    server.child.kill('SIGTERM');
    expect(await server.exited).toBe(0);
    expect(server.stderr()).toContain('stopped');
    expect(await treeDigest(dir)).toBe(before);
  });

  it('sends the bearer token from --token or LOKI_METRICS_TOKEN', async () => {
    const dir = await materialize('running', { pid: 'alive', mtimeMs: Date.now() });
    const token = 'cli-test-token-0123456789';
    const port = String(await freePort());
    await serve(['--dir', dir, '--port', port], { LOKI_METRICS_TOKEN: token });
    const denied = run(['scrape', '--port', port]);
    expect(denied.code).toBe(1);
    expect(denied.stderr).toMatch(/HTTP 401/);
    expect(run(['scrape', '--port', port, '--token', token]).code).toBe(0);
    expect(run(['scrape', '--port', port], { LOKI_METRICS_TOKEN: token }).code).toBe(0);
  });

  it('says it could not connect to the exporter, with one prefix, and exits 1 when nothing is listening', async () => {
    const port = String(await freePort());
    const result = run(['scrape', '--port', port]);
    expect(result.code).toBe(1);
    expect(result.stderr.split('\n')[0]).toBe(`loki-metrics: Could not connect to exporter at http://127.0.0.1:${port}/metrics`);
    expect(result.stderr).not.toMatch(/dashboard/);
    for (const line of result.stderr.trim().split('\n')) expect(line).toMatch(/^loki-metrics: /);
  });

  it('scrapes --url (with a query) and --host HOST:PORT', async () => {
    const dir = await materialize('running', { pid: 'alive', mtimeMs: Date.now() });
    const port = String(await freePort());
    await serve(['--dir', dir, '--port', port]);
    const byUrl = run(['scrape', '--url', `http://127.0.0.1:${port}/metrics?session=default`, '--raw']);
    expect(byUrl.code).toBe(0);
    expect(byUrl.stdout).toContain('loki_cost_usd 3.5313');
    expect(run(['scrape', '--url', `http://127.0.0.1:${port}`, '--raw']).stdout).toContain('loki_cost_usd 3.5313');
    const byHost = run(['scrape', '--host', `127.0.0.1:${port}`, '--raw']);
    expect(byHost.code).toBe(0);
    expect(byHost.stdout).toContain('loki_cost_usd 3.5313');
    expect(run(['scrape', '--host', `localhost:${port}`, '--raw']).code).toBe(0);
    const badScheme = run(['scrape', '--url', 'ftp://127.0.0.1/metrics']);
    expect(badScheme.code).toBe(2);
    expect(badScheme.stderr).toMatch(/^loki-metrics: --url must be http:\/\/ or https:\/\//);
    expect(run(['scrape', '--url', `http://127.0.0.1:${port}`, '--port', port]).code).toBe(2);
    expect(run(['scrape', '--host', '127.0.0.1:99999']).stderr).toMatch(/^loki-metrics: --host "127\.0\.0\.1:99999": the port must be from 1 to 65535/);
  });

  it('warns on a non-loopback address without a token, and only then', async () => {
    const dir = await materialize('running', { pid: 'alive', mtimeMs: Date.now() });
    const open = await serve(['--dir', dir, '--host', '0.0.0.0', '--port', String(await freePort())]);
    await until(() => open.stderr().includes('warning'), open.stderr);
    expect(open.stderr()).toMatch(/^loki-metrics: warning: listening on 0\.0\.0\.0 without LOKI_METRICS_TOKEN[^\n]*\n$/);
    const guarded = await serve(['--dir', dir, '--host', '0.0.0.0', '--port', String(await freePort())], { LOKI_METRICS_TOKEN: 'cli-test-token-0123456789' });
    const local = await serve(['--dir', dir, '--port', String(await freePort())]);
    await new Promise((r) => setTimeout(r, 200));
    expect(guarded.stderr()).toBe('');
    expect(local.stderr()).toBe('');
  });

  it('serves a web config: https in the startup line, no warning on 0.0.0.0 with basic auth; a bad one is one line and exit 2', async () => {
    const dir = await materialize('running', { pid: 'alive', mtimeMs: Date.now() });
    const certs = await tempDir('loki-cli-tls-');
    const ca = makeCa(certs, 'ca');
    issue(certs, ca, 'server');
    issue(certs, ca, 'other');
    const config = join(certs, 'web.yml');
    await writeFile(config, `tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\nbasic_auth_users:\n  prometheus: ${bcryptHash('prometheus', 'pw')}\n`);
    const port = String(await freePort());
    const secure = await serve(['--dir', dir, '--host', '0.0.0.0', '--port', port, '--web.config.file', config]);
    expect(secure.startup()).toContain(`at https://0.0.0.0:${port}/metrics`);
    await new Promise((r) => setTimeout(r, 200));
    expect(secure.stderr()).toBe('');

    const bad: [string, RegExp][] = [
      ['tls_server_config: [\n', /not valid YAML/],
      ['tls_server_config:\n  cert_file: server.crt\n  key_file: other.key\n', /the key in key_file does not match the certificate in cert_file$/],
      ['basic_auth_users:\n  prometheus: secret\n', /basic_auth_users\.prometheus: not a bcrypt hash/],
      ['tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  sni: x\n', /unknown field tls_server_config\.sni$/],
    ];
    for (const [yaml, expected] of bad) {
      await writeFile(config, yaml);
      for (const [args, env] of [[['--web.config.file', config], {}], [[], { LOKI_METRICS_WEB_CONFIG: config }]] as const) {
        const result = run(['serve', '--dir', dir, '--port', String(await freePort()), ...args], env);
        expect(result.code).toBe(2);
        expect(result.stdout).toBe('');
        const lines = result.stderr.trim().split('\n');
        expect(lines).toHaveLength(1);
        expect(lines[0]).toMatch(new RegExp(`^loki-metrics: web config ${config}: `));
        expect(lines[0]).toMatch(expected);
        expect(lines[0]).not.toContain('secret');
      }
    }
    const missing = run(['serve', '--dir', dir, '--web.config.file', join(certs, 'nope.yml')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toBe(`loki-metrics: web config ${join(certs, 'nope.yml')}: cannot read the web config file ${join(certs, 'nope.yml')}: no such file\n`);
  });

  it('serves several projects: --dir NAME=PATH, discovery, scrape --project and --all; bad fleet flags are one line and exit 2', async () => {
    const a = await materialize('running', { pid: 'alive', mtimeMs: Date.now() });
    const b = await materialize('paused', { pid: 'alive', mtimeMs: Date.now() });
    const port = String(await freePort());
    const fleet = await serve(['--dir', `alpha=${a}`, '--dir', `beta=${b}`, '--port', port]);
    expect(fleet.startup()).toBe(`loki-metrics 0.1.0 serving 2 projects (alpha, beta) at http://127.0.0.1:${port}/metrics?project=NAME; discovery at http://127.0.0.1:${port}/targets\n`);
    const targets = (await (await fetch(`http://127.0.0.1:${port}/targets`)).json()) as { labels: { project: string } }[];
    expect(targets.map((t) => t.labels.project)).toEqual(['alpha', 'beta']);
    const one = await runAsync(['scrape', '--port', port, '--project', 'beta']);
    expect(one.code).toBe(0);
    expect(one.stdout).toMatch(/^Session\s+paused$/m);
    const all = await runAsync(['scrape', '--port', port, '--all']);
    expect(all.code).toBe(0);
    const lines = all.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^PROJECT\s+SESSION\s+ITERATION\s+TASKS DONE\/FAILED\s+COST\s+STATE DIR$/);
    expect(lines[1]).toMatch(/^alpha\s+running\s+6\/1000\s+5\/1\s+\$3\.53\s+readable$/);
    expect(lines[2]).toMatch(/^beta\s+paused\s/);
    expect(lines.at(-1)).toMatch(/^2 projects, total cost \$/);
    // A plain /metrics has no default project here: it says how to choose.
    expect((await fetch(`http://127.0.0.1:${port}/metrics`)).status).toBe(404);

    const bad: [string[], Record<string, string>, RegExp][] = [
      [['--dir', a, '--dir', b], {}, /--dir PATH can be given once; name the others: --dir NAME=PATH/],
      [['--dir', `b@d=${a}`], {}, /invalid project name "b@d"/],
      [['--dir', `alpha=${a}`, '--dir', `alpha=${b}`], {}, /project alpha is given twice/],
      [['--dir', `default=${a}`, '--dir', b], {}, /project default is given twice/],
      [['--dir', `alpha=${a}`, '--demo'], {}, /--demo and --dir cannot be combined/],
      [['--projects-from-registry', '--demo-if-missing'], {}, /the demo serves one project/],
      [[], { LOKI_PROJECTS: 'alpha' }, /invalid LOKI_PROJECTS: each entry must be NAME=PATH/],
    ];
    for (const [args, env, expected] of bad) {
      const result = run(['serve', '--port', String(await freePort()), ...args], env);
      expect({ args, code: result.code }).toEqual({ args, code: 2 });
      expect(result.stderr.split('\n')[0]).toMatch(expected);
    }
  });

  it('does not announce a metrics URL when metrics are disabled', async () => {
    const dir = await materialize('running', { pid: 'alive', mtimeMs: Date.now() });
    const port = String(await freePort());
    const server = await serve(['--dir', dir, '--port', port], { LOKI_METRICS_ENABLED: 'false' });
    expect(server.startup()).not.toContain('/metrics');
    expect(server.startup()).toContain(`at http://127.0.0.1:${port}/health (metrics disabled by LOKI_METRICS_ENABLED=false)`);
    expect((await fetch(`http://127.0.0.1:${port}/health`)).status).toBe(200);
  });

  it('says at startup that a given directory is missing or not a directory (loki_up 0, /health degraded)', async () => {
    const port = String(await freePort());
    const missing = await serve(['--dir', '/nonexistent/.loki', '--port', port]);
    await until(() => missing.stderr().includes('\n'), missing.stderr);
    expect(missing.stderr().split('\n')[0]).toBe('loki-metrics: warning: no state directory at /nonexistent/.loki; serving loki_up 0 until it appears (see /health)');
    expect(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()).toMatch(/^loki_up 0$/m);
    const health = (await (await fetch(`http://127.0.0.1:${port}/health`)).json()) as { status: string; up: boolean; sources: { problem?: string }[] };
    expect(health).toMatchObject({ status: 'degraded', up: false });

    const file = join(await tempDir(), 'not-a-dir');
    await writeFile(file, 'x');
    const notDir = await serve(['--dir', file, '--port', String(await freePort())]);
    await until(() => notDir.stderr().includes('\n'), notDir.stderr);
    expect(notDir.stderr().split('\n')[0]).toBe(`loki-metrics: warning: ${file} is not a directory; serving loki_up 0 until it appears (see /health)`);
  });

  it('serves a changing demo session from a temporary directory with --demo', async () => {
    const port = String(await freePort());
    const server = await serve(['--demo', '--port', port]);
    expect(server.startup()).toContain('serving a demo session');
    const first = run(['scrape', '--port', port, '--json']);
    const events = (out: string) => (JSON.parse(out) as { name: string; value: number }[]).find((s) => s.name === 'loki_events_total')?.value ?? 0;
    expect(run(['scrape', '--port', port]).stdout).toMatch(/Session\s+running/);
    await new Promise((r) => setTimeout(r, 4_500)); // two demo steps plus the 2 s cache
    expect(events(run(['scrape', '--port', port, '--json']).stdout)).toBeGreaterThan(events(first.stdout));
    server.child.kill('SIGINT');
    expect(await server.exited).toBe(0);
  });

  it('serves the demo with --demo-if-missing only when no directory was given and ./.loki does not exist', async () => {
    const cwd = await tempDir();
    const port = String(await freePort());
    const server = await serve(['--demo-if-missing', '--port', port], {}, cwd);
    expect(server.startup()).toContain('serving a demo session (simulated data)');
    await until(() => server.stderr().includes('simulated, not a real'), server.stderr);
    expect(server.stderr()).toContain(`no state directory at ${join(cwd, '.loki')}; serving a simulated demo session`);
    server.child.kill('SIGTERM');
    expect(await server.exited).toBe(0);
  });

  it('never serves the demo for a directory given by --dir or LOKI_DIR that does not exist', async () => {
    const cwd = await tempDir();
    for (const [args, env] of [
      [['--dir', '/typo/.loki'], {}],
      [[], { LOKI_DIR: '/typo/.loki' }],
    ] as const) {
      const port = String(await freePort());
      const server = await serve(['--demo-if-missing', ...args, '--port', port], env, cwd);
      expect(server.startup()).toContain('serving /typo/.loki at');
      expect(server.startup()).not.toContain('demo');
      const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      expect(metrics).toMatch(/^loki_up 0$/m);
      await until(() => server.stderr().includes('\n'), server.stderr);
      expect(server.stderr()).not.toContain('demo');
      expect(server.stderr()).toContain('no state directory at /typo/.loki');
    }
  });
});
