/**
 * The CLI's commands run in this process (Stryker's mutants are active only here): an `Io` that
 * keeps what a command prints, waits for output by event (never by time), and free ports.
 */
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer } from 'node:net';
import { NO_PAINT, type Paint } from '../../../src/cli/report.js';
import type { Io } from '../../../src/node/cli/common.js';

export interface Captured {
  readonly io: Io;
  /** Everything printed on stdout so far. */
  readonly out: () => string;
  /** Everything printed on stderr so far. */
  readonly err: () => string;
  /** Resolves once `test` holds (checked after each write). */
  readonly until: (test: () => boolean) => Promise<void>;
}

export function capture(env: NodeJS.ProcessEnv = {}, paint: Paint = NO_PAINT): Captured {
  let out = '';
  let err = '';
  const waiters: { test: () => boolean; done: () => void }[] = [];
  const wake = () => {
    for (const waiter of [...waiters]) {
      if (!waiter.test()) continue;
      waiters.splice(waiters.indexOf(waiter), 1);
      waiter.done();
    }
  };
  const io: Io = {
    out: (text) => {
      out += text;
      wake();
    },
    err: (text) => {
      err += text;
      wake();
    },
    env,
    paint,
  };
  return {
    io,
    out: () => out,
    err: () => err,
    until: (test) => (test() ? Promise.resolve() : new Promise<void>((done) => waiters.push({ test, done }))),
  };
}

/** A port nothing listens on (a moment ago). */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
      .once('error', reject)
      .listen(0, host, () => {
        const port = (server.address() as { port: number }).port;
        server.close(() => resolve(port));
      });
  });
}

/** A request an HTTP test server received. */
export interface Received {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingMessage['headers'];
  readonly body: string;
}

/** A loopback HTTP server answering with `handler`, recording every request; `close` ends it. */
export async function httpServer(
  handler: (request: Received, response: ServerResponse) => void,
  host = '127.0.0.1',
): Promise<{ readonly origin: string; readonly port: number; readonly received: Received[]; close(): Promise<void> }> {
  const received: Received[] = [];
  const server: Server = createHttpServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      const request = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body };
      received.push(request);
      handler(request, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const port = (server.address() as { port: number }).port;
  return {
    origin: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    port,
    received,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
