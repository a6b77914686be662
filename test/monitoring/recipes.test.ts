/**
 * The shipped recipes that cannot all run here are at least validated with the real tools:
 * promtool check config, nginx -t, YAML/JSON validity, the Datadog metric list against the
 * exporter's real output, and the dashboard's PromQL rules. (The scrape configs, the nginx config,
 * the rules and every dashboard query also run for real in prometheus.test.ts.)
 */
import { readFileSync } from 'node:fs';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FAMILIES } from '../../src/catalogue.js';
import { parseConfig } from '../../src/config.js';
import { startServer } from '../../src/node/server.js';
import { FsStateStore } from '../../src/stores/fs.js';
import { cleanTrees, materialize } from '../support/loki-tree.js';
import { cleanTemps, durationSeconds, freePort, loadYaml, MONITORING, NGINX, PYTHON, run, start, stopAll, substitute, tempDir, uncommentBlocks, waitFor } from './support.js';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

afterAll(async () => {
  await cleanTrees();
  await cleanTemps();
});

describe('Prometheus scrape configs (monitoring/prometheus/scrape-*.yml)', () => {
  it('scrape-plain.yml passes promtool check config, with the shipped alert and recording rules it names', () => {
    const result = run('promtool', ['check', 'config', join(MONITORING, 'prometheus/scrape-plain.yml')]);
    expect(result.output).toContain('SUCCESS: 2 rule files found');
    expect(result.output).toMatch(/Checking \S*loki-alerts\.yml\s+SUCCESS: 14 rules found/);
    expect(result.output).toMatch(/Checking \S*loki-recording\.yml\s+SUCCESS: 4 rules found/);
    expect(result.status, result.output).toBe(0);
  });

  it.each(['scrape-proxy-bearer.yml', 'scrape-exporter-token.yml', 'scrape-worker-sessions.yml', 'scrape-worker-fleet.yml'])(
    '%s passes promtool check config (secrets files ignored)',
    (file) => {
      const result = run('promtool', ['check', 'config', '--syntax-only', join(MONITORING, 'prometheus', file)]);
      expect(result.status, result.output).toBe(0);
    },
  );

  it('scrape-fleet.yml passes promtool check config as is, and with its authorization blocks uncommented', async () => {
    const file = join(MONITORING, 'prometheus/scrape-fleet.yml');
    const asShipped = run('promtool', ['check', 'config', file]);
    expect(asShipped.output).toContain('SUCCESS');
    expect(asShipped.status, asShipped.output).toBe(0);
    // The token variant: the scrape's and the discovery's authorization, like scrape-exporter-token.yml's.
    const dir = await tempDir('loki-fleet-config-');
    const withToken = join(dir, 'scrape-fleet.yml');
    await writeFile(withToken, uncommentBlocks(await readFile(file, 'utf8'), 'authorization', 2));
    const job = (loadYaml(withToken) as Json).scrape_configs[0] as Json;
    const tokenJob = (loadYaml(join(MONITORING, 'prometheus/scrape-exporter-token.yml')) as Json).scrape_configs[0] as Json;
    expect(job.authorization).toEqual(tokenJob.authorization);
    expect(job.http_sd_configs[0].authorization).toEqual(tokenJob.authorization);
    const check = run('promtool', ['check', 'config', '--syntax-only', withToken]);
    expect(check.status, check.output).toBe(0);
  });

  it('the fleet configs discover their targets over HTTP, with no relabelling, as job loki-mode', () => {
    const fleet = (loadYaml(join(MONITORING, 'prometheus/scrape-fleet.yml')) as Json).scrape_configs as Json[];
    const worker = (loadYaml(join(MONITORING, 'prometheus/scrape-worker-fleet.yml')) as Json).scrape_configs as Json[];
    for (const jobs of [fleet, worker]) {
      expect(jobs).toHaveLength(1);
      expect(jobs[0]!.job_name).toBe('loki-mode');
      expect(jobs[0]!.http_sd_configs).toHaveLength(1);
      // /targets sets the project label and the ?project= parameter itself.
      for (const key of ['relabel_configs', 'static_configs', 'params', 'metrics_path']) expect(jobs[0]![key], key).toBeUndefined();
    }
    expect(fleet[0]!.http_sd_configs[0]).toEqual({ url: 'http://127.0.0.1:57373/targets', refresh_interval: '1m' });
    const sd = worker[0]!.http_sd_configs[0] as Json;
    expect(new URL(sd.url as string)).toMatchObject({ protocol: 'https:', pathname: '/targets' });
    expect(worker[0]!.scheme).toBe('https');
    // The Worker needs the token for both /targets and /metrics.
    expect(sd.authorization).toEqual({ type: 'Bearer', credentials_file: '/etc/prometheus/secrets/loki-metrics.token' });
    expect(worker[0]!.authorization).toEqual(sd.authorization);
    // Every refresh is one list operation on the Worker's storage: within Workers KV's free 1,000 a day.
    expect(durationSeconds(sd.refresh_interval as string)).toBe(120);
    expect(86_400 / durationSeconds(sd.refresh_interval as string)).toBeLessThanOrEqual(1_000);
  });

  it('scrape-kubernetes.yml is valid YAML with the guide\'s pod SD and relabelling', () => {
    // Debian builds Prometheus without Kubernetes SD, so promtool cannot check this one (the file's
    // comments say so; this proves they are still true); its relabelling runs for real in
    // prometheus.test.ts with the meta labels pod SD produces.
    const file = join(MONITORING, 'prometheus/scrape-kubernetes.yml');
    if (run('promtool', ['--version']).output.includes('+ds')) {
      const check = run('promtool', ['check', 'config', '--syntax-only', file]);
      expect(check.status, check.output).not.toBe(0);
      expect(check.output).toContain('field kubernetes_sd_configs not found');
    }
    const job = (loadYaml(file) as Json).scrape_configs[0];
    expect(job.kubernetes_sd_configs).toEqual([{ role: 'pod', namespaces: { names: ['loki'] } }]);
    expect(job.relabel_configs[0]).toEqual({ source_labels: ['__meta_kubernetes_pod_label_app'], action: 'keep', regex: 'loki-mode' });
  });

  it('no recipe skips TLS verification or inlines a secret', async () => {
    const files = await readdir(join(MONITORING, 'prometheus'), { recursive: true, withFileTypes: true });
    expect(files.filter((f) => f.isFile()).length).toBeGreaterThan(15);
    for (const file of files.filter((f) => f.isFile()).map((f) => join(f.parentPath, f.name))) {
      const text = await readFile(file, 'utf8');
      expect(text, file).not.toMatch(/insecure_skip_verify:\s*true|bearer_token:|credentials:/);
    }
  });
});

