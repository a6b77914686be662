/**
 * Security (issue #5): loopback by default, tokens (constant-time, never logged or echoed, the
 * challenge on every refusal), request limits (header size, slow and idle clients), path handling,
 * the headers every response carries, and a read-only state directory.
 *
 * Everything is on this machine (127.0.0.1, plus this machine's own interface address to prove it
 * is *not* listened on) with short timeouts; every server, socket and child is stopped in afterEach.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { connect, createServer as createNetServer, type Socket } from 'node:net';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createApp } from '../src/app.js';
import { parseConfig } from '../src/config.js';
import { DEFAULT_SERVER_LIMITS, startServer, type RunningServer, type ServerLimits } from '../src/node/server.js';
import { createRemoteApp } from '../src/remote-app.js';
import { FsStateStore } from '../src/stores/fs.js';
import { MemoryObjectStore } from './support/object-store.js';
import { cleanTrees, materialize, treeDigest } from './support/loki-tree.js';
import { SCRAPE_TOKEN, SYNC_TOKEN } from './support/worker.js';

const TOKEN = 'security-test-token-0123456789';
const WRONG = 'wrong-token-but-well-formed-0123';
const ROOT = new URL('..', import.meta.url).pathname;
const CLI = join(ROOT, 'dist/src/node/cli.js');

const servers: RunningServer[] = [];
const stores: FsStateStore[] = [];
const sockets: Socket[] = [];
const children: ChildProcess[] = [];
afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.destroy();
  for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  for (const server of servers.splice(0)) await server.close();
  for (const store of stores.splice(0)) store.close();
  await cleanTrees();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function serve(env: Record<string, string> = {}, limits?: ServerLimits, fixture = 'running') {
  const dir = await materialize(fixture, { pid: 'alive', mtimeMs: Date.now() });
  const store = new FsStateStore(dir);
  stores.push(store);
  const logs: string[] = [];
  const server = await startServer({ ...parseConfig({ LOKI_DIR: dir, ...env }), port: 0 }, store, (l) => logs.push(l), limits ? { limits } : {});
  servers.push(server);
  return { server, dir, logs };
}

interface RawAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One HTTP request with the path sent verbatim (fetch would normalise it first). */
function raw(port: number, path: string, options: { method?: string; headers?: Record<string, string>; host?: string } = {}): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: options.host ?? '127.0.0.1', port, path, method: options.method ?? 'GET', headers: options.headers ?? {} }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.setTimeout(10_000, () => req.destroy(new Error('timeout')));
    req.end();
  });
}

/** A TCP connection that resolves once connected, or rejects with the error code. */
function tcp(host: string, port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port });
    sockets.push(socket);
    socket.once('connect', () => resolve(socket));
    socket.once('error', (e: NodeJS.ErrnoException) => reject(new Error(e.code ?? e.message)));
    socket.setTimeout(5_000, () => socket.destroy(new Error('timeout')));
  });
}

/** This machine's first non-loopback IPv4 address, if it has one. */
const externalIPv4 = Object.values(networkInterfaces())
  .flat()
  .find((a) => a !== undefined && a.family === 'IPv4' && !a.internal)?.address;

describe('binding', () => {
  it('listens on 127.0.0.1 only by default: a non-loopback address of this machine is refused', async () => {
    const { server } = await serve();
    expect(new URL(server.url).hostname).toBe('127.0.0.1');
    (await tcp('127.0.0.1', server.port)).destroy();
    if (externalIPv4) await expect(tcp(externalIPv4, server.port)).rejects.toThrow('ECONNREFUSED');
    await expect(tcp('::1', server.port)).rejects.toThrow(/ECONNREFUSED|EADDRNOTAVAIL|ENETUNREACH|EAFNOSUPPORT/);
  });

  it.skipIf(externalIPv4 === undefined)('listens on another address only when asked', async () => {
    const { server } = await serve({ LOKI_METRICS_HOST: externalIPv4! });
    expect(server.url).toBe(`http://${externalIPv4}:${server.port}/metrics`);
    expect((await raw(server.port, '/health', { host: externalIPv4! })).status).toBe(200);
    await expect(tcp('127.0.0.1', server.port)).rejects.toThrow('ECONNREFUSED');
  });
});

