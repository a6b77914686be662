#!/usr/bin/env node
/**
 * `loki-metrics` — the Node command line: `serve`, `scrape`, `check`. It parses flags, wires
 * config + store + app, and prints; the work itself lives in the runtime-free modules.
 */
import { existsSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { resolve } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ANSI_PAINT, formatCheck, formatFleetTable, formatScrapeTable, NO_PAINT, parseExposition, type Paint } from '../cli/report.js';
import { createCollector } from '../collect.js';
import { checkDistinct, ConfigError, ENV, parseConfig, parseNamedDir, type Config, type EnvName, type NamedDir } from '../config.js';
import { DEFAULT_PROJECT, PROJECT_NAME } from '../fleet.js';
import { FsStateStore } from '../stores/fs.js';
import { VERSION } from '../version.js';
import { startDemo } from './demo.js';
import { NodeProjectCatalog } from './projects.js';
import { startFleetServer, startServer } from './server.js';
import { parseInterval, runSync } from './sync.js';
import { DEFAULT_SESSION, SESSION_NAME } from '../sync/protocol.js';
import { sessionSyncToken } from '../sync/tokens.js';

const envList = (names: readonly EnvName[] = Object.keys(ENV) as EnvName[]) =>
  names.map((name) => `  ${name.padEnd(30)} default: ${ENV[name] === '' ? '(none)' : ENV[name]}`).join('\n');