describe('nginx config (monitoring/nginx/loki-metrics.conf)', () => {
  it('passes nginx -t inside an http block', async () => {
    const dir = await tempDir('loki-nginx-');
    const crt = join(dir, 'c.crt');
    const key = join(dir, 'c.key');
    const tls = run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', crt, '-days', '1', '-subj', '/CN=localhost']);
    expect(tls.status, tls.output).toBe(0);
    const site = substitute(await readFile(join(MONITORING, 'nginx/loki-metrics.conf'), 'utf8'), [
      ['listen 9443 ssl;', 'listen 127.0.0.1:9443 ssl;'],
      ['/etc/nginx/tls/loki-metrics.crt', crt],
      ['/etc/nginx/tls/loki-metrics.key', key],
    ]);
    await writeFile(join(dir, 'site.conf'), site);
    await writeFile(join(dir, 'nginx.conf'), `error_log stderr; pid ${dir}/nginx.pid; events {} http { client_body_temp_path ${dir}/b; proxy_temp_path ${dir}/p; fastcgi_temp_path ${dir}/f; uwsgi_temp_path ${dir}/u; scgi_temp_path ${dir}/s; include ${dir}/site.conf; }`);
    const result = run(NGINX, ['-e', 'stderr', '-p', dir, '-c', join(dir, 'nginx.conf'), '-t']);
    expect(result.output).toContain('test is successful');
    expect(result.status).toBe(0);
  });

  it('works inside Debian\'s stock nginx.conf with an `openssl rand -hex 32` token: exact token, case-sensitive, rate-limited', async () => {
    const dir = await tempDir('loki-nginx-stock-');
    const crt = join(dir, 'c.crt');
    const key = join(dir, 'c.key');
    const tls = run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', crt, '-days', '1',
      '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost']);
    expect(tls.status, tls.output).toBe(0);
    // The config's own recipe; the hex must contain letters so that upper-casing them changes it.
    let token = '';
    while (!/[a-f]/.test(token)) token = run('openssl', ['rand', '-hex', '32']).output.trim();
    expect(token).toMatch(/^[0-9a-f]{64}$/);

    const exporterDir = await materialize('running', { pid: 'alive', mtimeMs: Date.now() });
    const store = new FsStateStore(exporterDir);
    const exporter = await startServer({ ...parseConfig({ LOKI_DIR: exporterDir }), port: 0 }, store, () => undefined);
    const port = await freePort();
    try {
      const site = substitute(await readFile(join(MONITORING, 'nginx/loki-metrics.conf'), 'utf8'), [
        ['listen 9443 ssl;', `listen 127.0.0.1:${port} ssl;`],
        ['/etc/nginx/tls/loki-metrics.crt', crt],
        ['/etc/nginx/tls/loki-metrics.key', key],
        ['CHANGE_ME_LONG_RANDOM_TOKEN', token],
        ['http://127.0.0.1:57373', `http://${new URL(exporter.url).host}`],
      ]);
      await writeFile(join(dir, 'loki-metrics.conf'), site, { mode: 0o600 });
      // Debian's stock nginx.conf, unchanged but for where it writes (pid, logs, temp files) and
      // its includes: the shipped file where conf.d/*.conf was, no sites-enabled.
      const stock = await readFile('/etc/nginx/nginx.conf', 'utf8');
      const conf = substitute(stock, [
        ['pid /run/nginx.pid;', `pid ${dir}/nginx.pid;`],
        ['error_log /var/log/nginx/error.log;', 'error_log stderr;'],
        ['access_log /var/log/nginx/access.log;', `access_log off; client_body_temp_path ${dir}/b; proxy_temp_path ${dir}/p; fastcgi_temp_path ${dir}/f; uwsgi_temp_path ${dir}/u; scgi_temp_path ${dir}/s;`],
        ['include /etc/nginx/conf.d/*.conf;', `include ${dir}/loki-metrics.conf;`],
        ['include /etc/nginx/sites-enabled/*;', ''],
        ['worker_processes auto;', 'worker_processes 1; daemon off; master_process off;'],
      ]);
      expect(conf).toContain('include /etc/nginx/mime.types;');
      await writeFile(join(dir, 'nginx.conf'), conf);
      // The default prefix (/usr/share/nginx), where the stock modules-enabled/*.conf find their modules.
      const args = ['-e', 'stderr', '-c', join(dir, 'nginx.conf')];
      const check = run(NGINX, [...args, '-t']);
      expect(check.output).toContain('test is successful');
      expect(check.status, check.output).toBe(0);

      const nginx = start(NGINX, args);
      const get = (path: string, authorization?: string) =>
        new Promise<{ status: number; body: string; authenticate?: string }>((resolve, reject) => {
          const req = request(
            { host: '127.0.0.1', port, path, ca: readFileSync(crt), servername: 'localhost', agent: false, timeout: 5_000, headers: authorization ? { authorization } : {} },
            (res) => {
              let body = '';
              res.setEncoding('utf8');
              res.on('data', (chunk: string) => (body += chunk));
              res.on('end', () => resolve({ status: res.statusCode ?? 0, body, authenticate: res.headers['www-authenticate'] }));
            },
          );
          req.on('timeout', () => req.destroy(new Error('timed out')));
          req.on('error', reject);
          req.end();
        });
      try {
        const ok = await waitFor('nginx to answer', async () => {
          if (nginx.child.exitCode !== null) throw new Error(`nginx exited: ${nginx.output()}`);
          return await get('/metrics', `Bearer ${token}`);
        }, 15_000);
        expect(ok.status, nginx.output()).toBe(200);
        expect(ok.body).toContain('loki_session_status 1');

        for (const wrong of [`Bearer ${token.toUpperCase()}`, `Bearer ${token.slice(0, 32)}${token.slice(32).toUpperCase()}`, `Bearer ${token.slice(1)}`, `Bearer ${token}0`, undefined].filter((h) => h !== `Bearer ${token}`)) {
          const denied = await get('/metrics', wrong);
          expect(denied.status, String(wrong)).toBe(401);
          expect(denied.authenticate).toBe('Bearer realm="loki-metrics"');
          expect(denied.body).not.toContain('loki_');
        }
        // Let the bucket drain (5 r/s), then a burst well beyond 10: the excess is refused.
        await new Promise((resolve) => setTimeout(resolve, 2_500));
        const burst = await Promise.all(Array.from({ length: 40 }, () => get('/metrics', `Bearer ${token}`)));
        const statuses = burst.map((r) => r.status);
        expect(statuses.filter((s) => s === 200).length).toBeGreaterThanOrEqual(5);
        expect(statuses.filter((s) => s === 429).length, statuses.join(' ')).toBeGreaterThanOrEqual(10);
        expect(statuses.filter((s) => s !== 200 && s !== 429)).toEqual([]);
        // And it recovers.
        await new Promise((resolve) => setTimeout(resolve, 2_500));
        expect((await get('/metrics', `Bearer ${token}`)).status).toBe(200);
        expect(nginx.child.exitCode).toBeNull();
      } finally {
        await stopAll();
      }
    } finally {
      await exporter.close();
      await store.close();
    }
  }, 60_000);

  it('the token is never compared through a case-insensitive map', async () => {
    const text = await readFile(join(MONITORING, 'nginx/loki-metrics.conf'), 'utf8');
    expect(text).not.toMatch(/^\s*map\s/m);
  });
});

