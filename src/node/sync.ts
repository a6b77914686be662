/**
 * `loki-metrics sync`: watch a local `.loki` with the fs store and push what changed to a remote
 * exporter. Resumable by construction: each cycle sends the difference between the local state and
 * the manifest the remote acknowledged, so a failed request is simply retried (nothing is counted
 * twice — events travel as their summary) and a restart asks the remote for its manifest first.
 */
import { isLoopback } from '../host-check.js';
import type { LivenessMode } from '../liveness.js';
import { capText, escapeForLog } from '../log.js';
import { FsStateStore } from '../stores/fs.js';
import type { Manifest } from '../sync/protocol.js';
import { applyToManifest, carriesFiles, LAYOUT2_LIMITS, LAYOUT3_LIMITS, planUploads, SyncMemory, type Upload, type UploadLimits } from '../sync/plan.js';

export interface SyncOptions {
  readonly url: string;
  readonly session: string;
  readonly dir: string;
  readonly token: string;
  /** How often the local state is looked at (reading it costs nothing remote). */
  readonly intervalMs: number;
  /**
   * A change is pushed at most this often, and with nothing changed a heartbeat goes every
   * `heartbeatMs`. Unset: what the Worker asks for (its storage's free plan); an older Worker asks
   * nothing, and every look pushes.
   */
  readonly pushMs?: number;
  readonly heartbeatMs?: number;
  /** Between the requests of one push. Unset: what the Worker asks for (KV: 1.1 s). */
  readonly requestGapMs?: number;
  readonly once: boolean;
  /** `LOKI_LIVENESS`: the rule applied here before `pidAlive` is sent. Default `auto`. */
  readonly liveness?: LivenessMode;
  /** Allow plain http to a non-loopback host (`sync --allow-http`); refused otherwise. */
  readonly allowHttp?: boolean;
  /** One line per event worth telling the user (failures, recoveries). */
  readonly log: (line: string) => void;
  /** Called after each successful cycle, with the request body bytes sent. */
  readonly onCycle?: (stats: { bytesSent: number; requests: number }) => void;
  readonly signal?: AbortSignal;
  /** Milliseconds since the epoch (tests). */
  readonly clock?: () => number;
  /**
   * Every wait: between looks, before a retry, between a push's requests (tests). Default: a timer
   * that a stop through `signal` ends at once.
   */
  readonly sleep?: (ms: number) => Promise<void>;
}

/** What the remote said about itself with its manifest. */
interface Remote {
  readonly manifest: Manifest;
  readonly syncedAtMs: number | null;
  readonly limits: UploadLimits;
  readonly cadence?: { readonly pushMs: number; readonly heartbeatMs: number; readonly requestGapMs?: number };
}

/**
 * The remote's manifest: format 3 (the head, then each set's buckets a page at a time) or, from a
 * Worker before it, the whole manifest in one answer.
 */
async function fetchManifest(base: string, session: string, token: string, stop?: AbortSignal): Promise<Remote> {
  const query = `?session=${encodeURIComponent(session)}&layout=3`;
  const answer = (await call(`${base}/ingest/manifest${query}`, token, {}, stop)) as {
    layout?: number;
    syncedAtMs: number | null;
    documents?: Record<string, string>;
    sets?: Record<string, { buckets: number[] }>;
    cadence?: { pushMs: number; heartbeatMs: number; requestGapMs?: number };
    manifest?: Partial<Manifest> & { efficiency?: Record<string, string> };
  };
  if (answer.layout !== 3) {
    // A Worker from before file sets answers with `efficiency` alone.
    const { documents = {}, sets = { efficiency: answer.manifest?.efficiency ?? {} } } = answer.manifest ?? {};
    return { manifest: { documents, sets }, syncedAtMs: answer.syncedAtMs, limits: LAYOUT2_LIMITS };
  }
  const sets: Record<string, Record<string, string>> = {};
  for (const set of Object.keys(answer.sets ?? {})) {
    const files: Record<string, string> = (sets[set] = {});
    for (let from: number | null = 0; from !== null; ) {
      const page = (await call(`${base}/ingest/manifest${query}&set=${encodeURIComponent(set)}&from=${from}`, token, {}, stop)) as {
        files: Record<string, string>;
        next: number | null;
      };
      Object.assign(files, page.files);
      // Pages only move forward: a remote answering otherwise would keep us here.
      from = page.next !== null && page.next > from ? page.next : null;
    }
  }
  return {
    manifest: { documents: answer.documents ?? {}, sets },
    syncedAtMs: answer.syncedAtMs,
    limits: LAYOUT3_LIMITS,
    ...(answer.cadence ? { cadence: answer.cadence } : {}),
  };
}

/** The beat's facts of a cycle (liveness, the events summary, ...): a change of them is a change to push. */
function factsOf(upload: Upload): string {
  const { documents: _d, efficiency: _e, sets: _s, final: _f, ...facts } = upload.payload;
  return JSON.stringify(facts);
}

