/**
 * The web config parser on its own: exporter-toolkit's YAML in, Node's TLS vocabulary out, and
 * one line naming the field for anything it will not honour.
 */
import { spawnSync } from 'node:child_process';
import { validateHeaderValue } from 'node:http';
import { getCiphers } from 'node:tls';
import { describe, expect, it } from 'vitest';
import { headerValueProblem, MAX_BCRYPT_COST, parseWebConfig, TLS12_SUITES, TLS13_SUITES, UNAVAILABLE_SUITES, WebConfigError } from '../../src/schemas/web-config.js';

const HASH = '$2y$10$8As8Gm9zk6DB5vt2uOpDFO6rtNxYQpfLhUttntX.yEq.K0QuGl2N2';
const tls = (extra = '') => `tls_server_config:\n  cert_file: a.crt\n  key_file: a.key\n${extra}`;
const problem = (yaml: string) => {
  try {
    parseWebConfig(yaml);
  } catch (error) {
    expect(error).toBeInstanceOf(WebConfigError);
    return (error as Error).message;
  }
  throw new Error('accepted');
};

describe('parseWebConfig', () => {
  it('defaults as exporter-toolkit: TLS 1.2 to 1.3, no client certificates, the server\'s cipher order', () => {
    expect(parseWebConfig(tls())).toEqual({
      tls: { certFile: 'a.crt', keyFile: 'a.key', clientAuth: 'NoClientCert', minVersion: 'TLSv1.2', maxVersion: 'TLSv1.3', honorCipherOrder: true },
      headers: {},
    });
    expect(parseWebConfig('')).toEqual({ headers: {} });
    expect(parseWebConfig('tls_server_config:\nbasic_auth_users:\n')).toEqual({ headers: {} });
  });

  it('maps Go cipher suites to OpenSSL names, keeps every TLS 1.3 suite unless some are listed, and maps curves', () => {
    const out = parseWebConfig(tls('  cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256]\n  curve_preferences: [X25519, CurveP384]\n  prefer_server_cipher_suites: false\n  min_version: TLS11\n'));
    expect(out.tls?.ciphers).toBe('ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305:TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256');
    expect(out.tls?.ecdhCurve).toBe('X25519:P-384');
    expect(out.tls?.honorCipherOrder).toBe(false);
    expect(out.tls?.minVersion).toBe('TLSv1.1');
    expect(parseWebConfig(tls('  cipher_suites: [TLS_AES_256_GCM_SHA384, TLS_RSA_WITH_AES_128_CBC_SHA]\n')).tls?.ciphers).toBe('AES128-SHA:TLS_AES_256_GCM_SHA384');
  });

  it('keeps bcrypt hashes of every variant and canonical header names', () => {
    for (const variant of ['2a', '2b', '2y']) {
      const hash = HASH.replace('2y', variant);
      expect(parseWebConfig(`basic_auth_users:\n  u: ${hash}\n`).basicAuthUsers).toEqual({ u: hash });
    }
    expect(parseWebConfig('http_server_config:\n  headers:\n    x-frame-options: deny\n').headers).toEqual({ 'X-Frame-Options': 'deny' });
  });

  it('names the field and never quotes a secret', () => {
    const cases: [string, string][] = [
      ['basic_auth_users:\n  alice: s3cretpassword\n', 'basic_auth_users.alice: not a bcrypt hash (make one with: htpasswd -nBC 10 alice)'],
      [`basic_auth_users:\n  alice: ${HASH.slice(0, -1)}\n`, 'basic_auth_users.alice: not a bcrypt hash (make one with: htpasswd -nBC 10 alice)'],
      [`basic_auth_users:\n  alice: ${HASH.replace('$10$', '$03$')}\n`, 'basic_auth_users.alice: not a bcrypt hash (make one with: htpasswd -nBC 10 alice)'],
      [`basic_auth_users:\n  "a:b": ${HASH}\n`, 'basic_auth_users: user name "a:b" must be non-empty and without \':\''],
      ['basic_auth_users:\n  alice: 12\n', 'basic_auth_users.alice: Expected a bcrypt hash'],
      [tls('  min_version: TLS14\n'), 'tls_server_config.min_version: Expected TLS10, TLS11, TLS12 or TLS13'],
      [tls('  prefer_server_cipher_suites: yes please\n'), 'tls_server_config.prefer_server_cipher_suites: Expected true or false'],
      [tls('  curve_preferences: [CurveP224]\n'), 'tls_server_config.curve_preferences.0: Expected curve names: CurveP256, CurveP384, CurveP521, X25519'],
      [tls('  cipher_suites: []\n'), 'tls_server_config.cipher_suites is empty'],
      [tls('  client_auth_type: RequestClientCert\n  client_allowed_sans: [x]\n'), 'tls_server_config.client_allowed_sans needs client_auth_type RequireAnyClientCert or RequireAndVerifyClientCert'],
      [tls('  client_auth_type: VerifyClientCertIfGiven\n  client_ca_file: ca.crt\n  client_allowed_sans: [x]\n'), 'tls_server_config.client_allowed_sans needs client_auth_type RequireAnyClientCert or RequireAndVerifyClientCert'],
      [tls('  cert: inline\n'), 'tls_server_config.cert is not supported by loki-metrics: use cert_file'],
      ['http_server_config:\n  headers:\n    Server: x\n', 'http_server_config.headers: "Server" cannot be set (allowed: Strict-Transport-Security, X-Content-Type-Options, X-Frame-Options, X-XSS-Protection, Content-Security-Policy)'],
      ['tls_server_config:\n  key_file: a.key\n', 'tls_server_config.cert_file is missing'],
      ['"just text"\n', 'expected a YAML mapping at the top level'],
    ];
    for (const [yaml, expected] of cases) expect(problem(yaml)).toBe(expected);
    expect(problem('basic_auth_users:\n  alice: s3cretpassword\n')).not.toContain('s3cret');
  });

  it('every client_auth_type but NoClientCert may carry a CA; the verifying ones need one', () => {
    for (const type of ['RequestClientCert', 'RequireAnyClientCert', 'VerifyClientCertIfGiven', 'RequireAndVerifyClientCert']) {
      expect(parseWebConfig(tls(`  client_auth_type: ${type}\n  client_ca_file: ca.crt\n`)).tls?.clientAuth).toBe(type);
    }
    expect(parseWebConfig(tls('  client_auth_type: RequireAnyClientCert\n')).tls?.clientCaFile).toBeUndefined();
    expect(problem(tls('  client_auth_type: VerifyClientCertIfGiven\n'))).toBe('tls_server_config.client_ca_file is required with client_auth_type VerifyClientCertIfGiven');
  });

  it('refuses invalid YAML and duplicate keys, quoting only the first line of the YAML error', () => {
    expect(problem('basic_auth_users:\n  alice: x\n  alice: y\n')).toBe('not valid YAML: Map keys must be unique');
    expect(problem('tls_server_config: [a\n')).toBe('not valid YAML: Flow sequence in block collection must be sufficiently indented and end with a ]');
    let caught: unknown;
    try {
      parseWebConfig('a: b: c\n');
    } catch (error) {
      caught = error;
    }
    expect((caught as Error).name).toBe('WebConfigError'); // what a log line prints before the message
  });

  it('refuses unknown fields by name, at every level, and wrong types without quoting the value', () => {
    expect(problem('tls_config:\n  cert_file: a\n')).toBe('unknown field tls_config');
    expect(problem(tls('  certfile: b\n'))).toBe('unknown field tls_server_config.certfile');
    expect(problem('http_server_config:\n  http3: true\n')).toBe('unknown field http_server_config.http3');
    expect(problem('tls_server_config: sk-secret\n')).toBe('tls_server_config: Invalid type: Expected Object');
    expect(problem('http_server_config: 12\n')).toBe('http_server_config: Invalid type: Expected Object');
    // One line for the first problem, not a count of the others.
    expect(problem(tls('  min_version: TLS14\n  max_version: TLS15\n'))).toBe('tls_server_config.min_version: Expected TLS10, TLS11, TLS12 or TLS13');
  });

  it('needs both key and certificate; checks the CA against client_auth_type and the version range', () => {
    expect(problem('tls_server_config:\n  cert_file: a.crt\n')).toBe('tls_server_config.key_file is missing');
    const caWithoutAuth = 'tls_server_config.client_ca_file is set but client_auth_type is NoClientCert: set a client_auth_type';
    expect(problem(tls('  client_ca_file: ca.crt\n'))).toBe(caWithoutAuth);
    expect(problem(tls('  client_auth_type: NoClientCert\n  client_ca_file: ca.crt\n'))).toBe(caWithoutAuth);
    expect(problem(tls('  client_auth_type: RequireAndVerifyClientCert\n'))).toBe('tls_server_config.client_ca_file is required with client_auth_type RequireAndVerifyClientCert');
    expect(parseWebConfig(tls('  client_auth_type: RequestClientCert\n')).tls?.clientAuth).toBe('RequestClientCert');
    expect(problem(tls('  min_version: TLS13\n  max_version: TLS12\n'))).toBe('tls_server_config.min_version TLS13 is above max_version TLS12');
    expect(parseWebConfig(tls('  min_version: TLS13\n')).tls).toMatchObject({ minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3' });
    expect(parseWebConfig(tls('  min_version: TLS12\n  max_version: TLS12\n')).tls).toMatchObject({ minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2' });
    expect(parseWebConfig(tls('  min_version: TLS10\n  max_version: TLS11\n')).tls).toMatchObject({ minVersion: 'TLSv1', maxVersion: 'TLSv1.1' });
  });

  it('keeps the CA file and the allowed SANs where a client certificate is required', () => {
    expect(parseWebConfig(tls('  client_auth_type: RequireAnyClientCert\n  client_allowed_sans: [scraper.example]\n')).tls).toEqual({
      certFile: 'a.crt',
      keyFile: 'a.key',
      clientAuth: 'RequireAnyClientCert',
      clientAllowedSans: ['scraper.example'],
      minVersion: 'TLSv1.2',
      maxVersion: 'TLSv1.3',
      honorCipherOrder: true,
    });
    expect(parseWebConfig(tls('  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n  client_allowed_sans: [a, b]\n')).tls).toMatchObject({
      clientCaFile: 'ca.crt',
      clientAllowedSans: ['a', 'b'],
    });
  });

  it('refuses cipher suites Node cannot offer or Go does not know, and takes TLS 1.3 suites alone', () => {
    expect(problem(tls('  cipher_suites: [TLS_RSA_WITH_RC4_128_SHA]\n'))).toBe("tls_server_config.cipher_suites: TLS_RSA_WITH_RC4_128_SHA is not available in Node's OpenSSL");
    expect(problem(tls('  cipher_suites: [TLS_NOPE]\n'))).toBe('tls_server_config.cipher_suites: unknown cipher suite "TLS_NOPE"');
    expect(parseWebConfig(tls('  cipher_suites: [TLS_CHACHA20_POLY1305_SHA256, TLS_CHACHA20_POLY1305_SHA256]\n')).tls?.ciphers).toBe('TLS_CHACHA20_POLY1305_SHA256');
  });

  it('refuses an empty user name, HTTP/2 and control characters in header values', () => {
    expect(problem(`basic_auth_users:\n  "": ${HASH}\n`)).toBe('basic_auth_users: user name "" must be non-empty and without \':\'');
    expect(problem('http_server_config:\n  http2: true\n')).toBe(
      'http_server_config.http2: true is not supported (the Node server speaks HTTP/1.1, which Prometheus scrapes); remove it or set false',
    );
    expect(parseWebConfig('http_server_config:\n  http2: false\n')).toEqual({ headers: {} });
    expect(problem('http_server_config:\n  headers:\n    X-Frame-Options: "a\\x01b"\n')).toBe('http_server_config.headers.X-Frame-Options: control characters are not allowed');
    expect(problem('http_server_config:\n  headers:\n    X-Frame-Options: "a\\x7fb"\n')).toBe('http_server_config.headers.X-Frame-Options: control characters are not allowed');
    // Issue 19 item 9: a typographic quote pasted into a CSP crashed the first response.
    expect(problem('http_server_config:\n  headers:\n    Content-Security-Policy: "default-src \u2018self\u2019"\n')).toBe(
      'http_server_config.headers.Content-Security-Policy: characters beyond Latin-1 (a typographic quote, say) cannot be sent in a header',
    );
  });

  it('refuses a bcrypt cost above MAX_BCRYPT_COST, each wrong password taking seconds to days (issue 19, item 14)', () => {
    const at = (cost: number) => `$2y$${String(cost).padStart(2, '0')}$${'a'.repeat(53)}`;
    expect(parseWebConfig(`basic_auth_users:\n  u: "${at(MAX_BCRYPT_COST)}"\n`).basicAuthUsers).toEqual({ u: at(MAX_BCRYPT_COST) });
    for (const cost of [MAX_BCRYPT_COST + 1, 31]) {
      expect(problem(`basic_auth_users:\n  u: "${at(cost)}"\n`)).toBe(
        `basic_auth_users.u: bcrypt cost ${cost} is more than ${MAX_BCRYPT_COST} (each check would take seconds or more); use 10-12 (htpasswd -nBC 10 u)`,
      );
    }
    expect(MAX_BCRYPT_COST).toBe(14);
  });

  it('accepts a header value exactly when Node\'s HTTP layer does (its own validateHeaderValue, every code point to U+2FFF)', () => {
    for (let code = 0; code <= 0x2fff; code++) {
      const value = `a${String.fromCharCode(code)}b`;
      let node = true;
      try {
        validateHeaderValue('X-Frame-Options', value);
      } catch {
        node = false;
      }
      expect({ code, ours: headerValueProblem(value) === undefined }).toEqual({ code, ours: node });
    }
  });
});

describe('the cipher suite tables, against their sources (issue 20)', () => {
  /** IANA name → OpenSSL name, as the real openssl CLI says (every suite it knows, at any security level). */
  function opensslNames(): Map<string, string> {
    const out = spawnSync('openssl', ['ciphers', '-stdname', 'ALL:COMPLEMENTOFALL:@SECLEVEL=0'], { encoding: 'utf8', timeout: 10_000 });
    expect(out.status, out.stderr).toBe(0);
    const names = new Map<string, string>();
    for (const line of out.stdout.split('\n')) {
      const [iana, dash, openssl] = line.trim().split(/\s+/);
      if (dash === '-' && iana && openssl) names.set(iana, openssl);
    }
    return names;
  }
  // Go spells two CHACHA20 suites without their hash (crypto/tls: "..._CHACHA20_POLY1305 = ..._CHACHA20_POLY1305_SHA256").
  const iana = (go: string) => (go.endsWith('_CHACHA20_POLY1305') ? `${go}_SHA256` : go);

  it('each Go name maps to the OpenSSL name `openssl ciphers -stdname` gives its IANA name, and Node offers it', () => {
    const names = opensslNames();
    const offered = new Set(getCiphers().map((c) => c.toUpperCase()));
    for (const [go, openssl] of Object.entries(TLS12_SUITES)) {
      expect({ go, openssl }).toEqual({ go, openssl: names.get(iana(go)) });
      expect({ go, offered: offered.has(openssl) }).toEqual({ go, offered: true });
      // And through the parser.
      expect(parseWebConfig(tls(`  cipher_suites: [${go}]\n`)).tls?.ciphers?.split(':')[0]).toBe(openssl);
    }
    for (const suite of TLS13_SUITES) expect(names.get(suite)).toBe(suite);
  });

  it('the suites said to be unavailable are ones Node does not offer', () => {
    const names = opensslNames();
    const offered = new Set(getCiphers().map((c) => c.toUpperCase()));
    for (const go of UNAVAILABLE_SUITES) {
      const openssl = names.get(iana(go));
      expect({ go, offered: openssl !== undefined && offered.has(openssl) }).toEqual({ go, offered: false });
    }
  });
});

/** Issue 20: each refusal says what is wrong in words of its own, so a reader knows what to change. */
describe('parseWebConfig: what each refusal says', () => {
  it('calls every suite Go knows but Node\'s OpenSSL lacks unavailable, not unknown', () => {
    for (const suite of ['TLS_RSA_WITH_RC4_128_SHA', 'TLS_RSA_WITH_3DES_EDE_CBC_SHA', 'TLS_ECDHE_ECDSA_WITH_RC4_128_SHA', 'TLS_ECDHE_RSA_WITH_RC4_128_SHA', 'TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA']) {
      expect(problem(tls(`  cipher_suites: [${suite}]\n`))).toBe(`tls_server_config.cipher_suites: ${suite} is not available in Node's OpenSSL`);
    }
  });

  it('maps every curve exporter-toolkit names to OpenSSL\'s name, in the order given', () => {
    expect(parseWebConfig(tls('  curve_preferences: [CurveP256, CurveP384, CurveP521, X25519]\n')).tls?.ecdhCurve).toBe('P-256:P-384:P-521:X25519');
    expect(parseWebConfig(tls('  curve_preferences: [CurveP521, CurveP256]\n')).tls?.ecdhCurve).toBe('P-521:P-256');
  });

  it('says what to use instead of each field a newer exporter-toolkit knows', () => {
    expect(problem('rate_limit:\n  interval: 1s\n')).toBe('rate_limit is not supported by loki-metrics: put the rate limit in the reverse proxy (see monitoring/nginx)');
    expect(problem(tls('  key: inline\n'))).toBe('tls_server_config.key is not supported by loki-metrics: use key_file');
    expect(problem(tls('  client_ca: inline\n'))).toBe('tls_server_config.client_ca is not supported by loki-metrics: use client_ca_file');
  });

  it('takes a bcrypt hash only as the whole value, nothing before or after it', () => {
    for (const hash of [`${HASH}x`, `x${HASH}`, `${HASH} ${HASH}`]) {
      expect(problem(`basic_auth_users:\n  alice: "${hash}"\n`), hash).toBe('basic_auth_users.alice: not a bcrypt hash (make one with: htpasswd -nBC 10 alice)');
    }
  });

  it('refuses an alias bomb as invalid YAML, like any other YAML error (found by a mutant of server.ts)', () => {
    // Nine levels of ten aliases each: the yaml library refuses to expand it, while converting.
    let text = 'a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n';
    for (let i = 1; i <= 9; i++) text += `a${i}: &a${i} [${Array(10).fill(`*a${i - 1}`).join(', ')}]\n`;
    expect(() => parseWebConfig(text)).toThrow(WebConfigError);
    expect(problem(text)).toMatch(/^not valid YAML: .*alias/i);
  });

  it('names what each TLS field expects', () => {
    const cases: [string, string][] = [
      ['  curve_preferences: X25519\n', 'tls_server_config.curve_preferences: Expected a list of curve names'],
      ['  client_auth_type: RequireCert\n', 'tls_server_config.client_auth_type: Expected one of NoClientCert, RequestClientCert, RequireAnyClientCert, VerifyClientCertIfGiven, RequireAndVerifyClientCert'],
      ['  client_auth_type: RequireAnyClientCert\n  client_allowed_sans: scraper.example\n', 'tls_server_config.client_allowed_sans: Expected a list of SANs'],
      ['  max_version: TLS15\n', 'tls_server_config.max_version: Expected TLS10, TLS11, TLS12 or TLS13'],
      ['  cipher_suites: TLS_AES_128_GCM_SHA256\n', 'tls_server_config.cipher_suites: Expected a list of cipher suite names'],
    ];
    for (const [extra, expected] of cases) expect(problem(tls(extra)), extra).toBe(expected);
  });
});
