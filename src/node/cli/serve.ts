/** `loki-metrics serve`: one state directory, or a fleet of projects (named, the registry's). */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { resolve } from 'node:path';
import { checkDistinct, parseNamedDir, type Config, type NamedDir } from '../../config.js';
import { DEFAULT_PROJECT } from '../../fleet.js';
import { isLoopback } from '../../host-check.js';
import { FsStateStore } from '../../stores/fs.js';
import { VERSION } from '../../version.js';
import { startDemo } from '../demo.js';
import { NodeProjectCatalog } from '../projects.js';
import { startFleetServer, startServer } from '../server.js';
import { configFrom, dirProblem, parse, UsageError, type Io } from './common.js';
import { USAGE } from './usage.js';


export async function serve(args: string[], io: Io): Promise<number> {
  // Listen for SIGINT/SIGTERM before anything is started: a signal during startup still cleans up
  // (the demo's temporary directory) instead of killing the process. The first signal stops the
  // listening (a second one ends the process), and so does any way out, a failed start too.
  let signalled!: () => void;
  const stopped = new Promise<void>((done) => (signalled = done));
  const unlisten = () => {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  };
  const stop = () => {
    unlisten();
    signalled();
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    return await serveUntil(stopped, args, io);
  } finally {
    unlisten();
  }
}

/** `serve` until `stopped` settles. */
async function serveUntil(stopped: Promise<void>, args: string[], io: Io): Promise<number> {
  const { values } = parse(args, {
    dir: { type: 'string', multiple: true },
    host: { type: 'string' },
    port: { type: 'string' },
    path: { type: 'string' },
    demo: { type: 'boolean' },
    'demo-if-missing': { type: 'boolean' },
    'web.config.file': { type: 'string' },
    'allowed-hosts': { type: 'string' },
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
    LOKI_METRICS_ALLOWED_HOSTS: ['--allowed-hosts', values['allowed-hosts']],
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
