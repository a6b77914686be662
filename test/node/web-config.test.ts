/**
 * The exporter-toolkit web config on the real Node server: TLS, client certificates, basic auth
 * (bcrypt hashes from the real htpasswd), headers, bad files refused with one line, and live
 * reloads (certificate rotation under a scrape loop, a bad new version keeping the old one).
 * Certificates come from the real openssl CLI; every request is a real HTTPS request.
 */
import bcrypt from 'bcryptjs';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { copyFile, rename, writeFile } from 'node:fs/promises';
import { request, type RequestOptions } from 'node:https';
import { request as httpRequest } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { connect } from 'node:net';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../../src/config.js';
import { startServer, type RunningServer, type ServerLimits } from '../../src/node/server.js';
import { loadWebConfig, WEB_CONFIG_SETTLE_MS, WebConfigReloader } from '../../src/node/web-config.js';
import { WebConfigError } from '../../src/schemas/web-config.js';
import { FsStateStore } from '../../src/stores/fs.js';
import { bcryptHash, issue, makeCa, type Ca, type Issued } from '../support/certs.js';
import { cleanTrees, materialize, tempDir } from '../support/loki-tree.js';

const PASSWORD = 'correct horse battery staple';
const TOKEN = 'web-config-token-0123456789abcdef';

let dir = '';
let lokiDir = '';
let ca: Ca;
let otherCa: Ca;
let server1: Issued;
let client: Issued;
let strangerClient: Issued;
let hash = '';

const running: { server: RunningServer; store: FsStateStore }[] = [];
let logs: string[] = [];

beforeAll(async () => {
  dir = await tempDir('loki-web-config-');
  lokiDir = await materialize('running', { pid: 'alive', mtimeMs: Date.now() });
  ca = makeCa(dir, 'ca');
  otherCa = makeCa(dir, 'other-ca');
  server1 = issue(dir, ca, 'server1');
  client = issue(dir, ca, 'scraper', { client: true, sans: ['DNS:prometheus.example', 'URI:spiffe://lab/prometheus'] });
  strangerClient = issue(dir, otherCa, 'stranger', { client: true });
  hash = bcryptHash('prometheus', PASSWORD);
});

afterEach(async () => {
  await Promise.all(running.splice(0).map(async ({ server, store }) => (await server.close(), await store.close())));
  logs = [];
});
afterAll(cleanTrees);

async function writeConfig(name: string, yaml: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, yaml);
  return path;
}

/** Tests let a changed config settle for this long (the default, 1 s, is pinned in its own test). */
const SETTLE_MS = 150;

/** A server on `configPath`; requests re-check the config every `checkMs` (0: each request). */
async function serveWith(configPath: string, env: Record<string, string> = {}, checkMs = 0, limits?: ServerLimits, clock?: () => number): Promise<RunningServer> {
  const store = new FsStateStore(lokiDir, { watch: false });
  const server = await startServer({ ...parseConfig({ LOKI_DIR: lokiDir, LOKI_METRICS_WEB_CONFIG: configPath, ...env }), port: 0 }, store, (l) => logs.push(l), {
    webConfigCheckMs: checkMs,
    webConfigSettleMs: SETTLE_MS,
    ...(limits ? { limits } : {}),
    ...(clock ? { clock } : {}),
  });
  running.push({ server, store });
  // Every config the exporter accepts is one Prometheus's own checker accepts too (Debian's 2.42
  // predates client_allowed_sans, so those are left to the exporter).
  const yaml = readFileSync(configPath, 'utf8');
  if (!yaml.includes('client_allowed_sans')) {
    const check = spawnSync('promtool', ['check', 'web-config', configPath], { encoding: 'utf8', timeout: 20_000 });
    expect(`${check.stdout}${check.stderr}`, configPath).toContain('SUCCESS');
  }
  return server;
}

interface Answer {
  status: number;
  body: string;
  headers: Record<string, string | string[] | undefined>;
  fingerprint?: string;
}

/** One HTTPS GET on a new connection (no agent), trusting `ca` unless told otherwise. */
function get(port: number, options: RequestOptions & { path?: string } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, path: '/metrics', agent: false, ca: readFileSync(ca.cert), servername: 'localhost', timeout: 5_000, ...options },
      (res) => {
        const fingerprint = (res.socket as TLSSocket).getPeerCertificate().fingerprint256;
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers, fingerprint }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

