/**
 * End to end: the fleet scrape configs (monitoring/prometheus/scrape-fleet.yml for one Node exporter
 * serving many projects, scrape-worker-fleet.yml for the Worker's synced sessions) in one real
 * Prometheus (Debian's 2.42) with only those two jobs, as shipped but for addresses, token files and
 * intervals (`swap`, so a drifted shipped file fails). Prometheus finds every project through the
 * exporter's /targets (HTTP service discovery, behind the exporter's token), scrapes each with its
 * `project` label and its own values, and the shipped alert and recording rules, the Grafana
 * dashboard's fleet panels and its project variable work per project. Projects added to and
 * removed from Loki Mode's registry come and go without a restart; one project's unreadable .loki
 * reads `loki_up 0` for that project only.
 */
import { createHash } from 'node:crypto';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config.js';
import { NodeProjectCatalog } from '../../src/node/projects.js';
import { startFleetServer, type RunningServer } from '../../src/node/server.js';
import { runSync } from '../../src/node/sync.js';
import { cleanTrees, materialize } from '../support/loki-tree.js';
import { startWorker, SYNC_TOKEN, type TestWorker } from '../support/worker.js';
import { cleanTemps, loadYaml, MONITORING, prometheusApi, startPrometheus, stopAll, swap, tempDir, uncommentBlocks, waitFor } from './support.js';

const TOKEN = 'fleet-exporter-token-0123456789abcdef';
const SHIPPED_TOKEN_FILE = '/etc/prometheus/secrets/loki-metrics.token';
const NODE_JOB = 'loki-mode';
/** Both shipped files name their job loki-mode; one Prometheus needs two names. */
const WORKER_JOB = 'loki-mode-worker';
const LONG_AGO = Date.now() - 7 * 86_400_000;

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
interface Target { labels: Record<string, string>; scrapeUrl: string; health: string; lastError: string }
interface Sample { metric: Record<string, string>; value: [number, string] }
interface Alert { labels: Record<string, string>; annotations: Record<string, string>; state: string }

let prom = '';
let server: RunningServer | undefined;
let catalog: NodeProjectCatalog | undefined;
let worker: TestWorker | undefined;
/** host:port of the Node exporter and of the Worker. */
let node = '';
let workerHost = '';
let registryFile = '';
/** Each project's .loki directory. */
const dirs: Record<string, string> = {};

/** Loki Mode's registry (~/.loki/dashboard/projects.json), written atomically as Loki Mode does. */
async function writeRegistry(projects: readonly string[]): Promise<void> {
  const entries = Object.fromEntries(
    projects.map((name) => {
      const path = dirname(dirs[name]!); // the project directory; its state is <path>/.loki
      const id = createHash('sha256').update(path).digest('hex').slice(0, 12);
      return [id, { id, path, name, alias: null, status: 'running' }];
    }),
  );
  await writeFile(`${registryFile}.tmp`, JSON.stringify({ version: '1.0', projects: entries }));
  await rename(`${registryFile}.tmp`, registryFile);
}

/** The scrape_configs entry of a shipped scrape config, as data (from `file`, or the text given). */
async function shippedJob(file: string, transform: (text: string) => string = (t) => t, work: string): Promise<Json> {
  const path = join(work, file);
  await writeFile(path, transform(await readFile(join(MONITORING, 'prometheus', file), 'utf8')));
  const jobs = (loadYaml(path) as Json).scrape_configs as Json[];
  expect(jobs).toHaveLength(1);
  return jobs[0]!;
}

const api = <T>(path: string): Promise<T> => prometheusApi<T>(prom, path);

async function query(expr: string): Promise<Sample[]> {
  const data = await api<{ resultType: string; result: Sample[] }>(`/api/v1/query?query=${encodeURIComponent(expr)}`);
  return data.result;
}

/** `expr`'s samples by `label`, once `done` accepts them. */
async function byLabel(expr: string, label: string, done: (r: Record<string, number>) => boolean, timeoutMs = 15_000): Promise<Record<string, number>> {
  return waitFor(`${expr} by ${label}`, async () => {
    const r = Object.fromEntries((await query(expr)).map((s) => [s.metric[label] ?? '', Number(s.value[1])]));
    return done(r) ? r : undefined;
  }, timeoutMs);
}

