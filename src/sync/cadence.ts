/**
 * How often a sync client pushes, decided by the Worker for its storage (and told to clients in the
 * manifest), so that the defaults fit the free plans (docs/worker.md, "Plans"): a change is pushed
 * at most once per `pushMs`; with nothing changed, a heartbeat every `heartbeatMs`; a session with
 * no sync for `staleMs` reads as stopped.
 *
 * R2's free tier (1M writes a month) takes a live session pushing every minute (~3 writes); KV's
 * free plan (1,000 writes a day) one pushing every 10 minutes.
 */
import type { Config } from '../config.js';

export interface Cadence {
  readonly pushMs: number;
  readonly heartbeatMs: number;
  readonly staleMs: number;
  /** Between two requests of one push (a large change): KV takes one write a second to a key. */
  readonly requestGapMs: number;
}

export const CADENCE_DEFAULTS = {
  r2: { pushMs: 60_000, heartbeatMs: 300_000 },
  kv: { pushMs: 600_000, heartbeatMs: 1_200_000 },
} as const satisfies Record<'r2' | 'kv', { pushMs: number; heartbeatMs: number }>;

/** KV refuses a second write to one key within a second; each request writes the beat and the head. */
export const KV_REQUEST_GAP_MS = 1_100;

/**
 * Beyond two heartbeats, plus a minute (KV's propagation; a request's retries), a client is gone:
 * one lost heartbeat is not a stopped session.
 */
export const staleAfter = (heartbeatMs: number) => 2 * heartbeatMs + 60_000;

export function syncCadence(kind: 'r2' | 'kv', config: Pick<Config, 'syncPushMs' | 'syncHeartbeatMs' | 'syncStaleMs'>): Cadence {
  const defaults = CADENCE_DEFAULTS[kind];
  const pushMs = config.syncPushMs ?? defaults.pushMs;
  // A heartbeat is never more frequent than the pushes of changes.
  const heartbeatMs = Math.max(config.syncHeartbeatMs ?? defaults.heartbeatMs, pushMs);
  return { pushMs, heartbeatMs, staleMs: config.syncStaleMs ?? staleAfter(heartbeatMs), requestGapMs: kind === 'kv' ? KV_REQUEST_GAP_MS : 0 };
}
