import { readFileSync } from 'node:fs';
import { connect, createServer, type TLSSocket } from 'node:tls';
import { clientCertificateProblem, type LoadedWebConfig } from '../../src/node/web-config.js';
import type { Ca, Issued } from './certs.js';

/**
 * Handshakes `client` (or no client certificate) with a TLS server built from `loaded` as the
 * exporter builds it, and returns clientCertificateProblem's answer, asked after `before` has run on
 * the server's socket (or the error it threw).
 */
export async function handshakeProblem(loaded: LoadedWebConfig, ca: Ca, client?: Issued, before: (socket: TLSSocket) => void = () => undefined): Promise<string | undefined> {
  const tls = loaded.tls!;
  const server = createServer({ ...tls.contextOptions, requestCert: tls.requestCert, rejectUnauthorized: false });
  const answer = new Promise<string | undefined>((resolve, reject) => server.once('secureConnection', (socket: TLSSocket) => {
    before(socket);
    try {
      resolve(clientCertificateProblem(socket, tls));
    } catch (error) {
      reject(error as Error);
    } finally {
      socket.destroy();
    }
  }));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const socket = connect({ host: '127.0.0.1', port, ca: readFileSync(ca.cert), servername: 'localhost',
    ...(client ? { cert: readFileSync(client.cert), key: readFileSync(client.key) } : {}) });
  socket.on('error', () => undefined);
  try {
    return await answer;
  } finally {
    socket.destroy();
    server.close();
  }
}
