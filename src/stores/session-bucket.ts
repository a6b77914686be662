/**
 * Where a remote exporter keeps one document per synced session (see `sync/protocol.ts`). Each
 * call is exactly one storage operation, and nothing ever lists: R2 lists are the expensive class
 * of operation and KV's free plan allows 1,000 a day.
 */
export interface SessionBucket {
  /** `'unchanged'` when the stored document still has `etag` (the caller keeps its parsed copy). */
  load(session: string, etag?: string): Promise<{ readonly text: string; readonly etag?: string } | 'unchanged' | null>;
  save(session: string, text: string): Promise<void>;
}

export const sessionKey = (session: string) => `sessions/${session}/state.json`;