const USAGE: Record<string, string> = {
  main: `Usage: loki-metrics <command> [options]

Prometheus/OpenMetrics exporter for Loki Mode's .loki state directory.

Commands:
  serve    Serve /metrics, /health and / for a .loki directory
  scrape   Fetch a running exporter and print its metrics
  check    Validate a .loki directory offline and print each source's verdict
  sync     Push a .loki directory's state to a remote exporter (the Cloudflare Worker)
  token    Print a session's write token (derived from LOKI_SYNC_TOKEN)
  help     Show help for a command: loki-metrics help <command>
  version  Print the version

Options:
  -h, --help         Show help (also: loki-metrics <command> --help)
  -V, -v, --version  Print the version

Environment (flags win over environment):
${envList()}
`,
  serve: `Usage: loki-metrics serve [--dir DIR] [--host HOST] [--port PORT] [--path PATH] [--web.config.file FILE]
                          [--demo | --demo-if-missing]
       loki-metrics serve --dir NAME=DIR [--dir NAME=DIR ...] [--projects-from-registry] [--dir DIR] ...

Serve metrics for a .loki directory, or for many projects (read-only) until SIGINT/SIGTERM.

  --dir DIR           State directory (LOKI_DIR, default ./.loki); with projects, the one a plain
                      /metrics serves (project "default")
  --dir NAME=DIR      One more project, served at /metrics?project=NAME (repeatable; LOKI_PROJECTS)
  --projects-from-registry
                      Also serve every project in Loki Mode's registry, following its changes
                      (LOKI_PROJECTS_FROM_REGISTRY)
  --registry-file FILE
                      The registry (LOKI_REGISTRY_FILE, default ~/.loki/dashboard/projects.json)
  --host HOST         Address to bind (LOKI_METRICS_HOST, default 127.0.0.1)
  --port PORT         Port (LOKI_METRICS_PORT, default 57374)
  --path PATH         Metrics path (LOKI_METRICS_PATH, default /metrics)
  --web.config.file FILE
                      Prometheus exporter-toolkit web config: TLS, client certificates, basic
                      auth (LOKI_METRICS_WEB_CONFIG); re-read when it or its files change
  --demo              Serve a simulated, changing session from a temporary directory
                      (not with --dir)
  --demo-if-missing   Serve the demo when no directory was given (no --dir, no LOKI_DIR) and
                      ./.loki does not exist; a given directory that is missing is never replaced
                      by the demo (loki_up is 0 until it appears)

Prometheus finds the projects at /targets (http_sd_configs).

Environment (flags win over environment):
${envList()}
`,
  scrape: `Usage: loki-metrics scrape [--url URL | --host HOST[:PORT] [--port PORT] [--path PATH]] [--token TOKEN]
                           [--project NAME | --all] [--raw | --json]

Fetch a running exporter and print its metrics as a table.

  --url URL       The exporter's metrics URL, http or https, with any query, e.g.
                  https://loki-metrics.example.workers.dev/metrics?session=NAME
                  (a URL without a path gets LOKI_METRICS_PATH, default /metrics)
  --host HOST     Exporter host, optionally HOST:PORT (LOKI_METRICS_HOST, default 127.0.0.1)
  --port PORT     Exporter port (LOKI_METRICS_PORT, default 57374)
  --path PATH     Metrics path (LOKI_METRICS_PATH, default /metrics)
  --token TOKEN   Bearer token (LOKI_METRICS_TOKEN)
  --project NAME  One project of an exporter serving several (adds ?project=NAME)
  --all           Every project the exporter lists at /targets, one row each
  --raw           Print the exposition text as served (for grep)
  --json          Print the samples as JSON
`,
  sync: `Usage: loki-metrics sync --url URL [--session NAME] [--dir DIR] [--interval 2s] [--once] [--allow-http]

Watch a .loki directory and send what changed to a remote exporter (the Worker). The write token
comes from LOKI_SYNC_TOKEN. Runs until SIGINT/SIGTERM; retries with backoff when the remote fails.

  --url URL          The Worker, e.g. https://loki-metrics.example.workers.dev or http://127.0.0.1:8787
  --session NAME     Session name (default "default"); scrape it with /metrics?session=NAME
  --dir DIR          State directory (LOKI_DIR, default ./.loki)
  --interval TIME    Time between cycles: 2s (default), 500ms, 1m
  --once             One cycle, print what was sent, then exit (0 on success, 1 on failure)
  --allow-http       Allow plain http:// to a host other than this machine (the token travels unencrypted)

Exit status: 0 success (or stopped by SIGINT/SIGTERM), 1 sync failed, 2 bad flags or settings, or
the state directory does not exist.
`,
  token: `Usage: loki-metrics token [--session NAME]

Print the write token of one session, derived from the sync secret in LOKI_SYNC_TOKEN. Give it to
that project's \`loki-metrics sync\` as its LOKI_SYNC_TOKEN: it can write that session only.

  --session NAME     Session name (default "default")
`,
  check: `Usage: loki-metrics check [--dir DIR]

Validate a .loki directory offline: every source's verdict, exit 1 if any is bad.

  --dir DIR   State directory (LOKI_DIR, default ./.loki)
`,
};

type Io = {
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
  readonly env: NodeJS.ProcessEnv;
  readonly paint: Paint;
};

class UsageError extends Error {}

const commonFlags = {
  help: { type: 'boolean', short: 'h' },
} as const satisfies ParseArgsConfig['options'];