/** The active targets of `job` once there are `count`, each scraped at least once. */
async function scraped(job: string, count: number, timeoutMs = 20_000): Promise<Target[]> {
  return waitFor(`${count} scraped targets of ${job}`, async () => {
    const { activeTargets } = await api<{ activeTargets: Target[] }>('/api/v1/targets?state=active');
    const all = activeTargets.filter((t) => t.labels.job === job);
    return all.length === count && all.every((t) => t.health !== 'unknown') ? all : undefined;
  }, timeoutMs);
}

const projectsOf = (targets: Target[]) => targets.map((t) => t.labels.project).sort();

async function alerts(): Promise<Alert[]> {
  return (await api<{ alerts: Alert[] }>('/api/v1/alerts')).alerts;
}

beforeAll(async () => {
  const work = await tempDir('loki-fleet-');
  // Different fixtures, so each project's values are its own: alpha running ($3.5313 of $25),
  // beta paused past its budget ($5.0421 of $5, guard tripped), gamma (from the registry) stopped.
  dirs.alpha = await materialize('running', { pid: 'alive', mtimeMs: Date.now() });
  dirs.beta = await materialize('paused', { pid: 'alive', mtimeMs: Date.now() });
  dirs.gamma = await materialize('stale', { pid: 'keep', mtimeMs: LONG_AGO });
  // Added to the registry later (a Loki Mode 9.x run, its runner alive).
  dirs.delta = await materialize('v9-running', { registry: { wrapper: 'alive', helpers: 'alive' }, mtimeMs: Date.now() });
  registryFile = join(work, 'projects.json');
  await writeRegistry(['gamma']);

  // `loki-metrics serve --dir alpha=... --dir beta=... --projects-from-registry --registry-file F`, in process.
  catalog = new NodeProjectCatalog({
    named: [{ name: 'alpha', dir: dirs.alpha }, { name: 'beta', dir: dirs.beta }],
    registryFile,
    maxProjects: 100,
    log: () => undefined,
    checkEveryMs: 250,
  });
  server = await startFleetServer({ ...parseConfig({ LOKI_DIR: dirs.alpha, LOKI_METRICS_TOKEN: TOKEN }), port: 0 }, catalog, () => undefined);
  node = new URL(server.url).host;

  // The Worker (workerd) behind the same scrape token, with two sessions synced before Prometheus
  // first asks it for targets (it lists its sessions at most once a minute).
  worker = await startWorker({ vars: { LOKI_METRICS_TOKEN: TOKEN } });
  workerHost = new URL(worker.url).host;
  for (const [session, dir] of [['north', dirs.alpha], ['south', dirs.beta]] as const) {
    expect(await runSync({ url: worker.url, session, dir, token: SYNC_TOKEN, intervalMs: 1000, once: true, log: () => undefined })).toBe(0);
  }

  const tokenFile = join(work, 'loki-metrics.token');
  await writeFile(tokenFile, `${TOKEN}\n`, { mode: 0o600 });

  // scrape-fleet.yml with its two commented authorization blocks (discovery and scrape) in force.
  const fleet = await shippedJob('scrape-fleet.yml', (text) => uncommentBlocks(text, 'authorization', 2), work);
  swap(fleet, 'scrape_interval', '15s', '1s');
  fleet.scrape_timeout = '1s';
  swap(fleet.authorization, 'credentials_file', SHIPPED_TOKEN_FILE, tokenFile);
  const fleetSd = (fleet.http_sd_configs as Json[])[0]!;
  swap(fleetSd, 'url', 'http://127.0.0.1:57373/targets', `http://${node}/targets`);
  swap(fleetSd, 'refresh_interval', '1m', '1s');
  swap(fleetSd.authorization, 'credentials_file', SHIPPED_TOKEN_FILE, tokenFile);

  const sessions = await shippedJob('scrape-worker-fleet.yml', (t) => t, work);
  swap(sessions, 'job_name', 'loki-mode', WORKER_JOB);
  swap(sessions, 'scheme', 'https', 'http');
  swap(sessions.authorization, 'credentials_file', SHIPPED_TOKEN_FILE, tokenFile);
  const workerSd = (sessions.http_sd_configs as Json[])[0]!;
  swap(workerSd, 'url', 'https://loki-metrics.example.workers.dev/targets', `${worker.url}/targets`);
  swap(workerSd, 'refresh_interval', '2m', '1s');
  swap(workerSd.authorization, 'credentials_file', SHIPPED_TOKEN_FILE, tokenFile);

  // The shipped rule files, evaluated every second.
  const ruleFiles: string[] = [];
  for (const file of ['loki-alerts.yml', 'loki-recording.yml']) {
    const rules = loadYaml(join(MONITORING, 'prometheus', file)) as Json;
    for (const group of rules.groups as Json[]) group.interval = '1s';
    ruleFiles.push(join(work, `rules-${file}`));
    await writeFile(join(work, `rules-${file}`), JSON.stringify(rules));
  }
  const config = { global: { scrape_interval: '1s', scrape_timeout: '1s', evaluation_interval: '1s' }, rule_files: ruleFiles, scrape_configs: [fleet, sessions] };
  prom = (await startPrometheus(work, config)).url;
}, 60_000);

