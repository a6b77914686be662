/**
 * Per-session write tokens: derived from the one sync secret and the session name by HMAC-SHA-256,
 * so the Worker checks a session's token without storing a list, and a token written into one
 * project's machine cannot write any other session. Runtime-free (Web Crypto).
 */

const encoder = new TextEncoder();

/** The write token of `session` under `secret` (base64url, 43 characters). */
export async function sessionSyncToken(secret: string, session: string): Promise<string> {
  const key = await crypto.subtle.importKey('raw', encoder.encode(secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  const mac = new Uint8Array(await crypto.subtle.sign('HMAC', key, encoder.encode(`loki-metrics session ${session}`)));
  let binary = '';
  for (const byte of mac) binary += String.fromCharCode(byte);
  // 32 bytes are 44 base64 characters, the last always the one `=` of padding: dropped.
  return btoa(binary).slice(0, -1).replace(/\+/g, '-').replace(/\//g, '_');
}
