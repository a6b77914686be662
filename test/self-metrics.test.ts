/**
 * The exporter's metrics about itself, through the app on a real tree (FsStateStore): the process
 * families (prom-client's names) exactly when a sampler is given, sampled per scrape next to the
 * memoised snapshot; the refresh duration; the build info's four labels; one `# EOF`, last. The
 * combined output goes through promtool and prometheus_client as well.
 */
import { spawnSync } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { createApp, type AppDeps } from '../src/app.js';
import { PROCESS_FAMILIES } from '../src/catalogue.js';
import { parseConfig } from '../src/config.js';
import { nodeBuildInfo } from '../src/node/build-info.js';
import { createProcessMetrics } from '../src/node/process-metrics.js';
import { render, renderEnd, renderFamilies } from '../src/render.js';
import { processSamples, withScrapeDuration, type ProcessMetrics } from '../src/self-metrics.js';
import { FsStateStore } from '../src/stores/fs.js';
import type { StateStore } from '../src/stores/store.js';
import { cleanTrees, materialize } from './support/loki-tree.js';
import { CountingStore } from './support/counting-store.js';
import { fullSnapshot, snapshotOf } from './support/snapshots.js';

const OPENMETRICS = 'application/openmetrics-text; version=1.0.0';
const TEXT = 'text/plain; version=0.0.4';
const PROCESS_NAMES = ['process_cpu_seconds_total', 'process_start_time_seconds', 'process_resident_memory_bytes', 'process_open_fds', 'nodejs_eventloop_lag_seconds'];

const stores: StateStore[] = [];
afterEach(async () => {
  await Promise.all(stores.splice(0).map((s) => s.close?.()));
  await cleanTrees();
});


async function appFor(deps: Partial<AppDeps> = {}, env: Record<string, string> = {}) {
  const dir = await materialize('running', { pid: 'alive', mtimeMs: Date.now() });
  const store = new CountingStore(new FsStateStore(dir, { watch: false }));
  stores.push(store);
  const logs: string[] = [];
  const app = createApp({ store, config: parseConfig({ LOKI_DIR: dir, ...env }), log: (l) => logs.push(l), ...deps });
  const get = async (accept: string) => (await app.request('/metrics', { headers: { Accept: accept } })).text();
  return { app, store, logs, get };
}

const count = (text: string, line: RegExp) => text.split('\n').filter((l) => line.test(l)).length;
const valueOf = (text: string, name: string): number | undefined => {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.slice(name.length + 1));
};

/** A sampler whose every reading differs, to tell per-scrape sampling from memoised output. */
function countingSampler(): { sample: () => ProcessMetrics; readings: () => number } {
  let n = 0;
  return {
    sample: () => {
      n++;
      return { cpuSeconds: n, startTimeSeconds: 1767225600, residentMemoryBytes: 1000 + n, openFds: 7, eventLoopLagSeconds: n / 1000 };
    },
    readings: () => n,
  };
}

