/**
 * End to end: the Node exporter on sample .loki trees, scraped by a real Prometheus (Debian's
 * 2.42) directly, through nginx with TLS and a proxy-checked bearer token, and with the exporter's
 * own LOKI_METRICS_TOKEN, all on 127.0.0.1, using the shipped files under monitoring/ (only
 * addresses, paths, tokens and intervals replaced). Also runs every Grafana dashboard query and
 * the shipped alert and recording rules against the live data, including a tree that changes as a
 * real run does (iterations finish, receipts appear, a new run empties metrics/efficiency/). One
 * Prometheus serves every job.
 */
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config.js';
import { startServer, type RunningServer } from '../../src/node/server.js';
import { FsStateStore } from '../../src/stores/fs.js';
import { runSync } from '../../src/node/sync.js';
import { cleanTrees, materialize } from '../support/loki-tree.js';
import { startWorker, SYNC_TOKEN, type TestWorker } from '../support/worker.js';
import { cleanTemps, freePort, NGINX, loadYaml, MONITORING, run, start, prometheusApi, startPrometheus, stopAll, substitute, swap, tempDir, waitFor, type Tracked } from './support.js';

const TOKEN = 'proxy-token-0123456789abcdef';
const EXPORTER_TOKEN = 'exporter-token-0123456789abcdef';
const WRONG = 'wrong-token-0123456789abcdef00';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
interface Target { labels: Record<string, string>; discoveredLabels: Record<string, string>; scrapePool: string; scrapeUrl: string; health: string; lastError: string }
interface Sample { metric: Record<string, string>; value: [number, string] }

const servers: { server: RunningServer; store: FsStateStore }[] = [];
let prom = '';
let nginx: Tracked | undefined;
/** host:port of each exporter / proxy. */
const at = { running: '', paused: '', token: '', proxy: '', text004: '', worker: '', live: '' };
/** The `.loki` tree behind at.live, which the tests change as a real run would. */
let liveDir = '';
const LIVE_JOB = 'loki-mode-live';
let worker: TestWorker | undefined;

async function serve(dir: string, env: Record<string, string> = {}): Promise<string> {
  const store = new FsStateStore(dir);
  const server = await startServer({ ...parseConfig({ LOKI_DIR: dir, ...env }), port: 0 }, store, () => undefined);
  servers.push({ server, store });
  return `127.0.0.1:${server.port}`;
}

/** The scrape_configs entry of a shipped scrape config file, as data. */
function shippedJob(file: string): Json {
  const config = loadYaml(join(MONITORING, 'prometheus', file)) as Json;
  const jobs = config.scrape_configs as Json[];
  expect(jobs).toHaveLength(1);
  return jobs[0] as Json;
}

const api = <T>(path: string): Promise<T> => prometheusApi<T>(prom, path);

async function query(expr: string): Promise<Sample[]> {
  const data = await api<{ resultType: string; result: Sample[] }>(`/api/v1/query?query=${encodeURIComponent(expr)}`);
  return data.resultType === 'scalar' ? [{ metric: {}, value: data.result as unknown as [number, string] }] : data.result;
}

async function targets(): Promise<{ activeTargets: Target[]; droppedTargets: { discoveredLabels: Record<string, string> }[] }> {
  return api('/api/v1/targets');
}

/** Waits until every target of `job` has been scraped once, and returns them. */
async function scraped(job: string, count = 1): Promise<Target[]> {
  return waitFor(`targets of ${job} to be scraped`, async () => {
    const all = (await targets()).activeTargets.filter((t) => t.labels.job === job);
    return all.length === count && all.every((t) => t.health !== 'unknown') ? all : undefined;
  }, 30_000);
}

/** The value of `expr` once it has exactly one sample. */
async function value(expr: string): Promise<number> {
  const result = await waitFor(`a sample for ${expr}`, async () => {
    const r = await query(expr);
    return r.length === 1 ? r : undefined;
  }, 15_000);
  return Number(result[0]!.value[1]);
}

