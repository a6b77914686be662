/**
 * The exporter's own TLS, client certificates and basic auth (exporter-toolkit's web config) with
 * the real tools: the shipped monitoring/web-config*.yml pass Debian's `promtool check web-config`,
 * monitoring/prometheus/scrape-tls.yml passes `promtool check config`, and one real Prometheus
 * (Debian's 2.42) scrapes several in-process exporters, each with its own web config, through
 * jobs made from the shipped scrape-tls.yml job (loaded as data; only addresses, file paths and
 * intervals replaced, parts the exporter does not check removed, drift failing loudly). Every
 * certificate is made by the real openssl CLI, every bcrypt hash by the real htpasswd. All on
 * 127.0.0.1; everything stopped in afterAll.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config.js';
import { startServer, type RunningServer } from '../../src/node/server.js';
import { FsStateStore } from '../../src/stores/fs.js';
import { bcryptHash, issue, makeCa, type Ca, type Issued } from '../support/certs.js';
import { cleanTrees, materialize } from '../support/loki-tree.js';
import { cleanTemps, loadYaml, MONITORING, run, prometheusApi, startPrometheus, stopAll, substitute, swap, tempDir, waitFor } from './support.js';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
interface Target { labels: Record<string, string>; scrapeUrl: string; health: string; lastError: string }
interface Sample { metric: Record<string, string>; value: [number, string] }

const PASSWORD = 'correct horse battery staple 0123';
const WRONG_PASSWORD = 'wrong horse battery staple 0123';
/** The placeholder the shipped web-config.yml holds where the bcrypt hash goes. */
const HASH_PLACEHOLDER = 'CHANGE_ME_BCRYPT_HASH';
/** The client certificate's only SAN (issue() gives a client `DNS:<name>`). */
const CLIENT_NAME = 'prometheus-client';

/** The `.loki` tree every exporter serves (the running fixture). */
let running = '';
const servers: { server: RunningServer; store: FsStateStore }[] = [];
/** What the exporters logged (in failure messages). */
const logs: string[] = [];
let prom = '';
/** Everything beforeAll made that the tests look at. */
const made = {
  /** The exporters' directory: certificates and web configs side by side (relative paths). */
  dir: '',
  /** Everything else: CAs, Prometheus's client certificates and passwords, Prometheus's files. */
  work: '',
  /** Every web config an exporter below runs with, by name. */
  webConfigs: {} as Record<string, string>,
  /** host:port of each exporter, by web config name. */
  at: {} as Record<string, string>,
  serverCa: undefined as Ca | undefined,
  client: undefined as Issued | undefined,
};

const api = <T>(path: string): Promise<T> => prometheusApi<T>(prom, path);

/** The single target of `job` once Prometheus has scraped it (health no longer `unknown`). */
async function scraped(job: string): Promise<Target> {
  return waitFor(`the target of ${job} to be scraped`, async () => {
    const { activeTargets } = await api<{ activeTargets: Target[] }>('/api/v1/targets');
    const all = activeTargets.filter((t) => t.labels.job === job);
    return all.length === 1 && all[0]!.health !== 'unknown' ? all[0] : undefined;
  }, 20_000);
}

/** The value of `expr` once it has exactly one sample. */
async function value(expr: string): Promise<number> {
  const result = await waitFor(`a sample for ${expr}`, async () => {
    const data = await api<{ result: Sample[] }>(`/api/v1/query?query=${encodeURIComponent(expr)}`);
    return data.result.length === 1 ? data.result : undefined;
  }, 10_000);
  return Number(result[0]!.value[1]);
}

/** The running fixture's values as Prometheus stored them from `job` (test/support/loki-tree.ts). */
async function expectRunningFixture(job: string): Promise<void> {
  const v = (name: string, extra = '') => value(`${name}{job="${job}"${extra}}`);
  expect(await v('loki_session_status')).toBe(1);
  expect(await v('loki_iteration_current')).toBe(6);
  expect(await v('loki_tasks_total', ', status="completed"')).toBe(5);
  expect(await v('loki_cost_usd')).toBeCloseTo(3.5313, 6);
  expect(await v('up')).toBe(1);
}

