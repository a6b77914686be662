/**
 * src/node/cli/main.ts in this process: the dispatch (help, version, unknown commands), how an error
 * becomes one line and an exit code, the process's Io, and the commands that live there (`check`,
 * `token`, `sync`) against real `.loki` trees and a real loopback remote.
 */
import { writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ANSI_PAINT, NO_PAINT } from '../../../src/cli/report.js';
import { main, processIo } from '../../../src/node/cli/main.js';
import { USAGE } from '../../../src/node/cli/usage.js';
import { runSync, type SyncOptions } from '../../../src/node/sync.js';
import { sessionSyncToken } from '../../../src/sync/tokens.js';
import { VERSION } from '../../../src/version.js';
import { cleanTrees, materialize, tempDir } from '../../support/loki-tree.js';
import { capture, freePort, httpServer, type Received } from './io.js';

// runSync as it is, watched: what `sync`'s flags become is part of what is tested.
vi.mock('../../../src/node/sync.js', async (importOriginal) => {
  const actual = await importOriginal<typeof import('../../../src/node/sync.js')>();
  return { ...actual, runSync: vi.fn(actual.runSync) };
});
const syncOptions = (): SyncOptions => {
  const calls = vi.mocked(runSync).mock.calls;
  expect(calls).toHaveLength(1);
  return calls[0]![0];
};

const SIGNALS = ['SIGINT', 'SIGTERM'] as const;
const listeners = () => SIGNALS.map((s) => process.listenerCount(s));
let baseline: number[];

beforeEach(() => {
  vi.mocked(runSync).mockClear();
  baseline = listeners();
});

afterEach(async () => {
  await cleanTrees();
  // No command leaves a signal listener behind (the process could not be stopped by a second signal).
  expect(listeners()).toEqual(baseline);
});

async function run(args: string[], env: NodeJS.ProcessEnv = {}) {
  const c = capture(env);
  const code = await main(args, c.io);
  return { code, out: c.out(), err: c.err() };
}

const pointer = (command = '') => `Run 'loki-metrics ${command}--help' for usage.\n`;

