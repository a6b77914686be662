import { getRequestListener, RequestError } from '@hono/node-server';
import { createServer } from 'node:http';
import { createApp } from '../app.js';
import type { Config } from '../config.js';
import type { Log } from '../source-tracker.js';
import type { StateStore } from '../stores/store.js';

export interface RunningServer {
  /** Where `/metrics` is served, e.g. `http://127.0.0.1:57374/metrics`. */
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

/**
 * Bounds on slow or idle clients. The defaults are the production values; tests pass small ones.
 * Node enforces `headersTimeout`/`requestTimeout` on a sweep every `checkIntervalMs`, so a client
 * trickling its headers is cut off within `headersTimeoutMs + checkIntervalMs`.
 */
export interface ServerLimits {
  /** The whole request head must arrive within this long. Default 10 s. */
  readonly headersTimeoutMs?: number;
  /** The whole request (head and body) must arrive within this long. Default 30 s. */
  readonly requestTimeoutMs?: number;
  /** An idle keep-alive connection is closed after this long. Default 65 s. */
  readonly keepAliveTimeoutMs?: number;
  /** How often Node checks the two request timeouts. Default 1 s (Node's own default is 30 s). */
  readonly checkIntervalMs?: number;
}

export const DEFAULT_SERVER_LIMITS: Required<ServerLimits> = {
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 65_000,
  checkIntervalMs: 1_000,
};

export interface ServerDeps {
  readonly limits?: ServerLimits;
}

/** Serve the app on Node: wires config + store + app into an HTTP server and nothing else. */
export async function startServer(config: Config, store: StateStore, log: Log, deps: ServerDeps = {}): Promise<RunningServer> {
  const limits = { ...DEFAULT_SERVER_LIMITS, ...deps.limits };
  const app = createApp({ store, config, log });
  const listener = getRequestListener(app.fetch, {
    hostname: config.host,
    // A request the adapter cannot turn into a Request (a request-target such as `*`, a malformed
    // Host) never reaches the app: answer it here, with the headers every response carries.
    errorHandler: (error) =>
      new Response(error instanceof RequestError ? 'bad request\n' : 'internal error\n', {
        status: error instanceof RequestError ? 400 : 500,
        headers: { 'Content-Type': 'text/plain; charset=utf-8', 'X-Content-Type-Options': 'nosniff' },
      }),
  });
  const server = createServer({ connectionsCheckingInterval: limits.checkIntervalMs }, listener);
  // Bounded request handling so slow or idle clients cannot pin connections forever.
  server.headersTimeout = limits.headersTimeoutMs;
  server.requestTimeout = Math.max(limits.requestTimeoutMs, limits.headersTimeoutMs);
  server.keepAliveTimeout = limits.keepAliveTimeoutMs;
  server.maxHeadersCount = 100;

  await new Promise<void>((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException) => {
      server.off('listening', onListening);
      reject(
        new Error(
          error.code === 'EADDRINUSE'
            ? `port ${config.port} on ${config.host} is already in use (set LOKI_METRICS_PORT or --port)`
            : `cannot listen on ${config.host}:${config.port}: ${error.message}`,
        ),
      );
    };
    const onListening = () => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(config.port, config.host);
  });

  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  return {
    url: `http://${host}:${port}${config.metricsPath}`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
