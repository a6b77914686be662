import * as v from 'valibot';
import { parseDocument } from 'yaml';
import { capText, escapeForLog } from '../log.js';
import { describeIssues, jsonObject } from './parse.js';

/**
 * The web configuration file of Prometheus's exporter-toolkit (`--web.config.file`), the YAML that
 * node_exporter, blackbox_exporter and Prometheus itself read: TLS, client certificates and basic
 * auth. Parsed strictly: a field loki-metrics does not honour is refused by name, never ignored,
 * because a security setting silently dropped is worse than a server that will not start.
 *
 * Runtime-free: file paths come back as written; the Node loader resolves them against the
 * config file's directory, as exporter-toolkit does.
 */

export const CLIENT_AUTH_TYPES = [
  'NoClientCert',
  'RequestClientCert',
  'RequireAnyClientCert',
  'VerifyClientCertIfGiven',
  'RequireAndVerifyClientCert',
] as const;
export type ClientAuthType = (typeof CLIENT_AUTH_TYPES)[number];

/** Go's version names → Node's. */
export const TLS_VERSIONS = { TLS10: 'TLSv1', TLS11: 'TLSv1.1', TLS12: 'TLSv1.2', TLS13: 'TLSv1.3' } as const;
export type TlsVersionName = keyof typeof TLS_VERSIONS;
export type NodeTlsVersion = (typeof TLS_VERSIONS)[TlsVersionName];

/**
 * Go's TLS 1.0–1.2 cipher suite names → OpenSSL's, for the suites Node's OpenSSL offers. Go's names
 * are the IANA ones (plus two short CHACHA20 aliases); the test checks each against what
 * `openssl ciphers -stdname` says that IANA name is called in OpenSSL.
 */
export const TLS12_SUITES: Readonly<Record<string, string>> = {
  TLS_RSA_WITH_AES_128_CBC_SHA: 'AES128-SHA',
  TLS_RSA_WITH_AES_256_CBC_SHA: 'AES256-SHA',
  TLS_RSA_WITH_AES_128_CBC_SHA256: 'AES128-SHA256',
  TLS_RSA_WITH_AES_128_GCM_SHA256: 'AES128-GCM-SHA256',
  TLS_RSA_WITH_AES_256_GCM_SHA384: 'AES256-GCM-SHA384',
  TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA: 'ECDHE-ECDSA-AES128-SHA',
  TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA: 'ECDHE-ECDSA-AES256-SHA',
  TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA: 'ECDHE-RSA-AES128-SHA',
  TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA: 'ECDHE-RSA-AES256-SHA',
  TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256: 'ECDHE-ECDSA-AES128-SHA256',
  TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256: 'ECDHE-RSA-AES128-SHA256',
  TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256: 'ECDHE-RSA-AES128-GCM-SHA256',
  TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256: 'ECDHE-ECDSA-AES128-GCM-SHA256',
  TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384: 'ECDHE-RSA-AES256-GCM-SHA384',
  TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384: 'ECDHE-ECDSA-AES256-GCM-SHA384',
  TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305: 'ECDHE-RSA-CHACHA20-POLY1305',
  TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256: 'ECDHE-RSA-CHACHA20-POLY1305',
  TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305: 'ECDHE-ECDSA-CHACHA20-POLY1305',
  TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256: 'ECDHE-ECDSA-CHACHA20-POLY1305',
};
/** TLS 1.3 suites: Go ignores them in `cipher_suites`; Node can restrict them, so we do. */
export const TLS13_SUITES = ['TLS_AES_128_GCM_SHA256', 'TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256'] as const;
/** Go knows these; OpenSSL 3 as Node ships it does not offer them (RC4, 3DES). */
export const UNAVAILABLE_SUITES = [
  'TLS_RSA_WITH_RC4_128_SHA',
  'TLS_RSA_WITH_3DES_EDE_CBC_SHA',
  'TLS_ECDHE_ECDSA_WITH_RC4_128_SHA',
  'TLS_ECDHE_RSA_WITH_RC4_128_SHA',
  'TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA',
];

/** Go's curve names → OpenSSL's. */
const CURVES: Readonly<Record<string, string>> = { CurveP256: 'P-256', CurveP384: 'P-384', CurveP521: 'P-521', X25519: 'X25519' };