function parse<T extends NonNullable<ParseArgsConfig['options']>>(args: string[], options: T) {
  try {
    return parseArgs({ args, options: { ...commonFlags, ...options }, strict: true, allowPositionals: false });
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
}

/** Flags by the variable they set, with their values: errors about a given flag name the flag. */
type FlagValues = Partial<Record<EnvName, readonly [flag: string, value: string | undefined]>>;

function configFrom(io: Io, flags: FlagValues): Config {
  const overrides: Partial<Record<EnvName, string | undefined>> = {};
  for (const [name, [, value]] of Object.entries(flags) as [EnvName, readonly [string, string | undefined]][]) overrides[name] = value;
  try {
    return parseConfig(io.env, overrides);
  } catch (error) {
    const flag = error instanceof ConfigError && error.variable ? flags[error.variable] : undefined;
    if (error instanceof ConfigError && flag && flag[1] !== undefined) {
      throw new ConfigError(error.message.replace(`invalid ${error.variable}`, `invalid ${flag[0]}`), error.variable);
    }
    throw error;
  }
}

/** Why `dir` cannot be read as a state directory, or undefined when it is a directory. */
function dirProblem(dir: string): string | undefined {
  try {
    return statSync(dir).isDirectory() ? undefined : `${dir} is not a directory`;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return code === 'ENOENT' || code === 'ENOTDIR' ? `no state directory at ${dir}` : `cannot read ${dir} (${code ?? 'error'})`;
  }
}

const isLoopback = (host: string) => /^127\.\d+\.\d+\.\d+$/.test(host) || ['localhost', '::1', '[::1]'].includes(host.toLowerCase());

async function serve(args: string[], io: Io): Promise<number> {
  const { values } = parse(args, {
    dir: { type: 'string', multiple: true },
    host: { type: 'string' },
    port: { type: 'string' },
    path: { type: 'string' },
    demo: { type: 'boolean' },
    'demo-if-missing': { type: 'boolean' },
    'web.config.file': { type: 'string' },
    'projects-from-registry': { type: 'boolean' },
    'registry-file': { type: 'string' },
  });
  if (values.help) return io.out(USAGE.serve as string), 0;
  const dirs = values.dir ?? [];
  if (values.demo && dirs.length > 0) throw new UsageError('--demo and --dir cannot be combined: the demo serves its own temporary directory');
  const named = dirs.map((spec) => parseNamedDir(spec)).filter((d): d is NamedDir => d !== undefined);
  const plain = dirs.filter((spec) => parseNamedDir(spec) === undefined);
  if (plain.length > 1) throw new UsageError('--dir PATH can be given once; name the others: --dir NAME=PATH');
  const config = configFrom(io, {
    LOKI_DIR: ['--dir', plain[0]],
    LOKI_PROJECTS_FROM_REGISTRY: ['--projects-from-registry', values['projects-from-registry'] ? 'true' : undefined],
    LOKI_REGISTRY_FILE: ['--registry-file', values['registry-file']],
    LOKI_METRICS_HOST: ['--host', values.host],
    LOKI_METRICS_PORT: ['--port', values.port],
    LOKI_METRICS_PATH: ['--path', values.path],
    LOKI_METRICS_WEB_CONFIG: ['--web.config.file', values['web.config.file']],
  });
  // Listen for SIGINT/SIGTERM before anything is started: a signal during startup still cleans up
  // (the demo's temporary directory) instead of killing the process.
  const stopped = new Promise<void>((done) => {
    const stop = () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      done();
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  if (named.length > 0 || config.projects.length > 0 || config.projectsFromRegistry) {
    if (values.demo || values['demo-if-missing']) throw new UsageError('the demo serves one project: not with --dir NAME=PATH, LOKI_PROJECTS or the registry');
    const dirGiven = plain.length > 0 || io.env.LOKI_DIR !== undefined;
    return serveFleet({ ...config, projects: [...config.projects, ...named] }, dirGiven, io, stopped);
  }
  let dir = resolve(config.dir);
  // Only the implicit default may be replaced by the demo: a given directory that is missing is a
  // mistake to report, never a reason to serve simulated numbers a Prometheus would record as real.
  const dirGiven = dirs.length > 0 || io.env.LOKI_DIR !== undefined;
  let demo: Awaited<ReturnType<typeof startDemo>> | undefined;
  if (values.demo || (values['demo-if-missing'] && !dirGiven && !existsSync(dir))) {
    if (!values.demo) io.err(`loki-metrics: no state directory at ${dir}; serving a simulated demo session instead.\n`);
    io.err('loki-metrics: demo: the metrics are simulated, not a real Loki Mode session; run Loki Mode here, or pass --dir /path/to/.loki, to watch a real one.\n');
    demo = await startDemo();
    dir = demo.dir;
  } else {
    const problem = dirProblem(dir);
    if (problem) io.err(`loki-metrics: warning: ${problem}; serving loki_up 0 until it appears (see /health)\n`);
  }
  const store = new FsStateStore(dir);
  const log = (line: string) => io.err(`${line}\n`);
  let server: Awaited<ReturnType<typeof startServer>>;
  try {
    server = await startServer({ ...config, dir, ...(demo ? { demo: true } : {}) }, store, log);
  } catch (error) {
    await store.close();
    await demo?.stop(); // never leave the demo's temporary directory behind
    throw error;
  }
  warnIfOpen(config, server, io);
  const where = config.enabled ? server.url : `${new URL(server.url).origin}/health (metrics disabled by LOKI_METRICS_ENABLED=false)`;
  io.out(`loki-metrics ${VERSION} serving ${demo ? 'a demo session (simulated data)' : dir} at ${where}\n`);

  await stopped;
  await server.close();
  await store.close();
  await demo?.stop();
  io.err('loki-metrics: stopped\n');
  return 0;
}

function warnIfOpen(config: Config, server: { readonly authenticates: boolean }, io: Io): void {
  if (!config.token && !server.authenticates && !isLoopback(config.host)) {
    io.err(`loki-metrics: warning: listening on ${config.host} without LOKI_METRICS_TOKEN or a web config with basic_auth_users or verified client certificates: anyone who can reach it can read the metrics\n`);
  }
}

/** `serve` for several projects: named directories, the registry's, and the plain one as `default`. */
async function serveFleet(config: Config, dirGiven: boolean, io: Io, stopped: Promise<void>): Promise<number> {
  const defaultDir = dirGiven ? resolve(config.dir) : undefined;
  const named = config.projects.map((p) => ({ name: p.name, dir: resolve(p.dir) }));
  checkDistinct([...(defaultDir !== undefined ? [{ name: DEFAULT_PROJECT, dir: defaultDir }] : []), ...named]);
  for (const { name, dir } of [...(defaultDir !== undefined ? [{ name: DEFAULT_PROJECT, dir: defaultDir }] : []), ...named]) {
    const problem = dirProblem(dir);
    if (problem) io.err(`loki-metrics: warning: project ${name}: ${problem}; serving loki_up 0 until it appears (see /health?project=${name})\n`);
  }
  const registryFile = config.projectsFromRegistry ? resolve(config.registryFile.replace(/^~(?=$|\/)/, homedir())) : undefined;
  const log = (line: string) => io.err(`${line}\n`);
  const catalog = new NodeProjectCatalog({
    ...(defaultDir !== undefined ? { defaultDir } : {}),
    named,
    ...(registryFile !== undefined ? { registryFile } : {}),
    maxProjects: config.maxProjects,
    log,
  });
  let server: Awaited<ReturnType<typeof startFleetServer>>;
  try {
    server = await startFleetServer(config, catalog, log, catalog.defaultProject !== undefined ? { defaultProject: catalog.defaultProject } : {});
  } catch (error) {
    catalog.close();
    throw error;
  }
  warnIfOpen(config, server, io);
  const origin = new URL(server.url).origin;
  const names = catalog.projects().map((p) => p.name);
  const shown = names.length > 8 ? `${names.slice(0, 8).join(', ')}, ...` : names.join(', ');
  io.out(
    `loki-metrics ${VERSION} serving ${names.length} project${names.length === 1 ? '' : 's'} (${shown || 'none yet'})${registryFile ? ` and the registry ${registryFile}` : ''} at ${server.url}?project=NAME; discovery at ${origin}/targets\n`,
  );
  await stopped;
  await server.close();
  catalog.close();
  io.err('loki-metrics: stopped\n');
  return 0;
}

/** `HOST`, `HOST:PORT`, `[V6]`, `[V6]:PORT` or a bare IPv6 address. */
function splitHost(host: string, flag: string): { host: string; port?: number } {
  const match = /^\[([^\]]+)\](?::(\d+))?$/.exec(host) ?? /^([^:]+):(\d+)$/.exec(host);
  if (!match) {
    if (host.split(':').length === 2) throw new UsageError(`${flag} ${JSON.stringify(host)}: the port must be a number`);
    return { host };
  }
  if (match[2] === undefined) return { host: match[1] as string };
  const port = Number(match[2]);
  if (port < 1 || port > 65535) throw new UsageError(`${flag} ${JSON.stringify(host)}: the port must be from 1 to 65535`);
  return { host: match[1] as string, port };
}

function exporterUrl(text: string, metricsPath: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(`--url ${JSON.stringify(text)} is not a URL, e.g. http://127.0.0.1:57374/metrics`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`--url must be http:// or https://, not ${url.protocol}//`);
  if (url.pathname === '/') url.pathname = metricsPath;
  return url.href;
}

async function scrape(args: string[], io: Io): Promise<number> {
  const { values } = parse(args, {
    url: { type: 'string' },
    host: { type: 'string' },
    port: { type: 'string' },
    path: { type: 'string' },
    token: { type: 'string' },
    raw: { type: 'boolean' },
    json: { type: 'boolean' },
    project: { type: 'string' },
    all: { type: 'boolean' },
  });
  if (values.help) return io.out(USAGE.scrape as string), 0;
  if (values.raw && values.json) throw new UsageError('--raw and --json cannot be combined');
  if (values.all && (values.raw || values.project !== undefined)) throw new UsageError('--all cannot be combined with --raw or --project');
  if (values.url !== undefined && (values.host ?? values.port ?? values.path) !== undefined) {
    throw new UsageError('--url cannot be combined with --host, --port or --path');
  }
  const config = configFrom(io, {
    LOKI_METRICS_HOST: ['--host', values.host],
    LOKI_METRICS_PORT: ['--port', values.port],
    LOKI_METRICS_PATH: ['--path', values.path],
    LOKI_METRICS_TOKEN: ['--token', values.token],
  });
  let url: string;
  if (values.url !== undefined) url = exporterUrl(values.url, config.metricsPath);
  else {
    const split = splitHost(config.host, values.host !== undefined ? '--host' : 'LOKI_METRICS_HOST');
    if (split.port !== undefined && values.port !== undefined) throw new UsageError('give the port once: --host HOST:PORT or --port PORT');
    const host = split.host.includes(':') ? `[${split.host}]` : split.host;
    url = `http://${host}:${split.port ?? config.port}${config.metricsPath}`;
  }
  if (values.project !== undefined) {
    if (!PROJECT_NAME.test(values.project)) throw new UsageError(`--project ${JSON.stringify(values.project)}: use 1-64 characters of A-Z a-z 0-9 . _ - starting with a letter or digit`);
    const withProject = new URL(url);
    withProject.searchParams.set('project', values.project);
    url = withProject.toString();
  }
  if (values.all) return scrapeAll(url, config.token, values.json === true, io);
  const body = await fetchText(url, config.token, io, 'text/plain; version=0.0.4');
  if (typeof body === 'number') return body;
  if (values.raw) io.out(body.replace(/\n+$/, '') + '\n');
  else if (values.json) io.out(JSON.stringify(parseExposition(body), null, 2) + '\n');
  else io.out(formatScrapeTable(parseExposition(body), io.paint));
  return 0;
}

/** GET `url`: its body, or the exit code after saying on stderr what went wrong. */
async function fetchText(url: string, token: string | undefined, io: Io, accept: string): Promise<string | number> {
  try {
    const response = await fetch(url, {
      headers: { Accept: accept, ...(token ? { Authorization: `Bearer ${token}` } : {}) },
      signal: AbortSignal.timeout(10_000),
    });
    const body = await response.text();
    if (!response.ok) {
      io.err(`loki-metrics: ${io.paint.bad(`the exporter at ${url} answered HTTP ${response.status}`)}${response.status === 401 ? ' (pass --token or set LOKI_METRICS_TOKEN)' : ''}\n`);
      return 1;
    }
    return body;
  } catch {
    io.err(`loki-metrics: ${io.paint.bad(`Could not connect to exporter at ${url}`)}\n`);
    io.err('loki-metrics: make sure the exporter is running (loki-metrics serve) or pass --url\n');
    return 1;
  }
}

/** `scrape --all`: every project /targets lists, in one table (or one JSON object). */
async function scrapeAll(metricsUrl: string, token: string | undefined, json: boolean, io: Io): Promise<number> {
  const targetsUrl = new URL('/targets', metricsUrl).toString();
  const listing = await fetchText(targetsUrl, token, io, 'application/json');
  if (typeof listing === 'number') return listing;
  let names: string[];
  try {
    const groups = JSON.parse(listing) as { labels?: { project?: unknown } }[];
    names = groups.map((g) => g.labels?.project).filter((n): n is string => typeof n === 'string' && PROJECT_NAME.test(n));
  } catch {
    io.err(`loki-metrics: ${targetsUrl} did not answer a target list (is it loki-metrics 0.1 or later?)\n`);
    return 1;
  }
  const quiet: Io = { ...io, err: () => undefined };
  const projects = await Promise.all(
    names.map(async (name) => {
      const url = new URL(metricsUrl);
      url.searchParams.set('project', name);
      const body = await fetchText(url.toString(), token, quiet, 'text/plain; version=0.0.4');
      return { name, samples: typeof body === 'number' ? 'no answer' : parseExposition(body) };
    }),
  );
  if (json) io.out(JSON.stringify(Object.fromEntries(projects.map((p) => [p.name, p.samples])), null, 2) + '\n');
  else io.out(formatFleetTable(projects, io.paint));
  return projects.some((p) => typeof p.samples === 'string') ? 1 : 0;
}

async function check(args: string[], io: Io): Promise<number> {
  const { values } = parse(args, { dir: { type: 'string' } });
  if (values.help) return io.out(USAGE.check as string), 0;
  const config = configFrom(io, { LOKI_DIR: ['--dir', values.dir] });
  const dir = resolve(config.dir);
  const store = new FsStateStore(dir, { watch: false });
  try {
    const reading = await store.read();
    const collector = createCollector({
      maxIterations: config.maxIterations,
      heartbeatWindowMs: config.heartbeatWindowMs,
      agentsHoldMs: 0,
      version: VERSION,
      log: () => undefined, // verdicts are printed below, one per source
    });
    const snapshot = collector.collect(reading, Date.now());
    io.out(formatCheck(dir, reading.available, reading.problem, snapshot.sources, io.paint));
    return reading.available && snapshot.sources.every((s) => s.ok) ? 0 : 1;
  } finally {
    await store.close();
  }
}

async function sync(args: string[], io: Io): Promise<number> {
  const { values } = parse(args, {
    url: { type: 'string' },
    session: { type: 'string' },
    dir: { type: 'string' },
    interval: { type: 'string' },
    once: { type: 'boolean' },
    'allow-http': { type: 'boolean' },
  });
  if (values.help) return io.out(USAGE.sync as string), 0;
  if (!values.url) throw new UsageError('--url must be the remote exporter, e.g. https://loki-metrics.example.workers.dev');
  let target: URL;
  try {
    target = new URL(values.url);
  } catch {
    throw new UsageError(`--url ${JSON.stringify(values.url)} is not a URL; it must be the remote exporter, e.g. https://loki-metrics.example.workers.dev`);
  }
  if (target.protocol !== 'https:' && target.protocol !== 'http:') {
    throw new UsageError(`--url must be https:// (or http:// for a local Worker), not ${target.protocol}//`);
  }
  const session = values.session ?? DEFAULT_SESSION;
  if (!SESSION_NAME.test(session)) throw new UsageError('--session must be 1-64 characters of A-Z a-z 0-9 . _ - starting with a letter or digit');
  const intervalMs = parseInterval(values.interval ?? '2s');
  if (intervalMs === undefined) throw new UsageError('--interval must be a time from 100ms to 1h, such as 2s');
  const config = configFrom(io, { LOKI_DIR: ['--dir', values.dir] });
  if (!config.syncToken) throw new ConfigError('LOKI_SYNC_TOKEN is not set: it must hold the Worker\'s write token');
  const dir = resolve(config.dir);
  const problem = dirProblem(dir);
  if (problem) {
    io.err(`loki-metrics: ${problem}: nothing to sync (pass --dir or set LOKI_DIR)\n`);
    return 2;
  }
  const controller = new AbortController();
  const stop = () => controller.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  if (!values.once) io.err(`loki-metrics sync: ${dir} -> ${values.url} (session "${session}") every ${intervalMs} ms\n`);
  const sent = { requests: 0, bytes: 0 };
  try {
    const code = await runSync({
      url: values.url,
      session,
      dir,
      token: config.syncToken,
      intervalMs,
      once: values.once === true,
      liveness: config.liveness,
      allowHttp: values['allow-http'] === true,
      log: (line) => io.err(`${line}\n`),
      onCycle: ({ requests, bytesSent }) => {
        sent.requests += requests;
        sent.bytes += bytesSent;
      },
      signal: controller.signal,
    });
    const summary = `${sent.requests} request${sent.requests === 1 ? '' : 's'}, ${sent.bytes} bytes sent to ${target.origin} (session "${session}")`;
    if (values.once && code === 0) io.out(`loki-metrics sync: ${summary}\n`);
    else if (!values.once && controller.signal.aborted) io.err(`loki-metrics sync: stopped; ${summary}\n`);
    return code;
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
}

async function token(args: string[], io: Io): Promise<number> {
  const { values } = parse(args, { session: { type: 'string' } });
  if (values.help) return io.out(USAGE.token as string), 0;
  const session = values.session ?? DEFAULT_SESSION;
  if (!SESSION_NAME.test(session)) throw new UsageError('--session must be 1-64 characters of A-Z a-z 0-9 . _ - starting with a letter or digit');
  const config = parseConfig(io.env);
  if (!config.syncToken) throw new ConfigError('LOKI_SYNC_TOKEN is not set: it must hold the sync secret the Worker was given');
  io.out(`${await sessionSyncToken(config.syncToken, session)}\n`);
  return 0;
}

const COMMANDS: Record<string, (args: string[], io: Io) => Promise<number>> = { serve, scrape, check, sync, token };

async function main(argv: string[], io: Io): Promise<number> {
  const [command, ...rest] = argv;
  try {
    if (command === 'help' && rest.length > 0) {
      const [topic, ...extra] = rest;
      if (extra.length > 0) throw new UsageError(`help takes one command, not ${rest.length}`);
      if (!COMMANDS[topic as string]) throw new UsageError(`unknown command ${JSON.stringify(topic)}`);
      return io.out(USAGE[topic as string] as string), 0;
    }
    if (command === undefined || command === '-h' || command === '--help' || command === 'help') {
      io.out(USAGE.main as string);
      return command === undefined ? 2 : 0;
    }
    if (command === '-V' || command === '-v' || command === '--version' || command === 'version') return io.out(`${VERSION}\n`), 0;
    const run = COMMANDS[command];
    if (!run) throw new UsageError(`unknown command ${JSON.stringify(command)}`);
    return await run(rest, io);
  } catch (error) {
    if (error instanceof UsageError) {
      io.err(`loki-metrics: ${error.message}\nRun 'loki-metrics ${run(command)}--help' for usage.\n`);
      return 2;
    }
    if (error instanceof ConfigError) {
      io.err(`loki-metrics: ${error.message}\n`);
      return 2;
    }
    io.err(`loki-metrics: ${error instanceof Error ? error.message : String(error)}\n`);
    return 1;
  }
}

const run = (command: string | undefined) => (command && COMMANDS[command] ? `${command} ` : '');

const useColour = process.stdout.isTTY === true && !process.env.NO_COLOR;
main(process.argv.slice(2), {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
  env: process.env,
  paint: useColour ? ANSI_PAINT : NO_PAINT,
}).then((code) => {
  process.exitCode = code;
});