beforeAll(async () => {
  const work = await tempDir('loki-prom-');
  const running = await materialize('running', { pid: 'alive', mtimeMs: Date.now() });
  const paused = await materialize('paused', { pid: 'alive', mtimeMs: Date.now() });
  at.running = await serve(running);
  at.paused = await serve(paused);
  at.token = await serve(running, { LOKI_METRICS_TOKEN: EXPORTER_TOKEN });
  // Loki Mode 9.x (cache tokens, receipts, the pids/ registry), its runner alive: this process.
  liveDir = await materialize('v9-running', { registry: { wrapper: 'alive', helpers: 'alive' }, mtimeMs: Date.now() });
  at.live = await serve(liveDir);

  // Secrets as Prometheus reads them: one token per file.
  const secret = async (name: string, text: string) => {
    const path = join(work, name);
    await writeFile(path, `${text}\n`, { mode: 0o600 });
    return path;
  };
  const rightProxy = await secret('proxy.token', TOKEN);
  const rightExporter = await secret('exporter.token', EXPORTER_TOKEN);
  const wrong = await secret('wrong.token', WRONG);

  // nginx: the shipped server block with a throwaway certificate, plus a test-only plain server
  // that forces text 0.0.4 (Prometheus 2.42 has no scrape_protocols) for the comparison job.
  const crt = join(work, 'tls.crt');
  const key = join(work, 'tls.key');
  const tls = run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', crt, '-days', '1',
    '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost']);
  expect(tls.status, tls.output).toBe(0);
  at.proxy = `127.0.0.1:${await freePort()}`;
  at.text004 = `127.0.0.1:${await freePort()}`;
  const site = substitute(await readFile(join(MONITORING, 'nginx/loki-metrics.conf'), 'utf8'), [
    ['listen 9443 ssl;', `listen ${at.proxy} ssl;`],
    ['/etc/nginx/tls/loki-metrics.crt', crt],
    ['/etc/nginx/tls/loki-metrics.key', key],
    ['CHANGE_ME_LONG_RANDOM_TOKEN', TOKEN],
    ['http://127.0.0.1:57373', `http://${at.running}`],
  ]);
  await writeFile(join(work, 'site.conf'), site);
  await mkdir(join(work, 'nginx-temp'));
  const t = join(work, 'nginx-temp');
  await writeFile(join(work, 'nginx.conf'), `
worker_processes 1;
master_process off;
daemon off;
error_log stderr warn;
pid ${join(work, 'nginx.pid')};
events { worker_connections 64; }
http {
  client_body_temp_path ${t}/body; proxy_temp_path ${t}/proxy; fastcgi_temp_path ${t}/fastcgi;
  uwsgi_temp_path ${t}/uwsgi; scgi_temp_path ${t}/scgi;
  access_log off;
  include ${join(work, 'site.conf')};
  server {
    listen ${at.text004};
    location = /metrics {
      proxy_pass http://${at.running};
      proxy_set_header Accept "text/plain; version=0.0.4";
    }
  }
}
`);
  const nginxArgs = ['-e', 'stderr', '-p', work, '-c', join(work, 'nginx.conf')];
  const check = run(NGINX, [...nginxArgs, '-t']);
  expect(check.status, check.output).toBe(0);
  nginx = start(NGINX, nginxArgs);

  // Prometheus: the shipped jobs, renamed per variant, with test addresses and 1 s intervals.
  const fast = (job: Json, name: string): Json => ({ ...job, job_name: name, scrape_interval: '1s', scrape_timeout: '1s' });
  const jobs: Json[] = [];

  const plain = shippedJob('scrape-plain.yml');
  const plainTargets = plain.static_configs[0];
  swap(plainTargets, 'targets', ['127.0.0.1:57373'], [at.running, at.paused]);
  jobs.push(fast(plain, 'loki-mode'));
  jobs.push(fast({ ...plain, static_configs: [{ ...plainTargets, targets: [at.text004] }] }, 'loki-mode-text004'));
  jobs.push(fast({ ...plain, static_configs: [{ ...plainTargets, targets: [at.live] }] }, LIVE_JOB));

  const proxied = shippedJob('scrape-proxy-bearer.yml');
  swap(proxied.static_configs[0], 'targets', ['loki.example.com:9443'], [at.proxy]);
  swap(proxied.tls_config, 'ca_file', '/etc/prometheus/secrets/loki-metrics-ca.crt', crt);
  swap(proxied.authorization, 'credentials_file', '/etc/prometheus/secrets/loki-metrics.token', rightProxy);
  jobs.push(fast(proxied, 'loki-mode-proxy'));
  jobs.push(fast({ ...proxied, authorization: { ...proxied.authorization, credentials_file: wrong } }, 'loki-mode-proxy-wrong-token'));

  const tokened = shippedJob('scrape-exporter-token.yml');
  swap(tokened.static_configs[0], 'targets', ['127.0.0.1:57373'], [at.token]);
  swap(tokened.authorization, 'credentials_file', '/etc/prometheus/secrets/loki-metrics.token', rightExporter);
  jobs.push(fast(tokened, 'loki-mode-token'));
  jobs.push(fast({ ...tokened, authorization: { ...tokened.authorization, credentials_file: wrong } }, 'loki-mode-token-wrong-token'));

  // The Worker's ?session= relabelling, against the real Worker in workerd with two synced sessions
  // (alpha = the running fixture, beta = the paused one) behind its own scrape token.
  worker = await startWorker({ vars: { LOKI_METRICS_TOKEN: EXPORTER_TOKEN } });
  at.worker = new URL(worker.url).host;
  for (const [session, dir] of [['alpha', running], ['beta', paused]] as const) {
    const code = await runSync({ url: worker.url, session, dir, token: SYNC_TOKEN, intervalMs: 1000, once: true, log: () => undefined });
    expect(code).toBe(0);
  }
  const sessions = shippedJob('scrape-worker-sessions.yml');
  swap(sessions, 'scheme', 'https', 'http');
  swap(sessions.authorization, 'credentials_file', '/etc/prometheus/secrets/loki-metrics.token', rightExporter);
  const toWorker = (sessions.relabel_configs as Json[]).find((r) => r.target_label === '__address__')!;
  swap(toWorker, 'replacement', 'loki-metrics.example.workers.dev:443', at.worker);
  jobs.push(fast(sessions, 'loki-mode-sessions'));

  // Kubernetes pod SD (not compiled into Debian's Prometheus): the same relabelling fed with the
  // meta labels pod SD would produce, for one matching pod and one that must be dropped.
  const k8s = shippedJob('scrape-kubernetes.yml');
  swap(k8s.authorization, 'credentials_file', '/etc/prometheus/secrets/loki-metrics.token', rightExporter);
  const toPod = (k8s.relabel_configs as Json[]).find((r) => r.target_label === '__address__')!;
  swap(toPod, 'replacement', '$1:57373', `$1:${at.token.split(':')[1]}`);
  const pod = (name: string, app: string) => ({
    targets: [`${name}-discovered`],
    labels: { __meta_kubernetes_pod_label_app: app, __meta_kubernetes_pod_ip: '127.0.0.1', __meta_kubernetes_namespace: 'loki', __meta_kubernetes_pod_name: name, __meta_kubernetes_pod_phase: 'Running' },
  });
  delete k8s.kubernetes_sd_configs;
  k8s.static_configs = [pod('loki-0', 'loki-mode'), pod('web-0', 'web')];
  jobs.push(fast(k8s, 'loki-mode-k8s'));

  // The shipped rule files, as scrape-plain.yml names them, evaluated every second here.
  const ruleFiles = (loadYaml(join(MONITORING, 'prometheus/scrape-plain.yml')) as Json).rule_files as string[];
  expect(ruleFiles).toEqual(['loki-alerts.yml', 'loki-recording.yml']);
  const ruleCopies: string[] = [];
  for (const file of ruleFiles) {
    const rules = loadYaml(join(MONITORING, 'prometheus', file)) as Json;
    for (const group of rules.groups as Json[]) group.interval = '1s';
    ruleCopies.push(join(work, file));
    await writeFile(join(work, file), JSON.stringify(rules));
  }

  const config = { global: { scrape_interval: '1s', evaluation_interval: '1s' }, rule_files: ruleCopies, scrape_configs: jobs };
  prom = (await startPrometheus(work, config)).url;
}, 60_000);

