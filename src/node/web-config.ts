import { X509Certificate } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { isIPv4, isIPv6 } from 'node:net';
import { dirname, isAbsolute, resolve } from 'node:path';
import { createSecureContext, type SecureContextOptions, type TLSSocket } from 'node:tls';
import { BasicAuthUsers } from '../basic-auth.js';
import { compareOffThread } from './bcrypt-thread.js';
import { escapeForLog } from '../log.js';
import { parseWebConfig, WebConfigError, type TlsSettings, type WebConfig } from '../schemas/web-config.js';
import type { Log } from '../source-tracker.js';
import { authWeakenings } from '../web-config-change.js';

/**
 * The exporter-toolkit web config on Node: read the YAML and every file it names, check that they
 * make a working TLS setup (the key matches the certificate, the CA file holds certificates), and
 * re-read it all when any of those files changes, so certificates rotate without a restart. A
 * new version that does not load leaves the old one in force, with one log line.
 */
export interface LoadedWebConfig {
  readonly config: WebConfig;
  /** Present when `tls_server_config` is: what the TLS server needs. */
  readonly tls?: LoadedTls;
  readonly users?: BasicAuthUsers;
  /** Absolute paths of the config file and every file it names, watched for changes. */
  readonly files: readonly string[];
}

export interface LoadedTls {
  readonly settings: TlsSettings;
  /** For `tls.createServer`/`setSecureContext`: certificate, key and CA contents, versions, ciphers. */
  readonly contextOptions: SecureContextOptions;
  /** Ask the client for a certificate (every client_auth_type but NoClientCert). */
  readonly requestCert: boolean;
  /** Fail the handshake without a verified client certificate (RequireAndVerifyClientCert). */
  readonly rejectUnauthorized: boolean;
}

/**
 * Reads and checks a web config and its files. Throws WebConfigError with one line. The users
 * check passwords off the event loop, and keep what `previous` (the config this one replaces)
 * remembered about credentials whose hash is unchanged.
 */
export function loadWebConfig(path: string, previous?: LoadedWebConfig, onBusy?: (client: string) => void): LoadedWebConfig {
  const file = resolve(path);
  const text = readText(file, 'the web config file');
  const config = parseWebConfig(text);
  // Relative paths are relative to the config file, as exporter-toolkit resolves them.
  const near = (p: string) => (isAbsolute(p) ? p : resolve(dirname(file), p));
  const files = [file];
  let tls: LoadedTls | undefined;
  if (config.tls) {
    const s = config.tls;
    const cert = readText(near(s.certFile), 'tls_server_config.cert_file');
    const key = readText(near(s.keyFile), 'tls_server_config.key_file');
    const ca = s.clientCaFile ? readText(near(s.clientCaFile), 'tls_server_config.client_ca_file') : undefined;
    files.push(near(s.certFile), near(s.keyFile), ...(s.clientCaFile ? [near(s.clientCaFile)] : []));
    checkCertificate(cert, 'tls_server_config.cert_file');
    if (ca !== undefined) checkCertificate(ca, 'tls_server_config.client_ca_file');
    const contextOptions: SecureContextOptions = {
      cert,
      key,
      ...(ca !== undefined ? { ca } : {}),
      minVersion: s.minVersion,
      maxVersion: s.maxVersion,
      ...(s.ciphers ? { ciphers: s.ciphers } : {}),
      ...(s.ecdhCurve ? { ecdhCurve: s.ecdhCurve } : {}),
      honorCipherOrder: s.honorCipherOrder,
    };
    try {
      createSecureContext(contextOptions);
    } catch (error) {
      throw new WebConfigError(describeTlsError(error));
    }
    tls = {
      settings: s,
      contextOptions,
      requestCert: s.clientAuth !== 'NoClientCert',
      rejectUnauthorized: s.clientAuth === 'RequireAndVerifyClientCert',
    };
  }
  return {
    config,
    ...(tls ? { tls } : {}),
    ...(config.basicAuthUsers
      ? { users: new BasicAuthUsers(config.basicAuthUsers, {
          compare: compareOffThread,
          ...(previous?.users ? { inheritFrom: previous.users } : {}),
          ...(onBusy ? { onBusy } : {}),
        }) }
      : {}),
    files,
  };
}

