import * as v from 'valibot';
import { LIVENESS_MODES, type LivenessMode } from './liveness.js';

/** Settings shared by every entry point; read from `process.env` on Node, bindings in a Worker. */
export interface Config {
  /** State directory as given (the Node entry resolves it against the working directory). */
  readonly dir: string;
  /** Node, `LOKI_PROJECTS` / `serve --dir NAME=PATH`: more state directories, each its own project. */
  readonly projects: readonly NamedDir[];
  /** Node: follow Loki Mode's project registry (`LOKI_REGISTRY_FILE`) for more projects. */
  readonly projectsFromRegistry: boolean;
  /** Loki Mode's registry as given (`~` is the home directory, resolved by the Node entry). */
  readonly registryFile: string;
  /** At most this many projects (named plus registry); later registry entries are left out. */
  readonly maxProjects: number;
  readonly host: string;
  readonly port: number;
  readonly metricsPath: string;
  readonly enabled: boolean;
  readonly maxIterations: number;
  readonly budgetLimitUsd?: number;
  readonly token?: string;
  /**
   * `LOKI_METRICS_HEALTH_PUBLIC`: undefined when not set. With a token set, `/health` needs it unless
   * this is true, and then an unauthenticated probe gets only `ok`/`degraded`.
   */
  readonly healthPublic: boolean | undefined;
  /**
   * `LOKI_METRICS_WEB_CONFIG` / `serve --web.config.file`: an exporter-toolkit web config (TLS,
   * client certificates, basic auth). Node only.
   */
  readonly webConfigFile?: string;
  /**
   * `LOKI_METRICS_ALLOWED_HOSTS` / `serve --allowed-hosts`: more Host names a loopback server without
   * credentials answers (host-check.ts); `*` for any. Node only.
   */
  readonly allowedHosts: readonly string[];
  /** Worker: how many sessions may exist; ingest for one more is refused. */
  readonly maxSessions: number;
  readonly cacheTtlMs: number;
  readonly heartbeatWindowMs: number;
  /** How liveness is decided: the runner's pids, the heartbeat, or `auto` (see liveness.ts). */
  readonly liveness: LivenessMode;
  /** Write token for the Worker's ingest endpoint (and the sync client). */
  readonly syncToken?: string;
  /**
   * Worker: no sync for this long reads as a stopped session. Unset: derived from the heartbeat
   * (sync/cadence.ts).
   */
  readonly syncStaleMs?: number;
  /** Worker: the shortest time between two pushes of a change it asks sync clients for (unset: by binding). */
  readonly syncPushMs?: number;
  /** Worker: the heartbeat it asks sync clients for when nothing changes (unset: by binding). */
  readonly syncHeartbeatMs?: number;
  /**
   * `serve --demo`/`--demo-if-missing` serving the simulated session (set by the CLI, never from the
   * environment): the metrics must say so, e.g. `loki_exporter_build_info{demo="true"}`.
   */
  readonly demo?: boolean;
}

/** A project of the fleet: its name (a label value and URL parameter) and its state directory. */
export interface NamedDir {
  readonly name: string;
  readonly dir: string;
}

/** Names as session names: a URL parameter and a Prometheus label value that need no escaping. */
const PROJECT_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/**
 * `NAME=PATH`, or undefined when `spec` is a plain path (no `=`, or what precedes it is no name,
 * e.g. `/tmp/a=b`). Throws ConfigError for a name that is not one.
 */
export function parseNamedDir(spec: string): NamedDir | undefined {
  const eq = spec.indexOf('=');
  if (eq < 0) return undefined;
  const name = spec.slice(0, eq);
  if (name.includes('/') || name.startsWith('.') || name.startsWith('~')) return undefined;
  const dir = spec.slice(eq + 1).trim();
  if (!PROJECT_NAME.test(name)) throw new ConfigError(`invalid project name ${JSON.stringify(name)}: use 1-64 characters of A-Z a-z 0-9 . _ - starting with a letter or digit`);
  if (dir === '') throw new ConfigError(`project ${name} has no directory: use NAME=PATH`);
  return { name, dir };
}

/** Projects must have distinct names. Throws ConfigError naming the first repeated one. */
export function checkDistinct(projects: readonly NamedDir[]): void {
  const seen = new Set<string>();
  for (const { name } of projects) {
    if (seen.has(name)) throw new ConfigError(`project ${name} is given twice`);
    seen.add(name);
  }
}