afterAll(async () => {
  await stopAll();
  await worker?.dispose();
  for (const { server, store } of servers.splice(0)) {
    await server.close();
    await store.close();
  }
  await cleanTrees();
  await cleanTemps();
});

/** Every family's value on the running fixture, as Prometheus stored it. */
async function expectRunningFixture(selector: string) {
  const v = (name: string, extra = '') => value(`${name}{${selector}${extra}}`);
  expect(await v('loki_session_status')).toBe(1);
  expect(await v('loki_iteration_current')).toBe(6);
  expect(await v('loki_iteration_max')).toBe(1000);
  for (const [status, n] of [['pending', 3], ['in_progress', 2], ['completed', 5], ['failed', 1]] as const) {
    expect(await v('loki_tasks_total', `, status="${status}"`)).toBe(n);
  }
  expect(await v('loki_agents_active')).toBe(3);
  expect(await v('loki_agents_total')).toBe(6);
  expect(await v('loki_cost_usd')).toBeCloseTo(3.5313, 6);
  expect(await v('loki_events_total')).toBe(50);
  expect(await v('loki_uptime_seconds')).toBeGreaterThan(0);
  expect(await v('loki_up')).toBe(1);
  expect(await v('loki_budget_limit_usd')).toBe(25);
  expect(await v('loki_budget_exceeded')).toBe(0);
  const ok = await query(`loki_source_ok{${selector}}`);
  // As many sources as the exporter itself reports (the list grows with Loki Mode's files).
  const exposed = (await (await fetch(`http://${at.running}/metrics`)).text()).match(/^loki_source_ok\{/gm) ?? [];
  expect(exposed.length).toBeGreaterThanOrEqual(10);
  expect(ok).toHaveLength(exposed.length);
  expect(ok.every((s) => s.value[1] === '1')).toBe(true);
  const mtimes = await query(`loki_source_mtime_seconds{${selector}}`);
  expect(mtimes.length).toBeGreaterThanOrEqual(9);
  for (const s of mtimes) {
    // Every file was written (or dated) when the tree was made, loki.pid too: a live runner writes
    // it after it starts, and the exporter checks that on Linux.
    expect(Math.abs(Number(s.value[1]) - Date.now() / 1000), s.metric.source).toBeLessThan(600);
  }
  const build = await query(`loki_exporter_build_info{${selector}}`);
  expect(build).toHaveLength(1);
  expect(build[0]!.metric.version).toMatch(/^\d+\.\d+\.\d+/);
  expect(build[0]!.value[1]).toBe('1');
}

describe('Prometheus scraping the exporter directly (scrape-plain.yml)', () => {
  it('has healthy targets and every family has the fixture\'s value', async () => {
    const up = await scraped('loki-mode', 2);
    expect(up.map((t) => [t.health, t.lastError])).toEqual([['up', ''], ['up', '']]);
    expect(up[0]!.labels).toMatchObject({ environment: 'production', project: 'my-app' });
    await expectRunningFixture(`job="loki-mode", instance="${at.running}"`);
    const paused = (name: string) => value(`${name}{job="loki-mode", instance="${at.paused}"}`);
    expect(await paused('loki_session_status')).toBe(2);
    expect(await paused('loki_budget_exceeded')).toBe(1);
    expect(await paused('loki_budget_limit_usd')).toBe(5);
    expect(await paused('loki_cost_usd')).toBeCloseTo(5.0421, 6);
  }, 40_000);

  it('negotiated OpenMetrics (metadata has the info type and the counter family loki_events)', async () => {
    await scraped('loki-mode', 2);
    await scraped('loki-mode-text004');
    type Meta = { target: Record<string, string>; metric: string; type: string }[];
    const meta = async (job: string) =>
      waitFor(`metadata for ${job}`, async () => {
        const m = await api<Meta>(`/api/v1/targets/metadata?match_target=${encodeURIComponent(`{job="${job}"}`)}`);
        return m.length > 0 ? Object.fromEntries(m.filter((x) => x.target.instance !== at.paused).map((x) => [x.metric, x.type])) : undefined;
      });
    const om = await meta('loki-mode');
    expect(om.loki_exporter_build).toBe('info');
    expect(om.loki_events).toBe('counter');
    expect(om.loki_events_total).toBeUndefined();
    expect(om.loki_session_status).toBe('gauge');
    // The same exporter forced to text 0.0.4 by the test proxy: what Prometheus reports without
    // OpenMetrics, so the assertions above really tell the two apart.
    const text = await meta('loki-mode-text004');
    expect(text.loki_exporter_build_info).toBe('gauge');
    expect(text.loki_events_total).toBe('counter');
    expect(text.loki_events).toBeUndefined();
  }, 40_000);
});

describe('Prometheus through nginx with a proxy-checked bearer token (scrape-proxy-bearer.yml, nginx/loki-metrics.conf)', () => {
  it('the right token gives a healthy target with the fixture\'s values over TLS', async () => {
    const [target] = await scraped('loki-mode-proxy');
    expect(target!.scrapeUrl).toBe(`https://${at.proxy}/metrics`);
    expect([target!.health, target!.lastError]).toEqual(['up', '']);
    await expectRunningFixture('job="loki-mode-proxy"');
  }, 40_000);

  it('a wrong token gives Prometheus a 401 target error', async () => {
    const [target] = await scraped('loki-mode-proxy-wrong-token');
    expect(target!.health).toBe('down');
    expect(target!.lastError).toMatch(/401/);
    expect(await value('up{job="loki-mode-proxy-wrong-token"}')).toBe(0);
    expect(nginx?.child.exitCode).toBeNull();
  }, 40_000);
});

describe('Prometheus with the exporter\'s own LOKI_METRICS_TOKEN (scrape-exporter-token.yml)', () => {
  it('the right token gives a healthy target with the fixture\'s values', async () => {
    const [target] = await scraped('loki-mode-token');
    expect([target!.health, target!.lastError]).toEqual(['up', '']);
    await expectRunningFixture('job="loki-mode-token"');
  }, 40_000);

  it('a wrong token gives Prometheus a 401 target error', async () => {
    const [target] = await scraped('loki-mode-token-wrong-token');
    expect(target!.health).toBe('down');
    expect(target!.lastError).toMatch(/401/);
  }, 40_000);
});

describe('relabelling recipes', () => {
  it('scrape-worker-sessions.yml scrapes each synced session from the Worker (workerd) with session and instance labels', async () => {
    const all = await scraped('loki-mode-sessions', 2);
    const bySession = Object.fromEntries(all.map((t) => [t.labels.session, t]));
    for (const [name, status, events] of [['alpha', 1, 50], ['beta', 2, 18]] as const) {
      const target = bySession[name]!;
      expect(target.scrapeUrl).toBe(`http://${at.worker}/metrics?session=${name}`);
      expect(target.labels.instance).toBe(`${at.worker}/${name}`);
      expect([target.health, target.lastError]).toEqual(['up', '']);
      // Each session's own values, served by the Worker from synced state.
      expect(await value(`loki_session_status{job="loki-mode-sessions", session="${name}"}`)).toBe(status);
      expect(await value(`loki_events_total{job="loki-mode-sessions", session="${name}"}`)).toBe(events);
      expect(await value(`loki_last_sync_timestamp_seconds{job="loki-mode-sessions", session="${name}"}`)).toBeGreaterThan(0);
    }
  }, 40_000);

  it('scrape-kubernetes.yml keeps app=loki-mode pods on port 57373\'s replacement and drops the rest', async () => {
    const [target] = await scraped('loki-mode-k8s');
    expect(target!.labels).toMatchObject({ namespace: 'loki', pod: 'loki-0', instance: at.token });
    expect([target!.health, target!.lastError]).toEqual(['up', '']);
    const dropped = (await targets()).droppedTargets.filter((t) => t.discoveredLabels.job === 'loki-mode-k8s');
    expect(dropped.map((t) => t.discoveredLabels.__meta_kubernetes_pod_name)).toEqual(['web-0']);
  }, 40_000);
});

describe('the shipped alert rules on live data', () => {
  it('load and evaluate without errors; the budget alerts fire for the paused fixture only', async () => {
    await scraped('loki-mode', 2);
    const groups = await waitFor('rules to be evaluated', async () => {
      const data = await api<{ groups: { rules: { name: string; health: string; lastError?: string }[] }[] }>('/api/v1/rules');
      const rules = data.groups.flatMap((g) => g.rules);
      return rules.length > 0 && rules.every((r) => r.health !== 'unknown') ? rules : undefined;
    });
    expect(groups.map((r) => [r.name, r.health, r.lastError ?? ''])).toEqual(groups.map((r) => [r.name, 'ok', '']));
    const firing = await waitFor('budget alerts', async () => {
      const { alerts } = await api<{ alerts: { labels: Record<string, string>; state: string }[] }>('/api/v1/alerts');
      const list = alerts.filter((a) => a.labels.job === 'loki-mode').map((a) => `${a.labels.alertname} ${a.labels.instance} ${a.state}`).sort();
      return list.length >= 2 ? list : undefined;
    });
    expect(firing).toEqual([`LokiBudgetCritical ${at.paused} firing`, `LokiBudgetWarning ${at.paused} firing`]);
  }, 40_000);
});

// ---- a run that moves: the live tree (at.live, job LIVE_JOB) changes as Loki Mode changes it

interface Iteration {
  model: string;
  status: string;
  duration_ms: number;
  input_tokens: number;
  output_tokens: number;
  cache_read_tokens: number;
  cache_creation_tokens: number;
  cost_usd: number;
}

/** metrics/efficiency/iteration-N.json, as Loki Mode writes it when an iteration ends. */
async function finishIteration(n: number, record: Iteration): Promise<void> {
  const dir = join(liveDir, 'metrics/efficiency');
  await mkdir(dir, { recursive: true });
  const tmp = join(dir, `iteration-${n}.json.tmp`); // not *.json: not an entry until renamed
  await writeFile(tmp, JSON.stringify({ iteration: n, phase: 'DEVELOPMENT', provider: 'claude', timestamp: new Date().toISOString(), ...record }));
  await rename(tmp, join(dir, `iteration-${n}.json`));
}

/** A run start: Loki Mode empties metrics/efficiency/, so the per-model counters drop to 0. */
async function startNewRun(): Promise<void> {
  const dir = join(liveDir, 'metrics/efficiency');
  for (const name of await readdir(dir)) await rm(join(dir, name));
}

/** proofs/<run>/proof.json, the sub-directory appearing with its file. */
async function writeReceipt(run: string, proof: Json): Promise<void> {
  const tmp = join(liveDir, 'proofs', `.${run}.tmp`); // dot-names are not entries
  await mkdir(tmp, { recursive: true });
  await writeFile(join(tmp, 'proof.json'), JSON.stringify(proof));
  await rename(tmp, join(liveDir, 'proofs', run));
}

/** Waits until Prometheus has stored `want` for `expr` (a scrape has seen the change). */
async function stored(expr: string, want: number): Promise<void> {
  await waitFor(`${expr} == ${want}`, async () => {
    const r = await query(expr);
    return r.length === 1 && Number(r[0]!.value[1]) === want ? true : undefined;
  }, 15_000);
}

/** The single sample of `expr` once it is above 0 (a rule evaluated after the change). */
async function positive(expr: string): Promise<number> {
  const r = await waitFor(`${expr} > 0`, async () => {
    const s = await query(expr);
    return s.length === 1 && Number(s[0]!.value[1]) > 0 ? s : undefined;
  }, 15_000);
  return Number(r[0]!.value[1]);
}

const liveSelector = () => `job="${LIVE_JOB}", instance="${at.live}"`;

interface LiveRun {
  /** The v9-running fixture as Prometheus stored it, before anything changes. */
  readonly baseline: { tokens: Record<string, number>; costByModel: Record<string, number>; iterations: Record<string, number>; durationCount: number };
  /** Recording rules after one failed iteration with prompt caching (same run). */
  readonly before: { cacheHit: number; failedRatio: number; sonnetCostPerHour: number; tokenRates: Record<string, number> };
  /** After the run start and the new run's first iteration. */
  readonly after: { resets: number; cacheReadIncrease: number; sonnetCostPerHour: number; negative: Sample[] };
}

let liveRun: Promise<LiveRun> | undefined;

/** `expr`'s samples as { label value: number } (label: the one that tells them apart). */
async function byLabel(expr: string, label: string): Promise<Record<string, number>> {
  return Object.fromEntries((await query(expr)).map((s) => [s.metric[label], Number(s.value[1])]));
}

/**
 * Drives the live tree once (shared by the tests that need it): the v9-running fixture's run
 * finishes iteration 4 (failed, with prompt caching), two receipts appear, then a new run starts
 * (metrics/efficiency/ emptied: sonnet input tokens 1001000 -> 0 -> 50) and finishes its first
 * iteration.
 */
function driveLiveRun(): Promise<LiveRun> {
  liveRun ??= (async () => {
    const live = liveSelector();
    const sonnet = (type: string) => `loki_model_tokens_total{${live}, family="sonnet", model="sonnet", type="${type}"}`;
    await scraped(LIVE_JOB);
    // Two scrapes of the fixture as it is, so what follows is an increase of existing series (the
    // first sample of a new series is no increase to rate()).
    await waitFor('two scrapes of the live tree', async () =>
      (await query(`count_over_time(${sonnet('cache_read')}[1m]) >= 2`)).length === 1 ? true : undefined);
    const baseline = {
      tokens: await byLabel(`sum by (type) (loki_model_tokens_total{${live}})`, 'type'),
      costByModel: await byLabel(`loki_model_cost_usd_total{${live}}`, 'model'),
      iterations: await byLabel(`loki_iterations_total{${live}}`, 'outcome'),
      durationCount: await value(`loki_iteration_duration_seconds_count{${live}}`),
    };

    await finishIteration(4, {
      model: 'sonnet', status: 'failed', duration_ms: 90_000,
      input_tokens: 1000, output_tokens: 200, cache_read_tokens: 3000, cache_creation_tokens: 500, cost_usd: 0.25,
    });
    await stored(sonnet('cache_read'), 2_003_000);
    await stored(sonnet('input'), 1_001_000);
    const before = {
      cacheHit: await positive(`loki:model_cache_hit:ratio_rate5m{${live}}`),
      failedRatio: await positive(`loki:iterations_failed:ratio_rate1h{${live}}`),
      sonnetCostPerHour: await positive(`loki:model_cost_usd_per_hour:rate5m{${live}, model="sonnet"}`),
      tokenRates: Object.fromEntries(
        await Promise.all(['input', 'output', 'cache_read', 'cache_creation'].map(async (type) => [type, await positive(`loki:model_tokens:rate5m{${live}, type="${type}"}`)] as const)),
      ),
    };

    await writeReceipt('run-20260214120000-1006-0006', { schema_version: '1.1', honesty: { headline: 'VERIFIED' }, verification: { attestation: { predicateType: 'https://slsa.dev/provenance/v1' } } });
    await writeReceipt('run-20260214130000-1007-0007', { schema_version: '1.0', verification: { gpg_signature: null } });
    await stored(`loki_receipts_total{${live}}`, 7);

    await startNewRun();
    await stored(sonnet('input'), 0);
    await stored(`loki_cost_usd{${live}}`, 0);
    await finishIteration(1, {
      model: 'sonnet', status: 'completed', duration_ms: 45_000,
      input_tokens: 50, output_tokens: 10, cache_read_tokens: 150, cache_creation_tokens: 0, cost_usd: 0.05,
    });
    await stored(sonnet('input'), 50);
    await stored(sonnet('cache_read'), 150);
    // Rules evaluated after the scrape that saw the new run's iteration.
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    const after = {
      resets: await value(`resets(${sonnet('input')}[5m])`),
      cacheReadIncrease: await value(`increase(${sonnet('cache_read')}[5m])`),
      sonnetCostPerHour: await value(`loki:model_cost_usd_per_hour:rate5m{${live}, model="sonnet"}`),
      // Every recorded value since the live tree was first scraped, and increase() now, never below 0.
      negative: await query(
        `min_over_time(loki:model_cost_usd_per_hour:rate5m{${live}}[5m]) < 0
         or min_over_time(loki:model_tokens:rate5m{${live}}[5m]) < 0
         or min_over_time(loki:model_cache_hit:ratio_rate5m{${live}}[5m]) < 0
         or min_over_time(loki:iterations_failed:ratio_rate1h{${live}}[5m]) < 0
         or increase(loki_model_tokens_total{${live}}[5m]) < 0
         or increase(loki_model_cost_usd_total{${live}}[5m]) < 0
         or increase(loki_iterations_total{${live}}[5m]) < 0`,
      ),
    };
    return { baseline, before, after };
  })();
  return liveRun;
}

describe('the recording rules and the 9.x alerts on a run that moves (loki-recording.yml, loki-alerts.yml)', () => {
  it('store the 9.x families as exposed (v9-running fixture), then record the live rates and stay right across a run start', async () => {
    const { baseline, before, after } = await driveLiveRun();
    // The fixture through a real scrape (OpenMetrics: counters as _total samples, the histogram's
    // _count); the same values test/collect.test.ts expects from the collector.
    expect(baseline.tokens).toEqual({ input: 1.3e6, output: 1.5e5, cache_read: 3e6, cache_creation: 5e5 });
    expect(baseline.costByModel).toEqual({ sonnet: 6.6, 'claude-opus-4-6': 2.5, fable: 2.75 });
    expect(baseline.iterations).toEqual({ completed: 2, failed: 1 });
    expect(baseline.durationCount).toBe(3);
    // 3000 cache reads of 1000 + 3000 + 500 prompt tokens (every series extrapolated alike).
    expect(before.cacheHit).toBeCloseTo(2 / 3, 9);
    expect(before.failedRatio).toBe(1); // one failed, none completed since the live tree was first scraped
    expect(before.sonnetCostPerHour).toBeGreaterThan(0);
    expect(Object.keys(before.tokenRates).sort()).toEqual(['cache_creation', 'cache_read', 'input', 'output']);
    // After the run start: Prometheus saw the drop as a counter reset, increase() counts both runs'
    // cache reads (3000 + 150, extrapolated up a little, never down, and not the 2 million the
    // drop would add if it were taken for an increase), nothing is negative.
    expect(after.resets).toBe(1);
    expect(after.cacheReadIncrease).toBeGreaterThanOrEqual(3150);
    expect(after.cacheReadIncrease).toBeLessThan(5000);
    expect(after.sonnetCostPerHour).toBeGreaterThan(0);
    expect(after.negative).toEqual([]);
  }, 90_000);

  it('count the receipts by verdict and provenance, and LokiReceiptsUnknownShareHigh matches them (pending)', async () => {
    await driveLiveRun();
    const live = liveSelector();
    // v9-running's five (VERIFIED, WITH GAPS, NOT VERIFIED, a 1.0 receipt, a lower-case headline)
    // plus the two written here (VERIFIED with an attestation, a 1.0 receipt).
    expect(await byLabel(`loki_receipts_by_verdict{${live}}`, 'verdict')).toEqual({ verified: 2, with_gaps: 1, not_verified: 1, unknown: 3 });
    expect(await byLabel(`loki_receipts_with_provenance{${live}}`, 'kind')).toEqual({ attestation: 3, gpg: 2 });
    type Alert = { labels: Record<string, string>; annotations: Record<string, string>; state: string };
    const alert = await waitFor('LokiReceiptsUnknownShareHigh at 3 of 7 on the live target', async () => {
      const { alerts } = await api<{ alerts: Alert[] }>('/api/v1/alerts');
      const found = alerts.find((a) => a.labels.alertname === 'LokiReceiptsUnknownShareHigh' && a.labels.job === LIVE_JOB);
      return found?.annotations.description?.includes('42.86%') ? found : undefined;
    });
    expect(alert.state).toBe('pending'); // `for: 15m`
    expect(alert.labels).toMatchObject({ instance: at.live, severity: 'warning', environment: 'production' });
    expect(alert.labels.verdict).toBeUndefined();
    // scrape-plain.yml's static `project: my-app` label names the project in the description.
    expect(alert.labels.project).toBe('my-app');
    expect(alert.annotations.description).toBe(`${at.live} (project my-app): 42.86% of the receipts in proofs/ have an unknown verdict.`);
    // Receipts written minutes ago are no stall; one failed iteration is too few to alert on.
    const { alerts } = await api<{ alerts: Alert[] }>('/api/v1/alerts');
    expect(alerts.filter((a) => a.labels.job === LIVE_JOB && /ReceiptsStalled|IterationFailure/.test(a.labels.alertname ?? ''))).toEqual([]);
  }, 90_000);
});

/**
 * Runs every dashboard query for one job, project and instance (`project` as Grafana substitutes
 * it: a value, or `.*` for All); returns the panels whose query had no data. Rows have no queries.
 */
async function dashboardQueries(job: string, project: string, instance: string, timeoutMs: number): Promise<string[]> {
  const dashboard = JSON.parse(await readFile(join(MONITORING, 'grafana/loki-mode-dashboard.json'), 'utf8')) as Json;
  const exprs = (dashboard.panels as Json[]).flatMap((p) => ((p.targets ?? []) as Json[]).map((t) => [`${p.title as string} ${t.refId as string}`, t.expr as string] as const));
  expect(exprs.length).toBeGreaterThanOrEqual(30);
  const empty: string[] = [];
  for (const [title, expr] of exprs) {
    const concrete = expr
      .replaceAll('$job', job)
      .replaceAll('$project', project)
      .replaceAll('$instance', instance.replaceAll('.', '\\\\.'))
      .replaceAll('$session', '.*')
      .replaceAll('$__rate_interval', '1m');
    expect(concrete, `${title}: unknown variable`).not.toMatch(/\$/);
    let result: Sample[] = [];
    try {
      result = await waitFor(`data for ${title}: ${concrete}`, async () => {
        const r = await query(concrete);
        return r.length > 0 ? r : undefined;
      }, timeoutMs);
    } catch {
      empty.push(title);
    }
    for (const s of result) expect(Number.isFinite(Number(s.value[1])), `${title}: ${s.value[1]}`).toBe(true);
  }
  return empty;
}

describe('the Grafana dashboard (grafana/loki-mode-dashboard.json)', () => {
  it('every query returns data for the live test job and instance', async () => {
    // The v9-running fixture, moved on by a failed iteration with cache tokens, receipts and a new
    // run (see driveLiveRun).
    await driveLiveRun();
    // Wait for two scrapes of the events counter so rate() has something to work with.
    await waitFor('two samples of loki_events_total', async () =>
      (await query(`count_over_time(loki_events_total{${liveSelector()}}[1m]) >= 3`)).length === 1 ? true : undefined);
    // scrape-plain.yml labels its targets project="my-app": the project variable set to it.
    expect(await dashboardQueries(LIVE_JOB, 'my-app', at.live, 10_000)).toEqual([]);
    // The template variables' own queries.
    const dashboard = JSON.parse(await readFile(join(MONITORING, 'grafana/loki-mode-dashboard.json'), 'utf8')) as Json;
    for (const variable of (dashboard.templating.list as Json[]).filter((v) => v.type === 'query')) {
      const match = /^label_values\((.*), (\w+)\)$/.exec(variable.definition as string);
      expect(match, variable.name as string).not.toBeNull();
      const selector = match![1]!.replaceAll('$job', 'loki-mode').replaceAll('$project', '.*').replaceAll('$instance', '.*');
      expect(selector, `${variable.name as string}: unknown variable`).not.toMatch(/\$/);
      const values = await api<string[]>(`/api/v1/label/${match![2]}/values?match[]=${encodeURIComponent(selector)}`);
      if (variable.name === 'project') expect(values).toEqual(['my-app']); // scrape-plain.yml's static label
      else if (variable.name !== 'session') expect(values.length, variable.name as string).toBeGreaterThan(0);
    }
  }, 120_000);

  it('on a tree that does not change, only the ratio and quantile panels are empty (0/0 is no data, not NaN)', async () => {
    await waitFor('two samples of loki_events_total', async () =>
      (await query(`count_over_time(loki_events_total{job="loki-mode", instance="${at.running}"}[1m]) >= 3`)).length === 1 ? true : undefined);
    // Rates of 0 are data; a share of no new tokens, or a quantile of no new iterations, is not.
    // The project variable at All (`.*`, which also matches targets without a project label).
    expect(await dashboardQueries('loki-mode', '.*', at.running, 3_000)).toEqual(['Cache hit ratio A', 'Iteration duration A', 'Iteration duration B']);
    // A single-project exporter whose targets have no project label at all (scrape-exporter-token.yml):
    // project=~".*" matches the absent label, so the same panels have data.
    await scraped('loki-mode-token');
    expect((await query(`loki_up{job="loki-mode-token", project!=""}`))).toEqual([]);
    await waitFor('two samples of loki_events_total', async () =>
      (await query(`count_over_time(loki_events_total{job="loki-mode-token"}[1m]) >= 3`)).length === 1 ? true : undefined);
    expect(await dashboardQueries('loki-mode-token', '.*', at.token, 3_000)).toEqual(['Cache hit ratio A', 'Iteration duration A', 'Iteration duration B']);
  }, 120_000);
});