describe('dispatch', () => {
  it('prints the usage: exit 2 without a command, 0 when asked for', async () => {
    expect(await run([])).toEqual({ code: 2, out: USAGE.main, err: '' });
    for (const ask of ['-h', '--help', 'help']) expect(await run([ask])).toEqual({ code: 0, out: USAGE.main, err: '' });
  });

  it('prints the version for -V, -v, --version and version', async () => {
    for (const ask of ['-V', '-v', '--version', 'version']) expect(await run([ask])).toEqual({ code: 0, out: `${VERSION}\n`, err: '' });
    expect(VERSION).toMatch(/^\d+\.\d+\.\d+$/);
  });

  it('prints one command\'s usage for help <command> and <command> --help', async () => {
    for (const command of ['serve', 'scrape', 'check', 'sync', 'token']) {
      expect(await run(['help', command])).toEqual({ code: 0, out: USAGE[command], err: '' });
      expect(await run([command, '--help'])).toEqual({ code: 0, out: USAGE[command], err: '' });
      expect(await run([command, '-h'])).toEqual({ code: 0, out: USAGE[command], err: '' });
    }
  });

  it('refuses help with an unknown command or more than one, exit 2 with a pointer to --help', async () => {
    expect(await run(['help', 'bogus'])).toEqual({ code: 2, out: '', err: `loki-metrics: unknown command "bogus"\n${pointer()}` });
    expect(await run(['help', 'serve', 'scrape'])).toEqual({ code: 2, out: '', err: `loki-metrics: help takes one command, not 2\n${pointer()}` });
    expect(await run(['help', 'serve', 'scrape', 'check'])).toEqual({ code: 2, out: '', err: `loki-metrics: help takes one command, not 3\n${pointer()}` });
  });

  it('refuses an unknown command with exit 2, Object.prototype\'s names too', async () => {
    expect(await run(['frobnicate'])).toEqual({ code: 2, out: '', err: `loki-metrics: unknown command "frobnicate"\n${pointer()}` });
    // A plain object's lookup once found these: `toString` returned a string as the exit code.
    for (const name of ['toString', 'constructor', 'hasOwnProperty', '__proto__']) {
      expect(await run([name])).toEqual({ code: 2, out: '', err: `loki-metrics: unknown command ${JSON.stringify(name)}\n${pointer()}` });
      expect(await run(['help', name])).toEqual({ code: 2, out: '', err: `loki-metrics: unknown command ${JSON.stringify(name)}\n${pointer()}` });
    }
  });

  it('points a command\'s usage mistake at that command\'s --help, exit 2', async () => {
    expect(await run(['scrape', '--bogus'])).toEqual({ code: 2, out: '', err: `loki-metrics: Unknown option '--bogus'\n${pointer('scrape ')}` });
    expect(await run(['check', 'extra'])).toMatchObject({ code: 2, err: expect.stringMatching(new RegExp(`^loki-metrics: Unexpected argument 'extra'.*\n${pointer('check ')}$`)) });
  });

  it('prints a bad setting as one line without a pointer, exit 2', async () => {
    expect(await run(['check', '--dir', '/x'], { LOKI_MAX_ITERATIONS: 'many' })).toEqual({
      code: 2,
      out: '',
      err: 'loki-metrics: invalid LOKI_MAX_ITERATIONS "many": must be a whole number from 1 to 1000000000\n',
    });
  });

  it('prints any other failure as one line, exit 1', async () => {
    const failing = (thrown: unknown) => {
      const c = capture();
      return { c, io: { ...c.io, out: () => { throw thrown; } } };
    };
    const error = failing(new Error('write EPIPE'));
    expect(await main(['--version'], error.io)).toBe(1);
    expect(error.c.err()).toBe('loki-metrics: write EPIPE\n');
    const notAnError = failing('stdout is gone');
    expect(await main(['help', 'token'], notAnError.io)).toBe(1);
    expect(notAnError.c.err()).toBe('loki-metrics: stdout is gone\n');
  });
});

describe('processIo', () => {
  const proc = (isTTY: boolean | undefined, env: NodeJS.ProcessEnv) => {
    const written = { stdout: [] as string[], stderr: [] as string[] };
    return {
      written,
      io: processIo({
        stdout: { ...(isTTY === undefined ? {} : { isTTY }), write: (text: string) => written.stdout.push(text) },
        stderr: { write: (text: string) => written.stderr.push(text) },
        env,
      }),
    };
  };

  it('paints only a terminal, and not with NO_COLOR set', () => {
    expect(proc(true, {}).io.paint).toBe(ANSI_PAINT);
    expect(proc(true, { NO_COLOR: '1' }).io.paint).toBe(NO_PAINT);
    expect(proc(true, { NO_COLOR: '' }).io.paint).toBe(ANSI_PAINT); // no-color.org: set and not empty
    expect(proc(false, {}).io.paint).toBe(NO_PAINT);
    expect(proc(undefined, {}).io.paint).toBe(NO_PAINT);
  });

  it('writes out to stdout and err to stderr, and reads the given environment', () => {
    const env = { LOKI_DIR: '/x' };
    const { io, written } = proc(false, env);
    io.out('to stdout');
    io.err('to stderr');
    expect(written).toEqual({ stdout: ['to stdout'], stderr: ['to stderr'] });
    expect(io.env).toBe(env);
  });
});