afterAll(async () => {
  await stopAll();
  await worker?.dispose();
  await server?.close();
  catalog?.close();
  await cleanTrees();
  await cleanTemps();
});

describe('Prometheus HTTP service discovery of a fleet (scrape-fleet.yml, scrape-worker-fleet.yml)', () => {
  it('finds every project of the Node exporter and every synced Worker session, each a target with its project label', async () => {
    // /targets is behind the exporter's token: the discovery's own authorization block is needed.
    expect((await fetch(`http://${node}/targets`)).status).toBe(401);
    expect((await fetch(`${worker!.url}/targets`)).status).toBe(401);

    const nodeTargets = await scraped(NODE_JOB, 3);
    expect(projectsOf(nodeTargets)).toEqual(['alpha', 'beta', 'gamma']);
    for (const t of nodeTargets) {
      // One exporter: the same instance for all; `project` tells them apart.
      expect(t.labels.instance).toBe(node);
      expect(t.scrapeUrl).toBe(`http://${node}/metrics?project=${t.labels.project}`);
      expect([t.labels.project, t.health, t.lastError]).toEqual([t.labels.project, 'up', '']);
      expect(t.labels.session).toBeUndefined();
    }
    const workerTargets = await scraped(WORKER_JOB, 2);
    expect(projectsOf(workerTargets)).toEqual(['north', 'south']);
    for (const t of workerTargets) {
      expect(t.labels.instance).toBe(workerHost);
      expect(t.labels.session).toBe(t.labels.project);
      expect(t.scrapeUrl).toBe(`http://${workerHost}/metrics?project=${t.labels.project}`);
      expect([t.labels.project, t.health, t.lastError]).toEqual([t.labels.project, 'up', '']);
    }
  }, 40_000);

  it('stores each project\'s own values under its project label', async () => {
    await scraped(NODE_JOB, 3);
    await scraped(WORKER_JOB, 2);
    const all = (r: Record<string, number>) => ['alpha', 'beta', 'gamma', 'north', 'south'].every((p) => p in r);
    const per = (family: string) => byLabel(`${family}{job=~"${NODE_JOB}|${WORKER_JOB}"}`, 'project', all);
    expect(await per('loki_session_status')).toEqual({ alpha: 1, beta: 2, gamma: 0, north: 1, south: 2 });
    expect(await per('loki_budget_limit_usd')).toEqual({ alpha: 25, beta: 5, gamma: 0, north: 25, south: 5 });
    expect(await per('loki_budget_exceeded')).toEqual({ alpha: 0, beta: 1, gamma: 0, north: 0, south: 1 });
    expect(await per('loki_up')).toEqual({ alpha: 1, beta: 1, gamma: 1, north: 1, south: 1 });
    const cost = await per('loki_cost_usd');
    expect(cost.alpha).toBeCloseTo(3.5313, 6);
    expect(cost.beta).toBeCloseTo(5.0421, 6);
    expect(cost.north).toBeCloseTo(3.5313, 6); // the Worker serves what was synced: alpha's tree
    expect(cost.south).toBeCloseTo(5.0421, 6);
    const events = await per('loki_events_total');
    expect([events.alpha, events.beta, events.north, events.south]).toEqual([50, 18, 50, 18]);
    // The Worker's own gauge, per session.
    expect(Object.keys(await byLabel(`loki_last_sync_timestamp_seconds{job="${WORKER_JOB}"}`, 'project', (r) => Object.keys(r).length === 2)).sort()).toEqual(['north', 'south']);
  }, 40_000);
});

