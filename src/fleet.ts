import { Hono, type Context, type MiddlewareHandler } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { createApp, landingPage, type AppDeps } from './app.js';
import { createGuard } from './auth.js';
import { hostAllowed } from './host-check.js';
import { capText, escapeForLog } from './log.js';
import { everyResponseHeaders, exceptionResponse } from './response-headers.js';
import type { Log } from './source-tracker.js';
import type { StateStore } from './stores/store.js';
import { VERSION } from './version.js';

/**
 * The fleet layer: many projects (Node: state directories; Worker: synced sessions) behind one
 * HTTP surface, each with its own store, collector and cache (one `createApp` per project), in the
 * multi-target pattern of blackbox_exporter:
 *
 * - `/metrics?project=NAME` (and `/health`, `/`) is exactly project NAME's single-project output;
 *   the project becomes a label through the scrape config, never by rewriting series. `?session=`
 *   is an alias (the Worker's original name). Without either, the default project, so a plain
 *   `/metrics` serves what it always did.
 * - `/targets` lists the projects in Prometheus's `http_sd_configs` format, so Prometheus finds
 *   them by itself.
 *
 * Runtime-free: the runtime supplies a ProjectCatalog (what projects exist, and their stores).
 */

/** Project names, as session names: what a URL parameter and a Prometheus label value can carry plainly. */
export const PROJECT_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
export const DEFAULT_PROJECT = 'default';

export interface ProjectInfo {
  readonly name: string;
  /** More target labels for discovery (e.g. `session` on the Worker). */
  readonly labels?: Readonly<Record<string, string>>;
}

export interface ProjectCatalog {
  /** The projects now, in a stable order. Called by every discovery request: must be cheap or cached. */
  list(): Promise<readonly ProjectInfo[]>;
  /**
   * The store of project `name`, or undefined when there is none. The same store object for as
   * long as the project is the same; a new object when it was replaced (its app is rebuilt).
   */
  store(name: string): StateStore | undefined | Promise<StateStore | undefined>;
  /** Fleet facts for `/health` (e.g. how changes are watched). */
  health?(): Readonly<Record<string, unknown>>;
  /** Drop what is kept for a project (its store's caches): its app was dropped to free memory. */
  forget?(name: string): void;
}

export interface FleetAppDeps extends Omit<AppDeps, 'store' | 'healthExtras'> {
  readonly catalog: ProjectCatalog;
  /** The project a request without `?project=` gets; undefined: such a request is told to choose. */
  readonly defaultProject?: string;
  /** Per-isolate project apps kept, least recently used dropped first. Default 256. */
  readonly maxApps?: number;
  /**
   * What the kept apps' stores may retain in all (`StateStore.retainedBytes`): beyond it the least
   * recently used apps are dropped as a new one comes. Default: no bound but the count.
   */
  readonly maxRetainedBytes?: number;
  /**
   * With a list, only requests whose Host is `localhost`, an IP address or in the list are answered
   * (host-check.ts); undefined: any Host. The Node server sets it on a loopback address without
   * credentials.
   */
  readonly allowedHosts?: readonly string[];
}

const PROJECT_ROUTES = ['/health'] as const;