describe('check', () => {
  it('prints each source\'s verdict in columns and exits 0 for a clean tree', async () => {
    const dir = await materialize('running');
    const { code, out, err } = await run(['check', '--dir', dir]);
    expect({ code, err }).toEqual({ code: 0, err: '' });
    const lines = out.split('\n');
    expect(lines[0]).toBe(`${dir}: readable`);
    expect(lines).toContain('  dashboard-state.json     ok');
    expect(lines).toContain('  signals/BUDGET_EXCEEDED  absent');
    expect(out.endsWith('\n')).toBe(true);
  });

  it('exits 1 when a source is bad, and says why', async () => {
    const { code, out } = await run(['check', '--dir', await materialize('malformed')]);
    expect(code).toBe(1);
    expect(out.split('\n')).toContain('  dashboard-state.json     BAD  not valid JSON (torn mid-write?)');
    expect(out.split('\n')).toContain('  events.jsonl             ok');
  });

  it('exits 1 for a missing directory or a file, every source absent', async () => {
    const missing = await run(['check', '--dir', '/nonexistent/.loki']);
    expect(missing.code).toBe(1);
    expect(missing.out.split('\n')[0]).toBe('/nonexistent/.loki: unreadable (missing)');
    expect(missing.out.split('\n').slice(1, -1).every((line) => line.endsWith(' absent'))).toBe(true);
    const file = join(await tempDir(), 'not-a-dir');
    await writeFile(file, 'x');
    expect((await run(['check', '--dir', file])).out.split('\n')[0]).toBe(`${file}: unreadable (not a directory)`);
  });

  it('takes the directory from LOKI_DIR, --dir first, and resolves a relative one', async () => {
    const dir = await materialize('running');
    expect((await run(['check'], { LOKI_DIR: dir })).code).toBe(0);
    expect((await run(['check', '--dir', dir], { LOKI_DIR: '/nonexistent/.loki' })).code).toBe(0);
    expect((await run(['check', '--dir', 'no-such-dir/.loki'])).out.split('\n')[0]).toBe(`${resolve('no-such-dir/.loki')}: unreadable (missing)`);
    expect((await run(['check'], { LOKI_DIR: 'no-such-dir/.loki' })).out.split('\n')[0]).toBe(`${resolve('no-such-dir/.loki')}: unreadable (missing)`);
  });

  it('names --dir when it is bad, and paints with the Io\'s paint', async () => {
    expect(await run(['check', '--dir', ' '])).toEqual({ code: 2, out: '', err: 'loki-metrics: invalid --dir " ": must not be empty\n' });
    const c = capture({}, ANSI_PAINT);
    const dir = await materialize('running');
    expect(await main(['check', '--dir', dir], c.io)).toBe(0);
    expect(c.out().split('\n')[0]).toBe(`${dir}: \x1b[32mreadable\x1b[0m`);
  });
});

describe('token', () => {
  const secret = 'sync-secret-0123456789abcdef';

  it("prints a session's write token, the default session's without --session", async () => {
    expect(await run(['token', '--session', 'proj-a'], { LOKI_SYNC_TOKEN: secret })).toEqual({ code: 0, out: `${await sessionSyncToken(secret, 'proj-a')}\n`, err: '' });
    expect(await run(['token'], { LOKI_SYNC_TOKEN: secret })).toEqual({ code: 0, out: `${await sessionSyncToken(secret, 'default')}\n`, err: '' });
    expect(await sessionSyncToken(secret, 'proj-a')).not.toBe(await sessionSyncToken(secret, 'default'));
  });

  it('refuses a bad session name, a missing secret and a bad setting, exit 2', async () => {
    expect(await run(['token', '--session', '../x'], { LOKI_SYNC_TOKEN: secret })).toEqual({
      code: 2,
      out: '',
      err: `loki-metrics: --session must be 1-64 characters of A-Z a-z 0-9 . _ - starting with a letter or digit\n${pointer('token ')}`,
    });
    expect(await run(['token', '--session', 'proj-a'])).toEqual({ code: 2, out: '', err: 'loki-metrics: LOKI_SYNC_TOKEN is not set: it must hold the sync secret the Worker was given\n' });
    expect(await run(['token'], { LOKI_SYNC_TOKEN: 'short' })).toMatchObject({ code: 2, out: '', err: expect.stringMatching(/^loki-metrics: invalid LOKI_SYNC_TOKEN: /) });
  });
});