/** Every environment variable the exporter reads, with its default, for docs and `--help`. */
export const ENV = {
  LOKI_DIR: '.loki',
  LOKI_PROJECTS: '',
  LOKI_PROJECTS_FROM_REGISTRY: 'false',
  LOKI_REGISTRY_FILE: '~/.loki/dashboard/projects.json',
  LOKI_MAX_PROJECTS: '100',
  LOKI_METRICS_HOST: '127.0.0.1',
  // Not 57374, the metrics guide's port: Loki Mode's dashboard takes it with every run, and walks
  // up from it to 57383 when it is held (docs/configuration.md, "The port").
  LOKI_METRICS_PORT: '57373',
  LOKI_METRICS_PATH: '/metrics',
  LOKI_METRICS_ENABLED: 'true',
  LOKI_MAX_ITERATIONS: '1000',
  LOKI_BUDGET_LIMIT: '',
  LOKI_METRICS_TOKEN: '',
  LOKI_METRICS_HEALTH_PUBLIC: '',
  LOKI_METRICS_WEB_CONFIG: '',
  LOKI_METRICS_ALLOWED_HOSTS: '',
  LOKI_METRICS_CACHE_SECONDS: '2',
  LOKI_HEARTBEAT_WINDOW_SECONDS: '30',
  LOKI_LIVENESS: 'auto',
  LOKI_SYNC_TOKEN: '',
  LOKI_SYNC_STALE_SECONDS: '',
  LOKI_SYNC_PUSH_SECONDS: '',
  LOKI_SYNC_HEARTBEAT_SECONDS: '',
  LOKI_MAX_SESSIONS: '100',
  LOKI_METRICS_REVISION: '',
} as const;
export type EnvName = keyof typeof ENV;

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(
    message: string,
    /** The variable the message is about, when it is about one (the CLI renames it to its flag). */
    readonly variable?: EnvName,
  ) {
    super(message);
  }
}

const text = (name: EnvName) => v.pipe(v.optional(v.string(), ENV[name]), v.trim());

const integer = (name: EnvName, min: number, max: number) =>
  v.pipe(
    text(name),
    v.regex(/^\d+$/, `must be a whole number from ${min} to ${max}`),
    v.transform(Number),
    v.minValue(min, `must be a whole number from ${min} to ${max}`),
    v.maxValue(max, `must be a whole number from ${min} to ${max}`),
  );

const seconds = (name: EnvName, max: number) =>
  v.pipe(
    text(name),
    v.regex(/^\d+(\.\d+)?$/, `must be a number of seconds from 0 to ${max}`),
    v.transform((s) => Math.round(Number(s) * 1000)),
    v.maxValue(max * 1000, `must be a number of seconds from 0 to ${max}`),
  );

/** Seconds from `min`, or undefined when empty (a default decided elsewhere). */
const optionalSeconds = (name: EnvName, min: number, max: number) =>
  v.pipe(
    text(name),
    v.regex(/^(\d+(\.\d+)?)?$/, `must be a number of seconds from ${min} to ${max}`),
    v.transform((s) => (s === '' ? undefined : Math.round(Number(s) * 1000))),
    v.check((ms) => ms === undefined || (ms >= min * 1000 && ms <= max * 1000), `must be a number of seconds from ${min} to ${max}`),
  );

const boolean = (name: EnvName) =>
  v.pipe(
    text(name),
    v.transform((s) => s.toLowerCase()),
    v.picklist(['true', 'false', '1', '0', 'yes', 'no', 'on', 'off'], 'must be true or false'),
    v.transform((s) => ['true', '1', 'yes', 'on'].includes(s)),
  );

// token68 (RFC 7235): what an `Authorization: Bearer` header can carry.
const token = (name: EnvName) =>
  v.pipe(
    text(name),
    v.regex(/^([A-Za-z0-9\-._~+/]{16,}=*)?$/, 'must be at least 16 characters of A-Z a-z 0-9 - . _ ~ + / (empty for none)'),
    v.transform((s) => (s === '' ? undefined : s)),
  );