/**
 * Scrapes (each request lets the server see its files) until it has logged `count` lines: a reload,
 * or a refusal to reload. At most 10 s.
 */
async function untilLogged(count: number, scrape: () => Promise<unknown>): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (logs.length < count && Date.now() < deadline) {
    await scrape().catch(() => undefined);
    await new Promise((r) => setTimeout(r, 20));
  }
  expect(logs.length, logs.join('\n')).toBeGreaterThanOrEqual(count);
}

const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
const clientCert = (c: Issued) => ({ cert: readFileSync(c.cert), key: readFileSync(c.key) });

describe('TLS', () => {
  it('serves /metrics over TLS with the configured certificate; an untrusting client fails the handshake', async () => {
    const server = await serveWith(await writeConfig('tls.yml', `tls_server_config:\n  cert_file: server1.crt\n  key_file: server1.key\n`));
    expect(server.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+\/metrics$/);
    const answer = await get(server.port);
    expect(answer.status).toBe(200);
    expect(answer.fingerprint).toBe(server1.fingerprint);
    expect(answer.body).toContain('loki_up 1');
    await expect(get(server.port, { ca: readFileSync(otherCa.cert) })).rejects.toThrow(/self-signed|unable to verify|certificate/i);
    // Plain http to a TLS port gets nothing useful.
    const plain = await new Promise<number | string>((resolve) => {
      const req = httpRequest({ host: '127.0.0.1', port: server.port, path: '/metrics', timeout: 3_000 }, (res) => resolve(res.statusCode ?? 0));
      req.on('error', (error) => resolve(error.message));
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.end();
    });
    expect(plain).not.toBe(200);
  });

  it('honours min_version and max_version', async () => {
    const server = await serveWith(await writeConfig('tls13.yml', `tls_server_config:\n  cert_file: server1.crt\n  key_file: server1.key\n  min_version: TLS13\n`));
    expect((await get(server.port)).status).toBe(200);
    await expect(get(server.port, { maxVersion: 'TLSv1.2' })).rejects.toThrow(/version|alert/i);
    const only12 = await serveWith(await writeConfig('tls12.yml', `tls_server_config:\n  cert_file: server1.crt\n  key_file: server1.key\n  max_version: TLS12\n  cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256]\n`));
    const socketProtocol = await new Promise<string | null>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: only12.port, path: '/metrics', agent: false, ca: readFileSync(ca.cert), servername: 'localhost' }, (res) => {
        const socket = res.socket as TLSSocket;
        resolve(`${socket.getProtocol()} ${socket.getCipher().name}`);
        res.resume();
      });
      req.on('error', reject);
      req.end();
    });
    expect(socketProtocol).toBe('TLSv1.2 ECDHE-ECDSA-AES128-GCM-SHA256');
    // A client offering only other TLS 1.2 suites cannot connect.
    await expect(get(only12.port, { ciphers: 'ECDHE-ECDSA-AES256-GCM-SHA384', maxVersion: 'TLSv1.2' })).rejects.toThrow();
  });
});

