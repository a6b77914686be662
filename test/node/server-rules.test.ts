/**
 * Rules of the Node server a user depends on, over real loopback sockets: the URL it reports, why
 * it cannot listen, the answer to a request the adapter cannot parse, the Host check switched off
 * once the web config asks for credentials, and certificate rotation noticed at a new connection.
 */
import { copyFile, rename } from 'node:fs/promises';
import { readFileSync, writeFileSync } from 'node:fs';
import { Agent, request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config.js';
import { startServer, type RunningServer } from '../../src/node/server.js';
import { FsStateStore } from '../../src/stores/fs.js';
import { bcryptHash, issue, makeCa, type Ca, type Issued } from '../support/certs.js';
import { cleanTrees, materialize, tempDir } from '../support/loki-tree.js';

let dir = '';
let lokiDir = '';
let ca: Ca;
let server1: Issued;
let server2: Issued;
let client: Issued;

beforeAll(async () => {
  dir = await tempDir('loki-server-rules-');
  lokiDir = await materialize('running', { pid: 'alive', mtimeMs: Date.now() });
  ca = makeCa(dir, 'ca');
  server1 = issue(dir, ca, 'server1');
  server2 = issue(dir, ca, 'server2');
  client = issue(dir, ca, 'scraper', { client: true });
});

const running: { server: RunningServer; store: FsStateStore }[] = [];
afterEach(async () => {
  for (const { server, store } of running.splice(0)) {
    await server.close();
    await store.close();
  }
});
afterAll(cleanTrees);

async function serve(env: Record<string, string> = {}, deps: Parameters<typeof startServer>[3] = {}): Promise<RunningServer> {
  const store = new FsStateStore(lokiDir, { watch: false });
  try {
    const server = await startServer({ ...parseConfig({ LOKI_DIR: lokiDir, ...env }), port: 0 }, store, () => undefined, deps);
    running.push({ server, store });
    return server;
  } catch (error) {
    await store.close();
    throw error;
  }
}

function answerOf(res: import('node:http').IncomingMessage): Promise<{ status: number; body: string; headers: import('node:http').IncomingHttpHeaders }> {
  return new Promise((resolve) => {
    let body = '';
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => (body += chunk));
    res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
  });
}

describe('startServer: address and listening', () => {
  it('an IPv6 host is bracketed in the URL it reports', async () => {
    const server = await serve({ LOKI_METRICS_HOST: '::1' });
    expect(server.url).toBe(`http://[::1]:${server.port}/metrics`);
  });

  it('an address it cannot bind is named in the error, with the system reason', async () => {
    await expect(serve({ LOKI_METRICS_HOST: '192.0.2.1' })).rejects.toThrow(/^cannot listen on 192\.0\.2\.1:0: .*EADDRNOTAVAIL/);
  });
});

describe('a request the adapter cannot turn into a Request', () => {
  it('gets 400 "bad request" as text/plain', async () => {
    const server = await serve();
    const raw = await new Promise<string>((resolve, reject) => {
      const socket = connect(server.port, '127.0.0.1', () => socket.end('GET * HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n'));
      let text = '';
      socket.setEncoding('utf8');
      socket.on('data', (chunk: string) => (text += chunk));
      socket.on('end', () => resolve(text));
      socket.on('error', reject);
    });
    expect(raw).toMatch(/^HTTP\/1\.1 400 /);
    expect(raw).toMatch(/\r\ncontent-type: text\/plain; charset=utf-8\r\n/i);
    expect(raw).toMatch(/\r\n\r\nbad request\n$/);
  });
});

