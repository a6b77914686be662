#!/usr/bin/env node
/**
 * `loki-metrics` — the Node command line: `serve`, `scrape`, `check`. It parses flags, wires
 * config + store + app, and prints; the work itself lives in the runtime-free modules.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ANSI_PAINT, formatCheck, formatScrapeTable, NO_PAINT, parseExposition, type Paint } from '../cli/report.js';
import { createCollector } from '../collect.js';
import { ConfigError, ENV, parseConfig, type EnvName } from '../config.js';
import { FsStateStore } from '../stores/fs.js';
import { VERSION } from '../version.js';
import { startDemo } from './demo.js';
import { startServer } from './server.js';
import { parseInterval, runSync } from './sync.js';
import { DEFAULT_SESSION, SESSION_NAME } from '../sync/protocol.js';

const USAGE: Record<string, string> = {
  main: `Usage: loki-metrics <command> [options]

Prometheus/OpenMetrics exporter for Loki Mode's .loki state directory.

Commands:
  serve    Serve /metrics, /health and / for a .loki directory
  scrape   Fetch a running exporter and print its metrics
  check    Validate a .loki directory offline and print each source's verdict
  sync     Push a .loki directory's state to a remote exporter (the Cloudflare Worker)

Options:
  -h, --help     Show help (also: loki-metrics <command> --help)
  -v, --version  Print the version

Environment (flags win over environment):
${(Object.keys(ENV) as EnvName[]).map((name) => `  ${name.padEnd(30)} default: ${ENV[name] === '' ? '(none)' : ENV[name]}`).join('\n')}
`,
  serve: `Usage: loki-metrics serve [--dir DIR] [--host HOST] [--port PORT] [--path PATH] [--demo | --demo-if-missing]

Serve metrics for a .loki directory (read-only) until SIGINT/SIGTERM.

  --dir DIR           State directory (LOKI_DIR, default ./.loki)
  --host HOST         Address to bind (LOKI_METRICS_HOST, default 127.0.0.1)
  --port PORT         Port (LOKI_METRICS_PORT, default 57374)
  --path PATH         Metrics path (LOKI_METRICS_PATH, default /metrics)
  --demo              Serve a simulated, changing session from a temporary directory
  --demo-if-missing   Serve the demo when the state directory does not exist
`,
  scrape: `Usage: loki-metrics scrape [--host HOST] [--port PORT] [--path PATH] [--token TOKEN] [--raw | --json]

Fetch a running exporter and print its metrics as a table.

  --host HOST     Exporter host (LOKI_METRICS_HOST, default 127.0.0.1)
  --port PORT     Exporter port (LOKI_METRICS_PORT, default 57374)
  --path PATH     Metrics path (LOKI_METRICS_PATH, default /metrics)
  --token TOKEN   Bearer token (LOKI_METRICS_TOKEN)
  --raw           Print the exposition text as served (for grep)
  --json          Print the samples as JSON
`,
  sync: `Usage: loki-metrics sync --url URL [--session NAME] [--dir DIR] [--interval 2s] [--once]

Watch a .loki directory and send what changed to a remote exporter (the Worker). The write token
comes from LOKI_SYNC_TOKEN. Runs until SIGINT/SIGTERM; retries with backoff when the remote fails.

  --url URL          The Worker, e.g. https://loki-metrics.example.workers.dev or http://127.0.0.1:8787
  --session NAME     Session name (default "default"); scrape it with /metrics?session=NAME
  --dir DIR          State directory (LOKI_DIR, default ./.loki)
  --interval TIME    Time between cycles: 2s (default), 500ms, 1m
  --once             One cycle, then exit (0 on success, 1 on failure)
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

async function serve(args: string[], io: Io): Promise<number> {
  const { values } = parse(args, {
    dir: { type: 'string' },
    host: { type: 'string' },
    port: { type: 'string' },
    path: { type: 'string' },
    demo: { type: 'boolean' },
    'demo-if-missing': { type: 'boolean' },
  });
  if (values.help) return io.out(USAGE.serve as string), 0;
  const config = parseConfig(io.env, {
    LOKI_DIR: values.dir,
    LOKI_METRICS_HOST: values.host,
    LOKI_METRICS_PORT: values.port,
    LOKI_METRICS_PATH: values.path,
  });
  let dir = resolve(config.dir);
  let demo: Awaited<ReturnType<typeof startDemo>> | undefined;
  if (values.demo || (values['demo-if-missing'] && !existsSync(dir))) {
    if (!values.demo) {
      io.err(`loki-metrics: no state directory at ${dir}; serving a simulated demo session instead.\n`);
      io.err(`loki-metrics: run Loki Mode in this directory, or pass --dir /path/to/.loki, to watch a real one.\n`);
    }
    demo = await startDemo();
    dir = demo.dir;
  }
  const store = new FsStateStore(dir);
  const log = (line: string) => io.err(`${line}\n`);
  const server = await startServer({ ...config, dir }, store, log);
  io.out(`loki-metrics ${VERSION} serving ${demo ? 'a demo session' : dir} at ${server.url}\n`);

  await new Promise<void>((done) => {
    const stop = () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      done();
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  await server.close();
  await store.close();
  await demo?.stop();
  io.err('loki-metrics: stopped\n');
  return 0;
}

async function scrape(args: string[], io: Io): Promise<number> {
  const { values } = parse(args, {
    host: { type: 'string' },
    port: { type: 'string' },
    path: { type: 'string' },
    token: { type: 'string' },
    raw: { type: 'boolean' },
    json: { type: 'boolean' },
  });
  if (values.help) return io.out(USAGE.scrape as string), 0;
  if (values.raw && values.json) throw new UsageError('--raw and --json cannot be combined');
  const config = parseConfig(io.env, {
    LOKI_METRICS_HOST: values.host,
    LOKI_METRICS_PORT: values.port,
    LOKI_METRICS_PATH: values.path,
    LOKI_METRICS_TOKEN: values.token,
  });
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  const url = `http://${host}:${config.port}${config.metricsPath}`;
  let body: string;
  try {
    const response = await fetch(url, {
      headers: {
        Accept: 'text/plain; version=0.0.4',
        ...(config.token ? { Authorization: `Bearer ${config.token}` } : {}),
      },
      signal: AbortSignal.timeout(10_000),
    });
    body = await response.text();
    if (!response.ok) {
      io.err(`${io.paint.bad(`Error: ${url} answered HTTP ${response.status}`)}${response.status === 401 ? ' (pass --token or set LOKI_METRICS_TOKEN)' : ''}\n`);
      return 1;
    }
  } catch {
    io.err(`${io.paint.bad(`Error: Could not connect to dashboard at ${url}`)}\n`);
    io.err('Make sure the exporter is running: loki-metrics serve\n');
    return 1;
  }
  if (values.raw) io.out(body.replace(/\n+$/, '') + '\n');
  else if (values.json) io.out(JSON.stringify(parseExposition(body), null, 2) + '\n');
  else io.out(formatScrapeTable(parseExposition(body), io.paint));
  return 0;
}

async function check(args: string[], io: Io): Promise<number> {
  const { values } = parse(args, { dir: { type: 'string' } });
  if (values.help) return io.out(USAGE.check as string), 0;
  const config = parseConfig(io.env, { LOKI_DIR: values.dir });
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
  });
  if (values.help) return io.out(USAGE.sync as string), 0;
  if (!values.url || !/^https?:\/\/[^/]+/.test(values.url)) throw new UsageError('--url must be the remote exporter, e.g. http://127.0.0.1:8787');
  const session = values.session ?? DEFAULT_SESSION;
  if (!SESSION_NAME.test(session)) throw new UsageError('--session must be 1-64 characters of A-Z a-z 0-9 . _ - starting with a letter or digit');
  const intervalMs = parseInterval(values.interval ?? '2s');
  if (intervalMs === undefined) throw new UsageError('--interval must be a time from 100ms to 1h, such as 2s');
  const config = parseConfig(io.env, { LOKI_DIR: values.dir });
  if (!config.syncToken) throw new ConfigError('LOKI_SYNC_TOKEN is not set: it must hold the Worker\'s write token');
  const controller = new AbortController();
  const stop = () => controller.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  const dir = resolve(config.dir);
  if (!values.once) io.err(`loki-metrics sync: ${dir} -> ${values.url} (session "${session}") every ${intervalMs} ms\n`);
  try {
    return await runSync({
      url: values.url,
      session,
      dir,
      token: config.syncToken,
      intervalMs,
      once: values.once === true,
      liveness: config.liveness,
      log: (line) => io.err(`${line}\n`),
      signal: controller.signal,
    });
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
}

const COMMANDS: Record<string, (args: string[], io: Io) => Promise<number>> = { serve, scrape, check, sync };

async function main(argv: string[], io: Io): Promise<number> {
  const [command, ...rest] = argv;
  try {
    if (command === undefined || command === '-h' || command === '--help' || command === 'help') {
      io.out(USAGE.main as string);
      return command === undefined ? 2 : 0;
    }
    if (command === '-v' || command === '--version') return io.out(`${VERSION}\n`), 0;
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
