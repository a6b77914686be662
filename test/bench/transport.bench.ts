/**
 * `npm run bench` (part 2): what TLS and basic auth add to a scrape. One process, one small tree,
 * two real servers: plain http, and a web config with TLS and a bcrypt (cost 10) user. Each is
 * scraped over one kept-alive connection, in alternating rounds so machine noise hits both alike.
 * The naive baseline is basic auth without the success cache: a bcrypt comparison per scrape,
 * measured as the wrong-password request, which is never cached.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import { parseConfig } from '../../src/config.js';
import { startServer } from '../../src/node/server.js';
import { FsStateStore } from '../../src/stores/fs.js';
import { benchWanted } from './trees.js';

const ROUNDS = 10;
const PER_ROUND = 200;
const PASSWORD = 'bench password';

function openssl(args: string[], cwd: string): void {
  const result = spawnSync('openssl', args, { cwd, encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`openssl failed: ${result.stderr}`);
}

function scrape(agent: HttpAgent, port: number, tls: boolean, authorization?: string, ca?: Buffer, expected = 200): Promise<number> {
  return new Promise((resolve, reject) => {
    const t = performance.now();
    const options = { host: '127.0.0.1', port, path: '/metrics', agent, headers: authorization ? { Authorization: authorization } : {}, ...(ca ? { ca, servername: 'localhost' } : {}) };
    const req = (tls ? httpsRequest : httpRequest)(options, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === expected ? resolve(performance.now() - t) : reject(new Error(`status ${res.statusCode}`))));
    });
    req.on('error', reject);
    req.end();
  });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
const p99 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * 0.99)] ?? NaN;

async function main(): Promise<void> {
  if (!benchWanted('transport')) return; // BENCH_ONLY set to something else
  const root = mkdtempSync(join(tmpdir(), 'loki-bench-tls-'));
  try {
    const loki = join(root, '.loki');
    spawnSync('mkdir', ['-p', loki]);
    writeFileSync(join(loki, 'dashboard-state.json'), JSON.stringify({ mode: 'autonomous', iteration: 3, tasks: { pending: [], inProgress: [], completed: [], failed: [] } }));
    openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'tls.key', '-out', 'tls.crt', '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'], root);
    const hash = bcrypt.hashSync(PASSWORD, 10);
    writeFileSync(join(root, 'web.yml'), `tls_server_config:\n  cert_file: tls.crt\n  key_file: tls.key\nbasic_auth_users:\n  prometheus: ${hash}\n`);
    const ca = readFileSync(join(root, 'tls.crt'));

    const plainStore = new FsStateStore(loki);
    const tlsStore = new FsStateStore(loki);
    const plain = await startServer({ ...parseConfig({ LOKI_DIR: loki }), port: 0 }, plainStore, () => undefined);
    const secure = await startServer({ ...parseConfig({ LOKI_DIR: loki, LOKI_METRICS_WEB_CONFIG: join(root, 'web.yml') }), port: 0 }, tlsStore, () => undefined);
    const plainAgent = new HttpAgent({ keepAlive: true, maxSockets: 1 });
    const tlsAgent = new HttpsAgent({ keepAlive: true, maxSockets: 1 });
    const auth = `Basic ${Buffer.from(`prometheus:${PASSWORD}`).toString('base64')}`;
    const wrong = `Basic ${Buffer.from(`prometheus:${PASSWORD}x`).toString('base64')}`;
    try {
      // Warm up: connections made, JIT warm, the bcrypt success cached.
      for (let i = 0; i < 100; i++) {
        await scrape(plainAgent, plain.port, false);
        await scrape(tlsAgent, secure.port, true, auth, ca);
      }
      const plainMs: number[] = [];
      const tlsMs: number[] = [];
      for (let round = 0; round < ROUNDS; round++) {
        for (let i = 0; i < PER_ROUND; i++) plainMs.push(await scrape(plainAgent, plain.port, false));
        for (let i = 0; i < PER_ROUND; i++) tlsMs.push(await scrape(tlsAgent, secure.port, true, auth, ca));
      }
      const uncached: number[] = [];
      for (let i = 0; i < 5; i++) uncached.push(await scrape(tlsAgent, secure.port, true, wrong, ca, 401));

      const fmt = (ms: number) => ms.toFixed(3).padStart(8);
      console.log(`\nloki-metrics transport bench — node ${process.version}, ${ROUNDS * PER_ROUND} scrapes each over one kept-alive connection, alternating rounds; times in ms`);
      console.log(`${'case'.padEnd(46)}${'median'.padStart(8)}${'p99'.padStart(8)}`);
      console.log(`${'plain http, no auth'.padEnd(46)}${fmt(median(plainMs))}${fmt(p99(plainMs))}`);
      console.log(`${'TLS + basic auth (bcrypt cost 10, cached)'.padEnd(46)}${fmt(median(tlsMs))}${fmt(p99(tlsMs))}`);
      console.log(`${'naive: TLS + basic auth, bcrypt every scrape'.padEnd(46)}${fmt(median(uncached))}${fmt(p99(uncached))}`);
      const extra = median(tlsMs) - median(plainMs);
      console.log(`\nextra cost of TLS + basic auth: ${extra.toFixed(3)} ms per scrape (target <= 1 ms); the cache makes it ${(median(uncached) / median(tlsMs)).toFixed(0)}x cheaper than bcrypt per scrape`);
    } finally {
      plainAgent.destroy();
      tlsAgent.destroy();
      await plain.close();
      await secure.close();
      await plainStore.close();
      await tlsStore.close();
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

await main();
