/**
 * Throwaway X.509 material made by the real `openssl` CLI: certificate authorities, server
 * certificates for 127.0.0.1/localhost, client certificates with chosen SANs, and bcrypt hashes
 * made by `htpasswd -nBC 10` when Apache's tool is installed (bcryptjs otherwise, same format).
 */
import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';

export interface Ca {
  readonly name: string;
  readonly cert: string;
  readonly key: string;
}

export interface Issued {
  readonly cert: string;
  readonly key: string;
  /** SHA-256 fingerprint as Node prints it (`AA:BB:…`). */
  readonly fingerprint: string;
}

function openssl(args: readonly string[], cwd: string): void {
  const result = spawnSync('openssl', args, { cwd, encoding: 'utf8', timeout: 20_000 });
  if (result.status !== 0) throw new Error(`openssl ${args.join(' ')} failed: ${result.stderr}`);
}

/** A self-signed CA named `name`, its files in `dir`. */
export function makeCa(dir: string, name: string): Ca {
  const cert = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert,
    '-days', '2', '-subj', `/CN=${name}`, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
  return { name, cert, key };
}

/**
 * A certificate signed by `ca`, for a server (SANs 127.0.0.1 and localhost unless given) or a
 * client (`client: true`, extendedKeyUsage clientAuth). Files `<name>.crt` and `<name>.key` in dir.
 */
export function issue(dir: string, ca: Ca, name: string, options: { client?: boolean; sans?: readonly string[] } = {}): Issued {
  const cert = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  const csr = join(dir, `${name}.csr`);
  const ext = join(dir, `${name}.ext`);
  const sans = options.sans ?? (options.client ? [`DNS:${name}`] : ['IP:127.0.0.1', 'DNS:localhost']);
  writeFileSync(ext, `subjectAltName=${sans.join(',')}\nextendedKeyUsage=${options.client ? 'clientAuth' : 'serverAuth'}\nbasicConstraints=CA:FALSE\n`);
  openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', csr, '-subj', `/CN=${name}`], dir);
  openssl(['x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key, '-CAcreateserial', '-out', cert, '-days', '2', '-extfile', ext], dir);
  return { cert, key, fingerprint: new X509Certificate(readFileSync(cert)).fingerprint256 };
}

/** `user:hash` as `htpasswd -nBC 10 user` prints it; the hash part is what a web config holds. */
export function bcryptHash(user: string, password: string): string {
  const result = spawnSync('htpasswd', ['-nbBC', '10', user, password], { encoding: 'utf8', timeout: 20_000 });
  if (result.status === 0 && !result.error) return result.stdout.trim().slice(user.length + 1);
  return bcrypt.hashSync(password, 10);
}
