/**
 * Test entry for workerd: the real Worker, with its storage bindings wrapped to count every call,
 * so tests can assert storage operations per scrape against real R2/KV (Miniflare).
 * `/__ops` returns the counts, `/__ops/reset` zeroes them.
 */
import worker, { type Env } from '../../src/worker/index.js';

const counts: Record<string, Record<string, number>> = {};

function counted<T extends object>(binding: T, name: string): T {
  return new Proxy(binding, {
    get(target, property) {
      const value = Reflect.get(target, property) as unknown;
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        const forBinding = (counts[name] ??= {});
        forBinding[String(property)] = (forBinding[String(property)] ?? 0) + 1;
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
}

let wrapped: { env: Env; counted: Env } | undefined;

export default {
  fetch(request: Request, env: Env): Response | Promise<Response> {
    const path = new URL(request.url).pathname;
    if (path === '/__ops') return Response.json(counts);
    if (path === '/__ops/reset') {
      for (const key of Object.keys(counts)) delete counts[key];
      return new Response('ok');
    }
    if (wrapped?.env !== env) {
      wrapped = {
        env,
        counted: {
          ...env,
          ...(env.LOKI_STATE_BUCKET ? { LOKI_STATE_BUCKET: counted(env.LOKI_STATE_BUCKET, 'r2') } : {}),
          ...(env.LOKI_STATE_KV ? { LOKI_STATE_KV: counted(env.LOKI_STATE_KV, 'kv') } : {}),
        },
      };
    }
    return worker.fetch(request, wrapped.counted);
  },
};