describe('Datadog check (monitoring/datadog/loki_mode.yaml)', () => {
  it('lists every family the exporter serves, in both formats, as Datadog names them', async () => {
    const config = loadYaml(join(MONITORING, 'datadog/loki_mode.yaml')) as Json;
    expect(config).toHaveProperty('init_config');
    const instance = config.instances[0] as Json;
    expect(instance.openmetrics_endpoint).toBe('http://127.0.0.1:57373/metrics');
    expect(instance.namespace).toBe('loki');
    const listed = instance.metrics as string[];
    expect(listed).toContain('loki_last_sync_timestamp_seconds'); // the Worker's own gauge
    expect(listed).not.toContain('loki_events_total'); // latest mode drops a counter's _total

    const dir = await materialize('running', { pid: 'alive', mtimeMs: Date.now() });
    const store = new FsStateStore(dir);
    const server = await startServer({ ...parseConfig({ LOKI_DIR: dir }), port: 0 }, store, () => undefined);
    try {
      for (const [accept, parser] of [
        ['text/plain; version=0.0.4', 'prometheus_client.parser.text_string_to_metric_families'],
        ['application/openmetrics-text; version=1.0.0', 'prometheus_client.openmetrics.parser.text_string_to_metric_families'],
      ] as const) {
        const body = await (await fetch(server.url, { headers: { accept } })).text();
        const [module, fn] = [parser.slice(0, parser.lastIndexOf('.')), parser.slice(parser.lastIndexOf('.') + 1)];
        const parsed = run(PYTHON, ['-c', `import sys, json, ${module} as p\nprint(json.dumps([f.name for f in p.${fn}(sys.stdin.read())]))`], { input: body });
        expect(parsed.status, parsed.output).toBe(0);
        const families = JSON.parse(parsed.output) as string[];
        expect(families.length).toBeGreaterThanOrEqual(15);
        // Datadog's metrics entries are regular expressions matched against the whole name.
        const unmatched = families.filter((name) => !listed.some((entry) => new RegExp(`^(?:${entry})$`).test(name)));
        expect(unmatched, accept).toEqual([]);
      }
    } finally {
      await server.close();
      await store.close();
    }
  });
  it('shows a fleet\'s per-project instance: the same metrics, ?project= and a project tag', async () => {
    const text = await readFile(join(MONITORING, 'datadog/loki_mode.yaml'), 'utf8');
    // The commented example, uncommented (`#   ` lines under `  # - openmetrics_endpoint:`).
    const lines = text.split('\n');
    const start = lines.findIndex((l) => l.startsWith('  # - openmetrics_endpoint:'));
    expect(start).toBeGreaterThan(0);
    let end = start + 1;
    while (end < lines.length && /^  # {3}/.test(lines[end]!)) end++;
    const example = lines.map((l, i) => (i >= start && i < end ? l.replace(/^  # /, '  ') : l)).join('\n');
    const dir = await tempDir('loki-datadog-');
    await writeFile(join(dir, 'loki_mode.yaml'), example);
    const instances = (loadYaml(join(dir, 'loki_mode.yaml')) as Json).instances as Json[];
    expect(instances).toHaveLength(2);
    const [first, project] = instances as [Json, Json];
    expect(project.openmetrics_endpoint).toBe(`${first.openmetrics_endpoint as string}?project=alpha`);
    expect(project.namespace).toBe(first.namespace);
    expect(project.metrics).toEqual(first.metrics);
    expect(project.metrics.length).toBeGreaterThanOrEqual(30);
    expect(project.tags).toEqual([...(first.tags as string[]), 'project:alpha']);
  });
});

describe('Alertmanager Slack example (monitoring/alertmanager/alertmanager.yml)', () => {
  it('is valid YAML whose route, receiver and inhibitions name real things', async () => {
    const config = loadYaml(join(MONITORING, 'alertmanager/alertmanager.yml')) as Json;
    const receivers = (config.receivers as Json[]).map((r) => r.name);
    expect(receivers).toContain(config.route.receiver);
    const slack = (config.receivers as Json[])[0]!.slack_configs[0] as Json;
    expect(slack.api_url_file).toBeTruthy();
    expect(slack.api_url).toBeUndefined();
    expect(slack.text).toMatch(/^\{\{ range \.Alerts \}\}/);
    const rules = loadYaml(join(MONITORING, 'prometheus/loki-alerts.yml')) as Json;
    const alerts = new Set((rules.groups as Json[]).flatMap((g) => (g.rules as Json[]).map((r) => r.alert)));
    // Fleets: one instance serves many projects (sessions on the Worker); grouping and every
    // inhibition must keep them apart.
    expect(config.route.group_by).toEqual(expect.arrayContaining(['job', 'instance', 'project', 'session']));
    for (const rule of config.inhibit_rules as Json[]) {
      expect(rule.equal).toEqual(['job', 'instance', 'project', 'session']);
      for (const matcher of [...rule.source_matchers, ...rule.target_matchers] as string[]) {
        expect(alerts).toContain(/^alertname="(\w+)"$/.exec(matcher)?.[1]);
      }
    }
    if (run('sh', ['-c', 'command -v amtool']).status === 0) {
      const dir = await tempDir('loki-am-');
      const text = (await readFile(join(MONITORING, 'alertmanager/alertmanager.yml'), 'utf8')).replace('/etc/alertmanager/secrets/slack-webhook-url', join(dir, 'url'));
      await writeFile(join(dir, 'url'), 'https://hooks.slack.com/services/T/B/X\n');
      await writeFile(join(dir, 'am.yml'), text);
      const result = run('amtool', ['check-config', join(dir, 'am.yml')]);
      expect(result.status, result.output).toBe(0);
    }
  });
});

describe('Grafana dashboard (monitoring/grafana/loki-mode-dashboard.json)', () => {
  const load = async () => JSON.parse(await readFile(join(MONITORING, 'grafana/loki-mode-dashboard.json'), 'utf8')) as Json;

  it('has the guide\'s seven panels plus budget, source health and 9.x telemetry, a Fleet row, and job/project/instance/session variables', async () => {
    const dashboard = await load();
    const panels = dashboard.panels as Json[];
    const byTitle = Object.fromEntries(panels.map((p) => [p.title, p]));
    for (const [title, type] of [
      ['Session status', 'stat'], ['Iteration progress', 'gauge'], ['Task distribution', 'piechart'], ['Active agents', 'timeseries'],
      ['Cost', 'stat'], ['Event rate', 'timeseries'], ['Uptime', 'stat'], ['Budget used', 'bargauge'], ['Budget guard', 'stat'], ['Source health', 'table'],
      ['Iterations this run', 'stat'], ['Cost by model', 'timeseries'], ['Tokens by type', 'timeseries'], ['Cache hit ratio', 'timeseries'],
      ['Iterations per hour', 'timeseries'], ['Iteration duration', 'timeseries'], ['Receipts by verdict', 'piechart'], ['Receipts', 'stat'],
      ['Fleet', 'row'], ['Running sessions', 'stat'], ['Total cost', 'stat'], ['Cost by project', 'bargauge'],
    ]) expect(byTitle[title!]?.type, title).toBe(type);
    expect(byTitle['Total cost'].fieldConfig.defaults).toMatchObject({ unit: 'currencyUSD', decimals: 2 });
    expect(byTitle['Cost by project'].fieldConfig.defaults.unit).toBe('currencyUSD');
    expect(byTitle['Cost by project'].targets[0].legendFormat).toBe('{{project}}');
    expect(byTitle['Cost by model'].fieldConfig.defaults.unit).toBe('currencyUSD');
    expect(byTitle['Cache hit ratio'].fieldConfig.defaults).toMatchObject({ unit: 'percentunit', min: 0, max: 1 });
    expect(byTitle['Iteration duration'].fieldConfig.defaults.unit).toBe('s');
    // No two panels overlap on Grafana's 24-column grid.
    const cells = new Set<string>();
    for (const { title, gridPos: g } of panels as { title: string; gridPos: { x: number; y: number; w: number; h: number } }[]) {
      expect(g.x + g.w, title).toBeLessThanOrEqual(24);
      for (let x = g.x; x < g.x + g.w; x++) for (let y = g.y; y < g.y + g.h; y++) {
        expect(cells.has(`${x},${y}`), `${title} overlaps at ${x},${y}`).toBe(false);
        cells.add(`${x},${y}`);
      }
    }
    const mappings = byTitle['Session status'].fieldConfig.defaults.mappings[0].options as Json;
    expect(Object.fromEntries(Object.entries(mappings).map(([k, v]) => [k, [v.text, v.color]]))).toEqual({ 0: ['Stopped', 'red'], 1: ['Running', 'green'], 2: ['Paused', 'yellow'] });
    expect(byTitle['Cost'].fieldConfig.defaults).toMatchObject({ unit: 'currencyUSD', decimals: 2 });
    expect(byTitle['Uptime'].fieldConfig.defaults.unit).toBe('s');
    expect(byTitle['Iteration progress'].fieldConfig.defaults).toMatchObject({ unit: 'percent', min: 0, max: 100 });
    const variables = dashboard.templating.list as Json[];
    expect(variables.map((v) => v.name)).toEqual(['datasource', 'job', 'project', 'instance', 'session']);
    // The project fleet discovery labels targets with: All (`.*`, which also matches targets
    // without the label) or several; instance and session follow it.
    const variable = Object.fromEntries(variables.map((v) => [v.name, v]));
    expect(variable.project).toMatchObject({ type: 'query', definition: 'label_values(loki_up{job=~"$job"}, project)', includeAll: true, multi: true, allValue: '.*' });
    expect(variable.project.query.query).toBe(variable.project.definition);
    expect(variable.instance.definition).toBe('label_values(loki_up{job=~"$job", project=~"$project"}, instance)');
    expect(variable.session.definition).toBe('label_values(loki_up{job=~"$job", project=~"$project", instance=~"$instance"}, session)');
    expect(new Set(panels.map((p) => p.id)).size).toBe(panels.length);
    // The Fleet row comes first; its panels cover every project of the job, whatever the other
    // variables; the panels under the next row follow project, instance and session.
    expect(panels[0]).toMatchObject({ type: 'row', title: 'Fleet', gridPos: { x: 0, y: 0, w: 24 } });
    const nextRow = panels.findIndex((p, i) => i > 0 && p.type === 'row');
    expect(nextRow).toBeGreaterThan(1);
    const fleet = new Set(panels.slice(1, nextRow).map((p) => p.title as string));
    expect([...fleet].sort()).toEqual(['Cost by project', 'Running sessions', 'Total cost']);
    for (const panel of panels) {
      if (panel.type === 'row') {
        expect(panel.targets, panel.title).toBeUndefined();
        continue;
      }
      expect((panel.targets as Json[]).length, panel.title).toBeGreaterThan(0);
      for (const target of panel.targets as Json[]) {
        expect(target.datasource, panel.title).toEqual({ type: 'prometheus', uid: '${datasource}' });
        const selectors = [...(target.expr as string).matchAll(/\{([^}]*)\}/g)].map((m) => m[1]);
        expect(selectors.length, panel.title).toBeGreaterThan(0);
        for (const selector of selectors) {
          if (fleet.has(panel.title)) expect(selector, panel.title).toBe('job=~"$job"');
          else expect(selector, panel.title).toMatch(/^job=~"\$job", project=~"\$project", instance=~"\$instance", session=~"\$session"(, |$)/);
        }
        // An aggregation that keeps targets apart keeps projects apart too: a fleet's projects
        // share one instance.
        for (const [, by] of (target.expr as string).matchAll(/\bby\s*\(([^)]*)\)/g)) {
          if (/\b(instance|session)\b/.test(by!)) expect(by, panel.title).toMatch(/\bproject\b/);
        }
      }
    }
  });

  it('applies rate()/irate()/increase() to counters only, and gauge functions to gauges only', async () => {
    const exprs = ((await load()).panels as Json[]).flatMap((p) => ((p.targets ?? []) as Json[]).map((t) => t.expr as string));
    // The sample names the exporter's counters and histograms expose, from its own catalogue.
    const counters = new Set(
      FAMILIES.flatMap((f): string[] => (f.type === 'counter' ? [f.name] : f.type === 'histogram' ? [`${f.name}_bucket`, `${f.name}_count`, `${f.name}_sum`] : [])),
    );
    expect(counters).toContain('loki_events_total');
    const calls = (re: RegExp) => exprs.flatMap((expr) => [...expr.matchAll(re)].map((m) => [m[1], m[2] ?? '(expression)'] as const));
    const rates = calls(/\b(rate|irate|increase)\s*\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)?/g);
    expect(rates.map(([, metric]) => metric)).toEqual(expect.arrayContaining(['loki_events_total', 'loki_model_cost_usd_total', 'loki_model_tokens_total', 'loki_iterations_total']));
    expect(rates.filter(([, metric]) => !counters.has(metric))).toEqual([]);
    // deriv()/delta()/predict_linear() on a counter would go negative at every run start.
    const gaugeFns = calls(/\b(deriv|delta|idelta|predict_linear)\s*\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)?/g);
    expect(gaugeFns.filter(([, metric]) => counters.has(metric) || metric === '(expression)')).toEqual([]);
  });
});
