/**
 * src/node/cli/serve.ts in this process, on real loopback sockets over real `.loki` trees, stopped
 * as the command is: by SIGINT or SIGTERM (emitted to this process's listeners). What it says at
 * startup and on the way out, what the flags and settings serve, its warnings, the demo and the
 * fleet, and that it leaves nothing behind: no server, watch, listener or temporary directory.
 */
import { readdir as readdirAll, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { homedir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ConfigError } from '../../../src/config.js';
import { UsageError } from '../../../src/node/cli/common.js';
import { serve } from '../../../src/node/cli/serve.js';
import { USAGE } from '../../../src/node/cli/usage.js';
import { VERSION } from '../../../src/version.js';
import { bcryptHash } from '../../support/certs.js';
import { cleanTrees, materialize, tempDir } from '../../support/loki-tree.js';
import { capture, freePort } from './io.js';

type Signal = 'SIGINT' | 'SIGTERM';
const SIGNALS: readonly Signal[] = ['SIGINT', 'SIGTERM'];
const listeners = () => SIGNALS.map((s) => process.listenerCount(s));
/** The inotify watches this process holds (Linux): a served directory's, until its store is closed. */
function watches(): number {
  let count = 0;
  for (const fd of readdirSync('/proc/self/fdinfo')) {
    try {
      count += readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8').split('\n').filter((line) => line.startsWith('inotify wd:')).length;
    } catch {
      // closed meanwhile
    }
  }
  return count;
}

let baseline: { listeners: number[]; watches: number };
const running: Promise<unknown>[] = [];

beforeEach(() => {
  baseline = { listeners: listeners(), watches: watches() };
});

afterEach(async () => {
  if (running.length > 0) process.emit('SIGTERM'); // a test that failed midway
  await Promise.allSettled(running.splice(0));
  vi.unstubAllEnvs();
  await cleanTrees();
});

/** Starts `serve`; resolves once it printed its startup line (rejects if it ended first). */
async function start(args: string[], env: NodeJS.ProcessEnv = {}) {
  const c = capture(env);
  const done = serve(args, c.io);
  running.push(done.catch(() => undefined));
  await Promise.race([
    c.until(() => c.out().includes('\n')),
    done.then((code) => {
      throw new Error(`serve ended (${code}) before its startup line: ${c.err()}`);
    }),
  ]);
  return {
    ...c,
    /** Sends `signal` and resolves with the exit code. */
    stop: async (signal: Signal = 'SIGTERM') => {
      process.emit(signal);
      // The first signal stops the listening at once: a second one would end the process.
      expect(listeners()).toEqual(baseline.listeners);
      return done;
    },
  };
}

/** Runs `serve` to its end (a refusal): the error it threw. */
async function refusal(args: string[], env: NodeJS.ProcessEnv = {}) {
  const c = capture(env);
  const error = await serve(args, c.io).then(
    (code) => new Error(`serve returned ${code}: ${c.err()}`),
    (e: unknown) => e,
  );
  expect(c.out()).toBe('');
  return error as Error;
}

/** Nothing left: no signal listener, no directory watch. */
function expectNothingLeft() {
  expect(listeners()).toEqual(baseline.listeners);
  expect(watches()).toBe(baseline.watches);
}

const get = async (url: string) => {
  const response = await fetch(url);
  return { status: response.status, text: await response.text() };
};

/** GET with a Host header fetch will not send. */
function getWithHost(port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    request({ host: '127.0.0.1', port, path: '/metrics', headers: { Host: host } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    })
      .once('error', reject)
      .end();
  });
}

const live = (name = 'running') => materialize(name, { pid: 'alive', mtimeMs: Date.now() });

