/**
 * The web config's loading and reloading rules, in-process: what a load reads and refuses (with
 * which line), what the TLS options say, and when a reload applies (an injected clock and fake
 * timers, no waiting). Real files and certificates from the real openssl CLI.
 */
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { readFileSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { loadWebConfig, WebConfigReloader, type LoadedWebConfig } from '../../src/node/web-config.js';
import bcrypt from 'bcryptjs';
import { issue, makeCa, type Ca, type Issued } from '../support/certs.js';
import { cleanTrees, tempDir } from '../support/loki-tree.js';
import { handshakeProblem } from '../support/tls-handshake.js';

/** The real compareOffThread, counted: how many checks reached bcrypt. */
const bcryptCalls = vi.hoisted(() => ({ count: 0 }));
vi.mock('../../src/node/bcrypt-thread.js', async (original) => {
  const real = await original<typeof import('../../src/node/bcrypt-thread.js')>();
  return { compareOffThread: (password: string, hash: string) => (bcryptCalls.count++, real.compareOffThread(password, hash)) };
});

let dir = '';
let ca: Ca;
let otherCa: Ca;
let server1: Issued;
let server2: Issued;
let twoSans: Issued;
let noSans: Issued;
let stranger: Issued;

beforeAll(async () => {
  dir = await tempDir('loki-web-config-rules-');
  ca = makeCa(dir, 'ca');
  otherCa = makeCa(dir, 'other-ca');
  server1 = issue(dir, ca, 'server1');
  server2 = issue(dir, ca, 'server2');
  twoSans = issue(dir, ca, 'two-sans', { client: true, sans: ['DNS:b.example', 'IP:2001:db8::5'] });
  noSans = issueWithoutSans('no-sans');
  stranger = issue(dir, otherCa, 'stranger', { client: true });
});
afterAll(cleanTrees);

/** A client certificate from `ca` with no subjectAltName at all (certs.ts always adds one). */
function issueWithoutSans(name: string): Issued {
  const cert = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  const ext = join(dir, `${name}.ext`);
  writeFileSync(ext, 'extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n');
  for (const args of [
    ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', `${name}.csr`, '-subj', `/CN=${name}`],
    ['x509', '-req', '-in', `${name}.csr`, '-CA', ca.cert, '-CAkey', ca.key, '-CAcreateserial', '-out', cert, '-days', '2', '-extfile', ext],
  ]) {
    const result = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8', timeout: 20_000 });
    if (result.status !== 0) throw new Error(result.stderr);
  }
  return { cert, key, fingerprint: '' };
}
afterEach(() => vi.useRealTimers());

let n = 0;
async function writeConfig(yaml: string): Promise<string> {
  const path = join(dir, `web-${++n}.yml`);
  await writeFile(path, yaml);
  return path;
}
const tlsYaml = (extra = '', s: Issued = server1) => `tls_server_config:\n  cert_file: ${s.cert}\n  key_file: ${s.key}\n${extra}`;

function loadError(path: string): string {
  try {
    loadWebConfig(path);
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error('loaded');
}

describe('loadWebConfig: what it reads, and the line it refuses with', () => {
  it('a missing key file or client CA file names the setting', async () => {
    expect(loadError(await writeConfig(`tls_server_config:\n  cert_file: ${server1.cert}\n  key_file: ${join(dir, 'nope.key')}\n`)))
      .toBe(`cannot read tls_server_config.key_file ${join(dir, 'nope.key')}: no such file`);
    expect(loadError(await writeConfig(tlsYaml(`  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ${join(dir, 'nope.crt')}\n`))))
      .toBe(`cannot read tls_server_config.client_ca_file ${join(dir, 'nope.crt')}: no such file`);
  });

  it('a directory where a file belongs is "is a directory"; another reason is its code', async () => {
    const sub = join(dir, 'a-dir');
    await mkdir(sub, { recursive: true });
    expect(loadError(await writeConfig(`tls_server_config:\n  cert_file: ${server1.cert}\n  key_file: ${sub}\n`)))
      .toBe(`cannot read tls_server_config.key_file ${sub}: is a directory`);
    // Any other reason is given by its code.
    const underFile = join(server1.key, 'key.pem');
    expect(loadError(await writeConfig(`tls_server_config:\n  cert_file: ${server1.cert}\n  key_file: ${underFile}\n`)))
      .toBe(`cannot read tls_server_config.key_file ${underFile}: ENOTDIR`);
  });

  it('a client CA file without a certificate, a broken certificate, a key that is not PEM: one line each', async () => {
    const notPem = join(dir, 'not-pem.txt');
    await writeFile(notPem, 'hello\n');
    expect(loadError(await writeConfig(tlsYaml(`  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ${notPem}\n`))))
      .toBe('tls_server_config.client_ca_file: no PEM certificate in it');
    const broken = join(dir, 'broken.crt');
    await writeFile(broken, '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n');
    expect(loadError(await writeConfig(`tls_server_config:\n  cert_file: ${broken}\n  key_file: ${server1.key}\n`)))
      .toBe('tls_server_config.cert_file: not a valid PEM certificate');
    expect(loadError(await writeConfig(`tls_server_config:\n  cert_file: ${server1.cert}\n  key_file: ${notPem}\n`)))
      .toBe('tls_server_config.key_file: not a PEM private key');
  });

  it('another TLS failure is reported by its first line, as OpenSSL words it', async () => {
    // A 512-bit RSA key: OpenSSL's security level refuses it when the context is made.
    const cert = join(dir, 'weak.crt');
    const key = join(dir, 'weak.key');
    const made = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:512', '-nodes', '-keyout', key, '-out', cert, '-subj', '/CN=weak', '-days', '2'], { encoding: 'utf8', timeout: 20_000 });
    expect(made.status, made.stderr).toBe(0);
    expect(loadError(await writeConfig(`tls_server_config:\n  cert_file: ${cert}\n  key_file: ${key}\n`)))
      .toMatch(/^tls_server_config: error:[0-9A-F]+:SSL routines::ee key too small$/);
  });

  it('watches the config, certificate, key and client CA files; the TLS options carry exactly what was set', async () => {
    const plain = loadWebConfig(await writeConfig(tlsYaml()));
    expect(plain.files).toHaveLength(3);
    expect('ca' in plain.tls!.contextOptions).toBe(false);
    expect('ecdhCurve' in plain.tls!.contextOptions).toBe(false);
    expect(plain.tls!.requestCert).toBe(false);
    expect(plain.tls!.rejectUnauthorized).toBe(false);
    const withCa = loadWebConfig(await writeConfig(tlsYaml(`  client_auth_type: VerifyClientCertIfGiven\n  client_ca_file: ${ca.cert}\n  curve_preferences: [CurveP256]\n`)));
    expect(withCa.files).toHaveLength(4);
    expect(withCa.files[3]).toBe(ca.cert);
    expect(withCa.tls!.contextOptions.ca).toBe(readFileSync(ca.cert, 'utf8'));
    expect(withCa.tls!.contextOptions.ecdhCurve).toBe('P-256');
    expect(withCa.tls!.requestCert).toBe(true);
    expect(withCa.tls!.rejectUnauthorized).toBe(false);
  });
});


describe('clientCertificateProblem on real handshakes', () => {
  it('RequestClientCert asks but never refuses', async () => {
    const loaded = loadWebConfig(await writeConfig(tlsYaml(`  client_auth_type: RequestClientCert\n`)));
    expect(await handshakeProblem(loaded, ca)).toBeUndefined();
  });

  it('an unverifiable certificate is refused with the reason OpenSSL gave', async () => {
    const loaded = loadWebConfig(await writeConfig(tlsYaml(`  client_auth_type: VerifyClientCertIfGiven\n  client_ca_file: ${ca.cert}\n`)));
    expect(await handshakeProblem(loaded, ca, stranger)).toMatch(/^client certificate not verified \([A-Z_]+\)$/);
  });

  it('client_allowed_sans: one match among several is enough; a certificate without SANs matches none', async () => {
    const loaded = loadWebConfig(await writeConfig(tlsYaml(`  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ${ca.cert}\n  client_allowed_sans: [a.example, "2001:DB8:0:0:0:0:0:5"]\n`)));
    expect(await handshakeProblem(loaded, ca, twoSans)).toBeUndefined();
    expect(await handshakeProblem(loaded, ca, noSans)).toBe('client certificate has none of client_allowed_sans');
  });
});

describe('WebConfigReloader: when a change applies', () => {
  const hashA = '$2b$04$0123456789012345678901uLnRCFT5f0bCgB6YyPWcHcQjNKRu8PS'; // any bcrypt-shaped string
  const usersYaml = (user: string) => `basic_auth_users:\n  ${user}: ${hashA}\n`;

  /** A reloader on a plain config, a clock the test moves, and what it applied and logged. */
  async function watched(yaml: string, settleMs = 10_000) {
    const path = await writeConfig(yaml);
    const logs: string[] = [];
    const applied: LoadedWebConfig[] = [];
    const clock = { now: 0, onRead: undefined as (() => void) | undefined };
    const reloader = new WebConfigReloader(path, loadWebConfig(path), (next) => applied.push(next), (l) => logs.push(l), {
      settleMs,
      clock: () => {
        const hook = clock.onRead;
        clock.onRead = undefined;
        hook?.();
        return clock.now;
      },
    });
    /** Replaces the file whole (a new inode, a new size). */
    const replace = (text: string) => {
      writeFileSync(`${path}.tmp`, text);
      return rename(`${path}.tmp`, path);
    };
    return { path, logs, applied, clock, reloader, replace };
  }

  it('a refused version is not reloaded again while it stays the same', async () => {
    const w = await watched(usersYaml('alice'));
    await w.replace(`basic_auth_users: [not, a, map]\n`);
    w.reloader.check();
    w.clock.now += 10_000;
    w.reloader.check();
    expect(w.logs).toHaveLength(1);
    expect(w.logs[0]).toContain('keeping the previous one');
    for (let i = 0; i < 3; i++) {
      w.clock.now += 10_000;
      w.reloader.check();
    }
    expect(w.logs).toHaveLength(1);
    expect(w.applied).toHaveLength(0);
    w.reloader.stop();
  });

  it('turning TLS on is refused, saying so', async () => {
    const w = await watched(usersYaml('alice'));
    await w.replace(tlsYaml() + `basic_auth_users:\n  alice: ${hashA}\n`);
    w.reloader.check();
    w.clock.now += 10_000;
    w.reloader.check();
    expect(w.logs).toEqual([`loki-metrics: web config ${w.path}: turning TLS on needs a restart; keeping the previous one`]);
    w.reloader.stop();
  });

  it('a file changed while it was read is not applied: the change must settle again first', async () => {
    const w = await watched(usersYaml('alice'));
    await w.replace(usersYaml('bob'));
    w.reloader.check();
    w.clock.now += 10_000;
    // Between the stat that saw the settled change and the read: another write.
    w.clock.onRead = () => writeFileSync(w.path, usersYaml('carol-the-third'));
    w.reloader.check();
    expect(w.applied).toHaveLength(0);
    expect(w.logs).toHaveLength(0);
    // That write, once it has stood for settleMs, applies (one more check is enough).
    w.clock.now += 10_000;
    w.reloader.check();
    expect(w.applied).toHaveLength(1);
    expect(Object.keys(w.applied[0]!.config.basicAuthUsers ?? {})).toEqual(['carol-the-third']);
    w.reloader.stop();
  });

  it('a file changed while a bad version was read is not refused yet: it gets to settle', async () => {
    const w = await watched(usersYaml('alice'));
    await w.replace(usersYaml('bob'));
    w.reloader.check();
    w.clock.now += 10_000;
    w.clock.onRead = () => writeFileSync(w.path, `basic_auth_users: [not, a, map]\n`);
    w.reloader.check();
    expect(w.logs).toHaveLength(0);
    expect(w.applied).toHaveLength(0);
    w.reloader.stop();
  });

  it('a settled change applies without a connection: a timer checks again just past settleMs; stop() cancels it', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const w = await watched(usersYaml('alice'), 500);
    await w.replace(usersYaml('bob'));
    w.reloader.check();
    w.clock.now += 500;
    vi.advanceTimersByTime(519);
    expect(w.applied).toHaveLength(0);
    vi.advanceTimersByTime(1);
    expect(w.applied).toHaveLength(1);
    expect(w.logs).toEqual([`loki-metrics: web config ${w.path} reloaded`]);

    await w.replace(usersYaml('carol'));
    w.reloader.check();
    w.reloader.stop();
    w.clock.now += 10_000;
    vi.advanceTimersByTime(10_000);
    expect(w.applied).toHaveLength(1);
  });
});

describe('a reloaded version keeps what the previous one remembered', () => {
  it('a password already checked against an unchanged hash is not run through bcrypt again', async () => {
    const hash = bcrypt.hashSync('pw', 4);
    const path = await writeConfig(`basic_auth_users:\n  alice: ${hash}\n`);
    const first = loadWebConfig(path);
    expect(await first.users!.verify('alice', 'pw')).toBe(true);
    const calls = bcryptCalls.count;
    writeFileSync(path, `http_server_config:\n  headers:\n    X-Frame-Options: deny\nbasic_auth_users:\n  alice: ${hash}\n`);
    const next = loadWebConfig(path, first);
    expect(await next.users!.verify('alice', 'pw')).toBe(true);
    expect(bcryptCalls.count).toBe(calls);
    // Without a previous version, the same check needs bcrypt.
    expect(await loadWebConfig(path).users!.verify('alice', 'pw')).toBe(true);
    expect(bcryptCalls.count).toBe(calls + 1);
  });
});