/** A failure with the one line the user sees, and whether trying again can help. */
class SyncFailure extends Error {
  constructor(
    message: string,
    readonly retry: boolean,
  ) {
    super(message);
  }
}

const MAX_BACKOFF_MS = 30_000;
/** The largest answer read from the remote (a format 2 manifest of 100,000 files is ~9 MB). */
const MAX_ANSWER_BYTES = 16 * 1024 * 1024;

/** The answer's text, refusing one larger than `max` bytes (its reading is stopped there). */
async function readBounded(response: Response, max: number): Promise<string> {
  const reader = response.body?.getReader();
  if (!reader) return '';
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > max) {
      await reader.cancel();
      throw new SyncFailure(`the remote's answer is larger than ${max} bytes (HTTP ${response.status}); not read`, response.status >= 500 || response.ok);
    }
    chunks.push(value);
  }
  return new TextDecoder().decode(Buffer.concat(chunks));
}

async function call(url: string, token: string, init: RequestInit = {}, stop?: AbortSignal): Promise<unknown> {
  let response: Response;
  try {
    const timeout = AbortSignal.timeout(30_000);
    response = await fetch(url, {
      ...init,
      headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json', ...init.headers },
      // Ctrl-C ends an upload at once rather than after the 30 s timeout.
      signal: stop ? AbortSignal.any([timeout, stop]) : timeout,
      // Never follow a redirect: it would carry the token and the state to wherever it points.
      redirect: 'manual',
    });
  } catch (error) {
    const detail = (error as { cause?: { code?: string; message?: string; errors?: { code?: string }[] } }).cause;
    const cause = detail?.code ?? detail?.errors?.[0]?.code ?? detail?.message ?? (error instanceof Error ? error.message : 'error');
    throw new SyncFailure(`cannot reach ${new URL(url).origin} (${cause})`, true);
  }
  if (response.status >= 300 && response.status < 400) {
    await response.body?.cancel();
    const location = response.headers.get('location');
    let where = 'no Location';
    if (location !== null) {
      try {
        where = new URL(location, url).origin;
      } catch {
        where = 'an invalid Location';
      }
    }
    throw new SyncFailure(`the remote answered with a redirect (HTTP ${response.status}) to ${where}; not followed: use the final URL as --url`, false);
  }
  let text: string;
  try {
    text = await readBounded(response, MAX_ANSWER_BYTES);
  } catch (error) {
    if (error instanceof SyncFailure) throw error;
    throw new SyncFailure(`cannot read the remote's answer (${error instanceof Error ? error.message : 'error'})`, true);
  }
  // Everything the remote says reaches a terminal or a log: one line, no control characters, bounded.
  let reason = text.trim();
  try {
    reason = (JSON.parse(text) as { error?: string }).error ?? reason;
  } catch {
    // not JSON: keep the text
  }
  reason = capText(escapeForLog(String(reason)), 300);
  if (response.ok) return JSON.parse(text) as unknown;
  switch (response.status) {
    case 401:
      throw new SyncFailure('the remote rejected the sync token (401): check LOKI_SYNC_TOKEN', false);
    case 413:
      throw new SyncFailure(`the remote refused the upload as too large (413): ${reason}`, false);
    case 409:
      throw new SyncFailure(`the remote refused the session (409): ${reason}`, false);
    case 422:
      throw new SyncFailure(`the remote rejected the upload (422): ${reason}`, true);
    default:
      throw new SyncFailure(`the remote answered HTTP ${response.status}: ${reason}`, response.status >= 500 || response.status === 429);
  }
}