describe('serve one directory', () => {
  for (const signal of SIGNALS) {
    it(`serves it until ${signal}, then says so, exit 0, leaving nothing behind`, async () => {
      const dir = await live();
      const port = await freePort();
      const server = await start(['--dir', dir, '--port', String(port)]);
      expect(server.out()).toBe(`loki-metrics ${VERSION} serving ${dir} at http://127.0.0.1:${port}/metrics\n`);
      expect(server.err()).toBe('');
      const metrics = await get(`http://127.0.0.1:${port}/metrics`);
      expect(metrics.status).toBe(200);
      expect(metrics.text).toMatch(/^loki_up 1$/m);
      expect(metrics.text).toMatch(/^loki_cost_usd 3\.5313$/m);
      expect(watches()).toBeGreaterThan(baseline.watches); // the directory's, read for /metrics
      expect(await server.stop(signal)).toBe(0);
      expect(server.err()).toBe('loki-metrics: stopped\n');
      await expect(fetch(`http://127.0.0.1:${port}/metrics`)).rejects.toThrow();
      expectNothingLeft();
    });
  }

  it('serves at --host, --port and --path, over the environment', async () => {
    const dir = await live();
    const port = await freePort('127.0.0.2');
    const server = await start(['--dir', dir, '--host', '127.0.0.2', '--port', String(port), '--path', '/custom'], {
      LOKI_METRICS_HOST: '127.0.0.3',
      LOKI_METRICS_PORT: '1',
      LOKI_METRICS_PATH: '/other',
      LOKI_DIR: '/nonexistent/.loki',
    });
    expect(server.out()).toBe(`loki-metrics ${VERSION} serving ${dir} at http://127.0.0.2:${port}/custom\n`);
    expect((await get(`http://127.0.0.2:${port}/custom`)).text).toMatch(/^loki_up 1$/m);
    expect(await server.stop()).toBe(0);
  });

  it('serves the directory, host, port and path the environment gives', async () => {
    const dir = await live();
    const port = await freePort('127.0.0.2');
    const server = await start([], { LOKI_DIR: dir, LOKI_METRICS_HOST: '127.0.0.2', LOKI_METRICS_PORT: String(port), LOKI_METRICS_PATH: '/other' });
    expect(server.out()).toBe(`loki-metrics ${VERSION} serving ${dir} at http://127.0.0.2:${port}/other\n`);
    expect(await server.stop()).toBe(0);
  });

  it('announces /health, not a metrics URL, when metrics are disabled', async () => {
    const dir = await live();
    const port = await freePort();
    const server = await start(['--dir', dir, '--port', String(port)], { LOKI_METRICS_ENABLED: 'false' });
    expect(server.out()).toBe(`loki-metrics ${VERSION} serving ${dir} at http://127.0.0.1:${port}/health (metrics disabled by LOKI_METRICS_ENABLED=false)\n`);
    expect((await get(`http://127.0.0.1:${port}/health`)).status).toBe(200);
    expect(await server.stop()).toBe(0);
  });

  it('prints what the server logs on stderr, a line each', async () => {
    const dir = await materialize('malformed');
    const port = await freePort();
    const server = await start(['--dir', dir, '--port', String(port)]);
    await get(`http://127.0.0.1:${port}/metrics`);
    const line = 'loki-metrics: dashboard-state.json: not valid JSON (torn mid-write?)\n';
    await server.until(() => server.err().includes(line));
    expect(server.err().split('\n').filter((l) => l !== '').every((l) => l.startsWith('loki-metrics: '))).toBe(true);
    expect(await server.stop()).toBe(0);
  });

  it('warns when a given directory is missing or not one, and serves loki_up 0', async () => {
    const port = await freePort();
    const missing = await start(['--dir', '/nonexistent/.loki', '--port', String(port)]);
    expect(missing.err()).toBe('loki-metrics: warning: no state directory at /nonexistent/.loki; serving loki_up 0 until it appears (see /health)\n');
    expect(missing.out()).toBe(`loki-metrics ${VERSION} serving /nonexistent/.loki at http://127.0.0.1:${port}/metrics\n`);
    expect((await get(`http://127.0.0.1:${port}/metrics`)).text).toMatch(/^loki_up 0$/m);
    expect(await missing.stop()).toBe(0);

    const file = join(await tempDir(), 'not-a-dir');
    await writeFile(file, 'x');
    const notDir = await start(['--port', String(await freePort())], { LOKI_DIR: file });
    expect(notDir.err()).toBe(`loki-metrics: warning: ${file} is not a directory; serving loki_up 0 until it appears (see /health)\n`);
    expect(await notDir.stop()).toBe(0);
  });

  it('resolves a relative directory against the working directory', async () => {
    const server = await start(['--dir', 'no-such-dir/.loki', '--port', String(await freePort())]);
    expect(server.out()).toContain(` serving ${resolve('no-such-dir/.loki')} at `);
    expect(await server.stop()).toBe(0);
  });

  it('warns that anyone can read it on an address other than loopback without credentials, and only then', async () => {
    const dir = await live();
    const open = await start(['--dir', dir, '--host', '0.0.0.0', '--port', String(await freePort('0.0.0.0'))]);
    expect(open.err()).toBe(
      'loki-metrics: warning: listening on 0.0.0.0 without LOKI_METRICS_TOKEN or a web config with basic_auth_users or verified client certificates: anyone who can reach it can read the metrics\n',
    );
    expect(await open.stop()).toBe(0);

    const token = await start(['--dir', dir, '--host', '0.0.0.0', '--port', String(await freePort('0.0.0.0'))], { LOKI_METRICS_TOKEN: 'serve-token-0123456789' });
    expect(token.err()).toBe('');
    expect(await token.stop()).toBe(0);

    const config = join(await tempDir(), 'web.yml');
    await writeFile(config, `basic_auth_users:\n  prometheus: ${bcryptHash('prometheus', 'pw')}\n`);
    const basicAuth = await start(['--dir', dir, '--host', '0.0.0.0', '--port', String(await freePort('0.0.0.0')), '--web.config.file', config]);
    expect(basicAuth.err()).toBe('');
    expect(await basicAuth.stop()).toBe(0);

    const loopback = await start(['--dir', dir, '--host', '127.0.0.1', '--port', String(await freePort())]);
    expect(loopback.err()).toBe('');
    expect(await loopback.stop()).toBe(0);
  });

  it('answers the Host names --allowed-hosts lists, over LOKI_METRICS_ALLOWED_HOSTS', async () => {
    const dir = await live();
    const port = await freePort();
    const server = await start(['--dir', dir, '--port', String(port), '--allowed-hosts', 'proxy.internal'], { LOKI_METRICS_ALLOWED_HOSTS: 'other.internal' });
    expect(await getWithHost(port, 'proxy.internal')).toBe(200);
    expect(await getWithHost(port, 'other.internal')).not.toBe(200);
    expect(await server.stop()).toBe(0);
  });

  it('refuses a bad web config with the flag or the variable, before serving and leaving nothing behind', async () => {
    const dir = await live();
    const config = join(await tempDir(), 'web.yml');
    await writeFile(config, 'basic_auth_users:\n  prometheus: secret\n');
    for (const [args, env] of [[['--web.config.file', config], {}], [[], { LOKI_METRICS_WEB_CONFIG: config }]] as const) {
      const error = await refusal(['--dir', dir, '--port', String(await freePort()), ...args], env);
      expect(error.message).toMatch(new RegExp(`^web config ${config}: .*basic_auth_users\\.prometheus: not a bcrypt hash`));
      expectNothingLeft();
    }
  });

  it('fails to start on a port in use, leaving nothing behind', async () => {
    const port = await freePort();
    const first = await start(['--dir', await live(), '--port', String(port)]);
    const error = await refusal(['--dir', await live(), '--port', String(port)]);
    expect(error.message).toBe(`port ${port} on 127.0.0.1 is already served by another loki-metrics: scrape that one, or stop it first`);
    expect(listeners()).toEqual(SIGNALS.map((_, i) => baseline.listeners[i]! + 1)); // the first one's
    expect(await first.stop()).toBe(0);
    expectNothingLeft();
  });

  it('refuses bad flags and settings, naming the flag', async () => {
    const cases: [string[], NodeJS.ProcessEnv, typeof UsageError | typeof ConfigError, string][] = [
      [['--port', 'abc'], {}, ConfigError, 'invalid --port "abc": must be a whole number from 1 to 65535'],
      [[], { LOKI_METRICS_PORT: 'abc' }, ConfigError, 'invalid LOKI_METRICS_PORT "abc": must be a whole number from 1 to 65535'],
      [['--host', 'a b'], {}, ConfigError, 'invalid --host "a b": must be a host name or IP address'],
      [['--path', '/health'], {}, ConfigError, 'invalid --path "/health": must not be / or /health'],
      [['--allowed-hosts', 'a b'], {}, ConfigError, 'invalid --allowed-hosts "a b": must be host names separated by commas, or *'],
      [['--registry-file', ' '], { LOKI_PROJECTS_FROM_REGISTRY: 'true' }, ConfigError, 'invalid --registry-file " ": must not be empty'],
      [['--dir', ' '], {}, ConfigError, 'invalid --dir " ": must not be empty'],
      [['--web.config.file', 'a\nb'], {}, ConfigError, 'invalid --web.config.file "a\\nb": must be a file path'],
      [['--demo', '--dir', '/tmp'], {}, UsageError, '--demo and --dir cannot be combined: the demo serves its own temporary directory'],
      [['--dir', '/a', '--dir', '/b'], {}, UsageError, '--dir PATH can be given once; name the others: --dir NAME=PATH'],
      [['stray'], {}, UsageError, "Unexpected argument 'stray'. This command does not take positional arguments"],
    ];
    for (const [args, env, type, message] of cases) {
      const error = await refusal(args, env);
      expect({ args, type: error.constructor.name, message: error.message }).toEqual({ args, type: type.name, message });
      expectNothingLeft();
    }
    const help = capture();
    expect(await serve(['--help'], help.io)).toBe(0);
    expect(help.out()).toBe(USAGE.serve);
    expectNothingLeft();
  });
});

