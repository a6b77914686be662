/**
 * The remote exporter (the Worker) as a runtime-free Hono app over a `SessionBucket`:
 *
 * - `/metrics`, `/health`, `/` — the very same app as on Node, one instance per synced session,
 *   chosen by `?project=NAME` or `?session=NAME` (the fleet layer, fleet.ts: the multi-target
 *   exporter pattern; default `default`), so each scrape's output is exactly the single-session
 *   output; `/targets` lists every stored session for Prometheus's http_sd (behind the scrape token;
 *   refused with 403 on a Worker without one). The scrape token and the route are checked before a
 *   session app is made; any other path is a 404 here.
 * - `POST /ingest?session=NAME` and `GET /ingest/manifest?session=NAME` — the sync endpoint,
 *   behind the write token `LOKI_SYNC_TOKEN` (every session; must differ from the scrape token) or
 *   the session's own token `sessionSyncToken(LOKI_SYNC_TOKEN, NAME)` (that session only). At most
 *   `LOKI_MAX_SESSIONS` sessions: ingest creating one more is refused with 409 (sync/admission.ts:
 *   exact on R2, where creates are serialised; on KV, concurrent creates can pass it).
 */
import { Hono, type Context } from 'hono';
import { bearerAuth } from 'hono/bearer-auth';
import { bodyLimit } from 'hono/body-limit';
import { HTTPException } from 'hono/http-exception';
import * as v from 'valibot';
import type { AppDeps } from './app.js';
import { createFleetApp } from './fleet.js';
import { SessionCatalog } from './stores/session-catalog.js';
import type { Config } from './config.js';
import { describeIssues } from './schemas/parse.js';
import type { Log } from './source-tracker.js';
import type { ObjectStore } from './stores/object-store.js';
import { FILE_SET_NAMES, type FileSetName } from './stores/store.js';
import { everyResponseHeaders, exceptionResponse } from './response-headers.js';
import { parseDoc } from './stores/synced.js';
import { syncCadence } from './sync/cadence.js';
import { ingestShards } from './sync/ingest.js';
import { manifestHead, manifestPage } from './sync/manifest.js';
import { DEFAULT_SESSION, emptyDoc, IngestPayloadSchema, manifestOf, MAX_INGEST_BYTES, SESSION_NAME, type IngestPayload } from './sync/protocol.js';
import { applyIngest } from './sync/session-doc.js';
import { beatKey, legacyKey } from './sync/shards.js';
import { SessionAdmission, type Refusal } from './sync/admission.js';
import { sessionSyncToken } from './sync/tokens.js';

export interface RemoteAppDeps {
  /** Undefined when no binding is configured: scrapes then answer `loki_up 0`. */
  readonly bucket: ObjectStore | undefined;
  readonly config: Config;
  readonly clock?: () => number;
  readonly log?: Log;
  /** `loki_exporter_build_info`'s `revision` (the Worker has no `nodeversion`): see `AppDeps.build`. */
  readonly build?: AppDeps['build'];
}

/** Largest format 2 document (KV values stop at 25 MiB); format 3 has no such cap. */
const MAX_SESSION_DOC_BYTES = 20 * 1024 * 1024;

/** Per-isolate session apps kept (each holds its collector's memory and cache). */
const MAX_SESSION_APPS = 256;
/**
 * What those sessions' stores may keep in all: with what their collectors parse from it (about as
 * much again), well inside an isolate's 128 MB. A session keeps its head and documents (~10 KB).
 */
export const MAX_RETAINED_SESSION_BYTES = 24 * 1024 * 1024;

