/**
 * End to end: the Node exporter on sample .loki trees, scraped by a real Prometheus (Debian's
 * 2.42) directly, through nginx with TLS and a proxy-checked bearer token, and with the exporter's
 * own LOKI_METRICS_TOKEN, all on 127.0.0.1, using the shipped files under monitoring/ (only
 * addresses, paths, tokens and intervals replaced). Also runs every Grafana dashboard query and
 * the shipped alert rules against the live data. One Prometheus serves every job.
 */
import { readFile, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config.js';
import { startServer, type RunningServer } from '../../src/node/server.js';
import { FsStateStore } from '../../src/stores/fs.js';
import { runSync } from '../../src/node/sync.js';
import { cleanTrees, materialize } from '../support/loki-tree.js';
import { startWorker, SYNC_TOKEN, type TestWorker } from '../support/worker.js';
import { cleanTemps, freePort, NGINX, loadYaml, MONITORING, run, start, stopAll, substitute, tempDir, waitFor, type Tracked } from './support.js';

const TOKEN = 'proxy-token-0123456789abcdef';
const EXPORTER_TOKEN = 'exporter-token-0123456789abcdef';
const WRONG = 'wrong-token-0123456789abcdef00';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
interface Target { labels: Record<string, string>; discoveredLabels: Record<string, string>; scrapePool: string; scrapeUrl: string; health: string; lastError: string }
interface Sample { metric: Record<string, string>; value: [number, string] }

const servers: { server: RunningServer; store: FsStateStore }[] = [];
let prom = '';
let prometheus: Tracked | undefined;
let nginx: Tracked | undefined;
/** host:port of each exporter / proxy. */
const at = { running: '', paused: '', token: '', proxy: '', text004: '', worker: '' };
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

/** Replaces a shipped value, asserting it was the one shipped (so drift fails loudly). */
function swap(obj: Json, key: string, shipped: unknown, value: unknown): void {
  expect(obj[key], `shipped ${key}`).toEqual(shipped);
  obj[key] = value;
}

async function api<T>(path: string): Promise<T> {
  const res = await fetch(`${prom}${path}`, { signal: AbortSignal.timeout(5_000) });
  const body = (await res.json()) as { status: string; data: T; error?: string };
  if (body.status !== 'success') throw new Error(`${path}: ${body.error ?? res.status}`);
  return body.data;
}

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
    ['http://127.0.0.1:57374', `http://${at.running}`],
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
  swap(plainTargets, 'targets', ['127.0.0.1:57374'], [at.running, at.paused]);
  jobs.push(fast(plain, 'loki-mode'));
  jobs.push(fast({ ...plain, static_configs: [{ ...plainTargets, targets: [at.text004] }] }, 'loki-mode-text004'));

  const proxied = shippedJob('scrape-proxy-bearer.yml');
  swap(proxied.static_configs[0], 'targets', ['loki.example.com:9443'], [at.proxy]);
  swap(proxied.tls_config, 'ca_file', '/etc/prometheus/secrets/loki-metrics-ca.crt', crt);
  swap(proxied.authorization, 'credentials_file', '/etc/prometheus/secrets/loki-metrics.token', rightProxy);
  jobs.push(fast(proxied, 'loki-mode-proxy'));
  jobs.push(fast({ ...proxied, authorization: { ...proxied.authorization, credentials_file: wrong } }, 'loki-mode-proxy-wrong-token'));

  const tokened = shippedJob('scrape-exporter-token.yml');
  swap(tokened.static_configs[0], 'targets', ['127.0.0.1:57374'], [at.token]);
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
  swap(toPod, 'replacement', '$1:57374', `$1:${at.token.split(':')[1]}`);
  const pod = (name: string, app: string) => ({
    targets: [`${name}-discovered`],
    labels: { __meta_kubernetes_pod_label_app: app, __meta_kubernetes_pod_ip: '127.0.0.1', __meta_kubernetes_namespace: 'loki', __meta_kubernetes_pod_name: name, __meta_kubernetes_pod_phase: 'Running' },
  });
  delete k8s.kubernetes_sd_configs;
  k8s.static_configs = [pod('loki-0', 'loki-mode'), pod('web-0', 'web')];
  jobs.push(fast(k8s, 'loki-mode-k8s'));

  // The shipped rules, evaluated every second here.
  const rules = loadYaml(join(MONITORING, 'prometheus/loki-alerts.yml')) as Json;
  for (const group of rules.groups as Json[]) group.interval = '1s';
  await writeFile(join(work, 'rules.yml'), JSON.stringify(rules));

  const config = { global: { scrape_interval: '1s', evaluation_interval: '1s' }, rule_files: [join(work, 'rules.yml')], scrape_configs: jobs };
  const configFile = join(work, 'prometheus.yml');
  await writeFile(configFile, JSON.stringify(config, null, 2)); // JSON is YAML
  const promtool = run('promtool', ['check', 'config', configFile]);
  expect(promtool.status, promtool.output).toBe(0);

  const port = await freePort();
  prom = `http://127.0.0.1:${port}`;
  prometheus = start('prometheus', [
    `--config.file=${configFile}`,
    `--storage.tsdb.path=${join(work, 'data')}`,
    `--web.listen-address=127.0.0.1:${port}`,
    '--log.level=warn',
  ]);
  await waitFor('Prometheus to be ready', async () => {
    if (prometheus?.child.exitCode !== null) throw new Error(`prometheus exited: ${prometheus?.output()}`);
    const res = await fetch(`${prom}/-/ready`, { signal: AbortSignal.timeout(2_000) });
    return res.ok ? true : undefined;
  }, 30_000);
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
  expect(ok).toHaveLength(10);
  expect(ok.every((s) => s.value[1] === '1')).toBe(true);
  const mtimes = await query(`loki_source_mtime_seconds{${selector}}`);
  expect(mtimes.length).toBeGreaterThanOrEqual(9);
  for (const s of mtimes) expect(Math.abs(Number(s.value[1]) - Date.now() / 1000)).toBeLessThan(600);
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

  it('scrape-kubernetes.yml keeps app=loki-mode pods on port 57374\'s replacement and drops the rest', async () => {
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

describe('the Grafana dashboard (grafana/loki-mode-dashboard.json)', () => {
  it('every query returns data for the test job and instance', async () => {
    const dashboard = JSON.parse(await readFile(join(MONITORING, 'grafana/loki-mode-dashboard.json'), 'utf8')) as Json;
    const exprs = (dashboard.panels as Json[]).flatMap((p) => (p.targets as Json[]).map((t) => [p.title as string, t.expr as string] as const));
    expect(exprs.length).toBeGreaterThanOrEqual(15);
    // Wait for two scrapes of the events counter so rate() has something to work with.
    await waitFor('two samples of loki_events_total', async () =>
      (await query(`count_over_time(loki_events_total{job="loki-mode", instance="${at.running}"}[1m]) >= 3`)).length === 1 ? true : undefined);
    for (const [title, expr] of exprs) {
      const concrete = expr
        .replaceAll('$job', 'loki-mode')
        .replaceAll('$instance', at.running.replaceAll('.', '\\\\.'))
        .replaceAll('$session', '.*')
        .replaceAll('$__rate_interval', '1m');
      expect(concrete, `${title}: unknown variable`).not.toMatch(/\$/);
      const result = await waitFor(`data for ${title}: ${concrete}`, async () => {
        const r = await query(concrete);
        return r.length > 0 ? r : undefined;
      }, 10_000);
      for (const s of result) expect(Number.isFinite(Number(s.value[1])), `${title}: ${s.value[1]}`).toBe(true);
    }
    // The template variables' own queries.
    for (const variable of (dashboard.templating.list as Json[]).filter((v) => v.type === 'query')) {
      const match = /^label_values\((.*), (\w+)\)$/.exec(variable.definition as string);
      expect(match, variable.name as string).not.toBeNull();
      const selector = match![1]!.replaceAll('$job', 'loki-mode').replaceAll('$instance', '.*');
      const values = await api<string[]>(`/api/v1/label/${match![2]}/values?match[]=${encodeURIComponent(selector)}`);
      if (variable.name !== 'session') expect(values.length, variable.name as string).toBeGreaterThan(0);
    }
  }, 60_000);
});