describe('serve --demo', () => {
  let tmp: string;
  beforeEach(async () => {
    tmp = await tempDir('loki-cli-demo-tmp-');
    vi.stubEnv('TMPDIR', tmp); // where the demo makes its directory
  });

  /** The demo directories made in `tmp` (the tests' trees are made there too). */
  const readdir = async (dir: string) => (await readdirAll(dir)).filter((name) => name.startsWith('loki-metrics-demo-'));
  const simulated = 'loki-metrics: demo: the metrics are simulated, not a real Loki Mode session; run Loki Mode here, or pass --dir /path/to/.loki, to watch a real one.\n';

  it('serves a simulated session from a temporary directory, says so, and removes it on the way out', async () => {
    const port = await freePort();
    const server = await start(['--demo', '--port', String(port)]);
    expect(server.out()).toBe(`loki-metrics ${VERSION} serving a demo session (simulated data) at http://127.0.0.1:${port}/metrics\n`);
    expect(server.err()).toBe(simulated);
    const [made] = await readdir(tmp);
    expect(made).toMatch(/^loki-metrics-demo-/);
    const metrics = (await get(`http://127.0.0.1:${port}/metrics`)).text;
    expect(metrics).toMatch(/^loki_up 1$/m);
    expect(metrics).toMatch(/^loki_exporter_build_info\{[^}]*demo="true"/m);
    expect(await server.stop('SIGINT')).toBe(0);
    expect(server.err()).toBe(`${simulated}loki-metrics: stopped\n`);
    expect(await readdir(tmp)).toEqual([]);
    expectNothingLeft();
  });

  it('--demo-if-missing serves the demo when no directory was given and ./.loki does not exist', async () => {
    expect(existsSync(resolve('.loki'))).toBe(false); // the working directory this test runs in
    const server = await start(['--demo-if-missing', '--port', String(await freePort())]);
    expect(server.err()).toBe(`loki-metrics: no state directory at ${resolve('.loki')}; serving a simulated demo session instead.\n${simulated}`);
    expect(server.out()).toContain('serving a demo session (simulated data) at');
    expect(await server.stop()).toBe(0);
    expect(await readdir(tmp)).toEqual([]);
  });

  it('--demo-if-missing never replaces a directory given by --dir or LOKI_DIR, missing or not', async () => {
    const dir = await live();
    for (const [args, env, shown] of [
      [['--dir', '/typo/.loki'], {}, '/typo/.loki'],
      [[], { LOKI_DIR: '/typo/.loki' }, '/typo/.loki'],
      [['--dir', dir], {}, dir],
    ] as const) {
      const port = await freePort();
      const server = await start(['--demo-if-missing', ...args, '--port', String(port)], env);
      expect(server.out()).toBe(`loki-metrics ${VERSION} serving ${shown} at http://127.0.0.1:${port}/metrics\n`);
      expect(server.err()).not.toContain('demo');
      expect(await server.stop()).toBe(0);
      expect(await readdir(tmp)).toEqual([]);
    }
  });

  it('removes the demo\'s directory when the server cannot start', async () => {
    const config = join(await tempDir(), 'web.yml');
    await writeFile(config, 'tls_server_config: [\n');
    const error = await refusal(['--demo', '--port', String(await freePort()), '--web.config.file', config]);
    expect(error.message).toMatch(new RegExp(`^web config ${config}: .*not valid YAML`));
    expect(await readdir(tmp)).toEqual([]);
    expectNothingLeft();
  });
});