export function createFleetApp(deps: FleetAppDeps): Hono {
  const { catalog, config } = deps;
  const log: Log = deps.log ?? ((line: string) => console.error(line));
  const maxApps = deps.maxApps ?? 256;
  const apps = new Map<string, { store: StateStore; app: Hono }>();

  function projectApp(name: string, store: StateStore): Hono {
    const kept = apps.get(name);
    apps.delete(name);
    if (kept && kept.store === store) {
      apps.set(name, kept); // most recently used last
      return kept.app;
    }
    const app = createApp({
      ...deps,
      store,
      log,
      ...(catalog.health ? { healthExtras: () => catalog.health?.() ?? {} } : {}),
    });
    if (apps.size >= maxApps) apps.delete(apps.keys().next().value as string);
    if (deps.maxRetainedBytes !== undefined) {
      let retained = 0;
      for (const kept of apps.values()) retained += kept.store.retainedBytes?.() ?? 0;
      // Oldest first, until what is left fits (the new app retains nothing yet).
      for (const [oldest, kept] of apps) {
        if (retained <= deps.maxRetainedBytes) break;
        retained -= kept.store.retainedBytes?.() ?? 0;
        apps.delete(oldest);
        catalog.forget?.(oldest);
      }
    }
    apps.set(name, { store, app });
    return app;
  }

  const app = new Hono();
  app.use('*', everyResponseHeaders);
  if (deps.allowedHosts) app.use('*', hostCheck(deps.allowedHosts, log));

  // Credentials before anything that could name a project or cost a read. /health stays open
  // here when it is public: the project's own app then answers with the status only. Without
  // credentials the guard lets every request through.
  const guard = createGuard({
    ...(config.token ? { token: config.token } : {}),
    ...(deps.basicAuthUsers ? { basicUsers: deps.basicAuthUsers } : {}),
    ...(deps.clientAddress ? { clientOf: deps.clientAddress } : {}),
  });
  app.use(config.metricsPath, guard.middleware);
  app.use('/targets', guard.middleware);
  if (config.healthPublic !== true) app.use('/health', guard.middleware);

  app.get('/targets', async (c) => {
    const projects = await catalog.list();
    const host = new URL(c.req.url).host;
    c.header('Cache-Control', 'no-store');
    return c.json(
      projects.map((p) => ({
        targets: [host],
        labels: { ...p.labels, project: p.name, __param_project: p.name },
      })),
    );
  });

  // The landing page is the same for every project: answered here, it makes no project app (a
  // stray `/?session=X` must not create one, nor push a real one out, nor tell whether X exists).
  const landing = landingPage(config.metricsPath, deps.version ?? VERSION);
  app.get('/', (c) => (projectOf(c, deps.defaultProject) === undefined ? invalidName(c) : c.html(landing)));
  app.all('/', (c) => c.text('method not allowed\n', 405, { Allow: 'GET, HEAD' }));

  const credentialed = Boolean(config.token || deps.basicAuthUsers);
  const routes = new Set<string>([config.metricsPath, ...PROJECT_ROUTES]);
  app.all('*', async (c) => {
    // Only a project app's own routes reach a project: anything else is answered here, so stray
    // requests neither cost a read nor push real projects out of the cache.
    if (!routes.has(c.req.path)) return c.text(`not found: metrics are at ${config.metricsPath}\n`, 404);
    // A public /health without credentials speaks for the default project only, whatever project
    // is asked for: its answer never tells whether one exists, and it reads no other.
    const anonymous = credentialed && c.req.path === '/health' && !(await guard.authenticated(c));
    if (anonymous && deps.defaultProject === undefined) return c.json({ status: 'ok' });
    const name = anonymous ? deps.defaultProject! : projectOf(c, deps.defaultProject);
    if (name === null) return c.text(`choose a project: ${config.metricsPath}?project=NAME (the projects are listed at /targets)\n`, 404);
    if (name === undefined) return invalidName(c);
    const store = await catalog.store(name);
    if (!store) return c.text(`unknown project ${JSON.stringify(name)}: the projects are listed at /targets\n`, 404);
    return projectApp(name, store).fetch(c.req.raw);
  });

  app.onError((error, c) => {
    if (error instanceof HTTPException) return exceptionResponse(error);
    log(`loki-metrics: internal error on ${c.req.method} ${c.req.path}: ${error instanceof Error ? error.message : String(error)}`);
    return c.text('internal error\n', 500);
  });
  return app;
}

/** 400 for a name that is not one, named after the parameter the client used (the Worker's scrapers have always sent ?session=). */
function invalidName(c: Context) {
  const word = c.req.query('project') === undefined ? 'session' : 'project';
  return c.text(`invalid ${word} name: use 1-64 characters of A-Z a-z 0-9 . _ - starting with a letter or digit\n`, 400);
}

/** The project a request names (`?project=`, or `?session=`), the default, null for none, undefined when invalid. */
function projectOf(c: Context, fallback: string | undefined): string | null | undefined {
  const name = c.req.query('project') ?? c.req.query('session') ?? fallback;
  if (name === undefined) return null;
  return PROJECT_NAME.test(name) ? name : undefined;
}

/** A catalog of one store under one name (the single-directory exporter). */
export function singleProject(store: StateStore, name = DEFAULT_PROJECT): ProjectCatalog {
  const projects = [{ name }];
  return {
    list: async () => projects,
    store: (asked) => (asked === name ? store : undefined),
  };
}

/**
 * Refuses a request for a Host name a rebinding page could use (host-check.ts), before anything
 * else looks at it. The operator hears of it at most once a minute, with the name to allow if it
 * is theirs (a reverse proxy passing its own Host on).
 */
function hostCheck(allowed: readonly string[], log: Log): MiddlewareHandler {
  let lastLogged = -Infinity;
  return async (c, next) => {
    const hostname = new URL(c.req.url).hostname;
    if (hostAllowed(hostname, allowed)) return next();
    if (performance.now() - lastLogged >= 60_000) {
      lastLogged = performance.now();
      log(`loki-metrics: refused a request for Host ${escapeForLog(capText(hostname, 100))}: on a loopback address without credentials only localhost and IP addresses are answered; if the name is yours (a reverse proxy's), add it to LOKI_METRICS_ALLOWED_HOSTS or --allowed-hosts (not logged again this minute)`);
    }
    return c.text('forbidden: this Host is not answered (DNS rebinding protection; see docs/configuration.md, LOKI_METRICS_ALLOWED_HOSTS)\n', 403);
  };
}