/**
 * Whether a finished handshake satisfies the client_auth_type and client_allowed_sans that Node's
 * own options cannot express (a certificate required but not verified, a certificate verified only
 * when given, the allowed SANs). Returns why not, or undefined.
 */
export function clientCertificateProblem(socket: TLSSocket, tls: LoadedTls): string | undefined {
  const { clientAuth, clientAllowedSans } = tls.settings;
  if (clientAuth === 'NoClientCert' || clientAuth === 'RequestClientCert') return undefined;
  const peer = socket.getPeerCertificate();
  const given = peer !== null && typeof peer === 'object' && Object.keys(peer).length > 0;
  if (!given) return clientAuth === 'VerifyClientCertIfGiven' ? undefined : 'no client certificate';
  if (clientAuth !== 'RequireAnyClientCert' && !socket.authorized) return `client certificate not verified (${String(socket.authorizationError ?? 'unknown')})`;
  if (clientAllowedSans) {
    const sans = subjectAltNames(peer.subjectaltname);
    if (!clientAllowedSans.some((allowed) => sans.includes(canonicalIp(allowed) ?? allowed))) return 'client certificate has none of client_allowed_sans';
  }
  return undefined;
}

/**
 * `DNS:a, IP Address:2001:DB8:0:0:0:0:0:5, email:x@y, URI:spiffe://…` → the values, IPs in the
 * canonical form Go prints (`2001:db8::5`), so a SAN written for exporter-toolkit matches.
 */
function subjectAltNames(text: string | undefined): string[] {
  if (!text) return [];
  return text.split(/, (?=[A-Za-z ]+:)/).map((part) => {
    const value = part.slice(part.indexOf(':') + 1);
    return part.startsWith('IP Address:') ? (canonicalIp(value) ?? value) : value;
  });
}

/** An IP address in canonical form (IPv6 compressed, lower case), or undefined for anything else. */
function canonicalIp(text: string): string | undefined {
  if (isIPv4(text)) return text;
  if (!isIPv6(text)) return undefined;
  return new URL(`http://[${text}]/`).hostname.slice(1, -1);
}

/** A change applies once the files have stayed the same for this long (see WebConfigReloader). */
export const WEB_CONFIG_SETTLE_MS = 1_000;

export interface ReloaderOptions {
  /** Default WEB_CONFIG_SETTLE_MS. */
  readonly settleMs?: number;
  readonly clock?: () => number;
  /** Passed to the users of each reloaded version (see loadWebConfig). */
  readonly onBusy?: (client: string) => void;
}

/**
 * Watches a web config's files by their stat signature (inode, size, times) and reloads on a
 * change. `check()` is cheap (one stat per file) and is called at each new connection, so a
 * handshake soon after a rotation uses the new certificate.
 *
 * Two rules keep a reload from opening the door:
 * - A torn file never applies: a changed signature must be seen unchanged again at least
 *   `settleMs` later (a timer makes that second check, so no connection is needed for it). A file
 *   still being written in place changes size or mtime in between and waits; only a write that
 *   stops part-way for good can reach the load, and then the next rule holds.
 * - A version that would weaken authentication (authWeakenings) is refused, with a warning that
 *   says so; the stronger config stands until a restart or a complete, valid replacement.
 */
export class WebConfigReloader {
  private applied: string;
  private failed: string | undefined;
  /** A changed signature waiting to settle, and when it was first seen. */
  private pending: { readonly signature: string; readonly since: number } | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private readonly settleMs: number;
  private readonly clock: () => number;
  private readonly onBusy: ((client: string) => void) | undefined;

