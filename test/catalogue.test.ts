/**
 * The catalogue (src/catalogue.ts) against the sources it must agree with, never against a copy of
 * itself:
 *   - the reference reader's own output (test/fixtures/<name>/reference-reader.txt, Loki Mode's
 *     v5.46.0 `/metrics` body): the nine contract families' names, HELP, TYPE, labels, order, and
 *     the task statuses;
 *   - the metrics table of docs/metrics.md, which users read: every family's name, type and labels,
 *     in exposition order, and which are the Node process's own ("Node only");
 *   - the Prometheus client-library guidelines and prom-client for the process families' HELP text
 *     (pinned below with where each comes from).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { FAMILIES, PROCESS_FAMILIES, SNAPSHOT_FAMILIES, TASK_STATUSES, isProcessFamily, type MetricFamily } from '../src/catalogue.js';

const read = (path: string) => readFileSync(new URL(path, import.meta.url), 'utf8');

interface Declared {
  readonly name: string;
  readonly type: string;
  readonly help?: string;
  readonly labels: readonly string[];
}

/** The families of a reference-reader body: `# HELP`, `# TYPE` and the label names its samples use. */
function referenceFamilies(fixture: string): Declared[] {
  const text = read(`./fixtures/${fixture}/reference-reader.txt`);
  const [, body] = text.split('----8<----\n');
  expect(body, `${fixture}: no body between the ----8<---- markers`).toBeDefined();
  const families: { name: string; type: string; help: string; labels: string[] }[] = [];
  for (const line of body!.split('\n')) {
    const help = /^# HELP (\w+) (.*)$/.exec(line);
    if (help) {
      families.push({ name: help[1]!, help: help[2]!, type: '', labels: [] });
      continue;
    }
    const current = families.at(-1);
    const type = /^# TYPE (\w+) (\w+)$/.exec(line);
    if (type) {
      expect(type[1]).toBe(current?.name);
      current!.type = type[2]!;
      continue;
    }
    const sample = /^(\w+)(?:\{(.*)\})? /.exec(line);
    if (sample && current) {
      expect(sample[1]).toBe(current.name);
      for (const pair of sample[2]?.split(',') ?? []) {
        const label = pair.split('=')[0]!;
        if (!current.labels.includes(label)) current.labels.push(label);
      }
    }
  }
  return families;
}

/** The label values of one family in a reference-reader body, in the order it prints them. */
function referenceLabelValues(fixture: string, family: string, label: string): string[] {
  const body = read(`./fixtures/${fixture}/reference-reader.txt`).split('----8<----\n')[1]!;
  const pattern = new RegExp(`^${family}\\{${label}="([^"]*)"\\} `);
  return body.split('\n').flatMap((line) => pattern.exec(line)?.slice(1) ?? []);
}

interface DocRow extends Declared {
  readonly nodeOnly: boolean;
}

/** docs/metrics.md's table: `| \`name{labels}\` | type | rule |`, in the order the docs list them. */
function documentedFamilies(): DocRow[] {
  const text = read('../docs/metrics.md');
  const start = text.indexOf('| Metric | Type | Rule |');
  expect(start).toBeGreaterThan(-1);
  const rows: DocRow[] = [];
  for (const line of text.slice(start).split('\n').slice(2)) {
    if (!line.startsWith('| `')) break;
    const [metric, type, ...rule] = line.replace(/^\| /, '').replace(/ \|$/, '').split(' | ');
    const m = /^`(\w+)(?:\{([\w,]+)\})?`$/.exec(metric ?? '');
    expect(m, `unparsed row: ${line}`).not.toBeNull();
    rows.push({
      name: m![1]!,
      labels: m![2]?.split(',') ?? [],
      // "gauge (OpenMetrics `info`)": an info family, which 0.0.4 prints as a gauge
      type: /OpenMetrics `info`/.test(type!) ? 'info' : type!,
      nodeOnly: rule.join(' | ').startsWith('Node only.'),
    });
  }
  return rows;
}

const plain = (families: readonly MetricFamily[]): Declared[] =>
  families.map((f) => ({ name: f.name, type: f.type, labels: [...f.labels] }));