describe('the shipped rules per project of a fleet (loki-alerts.yml, loki-recording.yml)', () => {
  it('evaluate without errors; the budget alerts fire for the over-budget project only, LokiSessionDown is pending for the stopped one only', async () => {
    await scraped(NODE_JOB, 3);
    const rules = await waitFor('rules to be evaluated', async () => {
      const data = await api<{ groups: { rules: { name: string; health: string; lastError?: string }[] }[] }>('/api/v1/rules');
      const list = data.groups.flatMap((g) => g.rules);
      return list.length > 0 && list.every((r) => r.health !== 'unknown') ? list : undefined;
    });
    expect(rules.map((r) => [r.name, r.health, r.lastError ?? ''])).toEqual(rules.map((r) => [r.name, 'ok', '']));

    const budget = await waitFor('budget alerts for beta and south', async () => {
      const list = (await alerts()).filter((a) => a.labels.alertname?.startsWith('LokiBudget'));
      return list.length >= 4 ? list : undefined;
    });
    expect(budget.map((a) => `${a.labels.alertname} ${a.labels.job} ${a.labels.project} ${a.state}`).sort()).toEqual([
      `LokiBudgetCritical ${NODE_JOB} beta firing`,
      `LokiBudgetCritical ${WORKER_JOB} south firing`,
      `LokiBudgetWarning ${NODE_JOB} beta firing`,
      `LokiBudgetWarning ${WORKER_JOB} south firing`,
    ]);
    const critical = budget.find((a) => a.labels.alertname === 'LokiBudgetCritical' && a.labels.project === 'beta')!;
    expect(critical.labels.instance).toBe(node);
    expect(critical.annotations.description).toBe(`${node} (project beta): current cost $5.04.`);

    const down = await waitFor('LokiSessionDown for gamma', async () => {
      const list = (await alerts()).filter((a) => a.labels.alertname === 'LokiSessionDown');
      return list.length > 0 ? list : undefined;
    });
    expect(down.map((a) => [a.labels.job, a.labels.project, a.labels.reason, a.state])).toEqual([[NODE_JOB, 'gamma', 'session stopped', 'pending']]); // `for: 5m`
  }, 40_000);
});

describe('the Grafana dashboard on a fleet (grafana/loki-mode-dashboard.json)', () => {
  it('lists the projects in its project variable, sums them in the Fleet row, and filters the other panels by project', async () => {
    await scraped(NODE_JOB, 3);
    const dashboard = JSON.parse(await readFile(join(MONITORING, 'grafana/loki-mode-dashboard.json'), 'utf8')) as Json;
    const variable = (dashboard.templating.list as Json[]).find((v) => v.name === 'project')!;
    const match = /^label_values\((.*), project\)$/.exec(variable.definition as string)!;
    const projects = await api<string[]>(`/api/v1/label/project/values?match[]=${encodeURIComponent(match[1]!.replaceAll('$job', NODE_JOB))}`);
    expect(projects).toEqual(['alpha', 'beta', 'gamma']);

    const panel = (title: string) => (dashboard.panels as Json[]).find((p) => p.title === title)!;
    const expr = (title: string, refId = 'A', vars: Record<string, string> = {}) => {
      let text = (panel(title).targets as Json[]).find((t) => t.refId === refId)!.expr as string;
      for (const [name, value] of Object.entries({ job: NODE_JOB, ...vars })) text = text.replaceAll(`$${name}`, value);
      expect(text).not.toMatch(/\$/);
      return text;
    };
    const byProject = await byLabel(expr('Cost by project'), 'project', (r) => Object.keys(r).length === 3);
    expect(Object.keys(byProject).sort()).toEqual(['alpha', 'beta', 'gamma']);
    expect(byProject.alpha).toBeCloseTo(3.5313, 6);
    expect(byProject.beta).toBeCloseTo(5.0421, 6);
    const [total] = await query(expr('Total cost'));
    expect(Number(total!.value[1])).toBeCloseTo(byProject.alpha! + byProject.beta! + byProject.gamma!, 6);
    // alpha runs; beta is paused and gamma stopped.
    expect(Number((await query(expr('Running sessions', 'A')))[0]!.value[1])).toBe(1);
    expect(Number((await query(expr('Running sessions', 'B')))[0]!.value[1])).toBe(3);

    // A project-filtered panel, with the variable as Grafana substitutes one value and several.
    const cost = (project: string) => byLabel(expr('Cost', 'A', { project, instance: '.*', session: '.*' }), 'project', (r) => Object.keys(r).length > 0);
    expect(Object.keys(await cost('beta'))).toEqual(['beta']);
    expect(Object.keys(await cost('(alpha|gamma)')).sort()).toEqual(['alpha', 'gamma']);
    expect(Object.keys(await cost('.*')).sort()).toEqual(['alpha', 'beta', 'gamma']);
  }, 40_000);
});

