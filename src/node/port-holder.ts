/**
 * Who holds the port the exporter could not listen on, so that "port in use" names the holder and
 * the one thing to do. Loki Mode's dashboard (started with every 9.x run, LOKI_DASHBOARD_PORT,
 * default 57374, the port the metrics guide gives) is the usual holder: it answers an
 * unauthenticated `GET /health` with `"service": "loki-dashboard"` (dashboard/server.py, measured
 * on 9.22.12). Another loki-metrics says its name in the title of its landing page.
 *
 * Only asked after a failed listen, on loopback, with a deadline and a cap on what is read: the
 * holder may be anything.
 */

export type PortHolder = 'loki-dashboard' | 'loki-metrics' | 'unknown';

/** The port Loki Mode's dashboard takes unless LOKI_DASHBOARD_PORT says otherwise. */
export const LOKI_DASHBOARD_DEFAULT_PORT = 57374;

/** Read at most this much of an answer: enough for a /health document or a page's title. */
const MAX_ANSWER_BYTES = 16 * 1024;

export interface AskOptions {
  /** The whole question (both requests) ends by then. */
  readonly timeoutMs?: number;
}

/** Where to ask: a wildcard address is held on loopback too. */
export function probeHost(host: string): string {
  if (host === '0.0.0.0' || host === '') return '127.0.0.1';
  if (host === '::' || host === '[::]') return '[::1]';
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
}

export async function whoHolds(host: string, port: number, options: AskOptions = {}): Promise<PortHolder> {
  const signal = AbortSignal.timeout(options.timeoutMs ?? 1_000);
  const base = `http://${probeHost(host)}:${port}`;
  const health = await answer(`${base}/health`, signal);
  if (health !== undefined && isDashboardHealth(health)) return 'loki-dashboard';
  const landing = await answer(`${base}/`, signal);
  if (landing !== undefined && /<title>loki-metrics<\/title>/.test(landing)) return 'loki-metrics';
  return 'unknown';
}

export function isDashboardHealth(text: string): boolean {
  try {
    const body: unknown = JSON.parse(text);
    return typeof body === 'object' && body !== null && (body as { service?: unknown }).service === 'loki-dashboard';
  } catch {
    return false;
  }
}

/** The start-up error for a port that is taken, naming the holder and what to do. */
export function portInUseMessage(host: string, port: number, holder: PortHolder, defaultPort: number): string {
  const where = `port ${port} on ${host}`;
  if (holder === 'loki-dashboard') {
    const advice =
      port === defaultPort
        ? `run loki-metrics on another port (--port or LOKI_METRICS_PORT), or Loki Mode's dashboard on another one (LOKI_DASHBOARD_PORT)`
        : `run loki-metrics on its own default port, ${defaultPort} (drop --port ${port} / LOKI_METRICS_PORT=${port}), and scrape that`;
    return `${where} is held by Loki Mode's dashboard (it answers /health as loki-dashboard): ${advice}`;
  }
  if (holder === 'loki-metrics') {
    return `${where} is already served by another loki-metrics: scrape that one, or stop it first`;
  }
  return `${where} is already in use (set LOKI_METRICS_PORT or --port)`;
}

/** The body's first MAX_ANSWER_BYTES as text, or undefined when there is no 200 answer in time. */
async function answer(url: string, signal: AbortSignal): Promise<string | undefined> {
  try {
    const response = await fetch(url, { signal, redirect: 'manual' });
    if (response.status !== 200 || response.body === null) {
      await response.body?.cancel();
      return undefined;
    }
    const reader = response.body.getReader();
    const chunks: Uint8Array[] = [];
    let size = 0;
    while (size < MAX_ANSWER_BYTES) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      size += value.byteLength;
    }
    await reader.cancel();
    return new TextDecoder().decode(Buffer.concat(chunks).subarray(0, MAX_ANSWER_BYTES));
  } catch {
    return undefined;
  }
}