describe('sync', () => {
  const env = { LOKI_SYNC_TOKEN: 'sync-token-0123456789abc' };

  /** A remote that keeps what it was sent, as the Worker does; `posts` resolves once it got `n` uploads. */
  async function remote(answer?: (request: Received) => { status: number; body: unknown } | undefined) {
    let syncedAtMs: number | null = null;
    const waiting: { n: number; done: () => void }[] = [];
    const server = await httpServer((request, res) => {
      res.setHeader('Content-Type', 'application/json');
      const given = answer?.(request);
      if (given) {
        res.statusCode = given.status;
        return res.end(JSON.stringify(given.body));
      }
      if (request.method === 'GET') return res.end(JSON.stringify({ manifest: { documents: {}, sets: {} }, syncedAtMs }));
      const previousSyncedAtMs = syncedAtMs;
      syncedAtMs = (syncedAtMs ?? 0) + 1;
      res.end(JSON.stringify({ syncedAtMs, previousSyncedAtMs }));
      const posts = server.received.filter((r) => r.method === 'POST').length;
      for (const w of waiting.filter((w) => posts >= w.n)) w.done();
    });
    const uploads = () => server.received.filter((r) => r.method === 'POST');
    return {
      ...server,
      uploads,
      posts: (n: number) => (uploads().length >= n ? Promise.resolve() : new Promise<void>((done) => waiting.push({ n, done }))),
    };
  }

  it('refuses a missing or bad --url, exit 2', async () => {
    const mistakes: [string[], string][] = [
      [[], '--url must be the remote exporter, e.g. https://loki-metrics.example.workers.dev'],
      [['--url', 'example.com'], '--url "example.com" is not a URL; it must be the remote exporter, e.g. https://loki-metrics.example.workers.dev'],
      [['--url', 'ftp://example.com'], '--url must be https:// (or http:// for a local Worker), not ftp://'],
      [['--url', 'file:///tmp/x'], '--url must be https:// (or http:// for a local Worker), not file://'],
    ];
    for (const [args, message] of mistakes) {
      expect(await run(['sync', ...args, '--once'], env)).toEqual({ code: 2, out: '', err: `loki-metrics: ${message}\n${pointer('sync ')}` });
    }
    // https and http pass: the missing directory is what stops these.
    for (const url of ['https://example.com', 'http://127.0.0.1:8787']) {
      expect(await run(['sync', '--url', url, '--once', '--dir', '/nonexistent/.loki'], env)).toEqual({
        code: 2,
        out: '',
        err: 'loki-metrics: no state directory at /nonexistent/.loki: nothing to sync (pass --dir or set LOKI_DIR)\n',
      });
    }
    expect(runSync).not.toHaveBeenCalled();
  });

  it('refuses a bad --session, --interval, --push-interval or --heartbeat, exit 2', async () => {
    const url = ['--url', 'http://127.0.0.1:8787', '--once', '--dir', '/nonexistent/.loki'];
    const mistakes: [string[], string][] = [
      [['--session', '../x'], '--session must be 1-64 characters of A-Z a-z 0-9 . _ - starting with a letter or digit'],
      [['--interval', '50ms'], '--interval must be a time from 100ms to 1h, such as 2s'],
      [['--interval', 'soon'], '--interval must be a time from 100ms to 1h, such as 2s'],
      [['--push-interval', '5ms'], '--push-interval must be a time from 100ms to 1h, such as 1m, or 0s'],
      [['--push-interval=-1s'], '--push-interval must be a time from 100ms to 1h, such as 1m, or 0s'],
      [['--heartbeat', '61m'], '--heartbeat must be a time from 100ms to 1h, such as 1m, or 0s'],
      [['--heartbeat', '0x'], '--heartbeat must be a time from 100ms to 1h, such as 1m, or 0s'],
    ];
    for (const [args, message] of mistakes) {
      expect(await run(['sync', ...url, ...args], env)).toEqual({ code: 2, out: '', err: `loki-metrics: ${message}\n${pointer('sync ')}` });
    }
  });

  it('needs LOKI_SYNC_TOKEN and an existing directory, exit 2', async () => {
    const dir = await materialize('running');
    expect(await run(['sync', '--url', 'http://127.0.0.1:8787', '--once', '--dir', dir])).toEqual({
      code: 2,
      out: '',
      err: "loki-metrics: LOKI_SYNC_TOKEN is not set: it must hold the Worker's write token\n",
    });
    const file = join(await tempDir(), 'not-a-dir');
    await writeFile(file, 'x');
    expect(await run(['sync', '--url', 'http://127.0.0.1:8787', '--once', '--dir', file], env)).toEqual({
      code: 2,
      out: '',
      err: `loki-metrics: ${file} is not a directory: nothing to sync (pass --dir or set LOKI_DIR)\n`,
    });
    expect(await run(['sync', '--url', 'http://127.0.0.1:8787', '--once'], { ...env, LOKI_DIR: '/nonexistent/.loki' })).toMatchObject({ code: 2, err: expect.stringContaining('no state directory at /nonexistent/.loki:') });
    expect(await run(['sync', '--url', 'http://127.0.0.1:8787', '--once', '--dir', ' '], env)).toEqual({ code: 2, out: '', err: 'loki-metrics: invalid --dir " ": must not be empty\n' });
    expect(runSync).not.toHaveBeenCalled();
  });

  it('pushes once and prints what it sent, to the origin, in one line on stdout', async () => {
    const server = await remote();
    try {
      const dir = await materialize('running');
      const { code, out, err } = await run(['sync', '--url', `${server.origin}/base/`, '--once', '--dir', dir, '--session', 's1'], env);
      expect({ code, err }).toEqual({ code: 0, err: '' });
      const uploads = server.uploads();
      expect(uploads).toHaveLength(1);
      const bytes = Buffer.byteLength(uploads[0]!.body);
      expect(out).toBe(`loki-metrics sync: 1 request, ${bytes} bytes sent to ${server.origin} (session "s1")\n`);
      expect(uploads[0]!.url).toBe('/base/ingest?session=s1');
      expect(uploads[0]!.headers.authorization).toBe(`Bearer ${env.LOKI_SYNC_TOKEN}`);
    } finally {
      await server.close();
    }
  });

  it('gives runSync what the flags and settings say', async () => {
    const server = await remote();
    try {
      const dir = await materialize('running');
      await run(['sync', '--url', server.origin, '--once', '--dir', dir], { ...env, LOKI_LIVENESS: 'heartbeat' });
      expect(syncOptions()).toMatchObject({ url: server.origin, session: 'default', dir, token: env.LOKI_SYNC_TOKEN, intervalMs: 2000, once: true, liveness: 'heartbeat', allowHttp: false });
      expect('pushMs' in syncOptions() || 'heartbeatMs' in syncOptions()).toBe(false);

      const cadences: [string, number][] = [['0s', 0], ['0', 0], ['00s', 0], [' 0.00ms ', 0], ['0m', 0], ['10s', 10_000], ['0.5s', 500], ['100', 100_000], ['60m', 3_600_000]];
      for (const [given, ms] of cadences) {
        vi.mocked(runSync).mockClear();
        const result = await run(['sync', '--url', server.origin, '--once', '--push-interval', given, '--heartbeat', given, '--interval', '1m'], { ...env, LOKI_DIR: dir });
        expect(result.code, result.err).toBe(0);
        expect(syncOptions()).toMatchObject({ pushMs: ms, heartbeatMs: ms, intervalMs: 60_000, dir });
      }
      vi.mocked(runSync).mockClear();
      await run(['sync', '--url', server.origin, '--once', '--dir', dir, '--allow-http', '--push-interval', '1m'], env);
      expect(syncOptions()).toMatchObject({ allowHttp: true, pushMs: 60_000 });
      expect('heartbeatMs' in syncOptions()).toBe(false);
    } finally {
      await server.close();
    }
  });

  it('refuses plain http to another host unless --allow-http', async () => {
    const server = await remote();
    try {
      const dir = await materialize('running');
      const url = `http://0.0.0.0:${server.port}`; // this machine, by an address that is not loopback's
      const refused = await run(['sync', '--url', url, '--once', '--dir', dir], env);
      expect(refused).toEqual({
        code: 1,
        out: '',
        err: `loki-metrics sync: refusing plain http to ${url}: the write token and the state would travel unencrypted (use https, or --allow-http to accept that)\n`,
      });
      const allowed = await run(['sync', '--url', url, '--once', '--dir', dir, '--allow-http'], env);
      expect(allowed.code, allowed.err).toBe(0);
      expect(allowed.out).toMatch(/^loki-metrics sync: 1 request, \d+ bytes sent to http:\/\/0\.0\.0\.0:\d+ \(session "default"\)\n$/);
    } finally {
      await server.close();
    }
  });

  it('exits 1 without a summary when the one push fails', async () => {
    const server = await remote((request) => (request.method === 'POST' ? { status: 409, body: { error: 'session taken' } } : undefined));
    try {
      const result = await run(['sync', '--url', server.origin, '--once', '--dir', await materialize('running')], env);
      expect(result.code).toBe(1);
      expect(result.out).toBe('');
      expect(result.err).toMatch(/^loki-metrics sync: the remote refused the session \(409\)/);
    } finally {
      await server.close();
    }
  });

  for (const signal of SIGNALS) {
    it(`loops until ${signal}, says so at the start, and prints what it sent when stopped`, async () => {
      const server = await remote();
      try {
        const dir = await materialize('running');
        const c = capture(env);
        const done = main(['sync', '--url', server.origin, '--dir', dir, '--interval', '100ms', '--heartbeat', '0s'], c.io);
        await server.posts(3); // a heartbeat at every look; the third is sent after the second was counted
        process.emit(signal);
        expect(await done).toBe(0);
        const lines = c.err().split('\n');
        expect(lines[0]).toBe(`loki-metrics sync: ${dir} -> ${server.origin} (session "default"), looking every 100 ms`);
        const stopped = /^loki-metrics sync: stopped; (\d+) requests, (\d+) bytes sent to (\S+) \(session "default"\)$/.exec(lines.at(-2)!);
        expect(stopped?.[3]).toBe(server.origin);
        const uploads = server.uploads();
        const counted = Number(stopped?.[1]);
        expect(counted).toBeGreaterThanOrEqual(2);
        expect(counted).toBeLessThanOrEqual(uploads.length);
        expect(Number(stopped?.[2])).toBe(uploads.slice(0, counted).reduce((sum, u) => sum + Buffer.byteLength(u.body), 0));
        expect(lines.at(-1)).toBe('');
        expect(c.out()).toBe('');
      } finally {
        await server.close();
      }
    });
  }

  it('says nothing of a stop when the loop ends by itself', async () => {
    const server = await remote((request) => (request.method === 'POST' ? { status: 409, body: { error: 'session taken' } } : undefined));
    try {
      const c = capture(env);
      expect(await main(['sync', '--url', server.origin, '--dir', await materialize('running'), '--interval', '100ms'], c.io)).toBe(1);
      expect(c.err()).toMatch(/looking every 100 ms\n/);
      expect(c.err()).not.toMatch(/stopped/);
      expect(c.out()).toBe('');
    } finally {
      await server.close();
    }
  });

  it('says no more than the failure when --once cannot reach the remote, and --help needs nothing else', async () => {
    expect(await run(['sync', '--help'])).toEqual({ code: 0, out: USAGE.sync, err: '' });
    const port = await freePort();
    const failed = await run(['sync', '--url', `http://127.0.0.1:${port}`, '--once', '--dir', await materialize('running')], env);
    expect(failed.code).toBe(1);
    expect(failed.out).toBe('');
    expect(failed.err).not.toMatch(/looking every|stopped/);
  });
});