describe('a fleet that changes under a running Prometheus', () => {
  it('a project added to Loki Mode\'s registry is discovered and scraped without a restart; removed, it disappears', async () => {
    await scraped(NODE_JOB, 3);
    const added = Date.now();
    await writeRegistry(['gamma', 'delta']);
    const discovered = await waitFor('delta in /targets', async () => {
      const res = await fetch(`http://${node}/targets`, { headers: { authorization: `Bearer ${TOKEN}` } });
      const list = (await res.json()) as { targets: string[]; labels: Record<string, string> }[];
      return list.some((e) => e.labels.project === 'delta') ? list : undefined;
    }, 10_000);
    expect(discovered.find((e) => e.labels.project === 'delta')).toEqual({ targets: [node], labels: { project: 'delta', __param_project: 'delta' } });
    const targets = await scraped(NODE_JOB, 4);
    expect(projectsOf(targets)).toEqual(['alpha', 'beta', 'delta', 'gamma']);
    expect(targets.find((t) => t.labels.project === 'delta')).toMatchObject({ health: 'up', scrapeUrl: `http://${node}/metrics?project=delta` });
    // delta's own values (the v9-running fixture: its runner alive, five receipts).
    expect(await byLabel(`loki_session_status{job="${NODE_JOB}", project="delta"}`, 'project', (r) => 'delta' in r)).toEqual({ delta: 1 });
    expect(await byLabel(`loki_receipts_total{job="${NODE_JOB}"}`, 'project', (r) => 'delta' in r)).toMatchObject({ delta: 5, alpha: 0 });
    const addedMs = Date.now() - added;

    await writeRegistry(['gamma']);
    const after = await waitFor('delta dropped', async () => {
      const { activeTargets } = await api<{ activeTargets: Target[] }>('/api/v1/targets?state=active');
      const list = activeTargets.filter((t) => t.labels.job === NODE_JOB);
      return list.some((t) => t.labels.project === 'delta') ? undefined : list;
    }, 15_000);
    expect(projectsOf(after)).toEqual(['alpha', 'beta', 'gamma']);
    // Its series are marked stale at once: no value, not a frozen one.
    await waitFor('delta\'s series to go stale', async () => ((await query(`loki_up{job="${NODE_JOB}", project="delta"}`)).length === 0 ? true : undefined), 10_000);
    expect(await byLabel(`loki_up{job="${NODE_JOB}"}`, 'project', (r) => Object.keys(r).length === 3)).toEqual({ alpha: 1, beta: 1, gamma: 1 });
    // Well within a refresh and a scrape (1 s each here; 1m in the shipped file).
    expect(addedMs).toBeLessThan(15_000);
  }, 60_000);

  it('a project whose .loki is gone reads loki_up 0 for that project only, and recovers', async () => {
    await scraped(NODE_JOB, 3);
    // Root ignores permission bits: move the directory away instead of chmod 000.
    await rename(dirs.alpha!, `${dirs.alpha!}.away`);
    try {
      const up = await byLabel(`loki_up{job="${NODE_JOB}"}`, 'project', (r) => r.alpha === 0);
      expect(up).toEqual({ alpha: 0, beta: 1, gamma: 1 });
      // The exporter still answers for alpha: the scrape is up, the state is not.
      expect(await byLabel(`up{job="${NODE_JOB}"}`, 'project', (r) => Object.keys(r).length === 3)).toEqual({ alpha: 1, beta: 1, gamma: 1 });
      const unreadable = await waitFor('LokiStateUnreadable', async () => {
        const list = (await alerts()).filter((a) => a.labels.alertname === 'LokiStateUnreadable');
        return list.length > 0 ? list : undefined;
      });
      expect(unreadable.map((a) => [a.labels.job, a.labels.project, a.state])).toEqual([[NODE_JOB, 'alpha', 'pending']]); // `for: 2m`
      expect(unreadable[0]!.annotations.description).toBe(`${node} (project alpha): loki_up is 0; check LOKI_DIR and permissions (/health names the problem).`);
    } finally {
      await rename(`${dirs.alpha!}.away`, dirs.alpha!);
    }
    expect(await byLabel(`loki_up{job="${NODE_JOB}"}`, 'project', (r) => r.alpha === 1)).toEqual({ alpha: 1, beta: 1, gamma: 1 });
  }, 40_000);
});
