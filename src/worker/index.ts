/**
 * Cloudflare Worker entry: wires bindings + config + the remote app, nothing else. R2 is preferred
 * when both bindings exist (strongly consistent, conditional reads); KV otherwise.
 */
import type { Hono } from 'hono';
import { parseConfig } from '../config.js';
import { createRemoteApp } from '../remote-app.js';
import { KvObjectStore, type KvNamespaceLike } from '../stores/kv.js';
import type { ObjectStore } from '../stores/object-store.js';
import { R2ObjectStore, type R2BucketLike } from '../stores/r2.js';
import { warmUp } from './warm-up.js';

export interface Env {
  readonly LOKI_STATE_BUCKET?: R2BucketLike;
  readonly LOKI_STATE_KV?: KvNamespaceLike;
  readonly [variable: string]: unknown;
}

let built: { env: Env; app: Hono } | undefined;

/**
 * The env's variables as the strings parseConfig reads. wrangler.toml's `[vars]` may give a number
 * or a boolean (`LOKI_MAX_SESSIONS = 5`): that is the user's setting, not an absent one. Bindings
 * and JSON objects are no setting.
 */
function variables(env: Env): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) {
    if (typeof value === 'string') out[name] = value;
    else if (typeof value === 'number' || typeof value === 'boolean') out[name] = String(value);
  }
  return out;
}

function appFor(env: Env): Hono {
  // One app per isolate (per env object): it holds the collectors' memory and the 2 s cache.
  if (built?.env !== env) {
    const strings = variables(env);
    const config = parseConfig(strings);
    const bucket: ObjectStore | undefined = env.LOKI_STATE_BUCKET
      ? new R2ObjectStore(env.LOKI_STATE_BUCKET)
      : env.LOKI_STATE_KV
        ? new KvObjectStore(env.LOKI_STATE_KV)
        : undefined;
    // The commit deployed: `wrangler deploy --var LOKI_METRICS_REVISION:$(git rev-parse HEAD)`.
    const revision = strings.LOKI_METRICS_REVISION?.trim() || 'unknown';
    built = { env, app: createRemoteApp({ bucket, config, build: { revision } }) };
  }
  return built.app;
}

// The code a first request runs is compiled while the isolate starts, not during that request.
const warming = warmUp();

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    await warming;
    try {
      return await appFor(env).fetch(request);
    } catch (error) {
      // A bad variable (e.g. LOKI_MAX_ITERATIONS) is a deployment error: say which, in one line.
      return new Response(`loki-metrics: ${error instanceof Error ? error.message : 'configuration error'}\n`, { status: 500 });
    }
  },
};
