import { createAdaptorServer } from '@hono/node-server';
import type { Server } from 'node:http';
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

/** Serve the app on Node: wires config + store + app into an HTTP server and nothing else. */
export async function startServer(config: Config, store: StateStore, log: Log): Promise<RunningServer> {
  const app = createApp({ store, config, log });
  const server = createAdaptorServer({ fetch: app.fetch, hostname: config.host }) as Server;
  // Bounded request handling so slow or idle clients cannot pin connections forever.
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  server.keepAliveTimeout = 65_000;
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