/** The response headers exporter-toolkit lets `http_server_config.headers` set. */
export const SETTABLE_HEADERS = [
  'Strict-Transport-Security',
  'X-Content-Type-Options',
  'X-Frame-Options',
  'X-XSS-Protection',
  'Content-Security-Policy',
] as const;

/** Fields newer exporter-toolkits know that loki-metrics refuses, and what to do instead. */
const KNOWN_UNSUPPORTED: Readonly<Record<string, string>> = {
  rate_limit: 'put the rate limit in the reverse proxy (see monitoring/nginx)',
  'tls_server_config.cert': 'use cert_file',
  'tls_server_config.key': 'use key_file',
  'tls_server_config.client_ca': 'use client_ca_file',
};

/** The highest bcrypt cost accepted: 14 is ~1 s a check in bcryptjs on a laptop core; each step doubles it. */
export const MAX_BCRYPT_COST = 14;

/** bcrypt as `htpasswd -nBC 10` (`$2y$`), Go (`$2a$`) and OpenBSD (`$2b$`) write it. */
const BCRYPT = /^\$2[aby]\$(0[4-9]|[12]\d|3[01])\$[./A-Za-z0-9]{53}$/;

const path = v.pipe(v.string('Expected a file path'), v.trim(), v.nonEmpty('Expected a file path'));
const names = <T extends string>(allowed: readonly T[], what: string) =>
  v.array(v.picklist(allowed, `Expected ${what}: ${allowed.join(', ')}`), `Expected a list of ${what}`);

const TlsServerSchema = v.strictObject({
  cert_file: v.optional(path),
  key_file: v.optional(path),
  client_auth_type: v.optional(v.picklist(CLIENT_AUTH_TYPES, `Expected one of ${CLIENT_AUTH_TYPES.join(', ')}`)),
  client_ca_file: v.optional(path),
  client_allowed_sans: v.optional(v.array(v.pipe(v.string('Expected a SAN'), v.nonEmpty('Expected a SAN')), 'Expected a list of SANs')),
  min_version: v.optional(v.picklist(Object.keys(TLS_VERSIONS) as TlsVersionName[], 'Expected TLS10, TLS11, TLS12 or TLS13')),
  max_version: v.optional(v.picklist(Object.keys(TLS_VERSIONS) as TlsVersionName[], 'Expected TLS10, TLS11, TLS12 or TLS13')),
  cipher_suites: v.optional(v.array(v.string('Expected a cipher suite name'), 'Expected a list of cipher suite names')),
  curve_preferences: v.optional(names(Object.keys(CURVES), 'curve names')),
  prefer_server_cipher_suites: v.optional(v.boolean('Expected true or false')),
});

const WebConfigSchema = v.strictObject({
  tls_server_config: v.optional(v.nullable(jsonObject(TlsServerSchema))),
  http_server_config: v.optional(
    v.nullable(
      jsonObject(
        v.strictObject({
          http2: v.optional(v.boolean('Expected true or false')),
          headers: v.optional(v.nullable(jsonObject(v.record(v.string(), v.string('Expected a header value'))))),
        }),
      ),
    ),
  ),
  basic_auth_users: v.optional(v.nullable(jsonObject(v.record(v.string(), v.string('Expected a bcrypt hash'))))),
});

/** TLS settings, validated and translated to Node's vocabulary; file paths as written. */
export interface TlsSettings {
  readonly certFile: string;
  readonly keyFile: string;
  readonly clientAuth: ClientAuthType;
  readonly clientCaFile?: string;
  readonly clientAllowedSans?: readonly string[];
  readonly minVersion: NodeTlsVersion;
  readonly maxVersion: NodeTlsVersion;
  /** OpenSSL cipher string (TLS 1.2 suites, then TLS 1.3 ones), when `cipher_suites` was given. */
  readonly ciphers?: string;
  /** OpenSSL curve list (`P-256:X25519`), when `curve_preferences` was given. */
  readonly ecdhCurve?: string;
  readonly honorCipherOrder: boolean;
}

export interface WebConfig {
  readonly tls?: TlsSettings;
  /** User → bcrypt hash. */
  readonly basicAuthUsers?: Readonly<Record<string, string>>;
  /** Extra response headers (`http_server_config.headers`). */
  readonly headers: Readonly<Record<string, string>>;
}

export class WebConfigError extends Error {
  override readonly name = 'WebConfigError';
}