describe('the Host check is off once the web config asks for credentials (a rebinding page has none)', () => {
  it('basic-auth users: a foreign Host gets the credentials challenge, not 403; with them, the metrics', async () => {
    const path = join(dir, 'users.yml');
    writeFileSync(path, `basic_auth_users:\n  prometheus: ${bcryptHash('prometheus', 'pw')}\n`);
    const server = await serve({ LOKI_METRICS_WEB_CONFIG: path });
    expect(server.authenticates).toBe(true);
    const get = (headers: Record<string, string>) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = httpRequest({ host: '127.0.0.1', port: server.port, path: '/metrics', agent: false, headers: { Host: 'rebound.example', ...headers } }, (res) => resolve(answerOf(res)));
        req.on('error', reject);
        req.end();
      });
    expect((await get({})).status).toBe(401);
    const ok = await get({ Authorization: `Basic ${Buffer.from('prometheus:pw').toString('base64')}` });
    expect(ok.status).toBe(200);
    expect(ok.body).toContain('loki_');
  });

  it('RequireAndVerifyClientCert: a verified client naming a foreign Host gets the metrics', async () => {
    const path = join(dir, 'mtls.yml');
    writeFileSync(path, `tls_server_config:\n  cert_file: ${server1.cert}\n  key_file: ${server1.key}\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ${ca.cert}\n`);
    const server = await serve({ LOKI_METRICS_WEB_CONFIG: path });
    const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = httpsRequest({ host: '127.0.0.1', port: server.port, path: '/metrics', agent: false, servername: 'localhost', ca: readFileSync(ca.cert),
        cert: readFileSync(client.cert), key: readFileSync(client.key), headers: { Host: 'rebound.example' } }, (res) => resolve(answerOf(res)));
      req.on('error', reject);
      req.end();
    });
    expect(answer.status).toBe(200);
    expect(answer.body).toContain('loki_');
  });
});

