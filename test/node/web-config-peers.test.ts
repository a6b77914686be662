/**
 * clientCertificateProblem at its edges, on real handshakes: a socket already gone, SANs that look
 * alike but are not the same (Go compares each SAN kind as it prints it), and a reloader left on its
 * default clock. Certificates from the real openssl CLI.
 */
import { readFileSync } from 'node:fs';
import { chmod, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadWebConfig, WebConfigReloader, type LoadedWebConfig } from '../../src/node/web-config.js';
import { WebConfigError } from '../../src/schemas/web-config.js';
import { issue, makeCa, type Ca, type Issued } from '../support/certs.js';
import { cleanTrees, tempDir } from '../support/loki-tree.js';
import { handshakeProblem } from '../support/tls-handshake.js';

let dir = '';
let ca: Ca;
let server1: Issued;
let scraper: Issued;
let dnsLikeIp: Issued;
let ipv6: Issued;

beforeAll(async () => {
  dir = await tempDir('loki-web-config-peers-');
  ca = makeCa(dir, 'ca');
  server1 = issue(dir, ca, 'server1');
  scraper = issue(dir, ca, 'scraper', { client: true });
  // A DNS name spelled like an IPv6 address (OpenSSL takes any text as a DNS SAN).
  dnsLikeIp = issue(dir, ca, 'dns-like-ip', { client: true, sans: ['DNS:2001:DB8::5'] });
  ipv6 = issue(dir, ca, 'ipv6', { client: true, sans: ['IP:2001:db8::5'] });
});
afterAll(cleanTrees);

let n = 0;
async function writeConfig(yaml: string): Promise<string> {
  const path = join(dir, `web-${++n}.yml`);
  await writeFile(path, yaml);
  return path;
}
const tlsYaml = (extra: string) => `tls_server_config:\n  cert_file: ${server1.cert}\n  key_file: ${server1.key}\n${extra}`;


describe('clientCertificateProblem on a socket that is already gone', () => {
  it('a destroyed socket has no certificate to show: "no client certificate", not a crash', async () => {
    const loaded = loadWebConfig(await writeConfig(tlsYaml(`  client_auth_type: RequireAnyClientCert\n`)));
    // While it is open the same handshake passes: the certificate was given.
    expect(await handshakeProblem(loaded, ca, scraper)).toBeUndefined();
    expect(await handshakeProblem(loaded, ca, scraper, (socket) => socket.destroy())).toBe('no client certificate');
  });
});

describe('client_allowed_sans compares a SAN only with its own kind', () => {
  const sansYaml = (sans: string) => tlsYaml(`  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ${ca.cert}\n  client_allowed_sans: [${sans}]\n`);

  it('a DNS name spelled like an IPv6 address is not that IP address', async () => {
    const canonical = loadWebConfig(await writeConfig(sansYaml('"2001:db8::5"')));
    expect(await handshakeProblem(canonical, ca, dnsLikeIp)).toBe('client certificate has none of client_allowed_sans');
    // The same address as an IP SAN matches in any spelling.
    expect(await handshakeProblem(canonical, ca, ipv6)).toBeUndefined();
  });

  it('an IPv6 address in brackets (URL style) is not the address: Go prints IP SANs bare', async () => {
    const bracketed = loadWebConfig(await writeConfig(sansYaml('"[2001:db8::5]"')));
    expect(await handshakeProblem(bracketed, ca, ipv6)).toBe('client certificate has none of client_allowed_sans');
  });
});

describe('WebConfigReloader on its default clock', () => {
  it('without a clock it waits settleMs of real monotonic time before a change applies', async () => {
    const path = await writeConfig('http_server_config:\n  headers:\n    X-Frame-Options: deny\n');
    const applied: LoadedWebConfig[] = [];
    const reloader = new WebConfigReloader(path, loadWebConfig(path), (next) => applied.push(next), () => undefined, { settleMs: 600_000 });
    try {
      await writeFile(path, 'http_server_config:\n  headers:\n    X-Frame-Options: sameorigin\n');
      reloader.check(); // the change is seen
      reloader.check(); // and seen again at once: far from settled
      expect(applied).toHaveLength(0);
      expect(reloader.current.config.headers).toEqual({ 'X-Frame-Options': 'deny' });
    } finally {
      reloader.stop();
    }
  });
});

describe('a file the exporter may not read', () => {
  /**
   * A file this process cannot open for reading: a mode-000 file for a normal user; for root, who
   * reads every file whatever its mode, a write-only sysfs attribute (the kernel refuses to open it
   * for reading with EACCES). Undefined where neither is at hand.
   */
  async function unreadable(): Promise<string | undefined> {
    const candidate = process.getuid?.() === 0 ? '/sys/bus/platform/uevent' : join(dir, 'unreadable.key');
    if (process.getuid?.() !== 0) {
      await writeFile(candidate, readFileSync(server1.key));
      await chmod(candidate, 0o000);
    }
    try {
      readFileSync(candidate);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EACCES') return candidate;
    }
    return undefined;
  }

  it('is refused as "permission denied"', async (context) => {
    const key = await unreadable();
    if (key === undefined) return context.skip();
    const path = await writeConfig(`tls_server_config:\n  cert_file: ${server1.cert}\n  key_file: ${key}\n`);
    expect(() => loadWebConfig(path)).toThrow(new WebConfigError(`cannot read tls_server_config.key_file ${key}: permission denied`));
  });
});
