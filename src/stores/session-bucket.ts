/**
 * Where a remote exporter keeps one document per synced session (see `sync/protocol.ts`). `load`
 * and `save` are exactly one storage operation each. Only `countSessions` lists (R2 lists are the
 * expensive class of operation and KV's free plan allows 1,000 a day), and it is called only when
 * a session's document does not exist yet (the session cap).
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
}

export const SESSIONS_PREFIX = 'sessions/';
export const STATE_SUFFIX = '/state.json';

export const sessionKey = (session: string) => `${SESSIONS_PREFIX}${session}${STATE_SUFFIX}`;
