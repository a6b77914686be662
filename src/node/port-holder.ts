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
  if (isDashboardHealth(await answer(`${base}/health`, signal))) return 'loki-dashboard';
  if ((await answer(`${base}/`, signal)).includes('<title>loki-metrics</title>')) return 'loki-metrics';
  return 'unknown';
}

export function isDashboardHealth(text: string): boolean {
  try {
    // A primitive has no `service`; `null` throws, and reads as false like any other non-object.
    return (JSON.parse(text) as { service?: unknown }).service === 'loki-dashboard';
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

/** The first MAX_ANSWER_BYTES of a 200 answer's body as text; '' for any other answer or none in time. */
async function answer(url: string, signal: AbortSignal): Promise<string> {
  try {
    const response = await fetch(url, { signal, redirect: 'manual' });
    // Read whatever the status (a bounded read ends the exchange either way), then keep only a 200's.
    const chunks: Uint8Array[] = [];
    let size = 0;
    // Node's body stream is async-iterable (TypeScript's DOM type does not say so); a body-less
    // answer (204, 304) has none and throws here, which reads as ''.
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
      chunks.push(chunk);
      size += chunk.byteLength;
      if (size >= MAX_ANSWER_BYTES) break;
    }
    return response.status === 200 ? Buffer.concat(chunks).subarray(0, MAX_ANSWER_BYTES).toString('utf8') : '';
  } catch {
    return '';
  }
}
