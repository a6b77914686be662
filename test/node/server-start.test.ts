/**
 * What startServer/startFleetServer wire up around the app, over real sockets: a server error after
 * listening is not swallowed, the web config's reloader runs on the server's clock and settle time,
 * a client without an address (a Unix socket handed to the server) is logged as "unknown", and a
 * failure inside the app's own error path still gets a plain 500.
 */
import { writeFileSync } from 'node:fs';
import { Agent, request as httpRequest, type IncomingMessage, type RequestOptions } from 'node:http';
import { createServer as createNetServer, type Server as NetServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import bcrypt from 'bcryptjs';
import { ConfigError, parseConfig } from '../../src/config.js';
import { startFleetServer, startServer, type RunningServer } from '../../src/node/server.js';
import { FsStateStore } from '../../src/stores/fs.js';
import { bcryptHash } from '../support/certs.js';
import { cleanTrees, materialize, tempDir } from '../support/loki-tree.js';

let dir = '';
let lokiDir = '';

beforeAll(async () => {
  dir = await tempDir('loki-server-start-');
  lokiDir = await materialize('running', { pid: 'alive', mtimeMs: Date.now() });
});

const closing: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closing.splice(0).reverse()) await close();
});
afterAll(cleanTrees);

async function serve(env: Record<string, string>, log: (line: string) => void, deps: Parameters<typeof startServer>[3] = {}): Promise<RunningServer> {
  const store = new FsStateStore(lokiDir, { watch: false });
  closing.push(async () => {
    await store.close();
  });
  const server = await startServer({ ...parseConfig({ LOKI_DIR: lokiDir, ...env }), port: 0 }, store, log, deps);
  closing.push(() => server.close());
  return server;
}

function get(options: RequestOptions): Promise<{ status: number; body: string; headers: IncomingMessage['headers'] }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ path: '/metrics', ...options }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    });
    req.on('error', reject);
    req.end();
  });
}

const basic = (user: string, password: string) => ({ Authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` });

describe('startServer: after it listens', () => {
  it('a later server error is not swallowed by the listen step: it surfaces to the caller', async () => {
    const server = await serve({}, () => undefined);
    expect(server.node.listenerCount('error')).toBe(0);
    expect(() => server.node.emit('error', new Error('accept failed'))).toThrow('accept failed');
  });
});

describe('startServer: a web config it cannot take', () => {
  it('an alias bomb is refused at startup as a setting (the CLI\'s exit 2) naming the file, not thrown raw', async () => {
    let text = 'a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n';
    for (let i = 1; i <= 9; i++) text += `a${i}: &a${i} [${Array(10).fill(`*a${i - 1}`).join(', ')}]\n`;
    const path = join(dir, 'bomb.yml');
    writeFileSync(path, text);
    const started = serve({ LOKI_METRICS_WEB_CONFIG: path }, () => undefined);
    await expect(started).rejects.toThrow(ConfigError);
    await expect(started).rejects.toMatchObject({ variable: 'LOKI_METRICS_WEB_CONFIG', message: expect.stringMatching(new RegExp(`^web config ${path}: not valid YAML: `)) });
  });
});

describe('the web config reloader runs on the server\'s clock and settle time', () => {
  it('a change does not apply after a second of real time when the server\'s clock says it has not settled', async () => {
    const path = join(dir, 'settle.yml');
    const hash = bcryptHash('prometheus', 'pw');
    writeFileSync(path, `basic_auth_users:\n  prometheus: ${hash}\n`);
    let now = 5_000;
    const server = await serve({ LOKI_METRICS_WEB_CONFIG: path }, () => undefined, { clock: () => now, webConfigSettleMs: 60_000, webConfigCheckMs: 0 });
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const status = async (user: string) => (await get({ host: '127.0.0.1', port: server.port, agent, headers: basic(user, 'pw') })).status;
    try {
      expect(await status('prometheus')).toBe(200);
      writeFileSync(path, `basic_auth_users:\n  prometheus: ${hash}\n  grafana: ${hash}\n`);
      expect(await status('grafana')).toBe(401); // the change is first seen
      // More than the default settle time (1 s) of real time passes; the server's clock stands still.
      await new Promise((r) => setTimeout(r, 1_200));
      expect(await status('grafana')).toBe(401);
      now += 60_000;
      expect(await status('grafana')).toBe(200); // settled on the server's clock: applied
    } finally {
      agent.destroy();
    }
  });
});

describe('a connection without a network address', () => {
  it('a password flood over a Unix socket handed to the server is logged as coming from "unknown"', async () => {
    const slow = bcrypt.hashSync('right', 12); // ~0.3 s a check: the flood is still waiting when the rest arrive
    const path = join(dir, 'unix.yml');
    writeFileSync(path, `basic_auth_users:\n  prometheus: ${slow}\n`);
    const logs: string[] = [];
    const server = await serve({ LOKI_METRICS_WEB_CONFIG: path }, (line) => logs.push(line), { clock: () => 1_000_000 });
    // An embedder's front: a Unix socket whose connections are handed to the exporter's server.
    const socketPath = join(dir, 'front.sock');
    const front: NetServer = createNetServer((socket) => server.node.emit('connection', socket));
    await new Promise<void>((r) => front.listen(socketPath, r));
    closing.push(() => new Promise<void>((r) => front.close(() => r())));
    const flood = await Promise.all(Array.from({ length: 4 }, (_, i) => get({ socketPath, agent: false, headers: basic('prometheus', `wrong ${i}`) })));
    expect(flood.map((a) => a.status)).toEqual([401, 401, 401, 401]);
    expect(logs).toEqual([
      'loki-metrics: too many password checks waiting (from unknown): refusing further wrong credentials unchecked (not logged again this minute)',
    ]);
  });
});

describe('a failure inside the app\'s own error path', () => {
  it('still answers 500 "internal error" as plain text, with nosniff', async () => {
    const config = { ...parseConfig({ LOKI_DIR: lokiDir }), port: 0 };
    const catalog = { list: async () => [], store: () => { throw new Error('disk gone'); } };
    // The log itself fails (say its stream is gone) when the app reports the error.
    const server = await startFleetServer(config, catalog, () => { throw new Error('log stream gone'); });
    closing.push(() => server.close());
    const answer = await get({ host: '127.0.0.1', port: server.port, path: '/metrics?project=alpha' });
    expect(answer.status).toBe(500);
    expect(answer.body).toBe('internal error\n');
    expect(answer.headers['content-type']).toBe('text/plain; charset=utf-8');
    expect(answer.headers['x-content-type-options']).toBe('nosniff');
  });
});
