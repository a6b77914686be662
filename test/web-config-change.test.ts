/**
 * What counts as weakening authentication on reload. The client_auth_type table below is Go's
 * crypto/tls documentation of ClientAuthType (which exporter-toolkit passes through), not a copy of
 * the module's sets.
 */
import { describe, expect, it } from 'vitest';
import { CLIENT_AUTH_TYPES, parseWebConfig, type ClientAuthType } from '../src/schemas/web-config.js';
import { authWeakenings } from '../src/web-config-change.js';

/** Go: "RequireAnyClientCert ... requested and at least one certificate is required ... not required to be valid". */
const GO_DOC: Record<ClientAuthType, { requires: boolean; verifies: boolean }> = {
  NoClientCert: { requires: false, verifies: false }, // "no client certificate should be requested"
  RequestClientCert: { requires: false, verifies: false }, // "requested ... but does not require ... not required to be valid"
  RequireAnyClientCert: { requires: true, verifies: false }, // "at least one certificate is required ... not required to be valid"
  VerifyClientCertIfGiven: { requires: false, verifies: true }, // "does not require ... if ... sent, it is required to be valid"
  RequireAndVerifyClientCert: { requires: true, verifies: true }, // "at least one valid certificate is required"
};

const HEAD = 'tls_server_config:\n  cert_file: c.crt\n  key_file: c.key\n';
const withAuth = (type: ClientAuthType, extra = '') =>
  parseWebConfig(`${HEAD}  client_auth_type: ${type}\n${type === 'NoClientCert' ? '' : '  client_ca_file: ca.crt\n'}${extra}`);

describe('authWeakenings', () => {
  it('client_auth_type: a change that gives up requiring or verifying a certificate is a lowering, any other is not', () => {
    expect(Object.keys(GO_DOC).sort()).toEqual([...CLIENT_AUTH_TYPES].sort());
    for (const from of CLIENT_AUTH_TYPES) {
      for (const to of CLIENT_AUTH_TYPES) {
        const lowers = (GO_DOC[from].requires && !GO_DOC[to].requires) || (GO_DOC[from].verifies && !GO_DOC[to].verifies);
        const found = authWeakenings(withAuth(from), withAuth(to)).filter((l) => l.startsWith('client_auth_type'));
        expect(found, `${from} → ${to}`).toEqual(lowers ? [`client_auth_type lowered from ${from} to ${to}`] : []);
      }
    }
  });

  it('removing basic_auth_users, the CA, the SAN list or TLS weakens; replacing or adding credentials does not', () => {
    const users = 'basic_auth_users:\n  prometheus: $2y$10$abcdefghijklmnopqrstuuJ2nS0v3rhHBmO3pp5b6T8f4m7uH8/W2\n';
    const otherUser = 'basic_auth_users:\n  grafana: $2y$10$abcdefghijklmnopqrstuuJ2nS0v3rhHBmO3pp5b6T8f4m7uH8/W2\n';
    expect(authWeakenings(parseWebConfig(users), parseWebConfig(''))).toEqual(['basic_auth_users removed']);
    expect(authWeakenings(parseWebConfig(users), parseWebConfig('basic_auth_users:\n'))).toEqual(['basic_auth_users removed']);
    expect(authWeakenings(parseWebConfig(users), parseWebConfig(otherUser))).toEqual([]);
    expect(authWeakenings(parseWebConfig(''), parseWebConfig(users))).toEqual([]);
    expect(authWeakenings(parseWebConfig(`${HEAD}${users}`), parseWebConfig(users))).toEqual(['TLS turned off']);
    expect(authWeakenings(parseWebConfig(users), parseWebConfig(`${HEAD}${users}`))).toEqual([]);
    const sans = '  client_allowed_sans: [a.example]\n';
    expect(authWeakenings(withAuth('RequireAndVerifyClientCert', sans), withAuth('RequireAndVerifyClientCert'))).toEqual(['client_allowed_sans removed']);
    expect(authWeakenings(withAuth('RequireAndVerifyClientCert', sans), withAuth('RequireAndVerifyClientCert', '  client_allowed_sans: [b.example]\n'))).toEqual([]);
    expect(authWeakenings(withAuth('RequestClientCert'), withAuth('NoClientCert'))).toEqual(['client_ca_file removed']);
    expect(authWeakenings(withAuth('RequireAndVerifyClientCert'), parseWebConfig(HEAD))).toEqual([
      'client_auth_type lowered from RequireAndVerifyClientCert to NoClientCert',
      'client_ca_file removed',
    ]);
  });

  it('min_version: lowering it weakens, by the order of TLS versions; raising it does not', () => {
    const versions = ['TLS10', 'TLS11', 'TLS12', 'TLS13'];
    for (const [i, from] of versions.entries()) {
      for (const [j, to] of versions.entries()) {
        const found = authWeakenings(parseWebConfig(`${HEAD}  min_version: ${from}\n`), parseWebConfig(`${HEAD}  min_version: ${to}\n`));
        expect(found, `${from} → ${to}`).toEqual(j < i ? [`min_version lowered from ${from} to ${to}`] : []);
      }
    }
    // Unset is exporter-toolkit's default, TLS 1.2.
    expect(authWeakenings(parseWebConfig(`${HEAD}  min_version: TLS13\n`), parseWebConfig(HEAD))).toEqual(['min_version lowered from TLS13 to TLS12']);
  });
});
