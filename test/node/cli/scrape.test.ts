/**
 * src/node/cli/scrape.ts in this process, against an exporter on a real loopback socket: which URL
 * the flags and settings make (host and port parsing and their bounds), what is sent (Accept, the
 * bearer token), what is printed (the table, --raw, --json, --all's table) and the exit codes.
 */
import type { ServerResponse } from 'node:http';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ANSI_PAINT } from '../../../src/cli/report.js';
import { UsageError } from '../../../src/node/cli/common.js';
import { exporterUrl, scrape, splitHost } from '../../../src/node/cli/scrape.js';
import { USAGE } from '../../../src/node/cli/usage.js';
import { capture, freePort, httpServer, type Received } from './io.js';

const EXPOSITION = `# HELP loki_up Whether the state directory is readable.
# TYPE loki_up gauge
loki_up 1
loki_session_status 1
loki_iteration_current 6
loki_iteration_max 1000
loki_uptime_seconds 3723.4
loki_tasks_total{status="pending"} 3
loki_tasks_total{status="in_progress"} 2
loki_tasks_total{status="completed"} 5
loki_tasks_total{status="failed"} 1
loki_agents_active 2
loki_agents_total 4
loki_cost_usd 3.5313
loki_budget_limit_usd 25
loki_budget_exceeded 0
loki_events_total 50
loki_source_ok{source="events.jsonl"} 1
`;

const TABLE = `Session    running
Iteration  6 / 1000
Uptime     1h 2m 3s
Tasks      3 pending, 2 in progress, 5 completed, 1 failed
Agents     2 active of 4
Cost       $3.53 of $25.00 budget
Events     50
State dir  readable
Sources    all ok
`;

const PAUSED = EXPOSITION.replace('loki_session_status 1', 'loki_session_status 2').replace('loki_cost_usd 3.5313', 'loki_cost_usd 0.5');

/** The exporter: `routes` by path and query; anything else is a 404. */
let routes: Record<string, (response: ServerResponse) => void>;
let exporter: Awaited<ReturnType<typeof httpServer>>;
const text = (body: string, status = 200) => (res: ServerResponse) => {
  res.statusCode = status;
  res.setHeader('Content-Type', 'text/plain; version=0.0.4');
  res.end(body);
};
const targets = (groups: unknown) => text(JSON.stringify(groups));

beforeEach(async () => {
  routes = { '/metrics': text(EXPOSITION) };
  exporter = await httpServer((request: Received, res) => (routes[request.url] ?? text('not found', 404))(res));
});

afterEach(() => exporter.close());

async function run(args: string[], env: NodeJS.ProcessEnv = {}, paint = capture().io.paint) {
  const c = capture(env, paint);
  const code = await scrape(args, c.io);
  return { code, out: c.out(), err: c.err() };
}

const requested = () => exporter.received.map((r) => r.url);
const usage = (message: string) => ({ code: 2, message });
/** A command line's UsageError message, or its exit code. */
async function refused(args: string[], env: NodeJS.ProcessEnv = {}) {
  try {
    return { code: await scrape(args, capture(env).io), message: undefined };
  } catch (error) {
    expect(error).toBeInstanceOf(UsageError);
    return usage((error as Error).message);
  }
}