describe('process families', () => {
  it('appear once each, HELP then TYPE, under prom-client\'s names, in both formats, when a sampler is given', async () => {
    const { get } = await appFor({ processMetrics: createProcessMetrics() });
    const prom = await get(TEXT);
    for (const name of PROCESS_NAMES) {
      expect(count(prom, new RegExp(`^# HELP ${name} `)), name).toBe(1);
      expect(count(prom, new RegExp(`^# TYPE ${name} `)), name).toBe(1);
      expect(valueOf(prom, name), name).toBeGreaterThan(name === 'nodejs_eventloop_lag_seconds' ? -1 : 0);
    }
    expect(prom).toContain('# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total ');
    expect(prom).toContain('# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes ');
    expect(prom).not.toContain('# EOF');

    const om = await get(OPENMETRICS);
    // OpenMetrics: the counter family is process_cpu_seconds, its sample process_cpu_seconds_total
    expect(om).toContain('# HELP process_cpu_seconds Total user and system CPU time spent in seconds.\n# TYPE process_cpu_seconds counter\nprocess_cpu_seconds_total ');
    expect(count(om, /^# TYPE process_cpu_seconds_total /)).toBe(0);
    for (const name of PROCESS_NAMES.slice(1)) expect(count(om, new RegExp(`^# TYPE ${name} gauge$`)), name).toBe(1);
    expect(count(om, /^# EOF$/)).toBe(1);
    expect(om.endsWith('\nnodejs_eventloop_lag_seconds ' + String(valueOf(om, 'nodejs_eventloop_lag_seconds')) + '\n# EOF\n')).toBe(true);
    expect(om).not.toMatch(/\n\n/);
  });

  it('are absent altogether (no HELP/TYPE either) without a sampler, and nothing is logged about them', async () => {
    const { get, logs } = await appFor();
    for (const accept of [TEXT, OPENMETRICS]) {
      const body = await get(accept);
      expect(body).not.toMatch(/^(# (HELP|TYPE) )?(process|nodejs)_/m);
      expect(body).toContain('loki_up 1\n');
    }
    const om = await get(OPENMETRICS);
    expect(count(om, /^# EOF$/)).toBe(1);
    expect(om.endsWith('\n# EOF\n')).toBe(true);
    expect(logs).toEqual([]);
  });

  it('are sampled on every scrape while the snapshot (and its rendering) is reused for the cache TTL', async () => {
    const sampler = countingSampler();
    const { get, store } = await appFor({ processMetrics: sampler.sample }, { LOKI_METRICS_CACHE_SECONDS: '60' });
    const first = await get(OPENMETRICS);
    const second = await get(OPENMETRICS);
    const third = await get(TEXT);
    expect(store.reads).toBe(1);
    expect(sampler.readings()).toBe(3);
    expect([first, second, third].map((b) => valueOf(b, 'process_cpu_seconds_total'))).toEqual([1, 2, 3]);
    expect(valueOf(second, 'process_resident_memory_bytes')).toBe(1002);
    // everything else is the same memoised text
    const withoutProcess = (b: string) => b.split('\n').filter((l) => !/^(# (HELP|TYPE) )?(process|nodejs)_/.test(l)).join('\n');
    expect(withoutProcess(second)).toBe(withoutProcess(first));
    expect(count(second, /^# EOF$/)).toBe(1);
  });

  it('leave out a descriptor count that cannot be read, but keep the family', async () => {
    const { get } = await appFor({ processMetrics: () => ({ cpuSeconds: 1, startTimeSeconds: 2, residentMemoryBytes: 3, eventLoopLagSeconds: 0 }) });
    const prom = await get(TEXT);
    expect(prom).toContain('# TYPE process_open_fds gauge\n# HELP nodejs_eventloop_lag_seconds');
    expect(valueOf(prom, 'process_open_fds')).toBeUndefined();
  });

  it('a failing sampler costs the process families only, with a log line, never the scrape', async () => {
    const { app, logs } = await appFor({
      processMetrics: () => {
        throw new Error('no /proc today');
      },
    });
    const res = await app.request('/metrics', { headers: { Accept: OPENMETRICS } });
    expect(res.status).toBe(200);
    const body = await res.text();
    expect(body).not.toMatch(/^# TYPE (process|nodejs)_/m);
    expect(body.endsWith('\n# EOF\n')).toBe(true);
    expect(logs).toContain('loki-metrics: cannot sample the process metrics: no /proc today');
  });
});

describe('loki_exporter_scrape_duration_seconds', () => {
  it('is the last refresh\'s duration: present, > 0 and small, on every runtime (no sampler needed)', async () => {
    const { get } = await appFor();
    for (const accept of [TEXT, OPENMETRICS]) {
      const body = await get(accept);
      expect(body).toContain('# HELP loki_exporter_scrape_duration_seconds How long the last refresh of the state (store read and collection) took, in seconds\n# TYPE loki_exporter_scrape_duration_seconds gauge\n');
      const seconds = valueOf(body, 'loki_exporter_scrape_duration_seconds');
      expect(seconds).toBeGreaterThan(0);
      expect(seconds).toBeLessThan(5);
    }
  });

  it('covers the store read: a slow store shows up in it', async () => {
    const dir = await materialize('running', { pid: 'alive', mtimeMs: Date.now() });
    const inner = new FsStateStore(dir, { watch: false });
    stores.push(inner);
    const store: StateStore = { read: async () => (await new Promise((r) => setTimeout(r, 120)), inner.read()) };
    const app = createApp({ store, config: parseConfig({ LOKI_DIR: dir }), log: () => undefined });
    const seconds = valueOf(await (await app.request('/metrics')).text(), 'loki_exporter_scrape_duration_seconds');
    expect(seconds).toBeGreaterThanOrEqual(0.1);
    expect(seconds).toBeLessThan(2);
  });

  it('is reported for failed refreshes too (their own duration): the first read failing, and one failing after good ones', async () => {
    let fail = true;
    const dir = await materialize('running', { pid: 'alive', mtimeMs: Date.now() });
    const inner = new FsStateStore(dir, { watch: false });
    stores.push(inner);
    const store: StateStore = {
      read: async () => {
        // failures are slow (a binding timing out), successes quick
        if (!fail) return inner.read();
        await new Promise((r) => setTimeout(r, 150));
        throw new Error('binding exploded');
      },
    };
    const app = createApp({ store, config: parseConfig({ LOKI_METRICS_CACHE_SECONDS: '0' }), log: () => undefined });
    const scrape = async () => (await app.request('/metrics')).text();
    const firstFailed = await scrape();
    expect(valueOf(firstFailed, 'loki_up')).toBe(0);
    expect(valueOf(firstFailed, 'loki_exporter_scrape_duration_seconds')).toBeGreaterThanOrEqual(0.14);
    fail = false;
    const good = await scrape();
    expect(valueOf(good, 'loki_up')).toBe(1);
    expect(valueOf(good, 'loki_exporter_scrape_duration_seconds')).toBeLessThan(0.14);
    fail = true;
    const laterFailed = await scrape();
    expect(valueOf(laterFailed, 'loki_up')).toBe(0);
    expect(valueOf(laterFailed, 'loki_cost_usd')).toBe(3.5313); // last good values
    expect(valueOf(laterFailed, 'loki_exporter_scrape_duration_seconds')).toBeGreaterThanOrEqual(0.14);
    expect(count(laterFailed, /^loki_exporter_scrape_duration_seconds /)).toBe(1);
  });
});

describe('loki_exporter_build_info', () => {
  it('carries version, demo, revision and nodeversion, in that order, from AppDeps.build', async () => {
    const revision = 'f'.repeat(40);
    const { get } = await appFor({ build: nodeBuildInfo({ LOKI_METRICS_REVISION: revision }) });
    expect(await get(TEXT)).toMatch(
      new RegExp(`^loki_exporter_build_info\\{version="\\d+\\.\\d+\\.\\d+[^"]*",demo="false",revision="${revision}",nodeversion="${process.version.replace(/\./g, '\\.')}"\\} 1$`, 'm'),
    );
    expect(await get(OPENMETRICS)).toContain(`,revision="${revision}",nodeversion="${process.version}"} 1\n`);
  });

  it('says revision="unknown" and has no nodeversion label when the runtime gives neither', async () => {
    const { get } = await appFor();
    expect(await get(TEXT)).toMatch(/^loki_exporter_build_info\{version="[^"]+",demo="false",revision="unknown"\} 1$/m);
  });
});

describe('the combined output through the real tools', () => {
  it('promtool check metrics: only the three contract gauges named _total are findings', async () => {
    const { get } = await appFor({ processMetrics: createProcessMetrics(), build: nodeBuildInfo({}) });
    const r = spawnSync('/usr/bin/promtool', ['check', 'metrics'], { input: await get(TEXT), encoding: 'utf8', timeout: 15_000 });
    expect(r.error).toBeUndefined();
    const findings = (r.stdout + r.stderr).split('\n').filter((l) => l.trim() !== '').sort();
    expect(findings).toEqual([
      'loki_agents_total non-counter metrics should not have "_total" suffix',
      'loki_receipts_total non-counter metrics should not have "_total" suffix',
      'loki_tasks_total non-counter metrics should not have "_total" suffix',
    ]);
    expect(r.status).toBe(3);
  });

  it('prometheus_client parses both formats: the process families with their types, after the rest', async () => {
    const { get } = await appFor({ processMetrics: createProcessMetrics(), build: nodeBuildInfo({}) });
    const script = String.raw`
import json, sys
if sys.argv[1] == 'openmetrics':
    from prometheus_client.openmetrics.parser import text_string_to_metric_families
else:
    from prometheus_client.parser import text_string_to_metric_families
print(json.dumps([[f.name, f.type, [s.name for s in f.samples]] for f in text_string_to_metric_families(sys.stdin.read())]))
`;
    for (const [format, accept] of [['openmetrics', OPENMETRICS], ['prometheus', TEXT]] as const) {
      const r = spawnSync('/usr/bin/python3', ['-c', script, format], { input: await get(accept), encoding: 'utf8', timeout: 15_000 });
      expect(r.status, r.stderr).toBe(0);
      const families = JSON.parse(r.stdout) as [string, string, string[]][];
      expect(families.slice(-5)).toEqual([
        ['process_cpu_seconds', 'counter', ['process_cpu_seconds_total']],
        ['process_start_time_seconds', 'gauge', ['process_start_time_seconds']],
        ['process_resident_memory_bytes', 'gauge', ['process_resident_memory_bytes']],
        ['process_open_fds', 'gauge', ['process_open_fds']],
        ['nodejs_eventloop_lag_seconds', 'gauge', ['nodejs_eventloop_lag_seconds']],
      ]);
      expect(families.find(([name]) => name === 'loki_exporter_scrape_duration_seconds')?.[2]).toEqual(['loki_exporter_scrape_duration_seconds']);
    }
  });
});

describe('the renderer\'s parts', () => {
  it('render() = the families\' lines + the end; the end is # EOF in OpenMetrics only', () => {
    const snap = fullSnapshot();
    for (const format of ['prometheus', 'openmetrics'] as const) {
      expect(render(snap, format)).toBe(renderFamilies(snap.samples, format) + renderEnd(format));
      expect(renderFamilies(snap.samples, format)).not.toContain('# EOF');
    }
    expect(renderEnd('openmetrics')).toBe('# EOF\n');
    expect(renderEnd('prometheus')).toBe('');
  });

  it('leaves a process family out when the samples lack it, but prints an empty one that is there', () => {
    const out = render(snapshotOf([['process_open_fds', []]]), 'prometheus');
    expect(out).toContain('# HELP process_open_fds Number of open file descriptors.\n# TYPE process_open_fds gauge\n');
    expect(out).not.toMatch(/^# TYPE (process_(cpu|start|resident)|nodejs_)/m);
    // other families are printed with no samples, as before
    expect(out).toContain('# TYPE loki_run_outcome gauge\n');
  });

  it('renders the process part alone from one reading, in catalogue order', () => {
    const text = renderFamilies(
      processSamples({ cpuSeconds: 1.5, startTimeSeconds: 1767225600.25, residentMemoryBytes: 4096, openFds: 9, eventLoopLagSeconds: 0.002 }),
      'openmetrics',
      PROCESS_FAMILIES,
    );
    expect(text.split('\n').filter((l) => !l.startsWith('#'))).toEqual([
      'process_cpu_seconds_total 1.5',
      'process_start_time_seconds 1767225600.25',
      'process_resident_memory_bytes 4096',
      'process_open_fds 9',
      'nodejs_eventloop_lag_seconds 0.002',
      '',
    ]);
  });
});

describe('self-metrics.ts', () => {
  it('processSamples: one entry per process family of the catalogue, in its order, each reading under its family', () => {
    const samples = processSamples({ cpuSeconds: 1.5, startTimeSeconds: 2.5, residentMemoryBytes: 3, openFds: 4, eventLoopLagSeconds: 0.5 });
    expect([...samples.keys()]).toEqual(PROCESS_FAMILIES.map((f) => f.name));
    expect(Object.fromEntries(samples)).toEqual({
      process_cpu_seconds_total: [{ value: 1.5 }],
      process_start_time_seconds: [{ value: 2.5 }],
      process_resident_memory_bytes: [{ value: 3 }],
      process_open_fds: [{ value: 4 }],
      nodejs_eventloop_lag_seconds: [{ value: 0.5 }],
    });
    // no descriptor count: the family stays, with no sample
    const without = processSamples({ cpuSeconds: 1, startTimeSeconds: 2, residentMemoryBytes: 3, eventLoopLagSeconds: 0 });
    expect([...without.keys()]).toEqual(PROCESS_FAMILIES.map((f) => f.name));
    expect(without.get('process_open_fds')).toEqual([]);
    expect(processSamples({ cpuSeconds: 0, startTimeSeconds: 0, residentMemoryBytes: 0, openFds: 0, eventLoopLagSeconds: 0 }).get('process_open_fds')).toEqual([{ value: 0 }]);
  });

  it('withScrapeDuration: a copy with the duration set, the snapshot it was given left as it was (snapshots are shared)', () => {
    const snap = fullSnapshot();
    const before = new Map(snap.samples);
    const timed = withScrapeDuration(snap, 0.125);
    expect(timed.samples.get('loki_exporter_scrape_duration_seconds')).toEqual([{ value: 0.125 }]);
    expect(snap.samples).toEqual(before);
    expect(timed).not.toBe(snap);
    expect({ ...timed, samples: undefined }).toEqual({ ...snap, samples: undefined });
    for (const [name, samples] of snap.samples) if (name !== 'loki_exporter_scrape_duration_seconds') expect(timed.samples.get(name), name).toBe(samples);
    expect(timed.samples.size).toBe(new Set([...snap.samples.keys(), 'loki_exporter_scrape_duration_seconds']).size);
  });
});