export function createRemoteApp(deps: RemoteAppDeps): Hono {
  const { bucket, config } = deps;
  const clock = deps.clock ?? Date.now;
  const log = deps.log ?? ((line: string) => console.error(line));
  // The cadence this Worker asks of sync clients; staleness follows from it.
  const cadence = bucket ? syncCadence(bucket.kind, config) : undefined;
  // The session cap, per isolate: on R2 serialised through the registry object (sync/admission.ts).
  const admission = bucket ? new SessionAdmission(bucket, { maxSessions: config.maxSessions, clock }) : undefined;
  const app = new Hono();
  app.use('*', everyResponseHeaders);

  // ---- ingest (write side)
  const ingest = new Hono();
  const syncToken = config.syncToken;
  if (!syncToken || syncToken === config.token) {
    // A scrape token must never be able to write, so equal tokens disable ingest outright.
    const why = !syncToken
      ? 'ingest is disabled: set the LOKI_SYNC_TOKEN secret'
      : 'ingest is disabled: LOKI_SYNC_TOKEN must differ from LOKI_METRICS_TOKEN';
    ingest.all('*', (c) => c.json({ error: why }, 503));
  } else {
    // The one sync secret writes every session; a per-session token (sessionSyncToken) writes its
    // own session only. Both compared in constant time.
    ingest.use(
      '*',
      bearerAuth({
        realm: 'loki-metrics-ingest',
        verifyToken: async (presented, c) => {
          const session = sessionOf(c);
          const master = await tokensEqual(presented, syncToken);
          const own = session !== undefined && (await tokensEqual(presented, await sessionSyncToken(syncToken, session)));
          return master || own;
        },
      }),
    );
    ingest.get('/manifest', async (c) => {
      const session = sessionOf(c);
      if (session === undefined) return badSession(c);
      if (!bucket) return c.json({ error: 'no R2 bucket or KV namespace is bound' }, 503);
      if (c.req.query('layout') === '3') {
        const set = c.req.query('set');
        if (set === undefined) return c.json({ ...(await manifestHead(bucket, session)), cadence: cadence! });
        if (!(FILE_SET_NAMES as readonly string[]).includes(set)) return c.json({ error: 'unknown file set' }, 400);
        const from = Number(c.req.query('from') ?? '0');
        if (!Number.isSafeInteger(from) || from < 0) return c.json({ error: 'invalid from' }, 400);
        return c.json(await manifestPage(bucket, session, set as FileSetName, from));
      }
      // A sync client from before format 3.
      if ((await bucket.get(beatKey(session))) !== null) return c.json({ error: UPGRADE }, 409);
      const stored = await bucket.get(legacyKey(session));
      const doc = stored && stored !== 'unchanged' ? parseDoc(stored.text) : undefined;
      const manifest = manifestOf(doc);
      // `efficiency` as well, for sync clients from before file sets.
      return c.json({ session, syncedAtMs: doc?.syncedAtMs ?? null, manifest: { ...manifest, efficiency: manifest.sets.efficiency ?? {} } });
    });
    ingest.post(
      '/',
      bodyLimit({
        maxSize: MAX_INGEST_BYTES,
        onError: async (c) => {
          // Read (a bounded amount of) what the client is still sending, so it gets to see the 413
          // instead of a connection reset mid-upload; beyond that the connection may be cut.
          await drain(c.req.raw.body, 4 * MAX_INGEST_BYTES);
          return c.json({ error: `payload larger than ${MAX_INGEST_BYTES} bytes` }, 413);
        },
      }),
      async (c) => {
        const session = sessionOf(c);
        if (session === undefined) return badSession(c);
        if (!bucket) return c.json({ error: 'no R2 bucket or KV namespace is bound' }, 503);
        let body: unknown;
        try {
          body = await c.req.json();
        } catch {
          return c.json({ error: 'body is not JSON' }, 400);
        }
        const payload = v.safeParse(IngestPayloadSchema, body);
        if (!payload.success) return c.json({ error: `invalid payload: ${describeIssues(payload.issues)}` }, 422);
        const admit = (name: string, reserve?: boolean) => admission!.admit(name, reserve);
        if (c.req.query('layout') === '3') {
          const answer = await ingestShards(bucket, session, payload.output, { nowMs: clock(), nonce: crypto.randomUUID(), admit });
          return c.json(answer.body, answer.status);
        }
        return ingestLegacy(c, bucket, session, payload.output, { nowMs: clock(), admit });
      },
    );
  }
  app.route('/ingest', ingest);

  // ---- scrape side: the fleet layer, one project per synced session (`?project=` or `?session=`),
  // with discovery at /targets. The scrape token and the route are checked before any session
  // work, so unauthenticated requests cannot create session apps and push real ones out. (Also
  // when it equals the sync token: ingest is then disabled, but the scrape side stays closed.)
  const catalog = new SessionCatalog(bucket, { clock });
  if (!config.token) {
    // A Worker is reachable by anyone: without a scrape token, discovery would hand every session's
    // name to anyone who asks. /metrics stays open (the token is optional), for a name one knows.
    app.all('/targets', (c) => c.text(TARGETS_NEED_TOKEN, 403));
  }
  app.route(
    '/',
    createFleetApp({
      catalog,
      config,
      clock,
      log,
      defaultProject: DEFAULT_SESSION,
      maxApps: MAX_SESSION_APPS,
      maxRetainedBytes: MAX_RETAINED_SESSION_BYTES,
      ...(cadence ? { syncStaleMs: cadence.staleMs } : {}),
      // No shared in-flight refresh across requests: workerd cancels a request that awaits another
      // request's I/O as hung. Finished snapshots are still shared through the cache.
      shareRefreshes: false,
      ...(deps.build ? { build: deps.build } : {}),
    }),
  );

  app.onError((error, c) => {
    if (error instanceof HTTPException) return exceptionResponse(error);
    log(`loki-metrics: internal error on ${c.req.method} ${c.req.path}: ${error instanceof Error ? error.message : String(error)}`);
    return c.json({ error: 'internal error' }, 500);
  });
  return app;
}