describe('splitHost', () => {
  it('reads HOST, HOST:PORT, [V6], [V6]:PORT and a bare IPv6 address', () => {
    expect(splitHost('127.0.0.1', '--host')).toEqual({ host: '127.0.0.1' });
    expect(splitHost('exporter.local:9100', '--host')).toEqual({ host: 'exporter.local', port: 9100 });
    expect(splitHost('[::1]', '--host')).toEqual({ host: '::1' });
    expect(splitHost('[fe80::1%eth0]:8080', '--host')).toEqual({ host: 'fe80::1%eth0', port: 8080 });
    expect(splitHost('::1', '--host')).toEqual({ host: '::1' });
    expect(splitHost('2001:db8::7', '--host')).toEqual({ host: '2001:db8::7' });
    // A bare IPv6 address ending in digits is one address, not HOST:PORT; brackets count only whole.
    expect(splitHost('2001:db8::1:80', '--host')).toEqual({ host: '2001:db8::1:80' });
    expect(splitHost('a:b:80', '--host')).toEqual({ host: 'a:b:80' });
    expect(splitHost('x[::1]', '--host')).toEqual({ host: 'x[::1]' });
    expect(splitHost('[::1]x', '--host')).toEqual({ host: '[::1]x' });
    expect(splitHost('[::1]:80x', '--host')).toEqual({ host: '[::1]:80x' });
  });

  it('takes a port from 1 to 65535 and names the flag or variable otherwise', () => {
    expect(splitHost('h:1', '--host')).toEqual({ host: 'h', port: 1 });
    expect(splitHost('h:65535', '--host')).toEqual({ host: 'h', port: 65535 });
    expect(splitHost('[::1]:65535', '--host')).toEqual({ host: '::1', port: 65535 });
    const cases: [string, string, string][] = [
      ['h:0', '--host', '--host "h:0": the port must be from 1 to 65535'],
      ['h:65536', 'LOKI_METRICS_HOST', 'LOKI_METRICS_HOST "h:65536": the port must be from 1 to 65535'],
      ['[::1]:0', '--host', '--host "[::1]:0": the port must be from 1 to 65535'],
      ['[::1]:70000', '--host', '--host "[::1]:70000": the port must be from 1 to 65535'],
      ['h:http', '--host', '--host "h:http": the port must be a number'],
      ['h:', 'LOKI_METRICS_HOST', 'LOKI_METRICS_HOST "h:": the port must be a number'],
      [':80x', '--host', '--host ":80x": the port must be a number'],
      ['h:80x', '--host', '--host "h:80x": the port must be a number'],
    ];
    for (const [host, flag, message] of cases) expect(() => splitHost(host, flag)).toThrow(new UsageError(message));
  });
});

describe('exporterUrl', () => {
  it('gives a URL without a path the metrics path, and keeps any other path and the query', () => {
    expect(exporterUrl('http://127.0.0.1:9100', '/metrics')).toBe('http://127.0.0.1:9100/metrics');
    expect(exporterUrl('https://x.example.dev/', '/custom')).toBe('https://x.example.dev/custom');
    expect(exporterUrl('http://h/?session=s1', '/metrics')).toBe('http://h/metrics?session=s1');
    expect(exporterUrl('http://h/other?session=s1', '/metrics')).toBe('http://h/other?session=s1');
  });

  it('refuses what is not an http or https URL', () => {
    expect(() => exporterUrl('localhost:9100', '/metrics')).toThrow(new UsageError('--url must be http:// or https://, not localhost://'));
    expect(() => exporterUrl('127.0.0.1:9100', '/metrics')).toThrow(new UsageError('--url "127.0.0.1:9100" is not a URL, e.g. http://127.0.0.1:57373/metrics'));
    expect(() => exporterUrl('exporter.local', '/metrics')).toThrow(new UsageError('--url "exporter.local" is not a URL, e.g. http://127.0.0.1:57373/metrics'));
    expect(() => exporterUrl('ftp://h/metrics', '/metrics')).toThrow(new UsageError('--url must be http:// or https://, not ftp://'));
  });
});

