import { TLS_VERSIONS, type ClientAuthType, type NodeTlsVersion, type WebConfig } from './schemas/web-config.js';

/**
 * What a reloaded web config would take away from authentication. The server refuses such a
 * reload and keeps the stronger config until a restart (fail closed): a file read half-written, an
 * editor that truncates before it writes, or a write that died part-way must never turn checks off.
 * Changes that only add or replace credentials (a new password, a rotated CA, another SAN) apply.
 */
export function authWeakenings(previous: WebConfig, next: WebConfig): string[] {
  const lost: string[] = [];
  if (previous.basicAuthUsers && !next.basicAuthUsers) lost.push('basic_auth_users removed');
  const before = previous.tls;
  const after = next.tls;
  if (!before) return lost;
  if (!after) return [...lost, 'TLS turned off'];
  if (lowered(before.clientAuth, after.clientAuth)) lost.push(`client_auth_type lowered from ${before.clientAuth} to ${after.clientAuth}`);
  if (before.clientCaFile !== undefined && after.clientCaFile === undefined) lost.push('client_ca_file removed');
  if (before.clientAllowedSans && !after.clientAllowedSans) lost.push('client_allowed_sans removed');
  if (versionRank(after.minVersion) < versionRank(before.minVersion)) lost.push(`min_version lowered from ${goName(before.minVersion)} to ${goName(after.minVersion)}`);
  return lost;
}

/** Client certificate required at all (whether or not verified). */
const REQUIRES: ReadonlySet<ClientAuthType> = new Set(['RequireAnyClientCert', 'RequireAndVerifyClientCert']);
/** A client certificate, when given, verified against client_ca_file. */
const VERIFIES: ReadonlySet<ClientAuthType> = new Set(['VerifyClientCertIfGiven', 'RequireAndVerifyClientCert']);

/**
 * The five types are not a ladder: RequireAnyClientCert requires a certificate but does not verify
 * it, VerifyClientCertIfGiven verifies one but does not require it. A change is a lowering when it
 * gives up either property.
 */
function lowered(before: ClientAuthType, after: ClientAuthType): boolean {
  return (REQUIRES.has(before) && !REQUIRES.has(after)) || (VERIFIES.has(before) && !VERIFIES.has(after));
}

const VERSION_ORDER = Object.values(TLS_VERSIONS);
const versionRank = (version: NodeTlsVersion) => VERSION_ORDER.indexOf(version);
const goName = (version: NodeTlsVersion) => Object.entries(TLS_VERSIONS).find(([, node]) => node === version)?.[0] ?? version;
