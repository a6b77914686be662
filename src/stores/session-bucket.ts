/**
 * Where a remote exporter keeps one document per synced session (see `sync/protocol.ts`). `load`
 * and `save` are exactly one storage operation each. Only two calls list (R2 lists are the
 * expensive class of operation and KV's free plan allows 1,000 a day): `countSessions` only when
 * a session's document does not exist yet (the session cap), `listSessions` for discovery, cached.
 */
export interface SessionBucket {
  /** `'unchanged'` when the stored document still has `etag` (the caller keeps its parsed copy). */
  load(session: string, etag?: string): Promise<{ readonly text: string; readonly etag?: string } | 'unchanged' | null>;
  save(session: string, text: string): Promise<void>;
  /**
   * How many sessions are stored, counting no further than `atLeast` (one list per 1,000). Both
   * production buckets have it; a bucket without it (test doubles) has no session cap.
   */
  countSessions?(atLeast: number): Promise<number>;
  /** The stored sessions' names, at most `atMost` (one list per 1,000): discovery, cached by its caller. */
  listSessions?(atMost: number): Promise<string[]>;
}

export const SESSIONS_PREFIX = 'sessions/';
export const STATE_SUFFIX = '/state.json';

export const sessionKey = (session: string) => `${SESSIONS_PREFIX}${session}${STATE_SUFFIX}`;

/** The session a storage key belongs to (`sessions/NAME/state.json`), or undefined for any other key. */
export function sessionOfKey(key: string): string | undefined {
  if (!key.startsWith(SESSIONS_PREFIX) || !key.endsWith(STATE_SUFFIX)) return undefined;
  const session = key.slice(SESSIONS_PREFIX.length, -STATE_SUFFIX.length);
  return session === '' || session.includes('/') ? undefined : session;
}

/**
 * The session names under `sessions/`, at most `atMost`, one page of 1,000 keys per list call:
 * `listPage` lists one page from `cursor` and says where the next starts (undefined at the end).
 */
export async function listSessionKeys(
  atMost: number,
  listPage: (cursor: string | undefined) => Promise<{ readonly keys: readonly string[]; readonly next: string | undefined }>,
): Promise<string[]> {
  const sessions: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await listPage(cursor);
    for (const key of page.keys) {
      const session = sessionOfKey(key);
      if (session !== undefined && sessions.length < atMost) sessions.push(session);
    }
    cursor = page.next;
  } while (cursor !== undefined && sessions.length < atMost);
  return sessions;
}