describe('scrape', () => {
  it('prints the metrics as a table, asking for text 0.0.4 without a token', async () => {
    expect(await run(['--port', String(exporter.port)])).toEqual({ code: 0, out: TABLE, err: '' });
    expect(exporter.received).toHaveLength(1);
    expect(exporter.received[0]).toMatchObject({ method: 'GET', url: '/metrics' });
    expect(exporter.received[0]!.headers.accept).toBe('text/plain; version=0.0.4');
    expect(exporter.received[0]!.headers.authorization).toBeUndefined();
  });

  it('paints the table with the Io\'s paint', async () => {
    const { out } = await run(['--port', String(exporter.port)], {}, ANSI_PAINT);
    expect(out.split('\n')[0]).toBe('Session    \x1b[32mrunning\x1b[0m');
  });

  it('prints --raw as served, ending in one newline', async () => {
    routes['/metrics'] = text('loki_up 1\nloki_cost_usd 3.5\n\n\n');
    expect(await run(['--port', String(exporter.port), '--raw'])).toEqual({ code: 0, out: 'loki_up 1\nloki_cost_usd 3.5\n', err: '' });
    routes['/metrics'] = text('# TYPE loki_up gauge\nloki_up 1');
    expect(await run(['--port', String(exporter.port), '--raw'])).toEqual({ code: 0, out: '# TYPE loki_up gauge\nloki_up 1\n', err: '' });
  });

  it('prints --json as the samples, indented', async () => {
    routes['/metrics'] = text('# TYPE loki_up gauge\nloki_up 1\nloki_tasks_total{status="failed"} 2\n');
    const samples = [
      { name: 'loki_up', labels: {}, value: 1 },
      { name: 'loki_tasks_total', labels: { status: 'failed' }, value: 2 },
    ];
    expect(await run(['--port', String(exporter.port), '--json'])).toEqual({ code: 0, out: `${JSON.stringify(samples, null, 2)}\n`, err: '' });
  });

  it('sends the bearer token of --token, over LOKI_METRICS_TOKEN', async () => {
    const flag = 'flag-token-0123456789';
    const env = 'env-token-0123456789ab';
    await run(['--port', String(exporter.port), '--token', flag], { LOKI_METRICS_TOKEN: env });
    await run(['--port', String(exporter.port)], { LOKI_METRICS_TOKEN: env });
    expect(exporter.received.map((r) => r.headers.authorization)).toEqual([`Bearer ${flag}`, `Bearer ${env}`]);
  });

  it('exits 1 when the exporter answers an error: 401 says how to pass a token', async () => {
    const url = `http://127.0.0.1:${exporter.port}/metrics`;
    routes['/metrics'] = text('unauthorized', 401);
    expect(await run(['--port', String(exporter.port)])).toEqual({ code: 1, out: '', err: `loki-metrics: the exporter at ${url} answered HTTP 401 (pass --token or set LOKI_METRICS_TOKEN)\n` });
    routes['/metrics'] = text('oops', 500);
    expect(await run(['--port', String(exporter.port)])).toEqual({ code: 1, out: '', err: `loki-metrics: the exporter at ${url} answered HTTP 500\n` });
    expect((await run(['--port', String(exporter.port)], {}, ANSI_PAINT)).err).toBe(`loki-metrics: \x1b[31mthe exporter at ${url} answered HTTP 500\x1b[0m\n`);
  });

  it('exits 1 when nothing listens, saying where it looked and what to do', async () => {
    const port = await freePort();
    expect(await run(['--port', String(port)])).toEqual({
      code: 1,
      out: '',
      err: `loki-metrics: Could not connect to exporter at http://127.0.0.1:${port}/metrics\nloki-metrics: make sure the exporter is running (loki-metrics serve) or pass --url\n`,
    });
  });

  it('builds the URL from --host, --port and --path over the environment', async () => {
    const port = String(exporter.port);
    routes['/custom'] = text(EXPOSITION);
    routes['/metrics?project=beta'] = text(PAUSED);
    expect((await run(['--host', `127.0.0.1:${port}`])).code).toBe(0);
    expect((await run([], { LOKI_METRICS_HOST: `127.0.0.1:${port}` })).code).toBe(0);
    expect((await run([], { LOKI_METRICS_PORT: port, LOKI_METRICS_HOST: '127.0.0.1' })).code).toBe(0);
    expect((await run(['--host', '127.0.0.1', '--port', port, '--path', '/custom'])).code).toBe(0);
    expect((await run(['--port', port], { LOKI_METRICS_PATH: '/custom' })).code).toBe(0);
    // A port in LOKI_METRICS_HOST wins over LOKI_METRICS_PORT.
    expect((await run([], { LOKI_METRICS_HOST: `127.0.0.1:${port}`, LOKI_METRICS_PORT: '1' })).code).toBe(0);
    const one = await run(['--port', port, '--project', 'beta']);
    expect(one.out.split('\n')[0]).toBe('Session    paused');
    expect(requested()).toEqual(['/metrics', '/metrics', '/metrics', '/custom', '/custom', '/metrics', '/metrics?project=beta']);
  });

  it('brackets an IPv6 host in the URL', async () => {
    const port = await freePort();
    for (const args of [['--host', '::1', '--port', String(port)], ['--host', `[::1]:${port}`], ['--host', '[::1]', '--port', String(port)]]) {
      expect((await run(args)).err.split('\n')[0]).toBe(`loki-metrics: Could not connect to exporter at http://[::1]:${port}/metrics`);
    }
  });

  it('scrapes --url as given, with the metrics path when it has none, and --project added to its query', async () => {
    const origin = `http://127.0.0.1:${exporter.port}`;
    routes['/metrics?session=s1'] = text(EXPOSITION);
    routes['/m?session=s1&project=beta'] = text(PAUSED);
    routes['/other'] = text(EXPOSITION);
    expect((await run(['--url', origin])).code).toBe(0);
    expect((await run(['--url', `${origin}/?session=s1`])).code).toBe(0);
    expect((await run(['--url', origin], { LOKI_METRICS_PATH: '/other', LOKI_METRICS_HOST: '10.9.9.9' })).code).toBe(0);
    expect((await run(['--url', `${origin}/m?session=s1`, '--project', 'beta'])).out.split('\n')[0]).toBe('Session    paused');
    expect(requested()).toEqual(['/metrics', '/metrics?session=s1', '/other', '/m?session=s1&project=beta']);
  });

  it('refuses flags that contradict each other or are malformed, before any request', async () => {
    const cases: [string[], NodeJS.ProcessEnv, string][] = [
      [['--raw', '--json'], {}, '--raw and --json cannot be combined'],
      [['--all', '--raw'], {}, '--all cannot be combined with --raw or --project'],
      [['--all', '--project', 'a'], {}, '--all cannot be combined with --raw or --project'],
      [['--url', 'http://h', '--host', 'h'], {}, '--url cannot be combined with --host, --port or --path'],
      [['--url', 'http://h', '--port', '1'], {}, '--url cannot be combined with --host, --port or --path'],
      [['--url', 'http://h', '--path', '/m'], {}, '--url cannot be combined with --host, --port or --path'],
      [['--host', 'h:1', '--port', '2'], {}, 'give the port once: --host HOST:PORT or --port PORT'],
      [['--port', '2'], { LOKI_METRICS_HOST: 'h:1' }, 'give the port once: --host HOST:PORT or --port PORT'],
      [['--host', 'h:0'], {}, '--host "h:0": the port must be from 1 to 65535'],
      [[], { LOKI_METRICS_HOST: 'h:0' }, 'LOKI_METRICS_HOST "h:0": the port must be from 1 to 65535'],
      [['--host', 'h:0'], { LOKI_METRICS_HOST: 'ok' }, '--host "h:0": the port must be from 1 to 65535'],
      [['--url', 'ftp://h'], {}, '--url must be http:// or https://, not ftp://'],
      [['--project', '../x'], {}, '--project "../x": use 1-64 characters of A-Z a-z 0-9 . _ - starting with a letter or digit'],
      [['--bogus'], {}, "Unknown option '--bogus'"],
    ];
    for (const [args, env, message] of cases) expect({ args, ...(await refused(args, env)) }).toEqual({ args, ...usage(message) });
    // --url with a query is fine: only LOKI_METRICS_HOST/PORT/PATH from the environment are then unused.
    expect((await refused(['--url', `http://127.0.0.1:${exporter.port}`], { LOKI_METRICS_HOST: 'h:1', LOKI_METRICS_PORT: '2' })).code).toBe(0);
    expect(requested()).toEqual(['/metrics']);
  });

  it('names --port, --path and --token when they are bad, and prints --help', async () => {
    await expect(scrape(['--port', '0'], capture().io)).rejects.toThrow('invalid --port "0": must be a whole number from 1 to 65535');
    await expect(scrape(['--path', 'metrics'], capture().io)).rejects.toThrow('invalid --path "metrics": must be an absolute URL path such as /metrics');
    await expect(scrape(['--token', 'short'], capture().io)).rejects.toThrow(/^invalid --token: /);
    await expect(scrape(['--host', 'a b'], capture().io)).rejects.toThrow('invalid --host "a b": must be a host name or IP address');
    expect(await run(['--help'])).toEqual({ code: 0, out: USAGE.scrape, err: '' });
    expect(exporter.received).toEqual([]);
  });
});

