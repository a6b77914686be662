/**
 * The Worker's self-metrics in real workerd (Miniflare): no process, so no process families at all;
 * the refresh duration and the build info with the deployed revision (LOKI_METRICS_REVISION var) and
 * no nodeversion label.
 */
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { runSync } from '../src/node/sync.js';
import { VERSION } from '../src/version.js';
import { cleanTrees, materialize } from './support/loki-tree.js';
import { startWorker, SYNC_TOKEN, type TestWorker } from './support/worker.js';

const OPENMETRICS = 'application/openmetrics-text; version=1.0.0';
const workers: TestWorker[] = [];
afterEach(cleanTrees);
afterAll(async () => {
  await Promise.all(workers.map((w) => w.dispose()));
});

async function worker(vars: Record<string, string> = {}): Promise<TestWorker> {
  const w = await startWorker({ vars });
  workers.push(w);
  return w;
}

describe('the Worker\'s self-metrics', () => {
  it('has no process families, a refresh duration, and the revision it was deployed with', async () => {
    const revision = '0123456789abcdef0123456789abcdef01234567';
    const w = await worker({ LOKI_METRICS_REVISION: revision });
    const dir = await materialize('running', { pid: 'alive', mtimeMs: Date.now() });
    const logs: string[] = [];
    const code = await runSync({ url: w.url, session: 'default', dir, token: SYNC_TOKEN, intervalMs: 1000, once: true, log: (l) => logs.push(l) });
    expect(code, logs.join('; ')).toBe(0);

    for (const accept of ['text/plain; version=0.0.4', OPENMETRICS]) {
      const res = await w.fetch('/metrics', { headers: { Accept: accept } });
      expect(res.status).toBe(200);
      const body = await res.text();
      expect(body).toContain('loki_up 1\n');
      expect(body).not.toMatch(/^(# (HELP|TYPE) )?(process|nodejs)_/m);
      expect(body).toContain('# TYPE loki_exporter_scrape_duration_seconds gauge\n');
      const duration = /^loki_exporter_scrape_duration_seconds (\S+)$/m.exec(body)?.[1];
      expect(duration).toBeDefined();
      // A Worker's clock moves only across I/O, so a refresh may read 0 there; never negative.
      expect(Number(duration)).toBeGreaterThanOrEqual(0);
      expect(Number(duration)).toBeLessThan(5);
      expect(body).toContain(`loki_exporter_build_info{version="${VERSION}",demo="false",revision="${revision}"} 1\n`);
      if (accept === OPENMETRICS) {
        expect(body.match(/^# EOF$/gm)).toHaveLength(1);
        expect(body.endsWith('\n# EOF\n')).toBe(true);
      }
    }
  });

  it('says revision="unknown" without the variable, also when nothing is synced (loki_up 0)', async () => {
    const w = await worker();
    const body = await (await w.fetch('/metrics?session=nothing-here')).text();
    expect(body).toContain('loki_up 0\n');
    expect(body).toContain(`loki_exporter_build_info{version="${VERSION}",demo="false",revision="unknown"} 1\n`);
    expect(body).toMatch(/^loki_exporter_scrape_duration_seconds \S+$/m);
    expect(body).not.toMatch(/^(# (HELP|TYPE) )?(process|nodejs)_/m);
  });
});