const EnvSchema = v.object({
  LOKI_DIR: v.pipe(text('LOKI_DIR'), v.nonEmpty('must not be empty')),
  LOKI_PROJECTS: v.pipe(
    text('LOKI_PROJECTS'),
    v.check((s) => !/[\0\n\r]/.test(s), 'must be NAME=PATH entries separated by commas'),
  ),
  LOKI_PROJECTS_FROM_REGISTRY: boolean('LOKI_PROJECTS_FROM_REGISTRY'),
  LOKI_REGISTRY_FILE: v.pipe(text('LOKI_REGISTRY_FILE'), v.nonEmpty('must not be empty'), v.check((s) => !/[\0\n\r]/.test(s), 'must be a file path')),
  LOKI_MAX_PROJECTS: integer('LOKI_MAX_PROJECTS', 1, 10_000),
  LOKI_METRICS_HOST: v.pipe(text('LOKI_METRICS_HOST'), v.regex(/^[A-Za-z0-9.:\-[\]%]+$/, 'must be a host name or IP address')),
  LOKI_METRICS_PORT: integer('LOKI_METRICS_PORT', 1, 65535),
  LOKI_METRICS_PATH: v.pipe(
    text('LOKI_METRICS_PATH'),
    v.regex(/^\/[A-Za-z0-9._~\-/]*$/, 'must be an absolute URL path such as /metrics'),
    v.check((p) => p !== '/' && p !== '/health', 'must not be / or /health'),
  ),
  LOKI_METRICS_ENABLED: boolean('LOKI_METRICS_ENABLED'),
  LOKI_MAX_ITERATIONS: integer('LOKI_MAX_ITERATIONS', 1, 1_000_000_000),
  LOKI_BUDGET_LIMIT: v.pipe(
    text('LOKI_BUDGET_LIMIT'),
    v.regex(/^(\d+(\.\d+)?)?$/, 'must be an amount in USD such as 25 or 12.50 (empty for no limit)'),
    v.transform((s) => (s === '' ? undefined : Number(s))),
  ),
  LOKI_METRICS_TOKEN: token('LOKI_METRICS_TOKEN'),
  LOKI_METRICS_HEALTH_PUBLIC: v.pipe(
    text('LOKI_METRICS_HEALTH_PUBLIC'),
    v.transform((s) => s.toLowerCase()),
    v.picklist(['', 'true', 'false', '1', '0', 'yes', 'no', 'on', 'off'], 'must be true or false (empty: public only without a token)'),
    v.transform((s) => (s === '' ? undefined : ['true', '1', 'yes', 'on'].includes(s))),
  ),
  LOKI_METRICS_WEB_CONFIG: v.pipe(
    text('LOKI_METRICS_WEB_CONFIG'),
    v.check((s) => !/[\0\n\r]/.test(s), 'must be a file path'),
    v.transform((s) => (s === '' ? undefined : s)),
  ),
  LOKI_METRICS_ALLOWED_HOSTS: v.pipe(
    text('LOKI_METRICS_ALLOWED_HOSTS'),
    v.transform((s) => s.split(',').map((name) => name.trim()).filter((name) => name !== '')),
    v.check((names) => names.every((name) => name === '*' || /^[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*\.?$/.test(name)), 'must be host names separated by commas, or *'),
  ),
  LOKI_METRICS_CACHE_SECONDS: seconds('LOKI_METRICS_CACHE_SECONDS', 3600),
  LOKI_HEARTBEAT_WINDOW_SECONDS: seconds('LOKI_HEARTBEAT_WINDOW_SECONDS', 86400),
  LOKI_LIVENESS: v.pipe(
    text('LOKI_LIVENESS'),
    v.transform((s) => s.toLowerCase()),
    v.picklist(LIVENESS_MODES, `must be one of ${LIVENESS_MODES.join(', ')}`),
  ),
  LOKI_SYNC_TOKEN: token('LOKI_SYNC_TOKEN'),
  LOKI_SYNC_STALE_SECONDS: optionalSeconds('LOKI_SYNC_STALE_SECONDS', 0, 86400),
  LOKI_SYNC_PUSH_SECONDS: optionalSeconds('LOKI_SYNC_PUSH_SECONDS', 1, 86400),
  LOKI_SYNC_HEARTBEAT_SECONDS: optionalSeconds('LOKI_SYNC_HEARTBEAT_SECONDS', 1, 86400),
  LOKI_MAX_SESSIONS: integer('LOKI_MAX_SESSIONS', 1, 100_000),
});

/**
 * Parse settings from environment-style strings; `overrides` (command-line flags) win over `env`.
 * Throws ConfigError with one line naming the variable and what is wrong.
 */
export function parseConfig(
  env: Readonly<Record<string, string | undefined>>,
  overrides: Partial<Record<EnvName, string | undefined>> = {},
): Config {
  const input: Record<string, string> = {};
  for (const name of Object.keys(ENV) as EnvName[]) {
    const value = overrides[name] ?? env[name];
    if (typeof value === 'string') input[name] = value;
  }
  const result = v.safeParse(EnvSchema, input);
  if (!result.success) {
    // EnvSchema is a plain object of the ENV entries, so the first issue's path starts at the entry
    // that failed; and every default passes its own check, so that entry was given.
    const [issue] = result.issues;
    const name = issue.path![0]!.key as EnvName;
    const given = name.endsWith('_TOKEN') ? '' : ` ${JSON.stringify(input[name])}`;
    throw new ConfigError(`invalid ${name}${given}: ${issue.message}`, name);
  }
  const e = result.output;
  const projects = projectList(e.LOKI_PROJECTS);
  return {
    dir: e.LOKI_DIR,
    projects,
    projectsFromRegistry: e.LOKI_PROJECTS_FROM_REGISTRY,
    registryFile: e.LOKI_REGISTRY_FILE,
    maxProjects: e.LOKI_MAX_PROJECTS,
    host: e.LOKI_METRICS_HOST,
    port: e.LOKI_METRICS_PORT,
    metricsPath: e.LOKI_METRICS_PATH,
    enabled: e.LOKI_METRICS_ENABLED,
    maxIterations: e.LOKI_MAX_ITERATIONS,
    ...(e.LOKI_BUDGET_LIMIT !== undefined ? { budgetLimitUsd: e.LOKI_BUDGET_LIMIT } : {}),
    ...(e.LOKI_METRICS_TOKEN !== undefined ? { token: e.LOKI_METRICS_TOKEN } : {}),
    healthPublic: e.LOKI_METRICS_HEALTH_PUBLIC,
    ...(e.LOKI_METRICS_WEB_CONFIG !== undefined ? { webConfigFile: e.LOKI_METRICS_WEB_CONFIG } : {}),
    allowedHosts: e.LOKI_METRICS_ALLOWED_HOSTS,
    cacheTtlMs: e.LOKI_METRICS_CACHE_SECONDS,
    heartbeatWindowMs: e.LOKI_HEARTBEAT_WINDOW_SECONDS,
    liveness: e.LOKI_LIVENESS,
    ...(e.LOKI_SYNC_TOKEN !== undefined ? { syncToken: e.LOKI_SYNC_TOKEN } : {}),
    ...(e.LOKI_SYNC_STALE_SECONDS !== undefined ? { syncStaleMs: e.LOKI_SYNC_STALE_SECONDS } : {}),
    ...(e.LOKI_SYNC_PUSH_SECONDS !== undefined ? { syncPushMs: e.LOKI_SYNC_PUSH_SECONDS } : {}),
    ...(e.LOKI_SYNC_HEARTBEAT_SECONDS !== undefined ? { syncHeartbeatMs: e.LOKI_SYNC_HEARTBEAT_SECONDS } : {}),
    maxSessions: e.LOKI_MAX_SESSIONS,
  };
}

/** `LOKI_PROJECTS`: `NAME=PATH` entries separated by commas (a path with a comma needs `--dir`). */
function projectList(text: string): NamedDir[] {
  const projects: NamedDir[] = [];
  for (const entry of text.split(',').map((e) => e.trim()).filter((e) => e !== '')) {
    let named: NamedDir | undefined;
    try {
      named = parseNamedDir(entry);
    } catch (error) {
      throw new ConfigError(`invalid LOKI_PROJECTS: ${(error as Error).message}`, 'LOKI_PROJECTS');
    }
    if (!named) throw new ConfigError('invalid LOKI_PROJECTS: each entry must be NAME=PATH', 'LOKI_PROJECTS');
    projects.push(named);
  }
  try {
    checkDistinct(projects);
  } catch (error) {
    throw new ConfigError(`invalid LOKI_PROJECTS: ${(error as Error).message}`, 'LOKI_PROJECTS');
  }
  return projects;
}
