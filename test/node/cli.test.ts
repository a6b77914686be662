/**
 * The real `loki-metrics` binary (the compiled `dist/src/node/cli.js` that `bin` points at), run as
 * a child process: exit codes, output streams and signals are part of what is tested.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { cleanTrees, materialize, treeDigest } from '../support/loki-tree.js';

const CLI = new URL('../../dist/src/node/cli.js', import.meta.url).pathname;
const children: ChildProcess[] = [];

beforeAll(() => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run the build first (npm test does: tsc, then vitest)`);
});

afterEach(async () => {
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
  await cleanTrees();
});

const ENV = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp' };

function run(args: string[], env: Record<string, string> = {}) {
  const result = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...ENV, ...env }, timeout: 15_000 });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
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
async function serve(args: string[], env: Record<string, string> = {}) {
  const child = spawn(process.execPath, [CLI, 'serve', ...args], { env: { ...ENV, ...env } });
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
    expect(run(['serve', '--port', 'http']).stderr).toMatch(/LOKI_METRICS_PORT/);
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

  it("prints the guide's message and exits 1 when nothing is listening", async () => {
    const port = String(await freePort());
    const result = run(['scrape', '--port', port]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`Error: Could not connect to dashboard at http://127.0.0.1:${port}/metrics`);
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

  it('serves the demo with --demo-if-missing only when the directory does not exist', async () => {
    const port = String(await freePort());
    const server = await serve(['--demo-if-missing', '--dir', '/nonexistent/.loki', '--port', port]);
    expect(server.stderr()).toMatch(/no state directory at \/nonexistent\/\.loki; serving a simulated demo session/);
    expect(server.startup()).toContain('demo session');
  });
});