describe('client certificates', () => {
  const mtls = (type: string, extra = '') =>
    `tls_server_config:\n  cert_file: server1.crt\n  key_file: server1.key\n  client_auth_type: ${type}\n  client_ca_file: ca.crt\n${extra}`;

  it('RequireAndVerifyClientCert: a client certificate from the CA passes; none, or one from another CA, fails the handshake', async () => {
    const server = await serveWith(await writeConfig('mtls.yml', mtls('RequireAndVerifyClientCert')));
    expect(server.authenticates).toBe(true);
    expect((await get(server.port, clientCert(client))).status).toBe(200);
    await expect(get(server.port)).rejects.toThrow(/certificate required|alert|socket hang up|ECONNRESET/i);
    await expect(get(server.port, clientCert(strangerClient))).rejects.toThrow(/unknown ca|alert|socket hang up|ECONNRESET/i);
  });

  it('VerifyClientCertIfGiven: no certificate passes, a verified one passes, an unverifiable one is cut off', async () => {
    const server = await serveWith(await writeConfig('if-given.yml', mtls('VerifyClientCertIfGiven')));
    expect((await get(server.port)).status).toBe(200);
    expect((await get(server.port, clientCert(client))).status).toBe(200);
    await expect(get(server.port, clientCert(strangerClient))).rejects.toThrow();
  });

  it('RequireAnyClientCert: any certificate passes, none is cut off', async () => {
    const path = await writeConfig('any.yml', `tls_server_config:\n  cert_file: server1.crt\n  key_file: server1.key\n  client_auth_type: RequireAnyClientCert\n`);
    const server = await serveWith(path);
    expect((await get(server.port, clientCert(strangerClient))).status).toBe(200);
    await expect(get(server.port)).rejects.toThrow();
  });

  it('client_allowed_sans: only a certificate naming one of them passes; IPs match as Go prints them', async () => {
    const allowed = await serveWith(await writeConfig('sans-ok.yml', mtls('RequireAndVerifyClientCert', '  client_allowed_sans: ["spiffe://lab/prometheus"]\n')));
    expect((await get(allowed.port, clientCert(client))).status).toBe(200);
    const other = await serveWith(await writeConfig('sans-no.yml', mtls('RequireAndVerifyClientCert', '  client_allowed_sans: [grafana.example]\n')));
    await expect(get(other.port, clientCert(client))).rejects.toThrow();
    expect(logs).toEqual([expect.stringMatching(/refused a TLS client: client certificate has none of client_allowed_sans/)]);
    const v6 = issue(dir, ca, 'v6-scraper', { client: true, sans: ['IP:2001:db8::5', 'DNS:scraper.example'] });
    for (const [san, status] of [['2001:db8::5', 200], ['2001:DB8:0:0:0:0:0:5', 200], ['2001:db8::6', 0]] as const) {
      const server = await serveWith(await writeConfig(`sans-v6-${status}-${san.length}.yml`, mtls('RequireAndVerifyClientCert', `  client_allowed_sans: ["${san}"]\n`)));
      const answer = await get(server.port, clientCert(v6)).then((a) => a.status, () => 0);
      expect({ san, answer }).toEqual({ san, answer: status });
    }
    // RequireAnyClientCert checks the SANs of a certificate it does not verify, as exporter-toolkit.
    const any = await serveWith(await writeConfig('sans-any.yml', `tls_server_config:\n  cert_file: server1.crt\n  key_file: server1.key\n  client_auth_type: RequireAnyClientCert\n  client_allowed_sans: [stranger]\n`));
    expect((await get(any.port, clientCert(strangerClient))).status).toBe(200);
    await expect(get(any.port, clientCert(client))).rejects.toThrow();
  });
});

