/**
 * The formatter's real output through the real tools: `promtool check metrics` (Prometheus' own
 * text parser and linter) and the reference OpenMetrics parser of `prometheus_client`.
 *
 * The tools are required, not optional: CI installs them, and a missing tool fails with the
 * command that installs it rather than skipping silently.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { FAMILIES, isProcessFamily, type MetricFamily } from '../src/catalogue.js';
import { render, type Format } from '../src/render.js';
import type { Sample, Snapshot } from '../src/snapshot.js';
import { BUILD_NODEVERSION, BUILD_REVISION, fullSnapshot, snapshotOf } from './support/snapshots.js';

const PROMTOOL = '/usr/bin/promtool';
// The system python: the one on PATH may be a pyenv without prometheus_client.
const PYTHON = '/usr/bin/python3';
const INSTALL = 'apt-get install -y prometheus python3-prometheus-client';
const TIMEOUT_MS = 15_000;

interface Run {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function run(command: string, args: readonly string[], input: string): Run {
  if (!existsSync(command)) throw new Error(`${command} is missing; install it with: ${INSTALL}`);
  const r = spawnSync(command, args, { input, encoding: 'utf8', timeout: TIMEOUT_MS });
  if (r.error) throw new Error(`${command} could not run (${r.error.message}); install it with: ${INSTALL}`);
  if (r.signal) throw new Error(`${command} was killed by ${r.signal} (timeout ${TIMEOUT_MS} ms?)\n${r.stderr}`);
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function promtool(text: string): Run & { findings: string[] } {
  const r = run(PROMTOOL, ['check', 'metrics'], text);
  const findings = (r.stdout + r.stderr).split('\n').filter((l) => l.trim() !== '');
  return { ...r, findings: findings.sort() };
}

// Parses stdin with the format's reference parser and prints the families as JSON. Non-finite
// values become their exposition spellings (JSON has no NaN).
const PARSE_SCRIPT = String.raw`
import json, math, sys
try:
    if sys.argv[1] == 'openmetrics':
        from prometheus_client.openmetrics.parser import text_string_to_metric_families
    else:
        from prometheus_client.parser import text_string_to_metric_families
except ImportError as e:
    print('MISSING prometheus_client: ' + str(e), file=sys.stderr)
    sys.exit(97)
def num(v):
    if math.isnan(v): return 'NaN'
    if math.isinf(v): return '+Inf' if v > 0 else '-Inf'
    return v
out = []
for fam in text_string_to_metric_families(sys.stdin.read()):
    out.append({'name': fam.name, 'type': fam.type, 'help': fam.documentation,
                'samples': [{'name': s.name, 'labels': s.labels, 'value': num(s.value)} for s in fam.samples]})
print(json.dumps(out, allow_nan=False))
`;

interface ParsedFamily {
  name: string;
  type: string;
  help: string;
  samples: { name: string; labels: Record<string, string>; value: number | string }[];
}

/** Runs the reference parser; a parse error is returned, not thrown, so tests can assert on it. */
function pythonParse(text: string, format: Format): { families?: ParsedFamily[]; error?: string } {
  const r = run(PYTHON, ['-c', PARSE_SCRIPT, format], text);
  if (r.status === 97) throw new Error(`${PYTHON} lacks prometheus_client (${r.stderr.trim()}); install it with: ${INSTALL}`);
  if (r.status !== 0) return { error: r.stderr.trim() || `exit ${r.status}` };
  return { families: JSON.parse(r.stdout) as ParsedFamily[] };
}

function spelled(value: number): number | string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return value;
}

/** What each reference parser must report for `snapshot` rendered with `families`. */
function expectedFamilies(snapshot: Snapshot, format: Format, families: readonly MetricFamily[] = FAMILIES): ParsedFamily[] {
  const samples = snapshot.samples as ReadonlyMap<string, readonly Sample[]>;
  // A process family the snapshot lacks is not printed at all (a runtime without a process).
  return families.filter((family) => !isProcessFamily(family) || samples.has(family.name)).map((family) => {
    // The OpenMetrics family name has no `_total`/`_info`; prometheus_client's 0.0.4 parser also
    // strips `_total` from counters, and there the info family is a plain gauge.
    let name = family.name;
    let type: string = family.type;
    if (family.type === 'counter') name = name.replace(/_total$/, '');
    if (family.type === 'info') {
      if (format === 'openmetrics') name = name.replace(/_info$/, '');
      else type = 'gauge';
    }
    return {
      name,
      type,
      help: family.help,
      samples: (samples.get(family.name) ?? []).map((s) => ({
        name: family.name + (family.type === 'histogram' ? (s.suffix ?? '') : ''),
        labels: Object.fromEntries(
          [...family.labels, ...(family.type === 'histogram' && s.suffix === '_bucket' ? ['le'] : [])].flatMap((l) =>
            s.labels?.[l] === undefined ? [] : [[l, s.labels[l]]],
          ),
        ),
        value: spelled(s.value),
      })),
    };
  });
}