/** Runs until `signal` aborts (or one cycle with `once`). Resolves with the exit code. */
export async function runSync(options: SyncOptions): Promise<number> {
  const base = options.url.replace(/\/+$/, '');
  const clock = options.clock ?? Date.now;
  const store = new FsStateStore(options.dir);
  const memory = new SyncMemory(options.liveness);
  let remote: Remote | undefined;
  let manifest: Manifest | undefined;
  /** The remote document's `syncedAtMs` our manifest describes; another value means it changed under us. */
  let remoteSyncedAtMs: number | null = null;
  let divergedInARow = 0;
  let lastPush: { atMs: number; facts: string } | undefined;
  const target = new URL(base);
  if (target.protocol !== 'https:' && target.protocol !== 'http:') {
    options.log(`loki-metrics sync: ${target.protocol} URLs are not supported: use https://`);
    return 1;
  }
  if (target.protocol === 'http:' && !isLoopback(target.hostname)) {
    if (!options.allowHttp) {
      options.log(`loki-metrics sync: refusing plain http to ${target.origin}: the write token and the state would travel unencrypted (use https, or --allow-http to accept that)`);
      return 1;
    }
    options.log(`loki-metrics sync: warning: ${target.origin} is plain http; the write token travels unencrypted (use https)`);
  }
  let backoffMs = 1_000;
  let lastProblem: string | undefined;

  // Each sleep removes its abort listener when it ends: a sync runs for days, one listener per cycle would leak.
  const sleep =
    options.sleep ??
    ((ms: number) =>
      new Promise<void>((resolve) => {
        // A stop that came while a request was in flight: its abort event has fired already.
        if (options.signal?.aborted) return resolve();
        const done = () => {
          clearTimeout(timer);
          options.signal?.removeEventListener('abort', done);
          resolve();
        };
        const timer = setTimeout(done, ms);
        options.signal?.addEventListener('abort', done, { once: true });
      }));

  try {
    while (!options.signal?.aborted) {
      try {
        if (!manifest || !remote) {
          remote = await fetchManifest(base, options.session, options.token, options.signal);
          manifest = remote.manifest;
          remoteSyncedAtMs = remote.syncedAtMs;
        }
        const query = `?session=${encodeURIComponent(options.session)}${remote.limits.layout === 3 ? '&layout=3' : ''}`;
        const reading = await store.read();
        let bytesSent = 0;
        const uploads = await planUploads(reading, manifest, memory, remote.limits);
        // Push a change at most once per push interval, and with none a heartbeat; a remote that
        // asks for no cadence (before format 3) gets every look.
        const facts = factsOf(uploads[0]!);
        const changed = uploads.some(carriesFiles) || facts !== lastPush?.facts;
        const pushMs = options.pushMs ?? remote.cadence?.pushMs ?? 0;
        const heartbeatMs = options.heartbeatMs ?? remote.cadence?.heartbeatMs ?? 0;
        const sincePush = lastPush === undefined ? Infinity : clock() - lastPush.atMs;
        if (!options.once && sincePush < (changed ? pushMs : heartbeatMs)) {
          await sleep(options.intervalMs);
          continue;
        }
        for (const [index, upload] of uploads.entries()) {
          // A large change goes as several requests: spaced as the remote's storage needs (KV).
          const gapMs = options.requestGapMs ?? remote.cadence?.requestGapMs ?? 0;
          if (index > 0 && gapMs > 0) await sleep(gapMs);
          const body = JSON.stringify(upload.payload);
          const answer = (await call(`${base}/ingest${query}`, options.token, { method: 'POST', body }, options.signal)) as {
            syncedAtMs: number;
            previousSyncedAtMs: number | null;
            rejected?: string[];
          };
          bytesSent += Buffer.byteLength(body);
          // Files the remote's schemas refused are stored there as bad (the rest is synced): say so.
          for (const problem of (answer.rejected ?? []).slice(0, 20)) options.log(`loki-metrics sync: the remote refused ${capText(escapeForLog(String(problem)), 300)}`);
          // The stored state was not the one our manifest describes (lost, replaced, another sync,
          // a stale KV read): ask for the manifest again and send what it lacks.
          const diverged = answer.previousSyncedAtMs !== remoteSyncedAtMs;
          remoteSyncedAtMs = answer.syncedAtMs;
          manifest = diverged ? undefined : applyToManifest(manifest!, upload);
          if (diverged) break;
        }
        // A repair after the remote diverged goes at once, not after a push interval.
        if (manifest) lastPush = { atMs: clock(), facts };
        if (!manifest) {
          // Go again at once to repair, but never spin: two syncs fighting over one session wait.
          if (++divergedInARow <= 2) continue;
        } else divergedInARow = 0;
        if (lastProblem !== undefined) options.log(`loki-metrics sync: ok again (session "${options.session}")`);
        lastProblem = undefined;
        backoffMs = 1_000;
        options.onCycle?.({ bytesSent, requests: uploads.length });
        if (options.once) return 0;
        await sleep(options.intervalMs);
      } catch (error) {
        // A request cut short by the stop is no failure: the loop ends as stopped, without a
        // "retrying" line. (`--once` still says the one push did not complete.)
        if (options.signal?.aborted && !options.once) break;
        const failure = error instanceof SyncFailure ? error : new SyncFailure(error instanceof Error ? error.message : String(error), true);
        if (!failure.retry || options.once) {
          options.log(`loki-metrics sync: ${failure.message}`);
          return 1;
        }
        if (failure.message !== lastProblem) options.log(`loki-metrics sync: ${failure.message}; retrying with backoff`);
        lastProblem = failure.message;
        await sleep(backoffMs);
        backoffMs = Math.min(backoffMs * 2, MAX_BACKOFF_MS);
      }
    }
    return 0;
  } finally {
    await store.close();
  }
}

/** `2s`, `500ms`, `1m`, or plain seconds. */
export function parseInterval(text: string): number | undefined {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(text.trim());
  if (!match) return undefined;
  const value = Number(match[1]);
  const ms = match[2] === 'ms' ? value : match[2] === 'm' ? value * 60_000 : value * 1000;
  return ms >= 100 && ms <= 3_600_000 ? ms : undefined;
}
