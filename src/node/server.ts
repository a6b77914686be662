import { getRequestListener, RequestError, type HttpBindings } from '@hono/node-server';
import type { Context } from 'hono';
import { createServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import { createServer as createTlsServer, type Server as TlsHttpServer } from 'node:https';
import type { TLSSocket } from 'node:tls';
import { createFleetApp, DEFAULT_PROJECT, singleProject, type ProjectCatalog } from '../fleet.js';
import { ConfigError, ENV, type Config } from '../config.js';
import { hostAllowList } from '../host-check.js';
import { capText, escapeForLog } from '../log.js';
import { WebConfigError } from '../schemas/web-config.js';
import type { Log } from '../source-tracker.js';
import type { StateStore } from '../stores/store.js';
import { EVERY_RESPONSE } from '../response-headers.js';
import { nodeBuildInfo } from './build-info.js';
import { portInUseMessage, whoHolds } from './port-holder.js';
import { createProcessMetrics, SERVER_READING_REUSE_MS } from './process-metrics.js';
import { clientCertificateProblem, loadWebConfig, WebConfigReloader, type LoadedTls, type LoadedWebConfig } from './web-config.js';

export interface RunningServer {
  /** Where `/metrics` is served, e.g. `http://127.0.0.1:57373/metrics`. */
  readonly url: string;
  readonly port: number;
  /** Whether the web config asks for credentials: basic-auth users or a verified client certificate. */
  readonly authenticates: boolean;
  /** The Node server itself: its applied timeouts and bounds, for embedding and tests. */
  readonly node: HttpServer;
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
  /** A TLS connection must finish its handshake within this long. Default 10 s (Node's: 120 s). */
  readonly handshakeTimeoutMs?: number;
  /**
   * Connections open at once; beyond it a new one is closed at once. Default 200: well under a
   * 256-descriptor limit, so sockets held open by strangers cannot take every descriptor.
   */
  readonly maxConnections?: number;
}

export const DEFAULT_SERVER_LIMITS: Required<ServerLimits> = {
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 65_000,
  checkIntervalMs: 1_000,
  handshakeTimeoutMs: 10_000,
  maxConnections: 200,
};

export interface ServerDeps {
  readonly limits?: ServerLimits;
  /** How often a request (rather than a new connection) re-checks the web config's files. Default 1 s. */
  readonly webConfigCheckMs?: number;
  /** How long a changed web config must stay unchanged before it applies. Default 1 s. */
  readonly webConfigSettleMs?: number;
  /**
   * Monotonic milliseconds (default `performance.now`): when a re-check interval, the settle time
   * and the once-a-minute bound on repeated warnings have passed. Tests pass a clock they move.
   */
  readonly clock?: () => number;
}

/**
 * Serve one state directory on Node (the project `default`, which a plain `/metrics` gets): the
 * fleet server over a catalog of one.
 */
export function startServer(config: Config, store: StateStore, log: Log, deps: ServerDeps = {}): Promise<RunningServer> {
  return startFleetServer(config, singleProject(store), log, { ...deps, defaultProject: DEFAULT_PROJECT });
}

/**
 * Serve a fleet of projects on Node: wires config + catalog + the fleet app into an HTTP or HTTPS
 * server and nothing else. With a web config (`config.webConfigFile`) the server speaks TLS when it
 * says so, checks client certificates and basic auth, and follows changes to the config and its
 * certificate files.
 */
export async function startFleetServer(
  config: Config,
  catalog: ProjectCatalog,
  log: Log,
  deps: ServerDeps & { readonly defaultProject?: string } = {},
): Promise<RunningServer> {
  const limits = { ...DEFAULT_SERVER_LIMITS, ...deps.limits };
  // A flood of wrong passwords is refused unchecked beyond a bound (BasicAuthUsers); the operator
  // hears of it at most once a minute, so the flood cannot flood the log too.
  const clock = deps.clock ?? (() => performance.now());
  let lastBusy = -Infinity;
  const onBusy = (client: string) => {
    if (clock() - lastBusy < 60_000) return;
    lastBusy = clock();
    log(`loki-metrics: too many password checks waiting (from ${escapeForLog(client || 'unknown')}): refusing further wrong credentials unchecked (not logged again this minute)`);
  };
  const web = config.webConfigFile !== undefined ? loadAtStartup(config.webConfigFile, onBusy) : undefined;
  let reloader: WebConfigReloader | undefined;
  const asksForCredentials = Boolean(config.token) || web?.users !== undefined || web?.tls?.rejectUnauthorized === true;
  const allowedHosts = hostAllowList(config.host, asksForCredentials, config.allowedHosts);
  const app = createFleetApp({
    catalog,
    config,
    log,
    ...(deps.defaultProject !== undefined ? { defaultProject: deps.defaultProject } : {}),
    processMetrics: createProcessMetrics({ reuseMs: SERVER_READING_REUSE_MS }),
    build: nodeBuildInfo(process.env),
    ...(allowedHosts ? { allowedHosts } : {}),
    ...(web ? { basicAuthUsers: () => reloader?.current.users, clientAddress: (c: Context<{ Bindings: HttpBindings }>) => c.env?.incoming?.socket?.remoteAddress } : {}),
  });
  const listener = getRequestListener(app.fetch, {
    hostname: config.host,
    // A request the adapter cannot turn into a Request (a request-target such as `*`, a malformed
    // Host) never reaches the app: answer it here, with the headers every response carries.
    errorHandler: (error) =>
      new Response(error instanceof RequestError ? 'bad request\n' : 'internal error\n', {
        status: error instanceof RequestError ? 400 : 500,
        headers: { 'Content-Type': 'text/plain; charset=utf-8', ...EVERY_RESPONSE },
      }),
  });
  let lastCheck = 0;
  const checkEveryMs = deps.webConfigCheckMs ?? 1_000;
  const handler = !web
    ? listener
    : (req: IncomingMessage, res: ServerResponse) => {
        // Kept-alive connections see a changed config (basic-auth users, headers) within a second.
        if (clock() - lastCheck >= checkEveryMs) {
          lastCheck = clock();
          reloader?.check();
        }
        for (const [name, value] of Object.entries(reloader?.current.config.headers ?? {})) res.setHeader(name, value);
        return listener(req, res);
      };
  const serverOptions = { connectionsCheckingInterval: limits.checkIntervalMs };
  const server = web?.tls
    ? createTlsServer(
        { ...serverOptions, ...web.tls.contextOptions, requestCert: web.tls.requestCert, rejectUnauthorized: web.tls.rejectUnauthorized, handshakeTimeout: limits.handshakeTimeoutMs },
        handler,
      )
    : createServer(serverOptions, handler);
  if (web && config.webConfigFile !== undefined) {
    reloader = new WebConfigReloader(config.webConfigFile, web, (next) => next.tls && applyTls(server as TlsHttpServer, next.tls), log, {
      onBusy,
      clock,
      ...(deps.webConfigSettleMs !== undefined ? { settleMs: deps.webConfigSettleMs } : {}),
    });
    // Before the TLS layer takes the connection: the handshake after a rotation uses the new files.
    server.prependListener('connection', () => reloader?.check());
    if (web.tls) {
      // A refused client learns nothing but a closed connection; the operator gets the reason,
      // at most once a minute, so a scanner cannot flood the log.
      let lastRefusal = -Infinity;
      const refused = (why: string) => {
        if (clock() - lastRefusal < 60_000) return;
        lastRefusal = clock();
        log(`loki-metrics: refused a TLS client: ${capText(escapeForLog(why), 160)} (further refusals this minute are not logged)`);
      };
      server.prependListener('secureConnection', (socket: TLSSocket) => {
        const tls = reloader?.current.tls;
        const problem = tls && clientCertificateProblem(socket, tls);
        if (!problem) return;
        refused(problem);
        socket.destroy();
      });
      server.on('tlsClientError', (error: Error) => refused(error.message));
    }
  }
  // Bounded request handling so slow or idle clients cannot pin connections forever.
  server.headersTimeout = limits.headersTimeoutMs;
  server.requestTimeout = Math.max(limits.requestTimeoutMs, limits.headersTimeoutMs);
  server.keepAliveTimeout = limits.keepAliveTimeoutMs;
  server.maxHeadersCount = 100;
  server.maxConnections = limits.maxConnections;

  await new Promise<void>((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException) => {
      server.off('listening', onListening);
      if (error.code !== 'EADDRINUSE') {
        reject(new Error(`cannot listen on ${config.host}:${config.port}: ${error.message}`));
        return;
      }
      // Name who holds it (Loki Mode's dashboard, usually) and the one thing to do.
      void whoHolds(config.host, config.port).then((holder) =>
        reject(new Error(portInUseMessage(config.host, config.port, holder, Number(ENV.LOKI_METRICS_PORT)))),
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
    url: `${web?.tls ? 'https' : 'http'}://${host}:${port}${config.metricsPath}`,
    port,
    authenticates: web !== undefined && (web.users !== undefined || web.tls?.rejectUnauthorized === true),
    node: server,
    close: () =>
      new Promise<void>((resolve) => {
        reloader?.stop();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function loadAtStartup(path: string, onBusy: (client: string) => void): LoadedWebConfig {
  try {
    return loadWebConfig(path, undefined, onBusy);
  } catch (error) {
    if (error instanceof WebConfigError) throw new ConfigError(`web config ${path}: ${error.message}`, 'LOKI_METRICS_WEB_CONFIG');
    throw error;
  }
}

/**
 * New certificates, key, CA and versions for the next handshakes. Whether a client certificate is
 * asked for is a server property that `setSecureContext` does not touch; Node reads it for every
 * new connection, so it is set here too (tested: a reload can turn client certificates on).
 */
function applyTls(server: TlsHttpServer, tls: LoadedTls): void {
  server.setSecureContext(tls.contextOptions);
  const settable = server as unknown as { requestCert: boolean; rejectUnauthorized: boolean };
  settable.requestCert = tls.requestCert;
  settable.rejectUnauthorized = tls.rejectUnauthorized;
}