describe('basic auth', () => {
  it('bcrypt users from htpasswd: the right password passes, a wrong one or an unknown user gets 401 with a Basic challenge', async () => {
    const server = await serveWith(await writeConfig('basic.yml', `basic_auth_users:\n  prometheus: ${hash}\n`));
    expect(server.url).toMatch(/^http:/); // basic auth without TLS is allowed, as in exporter-toolkit
    expect(server.authenticates).toBe(true);
    const http = (authorization?: string, path = '/metrics') =>
      new Promise<Answer>((resolve, reject) => {
        const req = httpRequest({ host: '127.0.0.1', port: server.port, path, headers: authorization ? { Authorization: authorization } : {} }, (res) => {
          let body = '';
          res.on('data', (c: Buffer) => (body += c.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
        });
        req.on('error', reject);
        req.end();
      });
    expect((await http(basic('prometheus', PASSWORD))).status).toBe(200);
    for (const authorization of [undefined, basic('prometheus', `${PASSWORD}x`), basic('grafana', PASSWORD), `Bearer ${TOKEN}`]) {
      const answer = await http(authorization);
      expect({ authorization, status: answer.status }).toEqual({ authorization, status: 401 });
      expect(answer.headers['www-authenticate']).toBe('Basic realm="loki-metrics"');
      expect(answer.body).not.toContain(PASSWORD);
    }
    // /health follows the same rules as with a token.
    expect((await http(undefined, '/health')).status).toBe(401);
    expect((await http(basic('prometheus', PASSWORD), '/health')).status).toBe(200);
  });

  it('with LOKI_METRICS_HEALTH_PUBLIC=true, /health without credentials answers the status only', async () => {
    const server = await serveWith(await writeConfig('basic-health.yml', `basic_auth_users:\n  prometheus: ${hash}\n`), { LOKI_METRICS_HEALTH_PUBLIC: 'true' });
    const open = await fetch(`http://127.0.0.1:${server.port}/health`);
    expect(open.status).toBe(200);
    expect(Object.keys((await open.json()) as object)).toEqual(['status']);
    const full = await fetch(`http://127.0.0.1:${server.port}/health`, { headers: { Authorization: basic('prometheus', PASSWORD) } });
    expect(Object.keys((await full.json()) as object)).toContain('sources');
    expect((await fetch(`http://127.0.0.1:${server.port}/metrics`)).status).toBe(401);
  });

  it('combines with LOKI_METRICS_TOKEN over TLS: either credential passes; none gets both challenges', async () => {
    const path = await writeConfig('tls-basic.yml', `tls_server_config:\n  cert_file: server1.crt\n  key_file: server1.key\nbasic_auth_users:\n  prometheus: ${hash}\n`);
    const server = await serveWith(path, { LOKI_METRICS_TOKEN: TOKEN });
    expect((await get(server.port, { headers: { Authorization: basic('prometheus', PASSWORD) } })).status).toBe(200);
    expect((await get(server.port, { headers: { Authorization: `Bearer ${TOKEN}` } })).status).toBe(200);
    expect((await get(server.port, { headers: { Authorization: `Bearer ${TOKEN}x` } })).status).toBe(401);
    expect((await get(server.port, { headers: { Authorization: basic('prometheus', 'nope') } })).status).toBe(401);
    const none = await get(server.port);
    expect(none.status).toBe(401);
    expect(none.headers['www-authenticate']).toEqual(expect.stringContaining('Basic realm="loki-metrics"'));
    expect(String(none.headers['www-authenticate'])).toContain('Bearer realm="loki-metrics"');
  });
});

describe('http_server_config', () => {
  it('sets the allowed response headers', async () => {
    const path = await writeConfig('headers.yml', `tls_server_config:\n  cert_file: server1.crt\n  key_file: server1.key\nhttp_server_config:\n  http2: false\n  headers:\n    Strict-Transport-Security: max-age=31536000\n    X-Frame-Options: deny\n`);
    const server = await serveWith(path);
    const answer = await get(server.port);
    expect(answer.headers['strict-transport-security']).toBe('max-age=31536000');
    expect(answer.headers['x-frame-options']).toBe('deny');
  });
});

describe('a TLS connection that never handshakes (issue 19, item 8)', () => {
  it('is closed at the handshake timeout, not held for Node\'s 120 s', async () => {
    const server = await serveWith(await writeConfig('tls-timeout.yml', `tls_server_config:\n  cert_file: server1.crt\n  key_file: server1.key\n`), {}, 0, { handshakeTimeoutMs: 300 });
    const socket = connect({ host: '127.0.0.1', port: server.port });
    const closed = new Promise<boolean>((resolve) => socket.once('close', () => resolve(true)));
    socket.on('error', () => undefined);
    // Well within the headers timeout (10 s) and Node's default (120 s): only the handshake bound can close it.
    const outcome = await Promise.race([closed, new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 5_000))]);
    socket.destroy();
    expect(outcome).toBe(true);
  });
});