  constructor(
    private readonly path: string,
    private loaded: LoadedWebConfig,
    private readonly apply: (next: LoadedWebConfig) => void,
    private readonly log: Log,
    options: ReloaderOptions = {},
  ) {
    this.applied = signature(loaded.files);
    this.settleMs = options.settleMs ?? WEB_CONFIG_SETTLE_MS;
    this.clock = options.clock ?? (() => performance.now());
    this.onBusy = options.onBusy;
  }

  get current(): LoadedWebConfig {
    return this.loaded;
  }

  /** Reloads when a watched file changed since the last load (or failed load) and has settled. */
  check(): void {
    const now = signature(this.loaded.files);
    if (now === this.applied || now === this.failed) {
      this.pending = undefined;
      return;
    }
    const at = this.clock();
    if (this.pending?.signature !== now) {
      this.pending = { signature: now, since: at };
      this.checkAgainLater();
      return;
    }
    if (at - this.pending.since < this.settleMs) return;
    this.pending = undefined;
    this.reload(now);
  }

  /** Stops the settle timer (the server is closing). */
  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Written to while it was read: wait for it to settle again rather than trust what was read. */
  private changedSince(seen: string): boolean {
    const now = signature(this.loaded.files);
    if (now === seen) return false;
    this.pending = { signature: now, since: this.clock() };
    this.checkAgainLater();
    return true;
  }

  private checkAgainLater(): void {
    clearTimeout(this.timer);
    // A little past settleMs: timers may fire a millisecond early.
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.check();
    }, this.settleMs + 20);
    this.timer.unref();
  }

  private reload(seen: string): void {
    let next: LoadedWebConfig;
    try {
      next = loadWebConfig(this.path, this.loaded, this.onBusy);
      if (Boolean(next.tls) !== Boolean(this.loaded.tls)) {
        throw new WebConfigError(`turning TLS ${next.tls ? 'on' : 'off'} needs a restart`);
      }
      const lost = authWeakenings(this.loaded.config, next.config);
      if (lost.length > 0) throw new WebConfigError(`the new version would weaken authentication (${lost.join(', ')}), which needs a restart`);
    } catch (error) {
      if (this.changedSince(seen)) return;
      this.failed = seen;
      this.log(`loki-metrics: web config ${escapeForLog(this.path)}: ${errorText(error)}; keeping the previous one`);
      return;
    }
    if (this.changedSince(seen)) return;
    this.apply(next);
    this.loaded = next;
    this.applied = signature(next.files);
    this.failed = undefined;
    this.log(`loki-metrics: web config ${escapeForLog(this.path)} reloaded`);
  }
}

function signature(files: readonly string[]): string {
  return files
    .map((file) => {
      try {
        const s = statSync(file, { bigint: true });
        return `${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`;
      } catch {
        return 'missing';
      }
    })
    .join('|');
}

function readText(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'is a directory' : code;
    throw new WebConfigError(`cannot read ${what} ${escapeForLog(path)}: ${why}`);
  }
}

function checkCertificate(pem: string, what: string): void {
  const first = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(pem);
  if (!first) throw new WebConfigError(`${what}: no PEM certificate in it`);
  try {
    new X509Certificate(first[0]);
  } catch {
    throw new WebConfigError(`${what}: not a valid PEM certificate`);
  }
}

function describeTlsError(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  if (/key values mismatch/i.test(message)) return 'tls_server_config: the key in key_file does not match the certificate in cert_file';
  if (/no start line|bad base64|PEM|DECODER/i.test(message)) return 'tls_server_config.key_file: not a PEM private key';
  if (/cipher/i.test(message)) return 'tls_server_config.cipher_suites: none of them can be used';
  if (/curve/i.test(message)) return 'tls_server_config.curve_preferences: not usable';
  return `tls_server_config: ${escapeForLog(message.split('\n')[0] ?? message)}`;
}

function errorText(error: unknown): string {
  return error instanceof WebConfigError ? error.message : escapeForLog(error instanceof Error ? error.message : String(error));
}