describe('tokens', () => {
  // Under `npm run mutation` the mutated modules are instrumented; this reads source text, which no
  // mutant changes, so it runs wherever every module it reads is plain (always, outside Stryker).
  const READ = ['src/auth.ts', 'src/remote-app.ts', 'src/app.ts', 'src/fleet.ts'];
  const source = (file: string) => readFileSync(join(ROOT, file), 'utf8');
  const instrumented = READ.some((file) => source(file).includes('stryMutAct_'));
  it.skipIf(instrumented)('are compared by Hono bearerAuth (constant time), on Node and in the Worker', () => {
    for (const file of ['src/auth.ts', 'src/remote-app.ts']) {
      const text = source(file);
      expect(text).toContain("import { bearerAuth } from 'hono/bearer-auth';");
      // Nothing reads the Authorization header by hand (and so compares it with ===), except
      // auth.ts taking the scheme word only, to pick bearer or basic auth.
      const byHand = text.match(/.*header\(\s*['"`]authorization.*/gi) ?? [];
      expect(byHand.every((line) => file === 'src/auth.ts' && line.includes('/^\\s*([A-Za-z]+)/.exec('))).toBe(true);
    }
    // The scrape token: auth.ts's guard, which the app and the fleet layer (Node and Worker) use.
    expect(source('src/auth.ts')).toMatch(/bearerAuth\(\{ token: credentials\.token/);
    for (const file of ['src/app.ts', 'src/fleet.ts']) expect(source(file)).toContain('createGuard({');
    expect(source('src/remote-app.ts')).toContain('createFleetApp({');
    // The app itself leaves credentials to auth.ts.
    expect(source('src/app.ts')).not.toMatch(/authorization/i);
    const hono = readFileSync(join(ROOT, 'node_modules/hono/dist/middleware/bearer-auth/index.js'), 'utf8');
    expect(hono).toMatch(/equal = await timingSafeEqual\(options\.token, tokenValue/);
  });

  it('missing, wrong and malformed tokens: 401/400 with WWW-Authenticate, nosniff, and no echo', async () => {
    const { server, logs } = await serve({ LOKI_METRICS_TOKEN: TOKEN, LOKI_METRICS_HEALTH_PUBLIC: 'false' });
    const cases: [string | undefined, number, string][] = [
      [undefined, 401, 'Bearer realm="loki-metrics"'],
      [`Bearer ${WRONG}`, 401, 'Bearer error="invalid_token"'],
      [`Bearer ${TOKEN}x`, 401, 'Bearer error="invalid_token"'],
      [`Bearer ${TOKEN.slice(0, -1)}`, 401, 'Bearer error="invalid_token"'],
      ['Bearer', 400, 'Bearer error="invalid_request"'],
      ['Bearer ', 400, 'Bearer error="invalid_request"'],
      [`Bearer ${WRONG}!`, 400, 'Bearer error="invalid_request"'], // not token68
      [`Bearer ${WRONG} extra`, 400, 'Bearer error="invalid_request"'],
      [`Basic ${Buffer.from(`user:${WRONG}`).toString('base64')}`, 400, 'Bearer error="invalid_request"'],
      [`Token ${TOKEN}`, 400, 'Bearer error="invalid_request"'], // the right token under the wrong scheme
      [TOKEN, 400, 'Bearer error="invalid_request"'],
    ];
    for (const path of ['/metrics', '/health']) {
      for (const [authorization, status, challenge] of cases) {
        const res = await raw(server.port, path, { headers: authorization === undefined ? {} : { Authorization: authorization } });
        expect({ path, authorization, status: res.status }).toEqual({ path, authorization, status });
        expect(res.headers['www-authenticate']).toBe(challenge);
        expect(res.headers['x-content-type-options']).toBe('nosniff');
        const echoed = JSON.stringify(res.headers) + res.body;
        expect(echoed).not.toContain(TOKEN.slice(0, 12));
        expect(echoed).not.toContain(WRONG.slice(0, 12));
      }
    }
    // The scheme is case-insensitive and surrounding spaces are tolerated (RFC 7235).
    for (const authorization of [`Bearer ${TOKEN}`, `bearer ${TOKEN}`, `BEARER  ${TOKEN}`]) {
      const res = await raw(server.port, '/metrics', { headers: { Authorization: authorization } });
      expect(res.status).toBe(200);
      expect(res.body).not.toContain(TOKEN);
    }
    expect(logs.join('\n')).not.toContain(TOKEN.slice(0, 12));
    expect(logs.join('\n')).not.toContain(WRONG.slice(0, 12));
  });

  it('are never logged by the CLI: serve with wrong and right tokens, scrape, and config errors', async () => {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run the build first (npm test does: tsc, then vitest)`);
    const dir = await materialize('running', { pid: 'alive', mtimeMs: Date.now() });
    const env = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp' };
    const port = String(await freePort());
    const child = spawn(process.execPath, [CLI, 'serve', '--dir', dir, '--port', port], { env: { ...env, LOKI_METRICS_TOKEN: TOKEN } });
    children.push(child);
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    for (let i = 0; !output.includes('serving') && i < 100; i++) await sleep(100);
    expect(output).toContain('serving');

    for (const authorization of [`Bearer ${WRONG}`, `Bearer ${TOKEN}`, `Bearer ${TOKEN}!`, `Basic ${TOKEN}`, '']) {
      await raw(Number(port), '/metrics', { headers: authorization ? { Authorization: authorization } : {} });
    }
    const runCli = (args: string[], extra: Record<string, string> = {}) => {
      const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...env, ...extra }, timeout: 15_000 });
      return { code: r.status, text: r.stdout + r.stderr };
    };
    const scrapes = [
      runCli(['scrape', '--port', port, '--token', WRONG]),
      runCli(['scrape', '--port', port, '--token', TOKEN]),
      runCli(['scrape', '--port', port], { LOKI_METRICS_TOKEN: WRONG }),
    ];
    expect(scrapes.map((s) => s.code)).toEqual([1, 0, 1]);
    // Config errors name the variable, never the value.
    const badToken = `${WRONG} with spaces`;
    const configErrors = [
      runCli(['serve', '--dir', dir, '--port', port], { LOKI_METRICS_TOKEN: badToken }),
      runCli(['scrape', '--port', port, '--token', badToken]),
      runCli(['scrape', '--port', port], { LOKI_METRICS_TOKEN: 'short-secret' }),
      runCli(['sync', '--url', 'http://127.0.0.1:1', '--once', '--dir', dir], { LOKI_SYNC_TOKEN: badToken }),
    ];
    expect(configErrors.map((r) => r.code)).toEqual([2, 2, 2, 2]);
    expect(configErrors[0]!.text).toMatch(/^loki-metrics: invalid LOKI_METRICS_TOKEN: must be at least 16 characters/);

    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    const everything = [output, ...scrapes.map((s) => s.text), ...configErrors.map((r) => r.text)].join('\n');
    for (const secret of [TOKEN, WRONG, 'short-secret']) expect(everything).not.toContain(secret.slice(0, 12));
  });

  it('the Worker: wrong, malformed and missing write tokens are refused with a challenge; sessions cannot escape their key', async () => {
    const bucket = new MemoryObjectStore();
    const app = createRemoteApp({ bucket, config: parseConfig({ LOKI_SYNC_TOKEN: SYNC_TOKEN, LOKI_METRICS_TOKEN: SCRAPE_TOKEN }), log: () => undefined });
    for (const [authorization, status] of [
      [undefined, 401],
      [`Bearer ${SCRAPE_TOKEN}`, 401],
      [`Bearer ${SYNC_TOKEN}!`, 400],
      [`Basic ${SYNC_TOKEN}`, 400],
    ] as const) {
      const res = await app.request('/ingest/manifest', { headers: authorization ? { Authorization: authorization } : {} });
      expect(res.status).toBe(status);
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer /);
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    }
    const ok = { Authorization: `Bearer ${SYNC_TOKEN}` };
    const scrape = { Authorization: `Bearer ${SCRAPE_TOKEN}` };
    for (const session of ['..', '../x', 'a/../../b', '%2e%2e', '%2e%2e%2fx', 'a%2fb', '.hidden', '-x', 'a\\b', 'x'.repeat(65), '']) {
      expect((await app.request(`/ingest/manifest?session=${session}`, { headers: ok })).status).toBe(400);
      expect((await app.request(`/ingest?session=${session}`, { method: 'POST', headers: ok, body: '{}' })).status).toBe(400);
      const res = await app.request(`/metrics?session=${session}`, { headers: scrape });
      expect(res.status).toBe(400);
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    }
    expect((await app.request('/ingest/manifest?session=a..b', { headers: ok })).status).toBe(200);
    expect((await app.request('/metrics?session=laptop.1', { headers: scrape })).status).toBe(200);
    // Only the two valid sessions' own keys were touched: their beat, then their format 2 document.
    expect(bucket.calls.map((c) => c.key)).toEqual(['sessions/a..b/beat.json', 'sessions/a..b/state.json', 'sessions/laptop.1/beat.json', 'sessions/laptop.1/state.json']);
  });
});

/**
 * Issue 13: the scrape token follows LOKI_METRICS_PATH. Real requests to a real server: the custom
 * path needs the token for every method and project, the default `/metrics` is no route at all
 * there (never an unguarded copy of the metrics), and discovery (`/targets`) needs the token too.
 */
describe('a custom LOKI_METRICS_PATH keeps the token', () => {
  const CUSTOM = '/custom/scrape';
  const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });

  it('401 without or with a wrong token, 200 with it, at the custom path; /metrics is a 404 with or without it', async () => {
    const { server } = await serve({ LOKI_METRICS_TOKEN: TOKEN, LOKI_METRICS_PATH: CUSTOM });
    expect(server.url).toBe(`http://127.0.0.1:${server.port}${CUSTOM}`);
    for (const path of [CUSTOM, `${CUSTOM}?project=default`, `${CUSTOM}?session=default`]) {
      for (const method of ['GET', 'HEAD', 'POST']) {
        const none = await raw(server.port, path, { method });
        expect({ path, method, status: none.status }).toEqual({ path, method, status: 401 });
        expect(none.headers['www-authenticate']).toBe('Bearer realm="loki-metrics"');
        expect(none.body).not.toContain('loki_');
      }
      const wrong = await raw(server.port, path, { headers: bearer(WRONG) });
      expect(wrong.status).toBe(401);
      expect(wrong.headers['www-authenticate']).toBe('Bearer error="invalid_token"');
      expect(wrong.body).not.toContain('loki_');
      const right = await raw(server.port, path, { headers: bearer(TOKEN) });
      expect(right.status).toBe(200);
      expect(right.headers['content-type']).toBe('text/plain; version=0.0.4; charset=utf-8');
      expect(right.body).toContain('\nloki_up 1\n');
    }
    // The old path is not an open door: no route, whoever asks.
    for (const headers of [{}, bearer(WRONG), bearer(TOKEN)]) {
      for (const path of ['/metrics', '/metrics?project=default']) {
        const res = await raw(server.port, path, { headers });
        expect({ path, status: res.status }).toEqual({ path, status: 404 });
        expect(res.body).toBe(`not found: metrics are at ${CUSTOM}\n`);
      }
    }
    // Near misses of the custom path are no route either (and never metrics without the token).
    for (const path of [`${CUSTOM}/`, '/custom', '/custom/', '/CUSTOM/scrape', `/${CUSTOM}`]) {
      const res = await raw(server.port, path);
      expect({ path, status: res.status }).toEqual({ path, status: 404 });
      expect(res.body).not.toContain('loki_');
    }
    // Dot segments normalise onto the custom path, and meet the token there.
    expect((await raw(server.port, '/custom/x/../scrape')).status).toBe(401);
  });

  it('the token is checked before the project: an unknown or invalid project gets the same 401, telling nothing', async () => {
    const { server } = await serve({ LOKI_METRICS_TOKEN: TOKEN, LOKI_METRICS_PATH: CUSTOM });
    for (const query of ['?project=no-such-project', '?session=no-such-project', '?project=bad%20name', '?project=']) {
      const res = await raw(server.port, `${CUSTOM}${query}`);
      expect({ query, status: res.status }).toEqual({ query, status: 401 });
      expect(res.body).not.toMatch(/project|session/);
      // With the token, the answers that do name the project.
      expect((await raw(server.port, `${CUSTOM}${query}`, { headers: bearer(TOKEN) })).status).toBe(query.includes('no-such') ? 404 : 400);
    }
  });

  it('/targets needs the token (default and custom path), and lists the project with it', async () => {
    for (const env of [{ LOKI_METRICS_TOKEN: TOKEN }, { LOKI_METRICS_TOKEN: TOKEN, LOKI_METRICS_PATH: CUSTOM }] as Record<string, string>[]) {
      const { server } = await serve(env);
      const none = await raw(server.port, '/targets');
      expect(none.status).toBe(401);
      expect(none.headers['www-authenticate']).toBe('Bearer realm="loki-metrics"');
      expect(none.body).not.toContain('default');
      const wrong = await raw(server.port, '/targets', { headers: bearer(WRONG) });
      expect(wrong.status).toBe(401);
      expect(wrong.body).not.toContain('default');
      const right = await raw(server.port, '/targets', { headers: bearer(TOKEN) });
      expect(right.status).toBe(200);
      expect(JSON.parse(right.body)).toEqual([{ targets: [`127.0.0.1:${server.port}`], labels: { project: 'default', __param_project: 'default' } }]);
    }
  });

  it('each layer guards the custom path on its own: the fleet layer and the project app under it', async () => {
    // The fleet layer answers for a server; the project app behind it checks again, so dropping
    // either guard alone leaves the path closed. The real-request tests above pin the fleet layer
    // (a 401 before the project is looked up); this pins the project app's own guard.
    const dir = await materialize('running', { pid: 'alive', mtimeMs: Date.now() });
    const store = new FsStateStore(dir);
    stores.push(store);
    const app = createApp({ store, config: parseConfig({ LOKI_DIR: dir, LOKI_METRICS_TOKEN: TOKEN, LOKI_METRICS_PATH: CUSTOM }), log: () => undefined });
    expect((await app.request(CUSTOM)).status).toBe(401);
    expect((await app.request(CUSTOM, { headers: bearer(WRONG) })).status).toBe(401);
    const right = await app.request(CUSTOM, { headers: bearer(TOKEN) });
    expect(right.status).toBe(200);
    expect(await right.text()).toContain('\nloki_up 1\n');
    expect((await app.request('/metrics', { headers: bearer(TOKEN) })).status).toBe(404);
  });

  it('without a token, the custom path and /targets are open (the token is what closes them)', async () => {
    const { server } = await serve({ LOKI_METRICS_PATH: CUSTOM });
    expect((await raw(server.port, CUSTOM)).status).toBe(200);
    expect((await raw(server.port, '/targets')).status).toBe(200);
    expect((await raw(server.port, '/metrics')).status).toBe(404);
  });
});

describe('request limits', () => {
  it('the production defaults bound slow clients', () => {
    expect(DEFAULT_SERVER_LIMITS).toEqual({
      headersTimeoutMs: 10_000,
      requestTimeoutMs: 30_000,
      keepAliveTimeoutMs: 65_000,
      checkIntervalMs: 1_000,
      handshakeTimeoutMs: 10_000,
      maxConnections: 200,
    });
  });

  it('headers over 16 KiB get 431', async () => {
    const { server } = await serve();
    const res = await raw(server.port, '/metrics', { headers: { 'X-Padding': 'a'.repeat(17 * 1024) } });
    expect(res.status).toBe(431);
  });

  it('a client trickling its headers (a byte every 500 ms) is disconnected within the bound', async () => {
    const { server } = await serve({}, { headersTimeoutMs: 1_500, checkIntervalMs: 250 });
    const socket = await tcp('127.0.0.1', server.port);
    socket.setTimeout(0);
    let received = '';
    socket.on('data', (d: Buffer) => (received += d.toString()));
    const started = Date.now();
    const closed = new Promise<number>((resolve) => socket.once('close', () => resolve(Date.now() - started)));
    const head = `GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ${'z'.repeat(100)}`;
    let i = 0;
    const trickle = setInterval(() => {
      if (!socket.destroyed && i < head.length) socket.write(head[i++]!);
    }, 500);
    try {
      const after = await Promise.race([closed, sleep(6_000).then(() => -1)]);
      expect(after).toBeGreaterThanOrEqual(1_400);
      // The first byte starts the clock (at 500 ms); Node checks every 250 ms; plus slack for a busy machine.
      expect(after).toBeLessThan(500 + 1_500 + 250 + 1_500);
      expect(received).toMatch(/^HTTP\/1\.1 408 /);
    } finally {
      clearInterval(trickle);
    }
    // Meanwhile and afterwards, the server is fine.
    expect((await fetch(server.url)).status).toBe(200);
  });

  it('150 idle connections (and 50 half-sent requests) do not stop a normal scrape', async () => {
    const { server } = await serve({}, { headersTimeoutMs: 5_000, checkIntervalMs: 250 });
    const idle = await Promise.all(Array.from({ length: 150 }, () => tcp('127.0.0.1', server.port)));
    for (const socket of idle.slice(0, 50)) socket.write('GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n');
    const started = Date.now();
    const res = await fetch(server.url);
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('loki_up 1');
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(idle.filter((s) => s.destroyed)).toHaveLength(0);
  });
});

describe('connections held by strangers (issue 19, item 8)', () => {
  it('beyond maxConnections a new connection is closed at once, and idle ones go at the headers timeout, so scrapes come back', async () => {
    const { server } = await serve({}, { maxConnections: 5, headersTimeoutMs: 1_000, checkIntervalMs: 250 });
    const idle = await Promise.all(Array.from({ length: 5 }, () => tcp('127.0.0.1', server.port)));
    // The sixth is accepted by the kernel, then closed by the server without a byte.
    const extra = await tcp('127.0.0.1', server.port);
    extra.setTimeout(0); // only the server may close it
    let got = '';
    extra.on('data', (d: Buffer) => (got += d.toString()));
    await new Promise<void>((resolve) => (extra.destroyed ? resolve() : extra.once('close', () => resolve())));
    expect(got).toBe('');
    // Closed for the cap, not by a timeout: the five held ones are all still open.
    expect(idle.filter((s) => s.destroyed)).toHaveLength(0);
    // The idle ones are cut at the headers timeout; then a scrape gets through.
    await Promise.all(idle.map((s) => new Promise<void>((resolve) => (s.destroyed ? resolve() : s.once('close', () => resolve())))));
    expect((await fetch(server.url)).status).toBe(200);
  });
});

describe('paths', () => {
  it('stay in their namespace: dot segments, doubled and encoded slashes never reach a file or bypass the token', async () => {
    const { server, dir } = await serve({ LOKI_METRICS_TOKEN: TOKEN });
    // Something worth stealing right next to the state directory.
    const secret = 'SECRET-NEXT-TO-THE-STATE-DIR';
    await writeFile(join(dir, '..', 'secret.txt'), secret);
    // What the URL parser normalises (RFC 3986 dot segments, %2e included) is routed as normalised;
    // everything else that is not exactly a route is a 404. The metrics stay behind the token.
    const expected: Record<string, number> = {
      '/metrics': 401,
      '/./metrics': 401,
      '/x/../metrics': 401,
      '/%2e%2e/metrics': 401,
      '/%6detrics': 401, // percent-decoded for routing, and for the token check alike
      '/metrics?x=../../secret.txt': 401,
      '/metrics/../health': 401, // /health needs the token too (LOKI_METRICS_HEALTH_PUBLIC unset)
      '/health/..': 200, // the landing page
      '//metrics': 404,
      '/metrics/': 404,
      '/metrics/.': 404,
      '/METRICS': 404,
      '/metrics;x': 404,
      '/metrics%00': 404,
      '/metrics%2F..%2Fhealth': 404,
      '/%2fmetrics': 404,
      '/..%2f..%2fsecret.txt': 404,
      '/%2e%2e%2f%2e%2e%2fsecret.txt': 404,
      '/../secret.txt': 404,
      '/../../../../etc/passwd': 404,
      '/secret.txt': 404,
      '/loki.pid': 404,
      '/events.jsonl': 404,
      '/.loki/events.jsonl': 404,
      '*': 400,
    };
    const got: Record<string, number> = {};
    for (const path of Object.keys(expected)) {
      const res = await raw(server.port, path);
      got[path] = res.status;
      expect(res.headers['x-content-type-options']).toBe('nosniff');
      expect(res.body).not.toContain(secret);
      expect(res.body).not.toContain('root:');
      expect(res.body).not.toMatch(/^\s*\{"timestamp"/m); // no events.jsonl line
    }
    expect(got).toEqual(expected);
  });

  it('a malformed Host or request-target gets a plain 400 with the usual headers, not a crash', async () => {
    const { server } = await serve();
    for (const [path, host] of [
      ['*', '127.0.0.1'],
      ['/metrics', 'a b'],
    ] as const) {
      const res = await raw(server.port, path, { headers: { Host: host } });
      expect(res.status).toBe(400);
      expect(res.headers['x-content-type-options']).toBe('nosniff');
    }
    expect((await fetch(server.url)).status).toBe(200);
  });
});

describe('response headers', () => {
  it('nosniff on every route and status; no-store on metrics and health', async () => {
    const { server } = await serve({ LOKI_METRICS_TOKEN: TOKEN });
    const auth = { Authorization: `Bearer ${TOKEN}` };
    const cases: [string, string, Record<string, string>, number][] = [
      ['GET', '/metrics', auth, 200],
      ['HEAD', '/metrics', auth, 200],
      ['GET', '/metrics', {}, 401],
      ['GET', '/metrics', { Authorization: 'Basic x' }, 400],
      ['POST', '/metrics', auth, 405],
      ['GET', '/health', auth, 200],
      ['GET', '/health', {}, 401],
      ['DELETE', '/health', auth, 405],
      ['GET', '/', {}, 200],
      ['PUT', '/', {}, 405],
      ['GET', '/nope', {}, 404],
      ['OPTIONS', '/nope', {}, 404],
    ];
    for (const [method, path, headers, status] of cases) {
      const res = await raw(server.port, path, { method, headers });
      expect(`${method} ${path} ${res.status}`).toBe(`${method} ${path} ${status}`);
      expect(res.headers['x-content-type-options']).toBe('nosniff');
      expect(res.body).not.toMatch(/\n\s+at .+:\d+:\d+/); // no stack trace
      if (status === 200 && path !== '/') expect(res.headers['cache-control']).toBe('no-store');
    }
  });

  it('nosniff on the Worker app too, including its 400/401/404/405/503', async () => {
    const config = parseConfig({ LOKI_METRICS_TOKEN: SCRAPE_TOKEN });
    const app = createRemoteApp({ bucket: undefined, config, log: () => undefined }); // no sync token: ingest 503
    for (const [path, init, status] of [
      ['/metrics', { headers: { Authorization: `Bearer ${SCRAPE_TOKEN}` } }, 200],
      ['/metrics', {}, 401],
      ['/metrics?session=..', { headers: { Authorization: `Bearer ${SCRAPE_TOKEN}` } }, 400],
      ['/health?session=..', { headers: { Authorization: `Bearer ${SCRAPE_TOKEN}` } }, 400],
      ['/health', {}, 401],
      ['/nope', {}, 404],
      ['/health', { method: 'POST', headers: { Authorization: `Bearer ${SCRAPE_TOKEN}` } }, 405],
      ['/ingest', { method: 'POST', body: '{}' }, 503],
    ] as const) {
      const res = await app.request(path, init);
      expect(`${path} ${res.status}`).toBe(`${path} ${status}`);
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    }
  });
});

describe('the state directory is never written', () => {
  it.each(['running', 'malformed'])('%s: several hundred scrapes, error paths included, leave the tree byte-for-byte', async (fixture) => {
    const { server, dir } = await serve({ LOKI_METRICS_TOKEN: TOKEN, LOKI_METRICS_CACHE_SECONDS: '0' }, undefined, fixture);
    const before = await treeDigest(dir);
    const auth = { Authorization: `Bearer ${TOKEN}` };
    const om = { ...auth, Accept: 'application/openmetrics-text; version=1.0.0' };
    const requests: [string, string, Record<string, string>][] = [
      ['GET', '/metrics', auth],
      ['GET', '/metrics', om],
      ['HEAD', '/metrics', auth],
      ['GET', '/metrics', {}],
      ['GET', '/metrics', { Authorization: `Bearer ${WRONG}` }],
      ['GET', '/metrics', { Authorization: 'Bearer !' }],
      ['POST', '/metrics', auth],
      ['GET', '/health', {}],
      ['GET', '/', {}],
      ['GET', '/../events.jsonl', {}],
      ['GET', '/nope', {}],
      ['GET', '*', {}],
    ];
    let n = 0;
    for (let round = 0; round < 30; round++) {
      await Promise.all(requests.map(([method, path, headers]) => raw(server.port, path, { method, headers }).then(() => n++)));
    }
    expect(n).toBe(360);
    // The direct app, with the same store kind, for good measure (watching off: another code path).
    const store = new FsStateStore(dir, { watch: false });
    stores.push(store);
    const app = createApp({ store, config: parseConfig({ LOKI_METRICS_CACHE_SECONDS: '0' }), log: () => undefined });
    for (let i = 0; i < 40; i++) await app.request(i % 2 ? '/metrics' : '/health');
    expect(await treeDigest(dir)).toBe(before);
  });
});

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const probe = createNetServer().listen(0, '127.0.0.1', () => {
      const port = (probe.address() as { port: number }).port;
      probe.close(() => resolve(port));
    });
  });
}