/** A down target: its error as Prometheus reported it, and up == 0 stored. */
async function expectDown(job: string): Promise<string> {
  const target = await scraped(job);
  expect(target.health, `${job}: ${target.lastError}`).toBe('down');
  expect(await value(`up{job="${job}"}`)).toBe(0);
  return target.lastError;
}

/**
 * What Prometheus reports when the exporter closes the connection right after the handshake (no
 * TLS alert): EOF, or a reset when the request was already on its way.
 */
function closedAfterHandshake(at: string): RegExp {
  const url = `https://${at}/metrics`.replaceAll('.', '\\.');
  return new RegExp(`^Get "${url}": (EOF|read tcp 127\\.0\\.0\\.1:\\d+->${at.replaceAll('.', '\\.')}: read: connection reset by peer)$`);
}

/** Starts an exporter on the running fixture with web config `name` (in made.dir). */
async function serve(name: string): Promise<void> {
  const store = new FsStateStore(running);
  const server = await startServer({ ...parseConfig({ LOKI_DIR: running, LOKI_METRICS_WEB_CONFIG: join(made.dir, name) }), port: 0 }, store, (line) => logs.push(line));
  servers.push({ server, store });
  expect(server.url).toBe(`https://127.0.0.1:${server.port}/metrics`);
  made.at[name] = `127.0.0.1:${server.port}`;
}

