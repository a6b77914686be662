/**
 * The shipped wrangler.toml builds on this Node with the pinned wrangler, and the bundle wrangler
 * would deploy runs in workerd: sync to it, scrape it.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Miniflare, supportedCompatibilityDate } from 'miniflare';
import { afterAll, expect, it } from 'vitest';
import { runSync } from '../../src/node/sync.js';
import { cleanTrees, materialize } from '../support/loki-tree.js';
import { COMPATIBILITY_DATE } from '../support/wrangler-toml.js';

const ROOT = new URL('../..', import.meta.url).pathname;
const cleanups: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const cleanup of cleanups) await cleanup();
  await cleanTrees();
});

// A deployed Worker gets the runtime behaviour of its compatibility date; the tests can only vouch for
// the date of the workerd they run, so the two move together (docs/development.md, "Pinned versions").
it("deploys with the compatibility date of the workerd the tests run it in", () => {
  expect(COMPATIBILITY_DATE).toBe(supportedCompatibilityDate);
});

it('builds with `wrangler deploy --dry-run` and the deployable bundle serves synced state', async () => {
  const out = await mkdtemp(join(tmpdir(), 'loki-wrangler-'));
  cleanups.push(() => rm(out, { recursive: true, force: true }));
  const wrangler = join(ROOT, 'node_modules/.bin/wrangler');
  const build = spawnSync(wrangler, ['deploy', '--dry-run', '--outdir', out], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, WRANGLER_SEND_METRICS: 'false', CI: 'true' },
  });
  expect(build.status, build.stderr).toBe(0);
  expect(build.stdout).toMatch(/env\.LOKI_STATE_BUCKET \(loki-metrics-state\)\s+R2 Bucket/);

  const token = 'wrangler-sync-token-0123456789';
  const mf = new Miniflare({
    modules: true,
    script: await readFile(join(out, 'index.js'), 'utf8'),
    compatibilityDate: COMPATIBILITY_DATE,
    host: '127.0.0.1',
    r2Buckets: ['LOKI_STATE_BUCKET'],
    bindings: { LOKI_SYNC_TOKEN: token },
  });
  cleanups.push(() => mf.dispose());
  const url = (await mf.ready).href.replace(/\/$/, '');
  const dir = await materialize('running', { pid: 'alive', mtimeMs: Date.now() });
  expect(await runSync({ url, session: 'default', dir, token, intervalMs: 1000, once: true, log: () => undefined })).toBe(0);
  const body = await (await fetch(`${url}/metrics`)).text();
  expect(body).toContain('loki_cost_usd 3.5313\n');
  expect(body).toContain('loki_session_status 1\n');
}, 90_000);