/**
 * Parse and validate a web config file's text. Throws WebConfigError with one line naming the
 * field and what is wrong; never quotes a hash or a header value.
 */
export function parseWebConfig(text: string): WebConfig {
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: false });
  const yamlError = doc.errors[0];
  if (yamlError) throw new WebConfigError(`not valid YAML: ${firstLine(yamlError.message)}`);
  let raw: unknown;
  try {
    raw = doc.toJS() ?? {};
  } catch (error) {
    // An alias bomb (aliases expanding past the library's count) is refused only while converting.
    throw new WebConfigError(`not valid YAML: ${firstLine((error as Error).message)}`);
  }
  if (typeof raw !== 'object' || Array.isArray(raw)) throw new WebConfigError('expected a YAML mapping at the top level');
  const unsupported = findUnsupported(raw as Record<string, unknown>);
  if (unsupported) throw new WebConfigError(unsupported);
  const result = v.safeParse(WebConfigSchema, raw);
  // The first issue only, as the state files' problems say it: the field and what was expected, never the value.
  if (!result.success) throw new WebConfigError(describeIssues(result.issues.slice(0, 1)));
  const config = result.output;
  return {
    ...(config.tls_server_config ? { tls: tlsSettings(config.tls_server_config) } : {}),
    ...(config.basic_auth_users ? { basicAuthUsers: basicAuthUsers(config.basic_auth_users) } : {}),
    headers: headers(config.http_server_config ?? {}),
  };
}

function tlsSettings(tls: v.InferOutput<typeof TlsServerSchema>): TlsSettings {
  if (!tls.cert_file) throw new WebConfigError('tls_server_config.cert_file is missing');
  if (!tls.key_file) throw new WebConfigError('tls_server_config.key_file is missing');
  const clientAuth = tls.client_auth_type ?? 'NoClientCert';
  const verifies = clientAuth === 'VerifyClientCertIfGiven' || clientAuth === 'RequireAndVerifyClientCert';
  if (tls.client_ca_file && clientAuth === 'NoClientCert') {
    throw new WebConfigError('tls_server_config.client_ca_file is set but client_auth_type is NoClientCert: set a client_auth_type');
  }
  // Go would fall back to the system roots; a public CA vouching for scrapers is never what is meant.
  if (verifies && !tls.client_ca_file) throw new WebConfigError(`tls_server_config.client_ca_file is required with client_auth_type ${clientAuth}`);
  // As exporter-toolkit: SANs are checked only where a client certificate is required.
  if (tls.client_allowed_sans && clientAuth !== 'RequireAnyClientCert' && clientAuth !== 'RequireAndVerifyClientCert') {
    throw new WebConfigError('tls_server_config.client_allowed_sans needs client_auth_type RequireAnyClientCert or RequireAndVerifyClientCert');
  }
  const minName = tls.min_version ?? 'TLS12';
  const maxName = tls.max_version ?? 'TLS13';
  if (Number(minName.slice(3)) > Number(maxName.slice(3))) throw new WebConfigError(`tls_server_config.min_version ${minName} is above max_version ${maxName}`);
  return {
    certFile: tls.cert_file,
    keyFile: tls.key_file,
    clientAuth,
    ...(tls.client_ca_file ? { clientCaFile: tls.client_ca_file } : {}),
    ...(tls.client_allowed_sans ? { clientAllowedSans: tls.client_allowed_sans } : {}),
    minVersion: TLS_VERSIONS[minName],
    maxVersion: TLS_VERSIONS[maxName],
    ...(tls.cipher_suites ? { ciphers: cipherString(tls.cipher_suites) } : {}),
    ...(tls.curve_preferences ? { ecdhCurve: tls.curve_preferences.map((c) => CURVES[c]).join(':') } : {}),
    honorCipherOrder: tls.prefer_server_cipher_suites ?? true, // exporter-toolkit's default
  };
}

