/**
 * `loki-metrics`'s commands and their dispatch: `check`, `sync` and `token` (`serve`, `scrape` and
 * `assets` have their own modules), `help`, `--version`, and how an error becomes a line on stderr
 * and an exit code. Everything but the `process` it runs in (src/node/cli.ts): tested in-process.
 */
import { resolve } from 'node:path';
import { ANSI_PAINT, formatCheck, NO_PAINT } from '../../cli/report.js';
import { createCollector } from '../../collect.js';
import { ConfigError, parseConfig } from '../../config.js';
import { FsStateStore } from '../../stores/fs.js';
import { DEFAULT_SESSION, SESSION_NAME } from '../../sync/protocol.js';
import { sessionSyncToken } from '../../sync/tokens.js';
import { VERSION } from '../../version.js';
import { parseInterval, runSync } from '../sync.js';
import { assets } from './assets.js';
import { configFrom, dirProblem, parse, UsageError, type Io } from './common.js';
import { scrape } from './scrape.js';
import { serve } from './serve.js';
import { USAGE } from './usage.js';

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
    'push-interval': { type: 'string' },
    heartbeat: { type: 'string' },
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
  // `0s` pushes every change at the next look (what a sync did before the Worker set a cadence).
  const cadence = (flag: 'push-interval' | 'heartbeat') => {
    const given = values[flag];
    if (given === undefined) return undefined;
    const ms = /^0+(\.0+)?(ms|s|m)?$/.test(given.trim()) ? 0 : parseInterval(given);
    if (ms === undefined) throw new UsageError(`--${flag} must be a time from 100ms to 1h, such as 1m, or 0s`);
    return ms;
  };
  const pushMs = cadence('push-interval');
  const heartbeatMs = cadence('heartbeat');
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
  if (!values.once) io.err(`loki-metrics sync: ${dir} -> ${values.url} (session "${session}"), looking every ${intervalMs} ms\n`);
  const sent = { requests: 0, bytes: 0 };
  try {
    const code = await runSync({
      url: values.url,
      session,
      dir,
      token: config.syncToken,
      intervalMs,
      ...(pushMs !== undefined ? { pushMs } : {}),
      ...(heartbeatMs !== undefined ? { heartbeatMs } : {}),
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

/** The commands by name: a Map, so Object.prototype's names (`toString`, `constructor`) are none. */
const COMMANDS = new Map<string | undefined, (args: string[], io: Io) => Promise<number>>(Object.entries({ serve, scrape, check, sync, token, assets }));

export async function main(argv: string[], io: Io): Promise<number> {
  const [command, ...rest] = argv;
  try {
    if (command === 'help' && rest.length > 0) {
      const [topic, ...extra] = rest;
      if (extra.length > 0) throw new UsageError(`help takes one command, not ${rest.length}`);
      if (!COMMANDS.has(topic)) throw new UsageError(`unknown command ${JSON.stringify(topic)}`);
      return io.out(USAGE[topic as string] as string), 0;
    }
    if (command === undefined || command === '-h' || command === '--help' || command === 'help') {
      io.out(USAGE.main as string);
      return command === undefined ? 2 : 0;
    }
    if (command === '-V' || command === '-v' || command === '--version' || command === 'version') return io.out(`${VERSION}\n`), 0;
    const run = COMMANDS.get(command);
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

const run = (command: string | undefined) => (COMMANDS.has(command) ? `${command} ` : '');

/** What a process gives the commands: its streams and environment; colour only on a terminal without NO_COLOR. */
export function processIo(proc: {
  readonly stdout: { readonly isTTY?: boolean; write(text: string): unknown };
  readonly stderr: { write(text: string): unknown };
  readonly env: NodeJS.ProcessEnv;
}): Io {
  const useColour = proc.stdout.isTTY === true && !proc.env.NO_COLOR;
  return {
    out: (text) => proc.stdout.write(text),
    err: (text) => proc.stderr.write(text),
    env: proc.env,
    paint: useColour ? ANSI_PAINT : NO_PAINT,
  };
}