describe('scrape --all', () => {
  const listing = [
    { targets: ['127.0.0.1'], labels: { project: 'alpha' } },
    { targets: ['127.0.0.1'], labels: { project: 'beta' } },
    { targets: ['127.0.0.1'], labels: {} },
    { targets: ['127.0.0.1'] },
    { targets: ['127.0.0.1'], labels: { project: '../escape' } },
    { targets: ['127.0.0.1'], labels: { project: 7 } },
  ];

  it('prints one row per project /targets lists, and the total cost', async () => {
    routes['/targets'] = targets(listing);
    routes['/metrics?project=alpha'] = text(EXPOSITION);
    routes['/metrics?project=beta'] = text(PAUSED);
    const token = 'fleet-token-0123456789';
    expect(await run(['--port', String(exporter.port), '--all', '--token', token])).toEqual({
      code: 0,
      out: `PROJECT  SESSION  ITERATION  TASKS DONE/FAILED  COST   STATE DIR
alpha    running  6/1000     5/1                $3.53  readable
beta     paused   6/1000     5/1                $0.50  readable
2 projects, total cost $4.03
`,
      err: '',
    });
    expect([...requested()].sort()).toEqual(['/metrics?project=alpha', '/metrics?project=beta', '/targets']);
    const [first, ...rest] = exporter.received;
    expect(first).toMatchObject({ url: '/targets', headers: { accept: 'application/json', authorization: `Bearer ${token}` } });
    for (const r of rest) expect(r.headers).toMatchObject({ accept: 'text/plain; version=0.0.4', authorization: `Bearer ${token}` });
  });

  it('shows a project that does not answer as such, quietly, and exits 1', async () => {
    routes['/targets'] = targets(listing);
    routes['/metrics?project=alpha'] = text(EXPOSITION);
    routes['/metrics?project=beta'] = text('gone', 503);
    expect(await run(['--port', String(exporter.port), '--all'])).toEqual({
      code: 1,
      out: `PROJECT  SESSION    ITERATION  TASKS DONE/FAILED  COST   STATE DIR
alpha    running    6/1000     5/1                $3.53  readable
beta     no answer
2 projects, total cost $3.53
`,
      err: '',
    });
  });

  it('prints --all --json as one object by project', async () => {
    routes['/targets'] = targets(listing.slice(0, 2));
    routes['/metrics?project=alpha'] = text('loki_up 1\n');
    routes['/metrics?project=beta'] = text('gone', 500);
    const { code, out } = await run(['--port', String(exporter.port), '--all', '--json']);
    expect(code).toBe(1);
    expect(out).toBe(`${JSON.stringify({ alpha: [{ name: 'loki_up', labels: {}, value: 1 }], beta: 'no answer' }, null, 2)}\n`);
  });

  it('asks the origin for /targets, and each project at the URL given, its query kept', async () => {
    routes['/targets'] = targets([{ labels: { project: 'alpha' } }]);
    routes['/base/metrics?session=s1&project=alpha'] = text(EXPOSITION);
    const { code, out } = await run(['--url', `http://127.0.0.1:${exporter.port}/base/metrics?session=s1`, '--all']);
    expect(code).toBe(0);
    expect(out.split('\n').at(-2)).toBe('1 project, total cost $3.53');
    expect(requested()).toEqual(['/targets', '/base/metrics?session=s1&project=alpha']);
    expect((await run(['--port', String(exporter.port), '--path', '/other', '--all'])).code).toBe(1);
    expect(requested().slice(2)).toEqual(['/targets', '/other?project=alpha']);
  });

  it('exits 1 with one line when /targets is no target list or fails', async () => {
    const targetsUrl = `http://127.0.0.1:${exporter.port}/targets`;
    const notAList = `loki-metrics: ${targetsUrl} did not answer a target list (is it loki-metrics 0.1 or later?)\n`;
    for (const body of ['<html>', '{}', 'null']) {
      routes['/targets'] = text(body);
      expect(await run(['--port', String(exporter.port), '--all'])).toEqual({ code: 1, out: '', err: notAList });
    }
    delete routes['/targets'];
    expect(await run(['--port', String(exporter.port), '--all'])).toEqual({ code: 1, out: '', err: `loki-metrics: the exporter at ${targetsUrl} answered HTTP 404\n` });
    expect(requested().every((url) => url === '/targets')).toBe(true);
  });

  it('lists no projects as none, exit 0', async () => {
    routes['/targets'] = targets([]);
    expect(await run(['--port', String(exporter.port), '--all'])).toEqual({ code: 0, out: 'PROJECT  SESSION  ITERATION  TASKS DONE/FAILED  COST  STATE DIR\n0 projects, total cost $0.00\n', err: '' });
  });
});
