/** `loki-metrics scrape`: fetch a running exporter (one project, or every project it lists) and print it. */
import { formatFleetTable, formatScrapeTable, parseExposition } from '../../cli/report.js';
import { PROJECT_NAME } from '../../fleet.js';
import { configFrom, parse, UsageError, type Io } from './common.js';
import { USAGE } from './usage.js';

/** `HOST`, `HOST:PORT`, `[V6]`, `[V6]:PORT` or a bare IPv6 address. */
export function splitHost(host: string, flag: string): { host: string; port?: number } {
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

export function exporterUrl(text: string, metricsPath: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(`--url ${JSON.stringify(text)} is not a URL, e.g. http://127.0.0.1:57373/metrics`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`--url must be http:// or https://, not ${url.protocol}//`);
  if (url.pathname === '/') url.pathname = metricsPath;
  return url.href;
}

export async function scrape(args: string[], io: Io): Promise<number> {
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