describe('serve a fleet', () => {
  it('serves --dir NAME=PATH projects, says which and where, with discovery', async () => {
    const a = await live();
    const b = await live('paused');
    const port = await freePort();
    const server = await start(['--dir', `alpha=${a}`, '--dir', `beta=${b}`, '--port', String(port)]);
    expect(server.out()).toBe(`loki-metrics ${VERSION} serving 2 projects (alpha, beta) at http://127.0.0.1:${port}/metrics?project=NAME; discovery at http://127.0.0.1:${port}/targets\n`);
    expect(server.err()).toBe('');
    const targets = JSON.parse((await get(`http://127.0.0.1:${port}/targets`)).text) as { labels: { project: string } }[];
    expect(targets.map((t) => t.labels.project)).toEqual(['alpha', 'beta']);
    expect((await get(`http://127.0.0.1:${port}/metrics?project=beta`)).text).toMatch(/^loki_session_status 2$/m);
    // No plain directory: no default project.
    expect((await get(`http://127.0.0.1:${port}/metrics`)).status).toBe(404);
    expect(await server.stop()).toBe(0);
    expect(server.err()).toBe('loki-metrics: stopped\n');
    expectNothingLeft();
  });

  it('serves the plain --dir or LOKI_DIR as the project default, first', async () => {
    const a = await live();
    const d = await live('paused');
    for (const [args, env] of [[['--dir', d], {}], [[], { LOKI_DIR: d }]] as const) {
      const port = await freePort();
      const server = await start(['--dir', `alpha=${a}`, ...args, '--port', String(port)], env);
      expect(server.out()).toMatch(/ serving 2 projects \(default, alpha\) at /);
      expect((await get(`http://127.0.0.1:${port}/metrics`)).text).toMatch(/^loki_session_status 2$/m);
      expect(await server.stop()).toBe(0);
    }
  });

  it('takes a project named default as the default without a plain directory', async () => {
    const port = await freePort();
    const server = await start(['--dir', `default=${await live('paused')}`, '--port', String(port)]);
    expect(server.out()).toMatch(/ serving 1 project \(default\) at /);
    expect((await get(`http://127.0.0.1:${port}/metrics?project=default`)).text).toMatch(/^loki_session_status 2$/m);
    expect(await server.stop()).toBe(0);
  });

  it('prints what the fleet server and the catalog log on stderr, a line each', async () => {
    const root = await tempDir('loki-cli-registry-');
    const registry = join(root, 'projects.json');
    await writeFile(registry, JSON.stringify({ version: '1.0', projects: { abc: { path: join(root, 'gone'), name: 'gone' } } }));
    const port = await freePort();
    const server = await start(['--dir', `alpha=${await materialize('malformed')}`, '--projects-from-registry', '--registry-file', registry, '--port', String(port)]);
    expect(server.err()).toMatch(/^loki-metrics: project registry .*gone.*\n$/); // the catalog's, at startup
    await get(`http://127.0.0.1:${port}/metrics?project=alpha`);
    await server.until(() => server.err().includes('loki-metrics: dashboard-state.json: not valid JSON (torn mid-write?)\n'));
    expect(await server.stop()).toBe(0);
  });

  it('takes LOKI_PROJECTS with the --dir NAME=PATH ones, and says "1 project"', async () => {
    const a = await live();
    const b = await live('paused');
    const env = await start(['--port', String(await freePort())], { LOKI_PROJECTS: `alpha=${a}` });
    expect(env.out()).toMatch(/ serving 1 project \(alpha\) at /);
    expect(await env.stop()).toBe(0);
    const both = await start(['--dir', `beta=${b}`, '--port', String(await freePort())], { LOKI_PROJECTS: `alpha=${a}` });
    expect(both.out()).toMatch(/ serving 2 projects \(alpha, beta\) at /);
    expect(await both.stop()).toBe(0);
  });

  it('names eight projects and then "..."', async () => {
    const dir = await live();
    const names = Array.from({ length: 9 }, (_, i) => `p${i + 1}`);
    const server = await start([...names.flatMap((n) => ['--dir', `${n}=${dir}`]), '--port', String(await freePort())]);
    expect(server.out()).toMatch(/ serving 9 projects \(p1, p2, p3, p4, p5, p6, p7, p8, \.\.\.\) at /);
    expect(await server.stop()).toBe(0);
    const eight = await start([...names.slice(0, 8).flatMap((n) => ['--dir', `${n}=${dir}`]), '--port', String(await freePort())]);
    expect(eight.out()).toMatch(/ serving 8 projects \(p1, p2, p3, p4, p5, p6, p7, p8\) at /);
    expect(await eight.stop()).toBe(0);
  });

  it('warns about each project whose directory is missing', async () => {
    const a = await live();
    const server = await start(['--dir', `alpha=${a}`, '--dir', 'beta=/nonexistent/b/.loki', '--dir', '/nonexistent/d/.loki', '--port', String(await freePort())]);
    expect(server.err()).toBe(
      'loki-metrics: warning: project default: no state directory at /nonexistent/d/.loki; serving loki_up 0 until it appears (see /health?project=default)\n' +
        'loki-metrics: warning: project beta: no state directory at /nonexistent/b/.loki; serving loki_up 0 until it appears (see /health?project=beta)\n',
    );
    expect(await server.stop()).toBe(0);
  });

  it('follows the registry file of --projects-from-registry, ~ being the home directory', async () => {
    const root = await tempDir('loki-cli-registry-');
    const project = dirname(await live());
    const registry = join(root, 'projects.json');
    await writeFile(registry, JSON.stringify({ version: '1.0', projects: { abc: { path: project, name: 'gamma', status: 'running' } } }));
    const port = await freePort();
    const server = await start(['--projects-from-registry', '--registry-file', registry, '--port', String(port)]);
    expect(server.out()).toBe(
      `loki-metrics ${VERSION} serving 1 project (gamma) and the registry ${registry} at http://127.0.0.1:${port}/metrics?project=NAME; discovery at http://127.0.0.1:${port}/targets\n`,
    );
    expect((await get(`http://127.0.0.1:${port}/metrics?project=gamma`)).text).toMatch(/^loki_up 1$/m);
    expect(await server.stop()).toBe(0);
    expectNothingLeft();

    // The environment's file, under the home directory (only looked at: it is not there): none yet.
    const missing = `loki-cli-test-${basename(root)}.json`;
    const empty = await start(['--port', String(await freePort())], { LOKI_PROJECTS_FROM_REGISTRY: 'true', LOKI_REGISTRY_FILE: `~/${missing}` });
    expect(empty.out()).toContain(` serving 0 projects (none yet) and the registry ${join(homedir(), missing)} at `);
    expect(await empty.stop()).toBe(0);
    // `~` only at the start is the home directory: `~name` is none, nor a `~` further on; `~` alone is.
    const inside = await start(['--projects-from-registry', '--registry-file', join(root, '~', 'projects.json'), '--port', String(await freePort())]);
    expect(inside.out()).toContain(` and the registry ${join(root, '~', 'projects.json')} at `);
    expect(await inside.stop()).toBe(0);
    const tilde = await start(['--projects-from-registry', '--registry-file', '~reg/projects.json', '--port', String(await freePort())]);
    expect(tilde.out()).toContain(` and the registry ${resolve('~reg/projects.json')} at `);
    expect(await tilde.stop()).toBe(0);
    const bare = await start(['--projects-from-registry', '--registry-file', '~', '--port', String(await freePort())]);
    expect(bare.out()).toContain(` and the registry ${homedir()} at `);
    expect(await bare.stop()).toBe(0);
  });

  it('refuses the demo, repeated names and bad names with projects, leaving nothing behind', async () => {
    const a = await live();
    const cases: [string[], NodeJS.ProcessEnv, typeof UsageError | typeof ConfigError, string][] = [
      [['--dir', `alpha=${a}`, '--demo-if-missing'], {}, UsageError, 'the demo serves one project: not with --dir NAME=PATH, LOKI_PROJECTS or the registry'],
      [['--demo'], { LOKI_PROJECTS: `alpha=${a}` }, UsageError, 'the demo serves one project: not with --dir NAME=PATH, LOKI_PROJECTS or the registry'],
      [['--projects-from-registry', '--demo'], {}, UsageError, 'the demo serves one project: not with --dir NAME=PATH, LOKI_PROJECTS or the registry'],
      [['--dir', `alpha=${a}`, '--demo'], {}, UsageError, '--demo and --dir cannot be combined: the demo serves its own temporary directory'],
      [['--dir', `alpha=${a}`, '--dir', `alpha=${a}`], {}, ConfigError, 'project alpha is given twice'],
      [['--dir', `default=${a}`, '--dir', a], {}, ConfigError, 'project default is given twice'],
      [['--dir', `default=${a}`], { LOKI_DIR: a }, ConfigError, 'project default is given twice'],
      [['--dir', `alpha=${a}`], { LOKI_PROJECTS: `alpha=${a}` }, ConfigError, 'project alpha is given twice'],
      [['--dir', `b@d=${a}`], {}, ConfigError, 'invalid project name "b@d": use 1-64 characters of A-Z a-z 0-9 . _ - starting with a letter or digit'],
      [[], { LOKI_PROJECTS: 'alpha' }, ConfigError, 'invalid LOKI_PROJECTS: each entry must be NAME=PATH'],
    ];
    for (const [args, env, type, message] of cases) {
      const error = await refusal([...args, '--port', String(await freePort())], env);
      expect({ args, type: error.constructor.name, message: error.message }).toEqual({ args, type: type.name, message });
      expectNothingLeft();
    }
  });

  it('closes the catalog when the fleet server cannot start', async () => {
    const config = join(await tempDir(), 'web.yml');
    await writeFile(config, 'tls_server_config: [\n');
    const error = await refusal(['--dir', `alpha=${await live()}`, '--port', String(await freePort()), '--web.config.file', config]);
    expect(error.message).toMatch(/not valid YAML/);
    expectNothingLeft();
  });
});