/** Why /targets is refused on a Worker without a scrape token. */
const TARGETS_NEED_TOKEN = 'discovery is disabled: set the LOKI_METRICS_TOKEN secret (without it, /targets would list every synced session to anyone)\n';

/** What a sync client from before format 3 is told once its session has moved on. */
const UPGRADE = 'this session is stored in format 3: upgrade loki-metrics sync (npm i -g loki-metrics)';

/**
 * A sync client from before format 3: its session stays one document (format 2), rewritten whole,
 * as before; a current client moves it over at its next sync.
 */
async function ingestLegacy(
  c: Context,
  store: ObjectStore,
  session: string,
  payload: IngestPayload,
  options: { readonly nowMs: number; readonly admit: (session: string, reserve?: boolean) => Promise<Refusal> },
) {
  if ((await store.get(beatKey(session))) !== null) return c.json({ error: UPGRADE }, 409);
  const stored = await store.get(legacyKey(session));
  // A new session beyond the cap: 409 (retrying does not help; existing sessions keep syncing).
  const early = stored === null ? await options.admit(session, false) : undefined;
  if (early) return c.json({ error: early.error }, early.status);
  const previous = stored && stored !== 'unchanged' ? parseDoc(stored.text) : undefined;
  const result = await applyIngest(previous ?? emptyDoc(), payload, options.nowMs);
  // A malformed upload writes nothing; a file whose content was refused is stored as a problem.
  if (!result.ok) return c.json({ error: result.problem }, 422);
  const text = JSON.stringify(result.doc);
  if (text.length > MAX_SESSION_DOC_BYTES) {
    return c.json({ error: `session state would exceed ${MAX_SESSION_DOC_BYTES} bytes (too many or too large files): upgrade loki-metrics sync` }, 413);
  }
  const refusal = stored === null ? await options.admit(session) : undefined;
  if (refusal) return c.json({ error: refusal.error }, refusal.status);
  await store.put(legacyKey(session), text);
  // `previousSyncedAtMs` lets the client see that the state it built on was lost or replaced.
  return c.json({
    ok: true,
    session,
    syncedAtMs: result.doc.syncedAtMs,
    previousSyncedAtMs: previous?.syncedAtMs ?? null,
    ...(result.rejected.length > 0 ? { rejected: result.rejected } : {}),
  });
}

const encoder = new TextEncoder();

/** Constant-time token comparison: equal-length SHA-256 digests, compared without an early exit. */
async function tokensEqual(a: string, b: string): Promise<boolean> {
  const [x, y] = await Promise.all([a, b].map(async (t) => new Uint8Array(await crypto.subtle.digest('SHA-256', encoder.encode(t)))));
  let diff = 0;
  for (let i = 0; i < x!.length; i++) diff |= x![i]! ^ y![i]!;
  return diff === 0;
}

function sessionOf(c: Context): string | undefined {
  const session = c.req.query('session') ?? DEFAULT_SESSION;
  return SESSION_NAME.test(session) ? session : undefined;
}

function badSession(c: Context) {
  return c.text('invalid session name: use 1-64 characters of A-Z a-z 0-9 . _ - starting with a letter or digit\n', 400);
}

async function drain(body: ReadableStream<Uint8Array> | null, maxBytes: number): Promise<void> {
  if (!body || body.locked) return;
  const reader = body.getReader();
  let seen = 0;
  try {
    while (seen <= maxBytes) {
      const { done, value } = await reader.read();
      if (done) return;
      seen += value.byteLength;
    }
    await reader.cancel();
  } catch {
    // the client went away: nothing to answer
  }
}