describe('the nine contract families, as the reference reader prints them', () => {
  for (const fixture of ['running', 'paused']) {
    it(`come first, with its names, HELP, TYPE and labels, in its order (${fixture}/)`, () => {
      const reference = referenceFamilies(fixture);
      expect(reference).toHaveLength(9);
      expect(FAMILIES.slice(0, 9).map((f) => ({ name: f.name, type: f.type, help: f.help, labels: [...f.labels] }))).toEqual(reference);
    });
  }

  it('lists the task statuses the reference reader prints, in its order', () => {
    for (const fixture of ['running', 'paused']) {
      expect([...TASK_STATUSES]).toEqual(referenceLabelValues(fixture, 'loki_tasks_total', 'status'));
    }
  });
});

describe('every family, as docs/metrics.md documents it', () => {
  it('has the documented name, type and labels, in the documented order', () => {
    expect(plain(FAMILIES)).toEqual(documentedFamilies().map(({ name, type, labels }) => ({ name, type, labels })));
  });

  it('marks as the process\'s own exactly the families documented "Node only", and only those', () => {
    const nodeOnly = documentedFamilies().filter((row) => row.nodeOnly).map((row) => row.name);
    expect(nodeOnly).toHaveLength(5);
    expect(FAMILIES.filter((f) => isProcessFamily(f)).map((f) => f.name)).toEqual(nodeOnly);
    // `scope` is the whole marker: set to 'process' on those, absent on every other family
    for (const family of FAMILIES as readonly MetricFamily[]) {
      expect(family.scope, family.name).toBe(nodeOnly.includes(family.name) ? 'process' : undefined);
    }
  });

  it('gives every family a HELP text of its own: one non-empty line, none shared', () => {
    for (const family of FAMILIES) {
      expect(family.help.trim(), family.name).not.toBe('');
      expect(family.help, family.name).not.toMatch(/[\n\r]/);
    }
    expect(new Set(FAMILIES.map((f) => f.help)).size).toBe(FAMILIES.length);
    expect(new Set(FAMILIES.map((f) => f.name)).size).toBe(FAMILIES.length);
  });
});

describe('the process families, as Prometheus and prom-client name them', () => {
  // HELP texts of the Prometheus client-library guidelines ("Standard exports", process metrics:
  // prometheus/docs content/docs/instrumenting/writing_clientlibs.md) for the process_* families, and
  // of prom-client's lib/metrics/eventLoopLag.js for nodejs_eventloop_lag_seconds.
  const UPSTREAM: Record<string, string> = {
    process_cpu_seconds_total: 'Total user and system CPU time spent in seconds.',
    process_start_time_seconds: 'Start time of the process since unix epoch in seconds.',
    process_resident_memory_bytes: 'Resident memory size in bytes.',
    process_open_fds: 'Number of open file descriptors.',
    nodejs_eventloop_lag_seconds: 'Lag of event loop in seconds.',
  };

  it('carry the upstream HELP text word for word', () => {
    expect(Object.fromEntries(PROCESS_FAMILIES.map((f) => [f.name, f.help]))).toEqual(UPSTREAM);
  });
});

describe('PROCESS_FAMILIES and SNAPSHOT_FAMILIES', () => {
  it('split FAMILIES in two, in order: the snapshot part, then the process part as its tail', () => {
    expect(PROCESS_FAMILIES.length).toBeGreaterThan(0);
    expect(SNAPSHOT_FAMILIES.length).toBeGreaterThan(0);
    expect([...SNAPSHOT_FAMILIES, ...PROCESS_FAMILIES]).toEqual([...FAMILIES]);
    expect(PROCESS_FAMILIES.every((f) => isProcessFamily(f))).toBe(true);
    expect(SNAPSHOT_FAMILIES.some((f) => isProcessFamily(f))).toBe(false);
  });
});

describe('isProcessFamily', () => {
  const family = (scope?: 'process'): MetricFamily => ({ name: 'x', type: 'gauge', help: 'x', labels: [], ...(scope ? { scope } : {}) });

  it('is true for scope "process" and false without a scope', () => {
    expect(isProcessFamily(family('process'))).toBe(true);
    expect(isProcessFamily(family())).toBe(false);
  });
});