describe('certificate rotation is noticed at a new connection', () => {
  it('with requests never re-checking, new connections alone pick up a rotated certificate', async () => {
    const live = await tempDir('loki-server-rules-rotate-', dir);
    await copyFile(server1.cert, join(live, 'tls.crt'));
    await copyFile(server1.key, join(live, 'tls.key'));
    const path = join(live, 'web.yml');
    writeFileSync(path, 'tls_server_config:\n  cert_file: tls.crt\n  key_file: tls.key\n');
    const server = await serve({ LOKI_METRICS_WEB_CONFIG: path }, { webConfigCheckMs: Number.MAX_SAFE_INTEGER, webConfigSettleMs: 50 });
    const fingerprint = () =>
      new Promise<string>((resolve, reject) => {
        const req = httpsRequest({ host: '127.0.0.1', port: server.port, path: '/health', agent: false, servername: 'localhost', ca: readFileSync(ca.cert) }, (res) => {
          const seen = (res.socket as TLSSocket).getPeerCertificate().fingerprint256;
          res.resume();
          res.on('end', () => resolve(seen));
        });
        req.on('error', reject);
        req.end();
      });
    expect(await fingerprint()).toBe(server1.fingerprint);
    await copyFile(server2.key, join(live, 'tls.key.new'));
    await copyFile(server2.cert, join(live, 'tls.crt.new'));
    await rename(join(live, 'tls.key.new'), join(live, 'tls.key'));
    await rename(join(live, 'tls.crt.new'), join(live, 'tls.crt'));
    // New connections until one shows the new certificate (the change settles in 50 ms); at most 10 s.
    let seen = '';
    for (const deadline = Date.now() + 10_000; seen !== server2.fingerprint && Date.now() < deadline; ) {
      seen = await fingerprint();
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(seen).toBe(server2.fingerprint);
  });
});

describe('when the web config is checked again, on a clock the test moves (ServerDeps.clock)', () => {
  const basic = (user: string) => ({ Authorization: `Basic ${Buffer.from(`${user}:pw`).toString('base64')}` });

  it('a kept-alive connection re-checks at most once a second by default, and a change applies once it has settled', async () => {
    const path = join(dir, 'recheck.yml');
    const hash = bcryptHash('prometheus', 'pw');
    writeFileSync(path, `basic_auth_users:\n  prometheus: ${hash}\n`);
    let now = 10_000;
    const server = await serve({ LOKI_METRICS_WEB_CONFIG: path }, { clock: () => now, webConfigSettleMs: 60_000 });
    // One connection for every request: a new connection checks too, so only requests do here.
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const statusAt = async (at: number, user: string) => {
      now = at;
      const answer = await new Promise<{ status: number }>((resolve, reject) => {
        const req = httpRequest({ host: '127.0.0.1', port: server.port, path: '/metrics', agent, headers: basic(user) }, (res) => resolve(answerOf(res)));
        req.on('error', reject);
        req.end();
      });
      return answer.status;
    };
    try {
      expect(await statusAt(10_000, 'prometheus')).toBe(200); // checked at 10 000
      writeFileSync(path, `basic_auth_users:\n  prometheus: ${hash}\n  grafana: ${hash}\n`);
      expect(await statusAt(10_999, 'grafana')).toBe(401); // within the second: not checked
      expect(await statusAt(11_000, 'grafana')).toBe(401); // checked: the change is first seen
      expect(await statusAt(70_999, 'grafana')).toBe(401); // checked: not yet the 60 s it must stay unchanged
      expect(await statusAt(72_000, 'grafana')).toBe(200); // checked: settled, applied
    } finally {
      agent.destroy();
    }
  });

  it('a refused TLS client is logged at most once a minute', async () => {
    const path = join(dir, 'refusals.yml');
    writeFileSync(path, `tls_server_config:\n  cert_file: ${server1.cert}\n  key_file: ${server1.key}\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ${ca.cert}\n`);
    let now = 5_000;
    const logs: string[] = [];
    const store = new FsStateStore(lokiDir, { watch: false });
    const server = await startServer({ ...parseConfig({ LOKI_DIR: lokiDir, LOKI_METRICS_WEB_CONFIG: path }), port: 0 }, store, (l) => logs.push(l), { clock: () => now });
    running.push({ server, store });
    // The server's own refusal handler runs before this later listener: counting here says it ran.
    let refusals = 0;
    server.node.on('tlsClientError', () => refusals++);
    // A client without a certificate: its handshake fails, with the server's alert or a reset.
    const refuseAt = async (at: number) => {
      now = at;
      const before = refusals;
      await new Promise<void>((resolve) => {
        const req = httpsRequest({ host: '127.0.0.1', port: server.port, path: '/metrics', agent: false, servername: 'localhost', ca: readFileSync(ca.cert) }, (res) => {
          res.resume();
          res.on('end', resolve);
        });
        req.on('error', () => resolve());
        req.end();
      });
      for (const deadline = Date.now() + 10_000; refusals === before && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 5));
      expect(refusals).toBe(before + 1);
    };
    await refuseAt(5_000);
    expect(logs).toHaveLength(1);
    expect(logs[0]).toMatch(/^loki-metrics: refused a TLS client: .*\(further refusals this minute are not logged\)$/);
    await refuseAt(64_999);
    expect(logs).toHaveLength(1);
    await refuseAt(65_000);
    expect(logs).toHaveLength(2);
  });
});

describe('bounds on slow clients, as the Node server applies them', () => {
  it('the whole-request timeout is never shorter than the headers timeout (Node would cut a request whose head is still allowed)', async () => {
    const server = await serve({}, { limits: { headersTimeoutMs: 20_000, requestTimeoutMs: 5_000, keepAliveTimeoutMs: 7_000, maxConnections: 9 } });
    expect(server.node.headersTimeout).toBe(20_000);
    expect(server.node.requestTimeout).toBe(20_000);
    expect(server.node.keepAliveTimeout).toBe(7_000);
    expect(server.node.maxConnections).toBe(9);
    expect(server.node.maxHeadersCount).toBe(100);
    const longer = await serve({}, { limits: { headersTimeoutMs: 2_000, requestTimeoutMs: 6_000 } });
    expect(longer.node.requestTimeout).toBe(6_000);
  });
});