beforeAll(async () => {
  running = await materialize('running', { pid: 'alive', mtimeMs: Date.now() });
  made.work = await tempDir('loki-webcfg-');
  made.dir = await tempDir('loki-webcfg-exporter-');
  const { dir, work } = made;

  // The shipped web configs, as data first: the file names they expect next to them.
  const shippedBasic = loadYaml(join(MONITORING, 'web-config.yml')) as Json;
  const shippedMtls = loadYaml(join(MONITORING, 'web-config-mtls.yml')) as Json;
  expect(shippedBasic).toEqual({
    tls_server_config: { cert_file: 'loki-metrics.crt', key_file: 'loki-metrics.key', min_version: 'TLS12' },
    basic_auth_users: { prometheus: HASH_PLACEHOLDER },
  });
  expect(shippedMtls).toEqual({
    tls_server_config: { cert_file: 'loki-metrics.crt', key_file: 'loki-metrics.key', client_auth_type: 'RequireAndVerifyClientCert', client_ca_file: 'scrapers-ca.crt' },
  });

  // Certificates: the exporter's (loki-metrics.crt/.key, SANs 127.0.0.1 and localhost) from
  // serverCa; Prometheus's client certificate from the scrapers' CA (scrapers-ca.crt); and a CA
  // neither side trusts, for Prometheus's trust (untrusted-ca) and a stranger's client certificate.
  const serverCa = makeCa(work, 'loki-metrics-ca');
  const otherCa = makeCa(work, 'other-ca');
  const scrapersCa = makeCa(dir, 'scrapers-ca');
  issue(dir, serverCa, 'loki-metrics');
  const client = issue(work, scrapersCa, CLIENT_NAME, { client: true });
  const stranger = issue(work, otherCa, 'stranger-client', { client: true });
  made.serverCa = serverCa;
  made.client = client;

  // The web configs, all in dir so the shipped relative paths resolve against it.
  const write = async (name: string, text: string) => {
    await writeFile(join(dir, name), text);
    made.webConfigs[name] = join(dir, name);
  };
  const hash = bcryptHash('prometheus', PASSWORD);
  expect(hash, 'made by htpasswd (apache2-utils), not the bcryptjs fallback').toMatch(/^\$2y\$10\$/);
  const basicText = substitute(await readFile(join(MONITORING, 'web-config.yml'), 'utf8'), [[HASH_PLACEHOLDER, hash]]);
  await write('web-config.yml', basicText);
  await write('web-config-mtls.yml', await readFile(join(MONITORING, 'web-config-mtls.yml'), 'utf8'));
  // Test-only combinations of the shipped parts (JSON is YAML).
  const basic = loadYaml(join(dir, 'web-config.yml')) as Json;
  await write('tls-only.yml', JSON.stringify({ tls_server_config: shippedBasic.tls_server_config }));
  await write('mtls-basic.yml', JSON.stringify({ tls_server_config: shippedMtls.tls_server_config, basic_auth_users: basic.basic_auth_users }));
  // client_allowed_sans: Debian's promtool 2.42 cannot check these two (see the test below).
  await write('mtls-sans-allowed.yml', JSON.stringify({ tls_server_config: { ...shippedMtls.tls_server_config, client_allowed_sans: ['other.example', CLIENT_NAME] } }));
  await write('mtls-sans-other.yml', JSON.stringify({ tls_server_config: { ...shippedMtls.tls_server_config, client_allowed_sans: ['other.example'] } }));

  for (const name of Object.keys(made.webConfigs)) await serve(name);

  // Secrets as Prometheus reads them: the password alone on one line.
  const right = join(work, 'right.password');
  const wrong = join(work, 'wrong.password');
  await writeFile(right, `${PASSWORD}\n`, { mode: 0o600 });
  await writeFile(wrong, `${WRONG_PASSWORD}\n`, { mode: 0o600 });

  // The shipped job with real files; each test job below is a copy of it with parts removed.
  const config = loadYaml(join(MONITORING, 'prometheus/scrape-tls.yml')) as Json;
  expect(Object.keys(config)).toEqual(['scrape_configs']);
  expect(config.scrape_configs).toHaveLength(1);
  const template = config.scrape_configs[0] as Json;
  expect(template.scheme).toBe('https');
  swap(template.tls_config, 'ca_file', '/etc/prometheus/secrets/loki-metrics-ca.crt', serverCa.cert);
  swap(template.tls_config, 'cert_file', '/etc/prometheus/secrets/prometheus-client.crt', client.cert);
  swap(template.tls_config, 'key_file', '/etc/prometheus/secrets/prometheus-client.key', client.key);
  expect(Object.keys(template.tls_config).sort()).toEqual(['ca_file', 'cert_file', 'key_file']);
  // The user the shipped web-config.yml names.
  swap(template.basic_auth, 'username', Object.keys(shippedBasic.basic_auth_users)[0], 'prometheus');
  swap(template.basic_auth, 'password_file', '/etc/prometheus/secrets/loki-metrics.password', right);
  swap(template.static_configs[0], 'targets', ['loki.example.com:57373'], ['set per job']);

  const job = (name: string, webConfig: string, edit: (job: Json) => void = () => undefined): Json => {
    const copy = structuredClone(template);
    copy.job_name = name;
    copy.scrape_interval = '1s';
    copy.scrape_timeout = '1s';
    copy.static_configs[0].targets = [made.at[webConfig]];
    edit(copy);
    return copy;
  };
  const noClientCert = (j: Json) => {
    delete j.tls_config.cert_file;
    delete j.tls_config.key_file;
  };
  const noBasicAuth = (j: Json) => delete j.basic_auth;
  const jobs = [
    // (a) TLS, the server verified against its CA, no credentials.
    job('tls', 'tls-only.yml', (j) => (noClientCert(j), noBasicAuth(j))),
    // (b) mutual TLS with Prometheus's client certificate.
    job('mtls', 'web-config-mtls.yml', noBasicAuth),
    // (c) basic auth over TLS, the right password.
    job('basic', 'web-config.yml', noClientCert),
    // (d) the wrong password.
    job('basic-wrong-password', 'web-config.yml', (j) => (noClientCert(j), (j.basic_auth.password_file = wrong))),
    // (e) mutual TLS without a client certificate.
    job('mtls-no-client-cert', 'web-config-mtls.yml', (j) => (noClientCert(j), noBasicAuth(j))),
    // A client certificate, but from a CA the exporter does not trust.
    job('mtls-untrusted-client', 'web-config-mtls.yml', (j) => (noBasicAuth(j), (j.tls_config.cert_file = stranger.cert), (j.tls_config.key_file = stranger.key))),
    // (f) Prometheus trusts another CA than the one that signed the exporter's certificate.
    job('untrusted-ca', 'tls-only.yml', (j) => (noClientCert(j), noBasicAuth(j), (j.tls_config.ca_file = otherCa.cert))),
    // (g) the shipped job as shipped (client certificate and password) on an exporter checking both.
    job('shipped', 'mtls-basic.yml'),
    // client_allowed_sans naming the client certificate's SAN, and not naming it.
    job('mtls-sans-allowed', 'mtls-sans-allowed.yml', noBasicAuth),
    job('mtls-sans-other', 'mtls-sans-other.yml', noBasicAuth),
  ];

  prom = (await startPrometheus(work, { global: { scrape_interval: '1s', evaluation_interval: '1s' }, scrape_configs: jobs }, 20_000)).url;
}, 60_000);