/** Go names → one OpenSSL cipher string; TLS 1.3 keeps every suite unless some are listed. */
function cipherString(suites: readonly string[]): string {
  const tls12: string[] = [];
  const tls13: string[] = [];
  for (const suite of suites) {
    const openssl = TLS12_SUITES[suite];
    if (openssl !== undefined) tls12.push(openssl);
    else if ((TLS13_SUITES as readonly string[]).includes(suite)) tls13.push(suite);
    else if (UNAVAILABLE_SUITES.includes(suite)) throw new WebConfigError(`tls_server_config.cipher_suites: ${suite} is not available in Node's OpenSSL`);
    else throw new WebConfigError(`tls_server_config.cipher_suites: unknown cipher suite ${JSON.stringify(capText(escapeForLog(suite), 80))}`);
  }
  if (tls12.length === 0 && tls13.length === 0) throw new WebConfigError('tls_server_config.cipher_suites is empty');
  return [...new Set(tls12), ...(tls13.length > 0 ? new Set(tls13) : TLS13_SUITES)].join(':');
}

function basicAuthUsers(users: Readonly<Record<string, string>>): Readonly<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const [user, hash] of Object.entries(users)) {
    const name = capText(escapeForLog(user), 40);
    if (user === '' || user.includes(':')) throw new WebConfigError(`basic_auth_users: user name ${JSON.stringify(name)} must be non-empty and without ':'`);
    if (!BCRYPT.test(hash)) throw new WebConfigError(`basic_auth_users.${name}: not a bcrypt hash (make one with: htpasswd -nBC 10 ${name})`);
    const cost = Number(hash.slice(4, 6));
    if (cost > MAX_BCRYPT_COST) {
      // Each wrong password would hold the exporter for seconds to days: a denial of service.
      throw new WebConfigError(`basic_auth_users.${name}: bcrypt cost ${cost} is more than ${MAX_BCRYPT_COST} (each check would take seconds or more); use 10-12 (htpasswd -nBC 10 ${name})`);
    }
    out[user] = hash;
  }
  return out;
}

/**
 * Why Node's HTTP layer would refuse `value` as a header value (it throws on every response, or
 * after a reload), by Node's own rule: tab, printable ASCII and Latin-1's upper half only.
 */
export function headerValueProblem(value: string): string | undefined {
  const bad = /[^\t\x20-\x7e\x80-\xff]/.exec(value);
  if (!bad) return undefined;
  return bad[0] <= '\x7f' ? 'control characters are not allowed' : 'characters beyond Latin-1 (a typographic quote, say) cannot be sent in a header';
}

function headers(http: { http2?: boolean | undefined; headers?: Readonly<Record<string, string>> | null | undefined }): Readonly<Record<string, string>> {
  if (http.http2 === true) throw new WebConfigError('http_server_config.http2: true is not supported (the Node server speaks HTTP/1.1, which Prometheus scrapes); remove it or set false');
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(http.headers ?? {})) {
    const canonical = SETTABLE_HEADERS.find((h) => h.toLowerCase() === name.toLowerCase());
    if (!canonical) throw new WebConfigError(`http_server_config.headers: ${JSON.stringify(capText(escapeForLog(name), 60))} cannot be set (allowed: ${SETTABLE_HEADERS.join(', ')})`);
    const problem = headerValueProblem(value);
    if (problem !== undefined) throw new WebConfigError(`http_server_config.headers.${canonical}: ${problem}`);
    out[canonical] = value;
  }
  return out;
}

/** The first field that is not ours to honour, as a one-line message. */
function findUnsupported(raw: Readonly<Record<string, unknown>>): string | undefined {
  const known: Readonly<Record<string, readonly string[] | undefined>> = {
    '': ['tls_server_config', 'http_server_config', 'basic_auth_users'],
    tls_server_config: Object.keys(TlsServerSchema.entries),
    http_server_config: ['http2', 'headers'],
  };
  const check = (prefix: string, object: unknown): string | undefined => {
    if (object === null || typeof object !== 'object' || Array.isArray(object)) return undefined;
    const allowed = known[prefix];
    if (!allowed) return undefined;
    for (const key of Object.keys(object)) {
      const field = prefix ? `${prefix}.${key}` : key;
      const hint = KNOWN_UNSUPPORTED[field];
      if (hint) return `${field} is not supported by loki-metrics: ${hint}`;
      if (!allowed.includes(key)) return `unknown field ${capText(escapeForLog(field), 80)}`;
      const inner = check(field, (object as Record<string, unknown>)[key]);
      if (inner) return inner;
    }
    return undefined;
  };
  return check('', raw);
}

function firstLine(text: string): string {
  return capText(escapeForLog(text.split('\n')[0] ?? ''), 160);
}
