/**
 * The Host check against DNS rebinding. A web page can make a browser resolve its own name to
 * 127.0.0.1 and then read a loopback exporter as if same-origin; only the Host header still names
 * the page's domain. An exporter on a loopback address that asks for no credentials therefore
 * answers only Host names that cannot be rebound: `localhost` and `*.localhost` (RFC 6761: browsers
 * resolve them to loopback themselves), IP literals (a rebinding needs a DNS name), and the names the
 * operator lists (`LOKI_METRICS_ALLOWED_HOSTS`, e.g. the name a local reverse proxy passes on).
 */

/** 127.0.0.0/8, ::1 or localhost (a bind address or a URL's hostname): only this machine reaches it. */
export function isLoopback(hostname: string): boolean {
  const host = hostname.toLowerCase().replace(/^\[|\]$/g, '').replace(/\.$/, '');
  if (host === 'localhost' || host === '::1' || host === '0:0:0:0:0:0:0:1') return true;
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/** `LOKI_METRICS_ALLOWED_HOSTS=*`: no Host check at all. */
export const ANY_HOST = '*';

/**
 * The Host names a server answers, or undefined for any: the check is on only where it helps, on
 * a loopback address with nothing asking for credentials (a rebinding page cannot supply them).
 */
export function hostAllowList(bindHost: string, asksForCredentials: boolean, allowed: readonly string[]): readonly string[] | undefined {
  if (!isLoopback(bindHost) || asksForCredentials || allowed.includes(ANY_HOST)) return undefined;
  return allowed.map((name) => name.toLowerCase());
}

/** Whether a request for `hostname` (a URL's hostname: no port, IPv6 in brackets) may be answered. */
export function hostAllowed(hostname: string, allowed: readonly string[]): boolean {
  const name = hostname.toLowerCase().replace(/\.$/, '');
  if (name === 'localhost' || name.endsWith('.localhost')) return true;
  if (/^\d+\.\d+\.\d+\.\d+$/.test(name) || (name.startsWith('[') && name.endsWith(']'))) return true;
  return allowed.includes(name);
}