afterAll(async () => {
  await stopAll();
  for (const { server, store } of servers.splice(0)) {
    await server.close();
    await store.close();
  }
  await cleanTrees();
  await cleanTemps();
});

describe('promtool accepts the shipped files', () => {
  it('check web-config: the shipped web configs once their hash is real, and every other web config used here', () => {
    const checkable = Object.entries(made.webConfigs).filter(([name]) => !name.startsWith('mtls-sans-'));
    expect(checkable.map(([name]) => name).sort()).toEqual(['mtls-basic.yml', 'tls-only.yml', 'web-config-mtls.yml', 'web-config.yml']);
    const result = run('promtool', ['check', 'web-config', ...checkable.map(([, path]) => path)]);
    expect(result.status, result.output).toBe(0);
    for (const [, path] of checkable) expect(result.output).toContain(`${path} SUCCESS`);
  });

  it('client_allowed_sans is unknown to Debian\'s promtool 2.42, as web-config-mtls.yml says (so those two are not checked)', () => {
    const version = run('promtool', ['--version']).output;
    if (!/version 2\.42\.0\+ds/.test(version)) return; // a newer exporter-toolkit knows the field
    const result = run('promtool', ['check', 'web-config', made.webConfigs['mtls-sans-other.yml']!]);
    expect(result.status).not.toBe(0);
    expect(result.output).toContain('field client_allowed_sans not found');
  });

  it('the placeholder hash of web-config.yml as shipped is refused by promtool and by loki-metrics', async () => {
    const asShipped = join(made.dir, 'as-shipped.yml');
    await writeFile(asShipped, await readFile(join(MONITORING, 'web-config.yml'), 'utf8'));
    const result = run('promtool', ['check', 'web-config', asShipped]);
    expect(result.status).not.toBe(0);
    expect(result.output).toContain('hashedSecret too short to be a bcrypted password');
    await expect(startServer({ ...parseConfig({ LOKI_DIR: running, LOKI_METRICS_WEB_CONFIG: asShipped }), port: 0 }, new FsStateStore(running), () => undefined))
      .rejects.toThrow('basic_auth_users.prometheus: not a bcrypt hash (make one with: htpasswd -nBC 10 prometheus)');
  });

  it('check config: scrape-tls.yml once the files it names exist; as shipped, only with --syntax-only', async () => {
    const shipped = join(MONITORING, 'prometheus/scrape-tls.yml');
    const password = join(made.work, 'check.password');
    await writeFile(password, `${PASSWORD}\n`, { mode: 0o600 });
    const text = substitute(await readFile(shipped, 'utf8'), [
      ['/etc/prometheus/secrets/loki-metrics-ca.crt', made.serverCa!.cert],
      ['/etc/prometheus/secrets/prometheus-client.crt', made.client!.cert],
      ['/etc/prometheus/secrets/prometheus-client.key', made.client!.key],
      ['/etc/prometheus/secrets/loki-metrics.password', password],
    ]);
    const file = join(made.work, 'scrape-tls.yml');
    await writeFile(file, text);
    const result = run('promtool', ['check', 'config', file]);
    expect(result.status, result.output).toBe(0);
    expect(result.output).toContain('SUCCESS');
    // promtool really looks for the client certificate, so the check above is not vacuous.
    const missing = run('promtool', ['check', 'config', shipped]);
    expect(missing.status).not.toBe(0);
    expect(missing.output).toContain('error checking client cert file "/etc/prometheus/secrets/prometheus-client.crt"');
    const syntax = run('promtool', ['check', 'config', '--syntax-only', shipped]);
    expect(syntax.status, syntax.output).toBe(0);
  });
});