describe('promtool check metrics (Prometheus text 0.0.4)', () => {
  it('accepts the full output; the only findings are the three contract gauges named _total', () => {
    const r = promtool(render(fullSnapshot(), 'prometheus'));
    expect(r.findings).toEqual([
      'loki_agents_total non-counter metrics should not have "_total" suffix',
      // named as upstream 9.22's own /metrics names it, so its dashboards work unchanged
      'loki_receipts_total non-counter metrics should not have "_total" suffix',
      'loki_tasks_total non-counter metrics should not have "_total" suffix',
    ]);
    // 3 is promtool's "lint problems" status; a parse error would be 1.
    expect(r.status).toBe(3);
  });

  it('accepts families with no samples, with no findings at all', () => {
    const r = promtool(render(snapshotOf(), 'prometheus'));
    expect(r.findings).toEqual([]);
    expect(r.status).toBe(0);
  });

  it('accepts escaped HELP text and label values', () => {
    const families: MetricFamily[] = [{ name: 'loki_source_ok', type: 'gauge', help: 'back\\slash "quoted"\nline two', labels: ['source'] }];
    const snap = snapshotOf([['loki_source_ok', [{ labels: { source: 'a\\b"c\nd' }, value: NaN }]]]);
    const r = promtool(render(snap, 'prometheus', families));
    expect(r.findings).toEqual([]);
    expect(r.status).toBe(0);
  });

  it('has teeth: a malformed line is a parse error', () => {
    const broken = render(fullSnapshot(), 'prometheus').replace('loki_up 1', 'loki_up{source="x} 1');
    const r = promtool(broken);
    expect(r.status).toBe(1);
    expect(r.findings.join('\n')).toMatch(/parsing error/);
  });

  // promtool (2.x) lints only the 0.0.4 text format: it has no OpenMetrics mode and stops at the
  // first OpenMetrics-only construct. OpenMetrics conformance is therefore checked with the
  // reference parser below; this test pins down that the refusal is about `info` and nothing else.
  it('cannot lint OpenMetrics: it stops at the info type, which 0.0.4 lacks', () => {
    const text = render(fullSnapshot(), 'openmetrics');
    const r = promtool(text);
    expect(r.status).toBe(1);
    const infoLine = text.split('\n').indexOf('# TYPE loki_exporter_build info') + 1;
    expect(r.findings).toEqual([`error while linting: text format parsing error in line ${infoLine}: unknown metric type "info"`]);
  });
});