describe('bad web configs: one line each, refused at startup', () => {
  const cases: [string, string | undefined, RegExp][] = [
    ['missing file', undefined, /cannot read the web config file .*missing\.yml: no such file/],
    ['malformed YAML', 'tls_server_config: [cert_file: x\n', /not valid YAML/],
    ['duplicate key', 'basic_auth_users: {}\nbasic_auth_users: {}\n', /not valid YAML/],
    ['non-bcrypt hash', 'basic_auth_users:\n  prometheus: $1$abc$0123456789\n', /basic_auth_users\.prometheus: not a bcrypt hash/],
    ['plain password as hash', 'basic_auth_users:\n  prometheus: hunter2hunter2\n', /basic_auth_users\.prometheus: not a bcrypt hash/],
    ['unknown field', 'tls_server_config:\n  cert_file: server1.crt\n  key_file: server1.key\n  client_cert_file: x\n', /unknown field tls_server_config\.client_cert_file/],
    ['unknown top-level field', 'web:\n  x: 1\n', /unknown field web/],
    ['known but unsupported field', 'rate_limit:\n  interval: 1s\n', /rate_limit is not supported/],
    ['http2 on', 'http_server_config:\n  http2: true\n', /http_server_config\.http2/],
    ['key of another certificate', 'tls_server_config:\n  cert_file: server1.crt\n  key_file: scraper.key\n', /key in key_file does not match the certificate/],
    ['missing certificate file', 'tls_server_config:\n  cert_file: nope.crt\n  key_file: server1.key\n', /cannot read tls_server_config\.cert_file .*nope\.crt: no such file/],
    ['certificate file that is a key', 'tls_server_config:\n  cert_file: server1.key\n  key_file: server1.key\n', /cert_file: no PEM certificate/],
    ['missing key_file', 'tls_server_config:\n  cert_file: server1.crt\n', /key_file is missing/],
    ['CA without client auth', 'tls_server_config:\n  cert_file: server1.crt\n  key_file: server1.key\n  client_ca_file: ca.crt\n', /client_ca_file is set but client_auth_type is NoClientCert/],
    ['verify without CA', 'tls_server_config:\n  cert_file: server1.crt\n  key_file: server1.key\n  client_auth_type: RequireAndVerifyClientCert\n', /client_ca_file is required/],
    ['bad client_auth_type', 'tls_server_config:\n  cert_file: server1.crt\n  key_file: server1.key\n  client_auth_type: Always\n', /client_auth_type: Expected one of NoClientCert/],
    ['unknown cipher', 'tls_server_config:\n  cert_file: server1.crt\n  key_file: server1.key\n  cipher_suites: [TLS_FANCY]\n', /cipher_suites: unknown cipher suite "TLS_FANCY"/],
    ['RC4', 'tls_server_config:\n  cert_file: server1.crt\n  key_file: server1.key\n  cipher_suites: [TLS_RSA_WITH_RC4_128_SHA]\n', /not available in Node's OpenSSL/],
    ['versions upside down', 'tls_server_config:\n  cert_file: server1.crt\n  key_file: server1.key\n  min_version: TLS13\n  max_version: TLS12\n', /min_version TLS13 is above max_version TLS12/],
    ['not a mapping', '- a\n- b\n', /mapping/],
  ];
  for (const [what, yaml, expected] of cases) {
    it(what, async () => {
      const path = yaml === undefined ? join(dir, 'missing.yml') : await writeConfig(`bad-${what.replace(/\W+/g, '-')}.yml`, yaml);
      let error: unknown;
      try {
        loadWebConfig(path);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(WebConfigError);
      const message = (error as Error).message;
      expect(message).toMatch(expected);
      expect(message).not.toContain('\n');
      expect(message).not.toContain('hunter2');
      // The server refuses to start with the same line, as a ConfigError (the CLI's exit 2).
      await expect(serveWith(path)).rejects.toThrow(ConfigError);
      await expect(serveWith(path)).rejects.toThrow(`web config ${path}: ${message}`);
    });
  }

  it('an empty file is a valid config: plain http, no auth (as exporter-toolkit)', async () => {
    const server = await serveWith(await writeConfig('empty.yml', ''));
    expect(server.url).toMatch(/^http:/);
    expect(server.authenticates).toBe(false);
  });
});

describe('live reload', () => {
  it('rotates the certificate under a scrape loop: the next handshake uses the new one and no scrape fails', async () => {
    const live = await tempDir('loki-rotate-', dir);
    await copyFile(server1.cert, join(live, 'tls.crt'));
    await copyFile(server1.key, join(live, 'tls.key'));
    // Requests re-check only every 10 s here: the new certificate must come from the checks that
    // new connections (and the settle timer) make before a handshake.
    const server = await serveWith(await writeConfig('rotate.yml', `tls_server_config:\n  cert_file: ${live}/tls.crt\n  key_file: ${live}/tls.key\n`), {}, 10_000);
    const server2 = issue(dir, ca, 'server2');
    const seen: string[] = [];
    const failures: string[] = [];
    let stop = false;
    const loop = (async () => {
      while (!stop) {
        try {
          const answer = await get(server.port);
          if (answer.status !== 200) failures.push(`status ${answer.status}`);
          seen.push(answer.fingerprint ?? '');
        } catch (error) {
          failures.push(String(error));
        }
      }
    })();
    try {
      while (seen.length < 5) await new Promise((r) => setTimeout(r, 20));
      // Rotate as tools do: new files written aside, then renamed into place, key first.
      await copyFile(server2.key, join(live, 'tls.key.new'));
      await copyFile(server2.cert, join(live, 'tls.crt.new'));
      await rename(join(live, 'tls.key.new'), join(live, 'tls.key'));
      await rename(join(live, 'tls.crt.new'), join(live, 'tls.crt'));
      const rotatedAt = seen.length;
      // Once the renamed files have settled, handshakes present the new certificate, never the old again.
      const deadline = Date.now() + 10_000;
      while (!seen.slice(rotatedAt).includes(server2.fingerprint) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      const firstNew = seen.indexOf(server2.fingerprint, rotatedAt);
      expect(firstNew).toBeGreaterThan(0);
      while (seen.length < firstNew + 3) await new Promise((r) => setTimeout(r, 20));
      expect(seen.slice(firstNew)).not.toContain(server1.fingerprint);
    } finally {
      stop = true;
      await loop;
    }
    expect(failures).toEqual([]);
    expect(seen[0]).toBe(server1.fingerprint);
    expect(seen.at(-1)).toBe(server2.fingerprint);
    expect(logs.some((l) => l.includes('reloaded'))).toBe(true);
  });

  it('a bad new version keeps the old config in force, with a log line; fixing it applies the fix', async () => {
    const path = await writeConfig('live.yml', `tls_server_config:\n  cert_file: server1.crt\n  key_file: server1.key\nbasic_auth_users:\n  prometheus: ${hash}\n`);
    const server = await serveWith(path);
    const auth = { headers: { Authorization: basic('prometheus', PASSWORD) } };
    expect((await get(server.port, auth)).status).toBe(200);
    const bad: [string, RegExp][] = [
      ['basic_auth_users:\n  prometheus: [not, a, hash\n', /not valid YAML/],
      [`tls_server_config:\n  cert_file: server1.crt\n  key_file: scraper.key\nbasic_auth_users:\n  prometheus: ${hash}\n`, /does not match/],
      [`tls_server_config:\n  cert_file: server1.crt\n  key_file: server1.key\nbasic_auth_users:\n  prometheus: plain\n`, /not a bcrypt hash/],
      [`tls_server_config:\n  cert_file: server1.crt\n  key_file: server1.key\n  bogus: 1\n`, /unknown field tls_server_config\.bogus/],
      [`basic_auth_users:\n  prometheus: ${hash}\n`, /turning TLS off needs a restart/],
    ];
    for (const [yaml, expected] of bad) {
      logs = [];
      await writeFile(path, yaml);
      await untilLogged(1, () => get(server.port, auth));
      // Still served, with the old certificate and the old users.
      const answer = await get(server.port, auth);
      expect(answer.status).toBe(200);
      expect(answer.fingerprint).toBe(server1.fingerprint);
      expect((await get(server.port)).status).toBe(401);
      expect(logs).toHaveLength(1);
      expect(logs[0]).toMatch(expected);
      expect(logs[0]).toMatch(/keeping the previous one$/);
    }
    // A good version: client certificates required from now on, as well as the password.
    logs = [];
    await writeFile(path, `tls_server_config:\n  cert_file: server1.crt\n  key_file: server1.key\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\nbasic_auth_users:\n  prometheus: ${hash}\n`);
    await untilLogged(1, () => get(server.port, { ...clientCert(client), ...auth }));
    expect(logs).toEqual([`loki-metrics: web config ${path} reloaded`]);
    expect((await get(server.port, { ...clientCert(client), ...auth })).status).toBe(200);
    await expect(get(server.port, auth)).rejects.toThrow();
    await expect(get(server.port, auth)).rejects.toThrow();
    // The refusal is logged once, with OpenSSL's reason.
    expect(logs.slice(1)).toEqual([expect.stringMatching(/^loki-metrics: refused a TLS client: .*certificate.* \(further refusals this minute are not logged\)$/)]);
  });

  it('a new password applies to kept-alive connections too', async () => {
    const path = await writeConfig('users.yml', `basic_auth_users:\n  prometheus: ${hash}\n`);
    const server = await serveWith(path);
    const { Agent } = await import('node:http');
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const ask = (password: string) =>
      new Promise<number>((resolve, reject) => {
        const req = httpRequest({ host: '127.0.0.1', port: server.port, path: '/metrics', agent, headers: { Authorization: basic('prometheus', password) } }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        });
        req.on('error', reject);
        req.end();
      });
    try {
      expect(await ask(PASSWORD)).toBe(200);
      await writeFile(path, `basic_auth_users:\n  prometheus: ${bcryptHash('prometheus', 'new password')}\n`);
      await untilLogged(1, () => ask(PASSWORD));
      expect(await ask(PASSWORD)).toBe(401);
      expect(await ask('new password')).toBe(200);
    } finally {
      agent.destroy();
    }
  });
});

describe('a reload never weakens authentication', () => {
  const tlsHead = 'tls_server_config:\n  cert_file: server1.crt\n  key_file: server1.key\n';

  it('by default a change applies once its files have looked the same for a second, and any change in between starts the wait again', async () => {
    const path = await writeConfig('settle.yml', `basic_auth_users:\n  prometheus: ${hash}\n`);
    let now = 0;
    const applied: string[] = [];
    const reloader = new WebConfigReloader(path, loadWebConfig(path), () => applied.push('applied'), (l) => logs.push(l), { clock: () => now });
    try {
      await writeFile(path, `basic_auth_users:\n  grafana: ${hash}\n`);
      reloader.check(); // first seen at 0
      now = WEB_CONFIG_SETTLE_MS - 1;
      reloader.check();
      expect(applied).toEqual([]);
      // Written again before it settled: the wait starts over.
      await writeFile(path, `basic_auth_users:\n  grafana: ${hash}\n  prometheus: ${hash}\n`);
      now = 1_000;
      reloader.check(); // first seen at 1000
      now = 1_000 + 999;
      reloader.check();
      expect(applied).toEqual([]);
      now = 1_000 + 1_000;
      reloader.check();
      expect(applied).toEqual(['applied']);
      expect(Object.keys(reloader.current.config.basicAuthUsers ?? {})).toEqual(['grafana', 'prometheus']);
    } finally {
      reloader.stop();
    }
  });

  it('a file rewritten in place is not read until it has stopped changing: the torn moments never apply', async () => {
    const path = await writeConfig('torn.yml', `${tlsHead}basic_auth_users:\n  prometheus: ${hash}\n`);
    const server = await serveWith(path);
    const auth = { headers: { Authorization: basic('prometheus', PASSWORD) } };
    const newHash = bcryptHash('prometheus', 'rotated password');
    // `cat > file` as a slow writer does it: truncate, then the rest in pieces, each within the
    // settle time of the last. Every torn state on the way would load as a valid config.
    const pieces = ['', tlsHead, `${tlsHead}basic_auth_users:\n`, `${tlsHead}basic_auth_users:\n  prometheus: ${newHash}\n`];
    for (const piece of pieces) {
      await writeFile(path, piece);
      // Without credentials: refused while the file is torn.
      expect((await get(server.port)).status).toBe(401);
      await new Promise((r) => setTimeout(r, SETTLE_MS / 3));
      expect((await get(server.port)).status).toBe(401);
    }
    await untilLogged(1, () => get(server.port, auth));
    // The complete file applied, and nothing before it did.
    expect(logs).toEqual([`loki-metrics: web config ${path} reloaded`]);
    expect((await get(server.port, { headers: { Authorization: basic('prometheus', 'rotated password') } })).status).toBe(200);
    expect((await get(server.port, auth)).status).toBe(401);
  });

  const weakenings: [string, string, string, RegExp][] = [
    ['an empty file', `${tlsHead}basic_auth_users:\n  prometheus: {hash}\n`, '', /turning TLS off needs a restart/],
    ['a file cut before basic_auth_users', `${tlsHead}basic_auth_users:\n  prometheus: {hash}\n`, tlsHead, /basic_auth_users removed/],
    ['basic_auth_users with no value', `${tlsHead}basic_auth_users:\n  prometheus: {hash}\n`, `${tlsHead}basic_auth_users:\n`, /basic_auth_users removed/],
    [
      'an mTLS config cut after key_file',
      `${tlsHead}  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n`,
      tlsHead,
      /client_auth_type lowered from RequireAndVerifyClientCert to NoClientCert, client_ca_file removed/,
    ],
    [
      'client_allowed_sans dropped',
      `${tlsHead}  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n  client_allowed_sans: [prometheus.example]\n`,
      `${tlsHead}  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n`,
      /client_allowed_sans removed/,
    ],
  ];
  for (const [what, before, after, reason] of weakenings) {
    it(`${what} that stays that way is refused with a warning; the stronger config stands`, async () => {
      const path = await writeConfig('weaken.yml', before.replace('{hash}', hash));
      const server = await serveWith(path);
      const good = { ...clientCert(client), headers: { Authorization: basic('prometheus', PASSWORD) } };
      const nothing = async () => {
        try {
          return (await get(server.port)).status;
        } catch {
          return 'refused';
        }
      };
      const refusal = await nothing();
      expect(refusal === 401 || refusal === 'refused').toBe(true);
      await writeFile(path, after);
      logs = []; // the TLS layer logs refusing a client without a certificate
      await untilLogged(1, () => get(server.port, good));
      expect(logs[0]).toMatch(/^loki-metrics: web config .*weaken\.yml: .*needs a restart; keeping the previous one$/);
      expect(logs[0]).toMatch(reason);
      // Still refused without credentials, still served with them, and said once.
      expect(await nothing()).toBe(refusal);
      expect(await nothing()).toBe(refusal);
      expect((await get(server.port, good)).status).toBe(200);
      expect(logs.filter((l) => l.includes('web config'))).toHaveLength(1);
      // A complete, valid replacement as strong as before applies.
      logs = [];
      await writeFile(path, `${before.replace('{hash}', hash)}\n`);
      await untilLogged(1, () => get(server.port, good));
      expect(logs).toEqual([expect.stringMatching(/weaken\.yml reloaded$/)]);
    });
  }
});

describe('basic auth under a flood of wrong passwords (issue 19, item 2)', () => {
  it("wrong passwords beyond a client's share are refused unchecked, said once; another client still gets in", async () => {
    const slow = bcrypt.hashSync(PASSWORD, 12); // ~0.3 s a check: the flood is still waiting when the rest arrive
    const path = await writeConfig('flood.yml', `tls_server_config:\n  cert_file: server1.crt\n  key_file: server1.key\nbasic_auth_users:\n  prometheus: ${slow}\n`);
    let now = 1_000_000;
    const server = await serveWith(path, {}, 0, undefined, () => now);
    const from = (address: string, password: string) => get(server.port, { localAddress: address, headers: { Authorization: basic('prometheus', password) } });
    const flood = await Promise.all(Array.from({ length: 6 }, (_, i) => from('127.0.0.2', `wrong ${i}`)));
    expect(flood.map((a) => a.status)).toEqual([401, 401, 401, 401, 401, 401]);
    expect(logs).toEqual([
      'loki-metrics: too many password checks waiting (from 127.0.0.2): refusing further wrong credentials unchecked (not logged again this minute)',
    ]);
    expect((await from('127.0.0.3', PASSWORD)).status).toBe(200);
    // Said once a minute at most (on the server's clock, which the test moves).
    now += 59_999;
    await Promise.all(Array.from({ length: 6 }, (_, i) => from('127.0.0.2', `still wrong ${i}`)));
    expect(logs).toHaveLength(1);
    now += 1;
    await Promise.all(Array.from({ length: 6 }, (_, i) => from('127.0.0.2', `wrong again ${i}`)));
    expect(logs).toHaveLength(2);
  });
});