describe('Prometheus scraping exporters that serve TLS themselves (scrape-tls.yml, web-config*.yml)', () => {
  it('(a) TLS, the exporter verified against its CA: up, with the fixture\'s values', async () => {
    const target = await scraped('tls');
    expect(target.scrapeUrl).toBe(`https://${made.at['tls-only.yml']}/metrics`);
    expect([target.health, target.lastError], logs.join('\n')).toEqual(['up', '']);
    await expectRunningFixture('tls');
  }, 30_000);

  it('(b) mutual TLS (shipped web-config-mtls.yml) with Prometheus\'s client certificate: up', async () => {
    const target = await scraped('mtls');
    expect(target.scrapeUrl).toBe(`https://${made.at['web-config-mtls.yml']}/metrics`);
    expect([target.health, target.lastError], logs.join('\n')).toEqual(['up', '']);
    await expectRunningFixture('mtls');
  }, 30_000);

  it('(c) basic auth over TLS (shipped web-config.yml), the right password from password_file: up', async () => {
    const target = await scraped('basic');
    expect(target.scrapeUrl).toBe(`https://${made.at['web-config.yml']}/metrics`);
    expect([target.health, target.lastError], logs.join('\n')).toEqual(['up', '']);
    await expectRunningFixture('basic');
  }, 30_000);

  it('(d) the wrong password: down with the exporter\'s 401', async () => {
    const error = await expectDown('basic-wrong-password');
    expect(error).toBe('server returned HTTP status 401 Unauthorized');
    // Same exporter, right password (c): the 401 is the password, not the exporter.
    expect((await scraped('basic')).health).toBe('up');
  }, 30_000);

  it('(e) mutual TLS without a client certificate: down, the exporter ends the handshake', async () => {
    const error = await expectDown('mtls-no-client-cert');
    // TLS 1.3: the exporter's alert 116 (certificate_required), as Go reports it.
    expect(error).toContain(`Get "https://${made.at['web-config-mtls.yml']}/metrics": `);
    expect(error).toContain('remote error: tls: certificate required');
    expect((await scraped('mtls')).health).toBe('up');
  }, 30_000);

  it('mutual TLS with a client certificate from a CA the exporter does not trust: down', async () => {
    const error = await expectDown('mtls-untrusted-client');
    // Node verifies the client certificate after the handshake and closes the connection without a
    // TLS alert (exporter-toolkit would send "bad certificate"): Go sees EOF or a reset.
    expect(error).toMatch(closedAfterHandshake(made.at['web-config-mtls.yml']!));
  }, 30_000);

  it('(f) Prometheus trusting another CA: down, the exporter\'s certificate refused', async () => {
    const error = await expectDown('untrusted-ca');
    expect(error).toContain(`Get "https://${made.at['tls-only.yml']}/metrics": `);
    expect(error).toContain('x509: certificate signed by unknown authority');
    // Same exporter, its own CA trusted (a): the CA is the reason.
    expect((await scraped('tls')).health).toBe('up');
  }, 30_000);

  it('the shipped job as shipped (client certificate and password) on an exporter checking both: up', async () => {
    const target = await scraped('shipped');
    expect([target.health, target.lastError], logs.join('\n')).toEqual(['up', '']);
    await expectRunningFixture('shipped');
  }, 30_000);

  it('client_allowed_sans: up when it names the client certificate\'s SAN, down when it does not', async () => {
    const allowed = await scraped('mtls-sans-allowed');
    expect([allowed.health, allowed.lastError], logs.join('\n')).toEqual(['up', '']);
    await expectRunningFixture('mtls-sans-allowed');
    // The exporter closes the connection after the handshake, as for an untrusted client certificate.
    const error = await expectDown('mtls-sans-other');
    expect(error).toMatch(closedAfterHandshake(made.at['mtls-sans-other.yml']!));
  }, 30_000);
});