describe('prometheus_client OpenMetrics parser', () => {
  it('parses the full output: names, types, HELP, escaped labels and NaN/Inf round-trip', () => {
    const snap = fullSnapshot();
    const parsed = pythonParse(render(snap, 'openmetrics'), 'openmetrics');
    expect(parsed.error).toBeUndefined();
    expect(parsed.families).toEqual(expectedFamilies(snap, 'openmetrics'));
    // Spot checks on what the comparison above covers, for a readable failure.
    const byName = new Map(parsed.families?.map((f) => [f.name, f]));
    expect(byName.get('loki_events')?.type).toBe('counter');
    expect(byName.get('loki_events')?.samples[0]?.name).toBe('loki_events_total');
    expect(byName.get('loki_exporter_build')?.type).toBe('info');
    expect(byName.get('loki_exporter_build')?.samples[0]).toEqual({
      name: 'loki_exporter_build_info',
      labels: { version: '1.2.3-"dev"\\x', demo: 'false', revision: BUILD_REVISION, nodeversion: BUILD_NODEVERSION },
      value: 1,
    });
    // prom-client's names: the counter family is process_cpu_seconds, its sample _total
    expect(byName.get('process_cpu_seconds')).toEqual({
      name: 'process_cpu_seconds',
      type: 'counter',
      help: 'Total user and system CPU time spent in seconds.',
      samples: [{ name: 'process_cpu_seconds_total', labels: {}, value: 12.345 }],
    });
    expect(byName.get('nodejs_eventloop_lag_seconds')?.type).toBe('gauge');
    expect(parsed.families?.at(-1)?.name).toBe('nodejs_eventloop_lag_seconds');
    expect(byName.get('loki_tasks_total')?.type).toBe('gauge');
    expect(byName.get('loki_tasks_total')?.samples.map((s) => s.labels['status'])).toEqual(['pending', 'in_progress', 'completed', 'failed']);
    expect(byName.get('loki_source_ok')?.samples.map((s) => s.labels['source'])).toContain('metrics/eff\\ic"ien\ncy');
    expect(byName.get('loki_budget_limit_usd')?.samples[0]?.value).toBe('+Inf');
    expect(byName.get('loki_source_mtime_seconds')?.samples.map((s) => s.value)).toEqual([1767225600.123, 'NaN', '-Inf', 1767225599]);
  });

  it('parses the output with no samples at all', () => {
    const snap = snapshotOf();
    const parsed = pythonParse(render(snap, 'openmetrics'), 'openmetrics');
    expect(parsed.error).toBeUndefined();
    expect(parsed.families).toEqual(expectedFamilies(snap, 'openmetrics'));
  });

  it('round-trips HELP with backslash, double quote and newline', () => {
    const help = 'back\\slash "quoted"\nline two';
    const families: MetricFamily[] = [{ name: 'loki_source_ok', type: 'gauge', help, labels: ['source'] }];
    const snap = snapshotOf([['loki_source_ok', [{ labels: { source: 'a\\b"c\nd' }, value: -0 }]]]);
    const parsed = pythonParse(render(snap, 'openmetrics', families), 'openmetrics');
    expect(parsed.error).toBeUndefined();
    expect(parsed.families).toEqual([{ name: 'loki_source_ok', type: 'gauge', help, samples: [{ name: 'loki_source_ok', labels: { source: 'a\\b"c\nd' }, value: 0 }] }]);
  });

  // The reference exporter's other defect, `nan`/`inf`, is not caught here: this parser reads
  // values with Python's float(). The spellings are pinned in render.test.ts instead.
  it('has teeth: the reference exporter defects (blank lines, no # EOF) are rejected', () => {
    const good = render(fullSnapshot(), 'openmetrics');
    expect(pythonParse(good.replace(/\n# HELP/g, '\n\n# HELP'), 'openmetrics').error).toBeDefined();
    expect(pythonParse(good.replace(/# EOF\n$/, ''), 'openmetrics').error).toBeDefined();
  });
});

describe('prometheus_client text 0.0.4 parser', () => {
  it('parses the full output: names, types, HELP, escaped labels and NaN/Inf round-trip', () => {
    const snap = fullSnapshot();
    const parsed = pythonParse(render(snap, 'prometheus'), 'prometheus');
    expect(parsed.error).toBeUndefined();
    expect(parsed.families).toEqual(expectedFamilies(snap, 'prometheus'));
    const byName = new Map(parsed.families?.map((f) => [f.name, f]));
    expect(byName.get('loki_exporter_build_info')?.type).toBe('gauge');
    expect(byName.get('loki_exporter_build_info')?.samples[0]?.labels).toEqual({ version: '1.2.3-"dev"\\x', demo: 'false', revision: BUILD_REVISION, nodeversion: BUILD_NODEVERSION });
    expect(byName.get('process_cpu_seconds')?.type).toBe('counter');
    expect(byName.get('process_cpu_seconds')?.samples[0]?.name).toBe('process_cpu_seconds_total');
    expect(byName.get('loki_source_ok')?.samples.map((s) => s.labels['source'])).toContain('metrics/eff\\ic"ien\ncy');
  });

  it('parses the output with no samples at all', () => {
    const snap = snapshotOf();
    const parsed = pythonParse(render(snap, 'prometheus'), 'prometheus');
    expect(parsed.error).toBeUndefined();
    expect(parsed.families).toEqual(expectedFamilies(snap, 'prometheus'));
  });

  it('round-trips HELP with backslash, double quote (unescaped in 0.0.4) and newline', () => {
    const help = 'back\\slash "quoted"\nline two';
    const families: MetricFamily[] = [{ name: 'loki_source_ok', type: 'gauge', help, labels: ['source'] }];
    const snap = snapshotOf([['loki_source_ok', [{ labels: { source: 'a\\b"c\nd' }, value: 1e-7 }]]]);
    const parsed = pythonParse(render(snap, 'prometheus', families), 'prometheus');
    expect(parsed.error).toBeUndefined();
    expect(parsed.families).toEqual([{ name: 'loki_source_ok', type: 'gauge', help, samples: [{ name: 'loki_source_ok', labels: { source: 'a\\b"c\nd' }, value: 1e-7 }] }]);
  });
});
