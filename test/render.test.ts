/**
 * The exposition formatter and content negotiation, as pure functions: bytes in, bytes out.
 * The same output is checked by the real tools (promtool, prometheus_client) in
 * render.conformance.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { FAMILIES, SNAPSHOT_FAMILIES, type MetricFamily } from '../src/catalogue.js';
import { contentType, negotiate, render, type Format } from '../src/render.js';
import type { Sample } from '../src/snapshot.js';
import { AWKWARD_SOURCE, BUILD_NODEVERSION, BUILD_REVISION, fullSnapshot, snapshotOf } from './support/snapshots.js';

const FORMATS: readonly Format[] = ['prometheus', 'openmetrics'];

/** The `# HELP`/`# TYPE` name and sample name each format must use for a catalogue family. */
function expectedNames(family: MetricFamily, format: Format): { meta: string; sample: string; type: string } {
  if (format === 'prometheus') {
    return { meta: family.name, sample: family.name, type: family.type === 'info' ? 'gauge' : family.type };
  }
  if (family.type === 'counter') return { meta: family.name.replace(/_total$/, ''), sample: family.name, type: 'counter' };
  if (family.type === 'info') return { meta: family.name.replace(/_info$/, ''), sample: family.name, type: 'info' };
  return { meta: family.name, sample: family.name, type: family.type };
}

function lines(text: string): string[] {
  expect(text.endsWith('\n')).toBe(true);
  return text.slice(0, -1).split('\n');
}

/** The value token of the only sample line starting with `prefix`. */
function valueOf(text: string, prefix: string): string {
  const matches = lines(text).filter((l) => l.startsWith(prefix));
  expect(matches).toHaveLength(1);
  return (matches[0] as string).slice(prefix.length);
}

describe('render: the catalogue', () => {
  it('keeps the nine families of the metrics guide first, with their guide types', () => {
    expect(FAMILIES.slice(0, 9).map((f) => [f.name, f.type])).toEqual([
      ['loki_session_status', 'gauge'],
      ['loki_iteration_current', 'gauge'],
      ['loki_iteration_max', 'gauge'],
      ['loki_tasks_total', 'gauge'],
      ['loki_agents_active', 'gauge'],
      ['loki_agents_total', 'gauge'],
      ['loki_cost_usd', 'gauge'],
      ['loki_events_total', 'counter'],
      ['loki_uptime_seconds', 'gauge'],
    ]);
  });

  for (const format of FORMATS) {
    it(`${format}: every family appears once, HELP then TYPE, in catalogue order, even with no samples (but the process families, which the snapshot lacks)`, () => {
      const out = lines(render(snapshotOf(), format));
      const expected: string[] = [];
      for (const family of SNAPSHOT_FAMILIES) {
        const n = expectedNames(family, format);
        expected.push(`# HELP ${n.meta} ${family.help}`, `# TYPE ${n.meta} ${n.type}`);
      }
      if (format === 'openmetrics') expected.push('# EOF');
      expect(out).toEqual(expected);
    });

    it(`${format}: with samples, each family's meta lines are still unique and in order`, () => {
      const out = lines(render(fullSnapshot(), format));
      const typeLines = out.filter((l) => l.startsWith('# TYPE '));
      const helpLines = out.filter((l) => l.startsWith('# HELP '));
      expect(typeLines.map((l) => l.split(' ')[2])).toEqual(FAMILIES.map((f) => expectedNames(f, format).meta));
      expect(helpLines.map((l) => l.split(' ')[2])).toEqual(FAMILIES.map((f) => expectedNames(f, format).meta));
      // Each family's samples directly follow its TYPE line and carry the family's sample name.
      let current: { sample: string } | undefined;
      let histogram = false;
      for (const line of out) {
        if (line.startsWith('# TYPE ')) {
          const meta = line.split(' ')[2];
          const family = FAMILIES.find((f) => expectedNames(f, format).meta === meta);
          expect(family).toBeDefined();
          current = expectedNames(family as MetricFamily, format);
          histogram = family?.type === 'histogram';
        } else if (!line.startsWith('#')) {
          expect(current).toBeDefined();
          // a histogram's samples are `<name>_bucket{le=...}`, `<name>_sum`, `<name>_count`
          const names = histogram ? ['_bucket', '_sum', '_count'].map((suffix) => `${current?.sample}${suffix}`) : [`${current?.sample}`];
          expect(names.some((name) => line.startsWith(`${name} `) || line.startsWith(`${name}{`)), line).toBe(true);
        }
      }
    });
  }

  it('renders families missing from the snapshot with no sample lines', () => {
    const out = lines(render(snapshotOf([['loki_up', [{ value: 0 }]]]), 'prometheus'));
    expect(out.filter((l) => !l.startsWith('#'))).toEqual(['loki_up 0']);
  });
});

describe('render: Prometheus text 0.0.4', () => {
  const text = render(fullSnapshot(), 'prometheus');

  it('has no blank lines, no # EOF, and ends with exactly one newline', () => {
    expect(text).not.toMatch(/\n\n/);
    expect(text.startsWith('\n')).toBe(false);
    expect(text).not.toContain('# EOF');
    expect(text.endsWith('\n')).toBe(true);
    expect(text.endsWith('\n\n')).toBe(false);
  });

  it('spells the info family as a gauge of value 1', () => {
    const out = lines(text);
    expect(out).toContain('# TYPE loki_exporter_build_info gauge');
    expect(out).toContain('# HELP loki_exporter_build_info Build information of the loki-metrics exporter');
    const single = render(snapshotOf([['loki_exporter_build_info', [{ labels: { version: '0.1.0' }, value: 1 }]]]), 'prometheus');
    expect(lines(single)).toContain('loki_exporter_build_info{version="0.1.0"} 1');
    expect(single).not.toMatch(/ info$/m);
  });

  it('keeps loki_events_total as a counter under its full name', () => {
    const out = lines(text);
    expect(out).toContain('# TYPE loki_events_total counter');
    expect(out).toContain('# HELP loki_events_total Total number of events recorded');
    expect(out).toContain('loki_events_total 123456789012');
  });

  it('prints the contract gauges named _total as gauges', () => {
    const out = lines(text);
    expect(out).toContain('# TYPE loki_tasks_total gauge');
    expect(out).toContain('# TYPE loki_agents_total gauge');
  });
});

describe('render: OpenMetrics 1.0', () => {
  const text = render(fullSnapshot(), 'openmetrics');

  it('ends with # EOF and a single newline, with no blank lines', () => {
    expect(text.endsWith('\n# EOF\n')).toBe(true);
    expect(text.indexOf('# EOF')).toBe(text.length - '# EOF\n'.length);
    expect(text).not.toMatch(/\n\n/);
  });

  it('names the counter family without _total and its sample with it', () => {
    const out = lines(text);
    expect(out).toContain('# HELP loki_events Total number of events recorded');
    expect(out).toContain('# TYPE loki_events counter');
    expect(out).toContain('loki_events_total 123456789012');
    expect(out).not.toContain('# TYPE loki_events_total counter');
  });

  it('names the info family without _info, type info, sample with _info', () => {
    const out = lines(text);
    expect(out).toContain('# HELP loki_exporter_build Build information of the loki-metrics exporter');
    expect(out).toContain('# TYPE loki_exporter_build info');
    const single = render(snapshotOf([['loki_exporter_build_info', [{ labels: { version: '0.1.0' }, value: 1 }]]]), 'openmetrics');
    expect(lines(single)).toContain('loki_exporter_build_info{version="0.1.0"} 1');
  });

  it('keeps gauges ending in _total under their own name', () => {
    const out = lines(text);
    expect(out).toContain('# TYPE loki_tasks_total gauge');
    expect(out).toContain('# HELP loki_tasks_total Number of tasks by status');
    expect(out).toContain('loki_tasks_total{status="pending"} 7');
    expect(out).toContain('# TYPE loki_agents_total gauge');
    expect(out).toContain('loki_agents_total 9');
    expect(out.some((l) => l.startsWith('# TYPE loki_tasks '))).toBe(false);
  });

  it('adds the suffix when a counter or info family is named without it', () => {
    const families: MetricFamily[] = [
      { name: 'loki_up', type: 'counter', help: 'h', labels: [] },
      { name: 'loki_cost_usd', type: 'info', help: 'h', labels: [] },
    ];
    const snap = snapshotOf([
      ['loki_up', [{ value: 2 }]],
      ['loki_cost_usd', [{ value: 1 }]],
    ]);
    expect(lines(render(snap, 'openmetrics', families))).toEqual([
      '# HELP loki_up h',
      '# TYPE loki_up counter',
      'loki_up_total 2',
      '# HELP loki_cost_usd h',
      '# TYPE loki_cost_usd info',
      'loki_cost_usd_info 1',
      '# EOF',
    ]);
  });
});

describe('render: escaping', () => {
  it('escapes backslash, double quote and newline in label values, in both formats', () => {
    for (const format of FORMATS) {
      const out = render(fullSnapshot(), format);
      expect(lines(out)).toContain('loki_source_ok{source="metrics/eff\\\\ic\\"ien\\ncy"} 0');
      expect(lines(out)).toContain(`loki_exporter_build_info{version="1.2.3-\\"dev\\"\\\\x",demo="false",revision="${BUILD_REVISION}",nodeversion="${BUILD_NODEVERSION}"} 1`);
      // The raw newline never reaches the output: every line is a comment or a whole sample.
      for (const line of lines(out)) expect(line).toMatch(/^(#|(loki|process|nodejs)_[a-z_]+(\{.*\})? \S+$)/);
    }
    expect(AWKWARD_SOURCE).toContain('\n');
  });

  it('leaves other characters (unicode, tabs, braces, commas) in label values alone', () => {
    const families: MetricFamily[] = [{ name: 'loki_source_ok', type: 'gauge', help: 'h', labels: ['source'] }];
    const snap = snapshotOf([['loki_source_ok', [{ labels: { source: 'é→🙂\t{a},b=c' }, value: 1 }]]]);
    for (const format of FORMATS) {
      expect(lines(render(snap, format, families))).toContain('loki_source_ok{source="é→🙂\t{a},b=c"} 1');
    }
  });

  const help = 'back\\slash "quoted"\nsecond line';
  const families: MetricFamily[] = [{ name: 'loki_up', type: 'gauge', help, labels: [] }];

  it('0.0.4 HELP escapes only backslash and newline', () => {
    expect(lines(render(snapshotOf(), 'prometheus', families))).toEqual([
      '# HELP loki_up back\\\\slash "quoted"\\nsecond line',
      '# TYPE loki_up gauge',
    ]);
  });

  it('OpenMetrics HELP also escapes the double quote', () => {
    expect(lines(render(snapshotOf(), 'openmetrics', families))).toEqual([
      '# HELP loki_up back\\\\slash \\"quoted\\"\\nsecond line',
      '# TYPE loki_up gauge',
      '# EOF',
    ]);
  });
});

describe('render: numbers', () => {
  const one = (value: number, format: Format = 'prometheus') => valueOf(render(snapshotOf([['loki_cost_usd', [{ value }]]]), format), 'loki_cost_usd ');

  it('spells non-finite values NaN, +Inf, -Inf in both formats', () => {
    for (const format of FORMATS) {
      expect(one(NaN, format)).toBe('NaN');
      expect(one(Infinity, format)).toBe('+Inf');
      expect(one(-Infinity, format)).toBe('-Inf');
    }
    const out = render(fullSnapshot(), 'openmetrics');
    expect(out).not.toMatch(/ (nan|inf|-inf|Infinity|-Infinity)$/m);
    expect(lines(out)).toContain('loki_budget_limit_usd +Inf');
    expect(lines(out)).toContain('loki_source_mtime_seconds{source="loki.pid"} NaN');
    expect(lines(out)).toContain('loki_source_mtime_seconds{source="events.jsonl"} -Inf');
  });

  it('prints -0 as 0', () => {
    for (const format of FORMATS) expect(one(-0, format)).toBe('0');
  });

  it('prints integers without a fraction and keeps large and tiny numbers exact', () => {
    const cases: [number, string][] = [
      [0, '0'],
      [42, '42'],
      [-3, '-3'],
      [123456789012, '123456789012'],
      [2 ** 53, '9007199254740992'],
      [1e21, '1e+21'],
      [Number.MAX_VALUE, '1.7976931348623157e+308'],
      [0.000001, '0.000001'],
      [1e-7, '1e-7'],
      [5e-324, '5e-324'],
      [0.1 + 0.2, '0.30000000000000004'],
      [1767225600.123, '1767225600.123'],
    ];
    // The OpenMetrics number grammar (which 0.0.4's Go ParseFloat also accepts).
    const grammar = /^(?:[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|NaN|[+-]Inf)$/;
    for (const [value, spelled] of cases) {
      for (const format of FORMATS) {
        const token = one(value, format);
        expect(token).toBe(spelled);
        expect(token).toMatch(grammar);
        expect(Number(token)).toBe(value);
      }
    }
  });
});

describe('render: determinism', () => {
  it('gives identical bytes for the same snapshot, every time', () => {
    for (const format of FORMATS) {
      const snap = fullSnapshot();
      const first = render(snap, format);
      expect(render(snap, format)).toBe(first);
      expect(render(fullSnapshot(), format)).toBe(first);
    }
  });

  it('does not depend on the order families were put into the snapshot', () => {
    const forward = fullSnapshot();
    const reversed = snapshotOf([...forward.samples.entries()].reverse());
    for (const format of FORMATS) expect(render(reversed, format)).toBe(render(forward, format));
  });

  it('prints labels in catalogue order, whatever order the sample gives them', () => {
    const families: MetricFamily[] = [{ name: 'loki_source_ok', type: 'gauge', help: 'h', labels: ['source', 'kind', 'zone'] }];
    const samples: Sample[] = [
      { labels: { zone: 'z', kind: 'k', source: 's' }, value: 1 },
      { labels: { kind: 'k2', source: 's2', zone: 'z2' }, value: 2 },
    ];
    for (const format of FORMATS) {
      const out = lines(render(snapshotOf([['loki_source_ok', samples]]), format, families));
      expect(out.filter((l) => !l.startsWith('#'))).toEqual([
        'loki_source_ok{source="s",kind="k",zone="z"} 1',
        'loki_source_ok{source="s2",kind="k2",zone="z2"} 2',
      ]);
    }
  });

  it('keeps sample order within a family, leaves out labels a sample lacks and ignores undeclared ones', () => {
    const families: MetricFamily[] = [{ name: 'loki_tasks_total', type: 'gauge', help: 'h', labels: ['status', 'queue'] }];
    const samples: Sample[] = [
      { labels: { status: 'failed', extra: 'x' }, value: 3 },
      { labels: { queue: 'q' }, value: 1 },
      { value: 0 },
    ];
    const out = lines(render(snapshotOf([['loki_tasks_total', samples]]), 'prometheus', families));
    expect(out.filter((l) => !l.startsWith('#'))).toEqual([
      'loki_tasks_total{status="failed"} 3',
      'loki_tasks_total{queue="q"} 1',
      'loki_tasks_total 0',
    ]);
  });

  it('renders the four task statuses in the order given by the snapshot', () => {
    const out = lines(render(fullSnapshot(), 'prometheus')).filter((l) => l.startsWith('loki_tasks_total{'));
    expect(out).toEqual([
      'loki_tasks_total{status="pending"} 7',
      'loki_tasks_total{status="in_progress"} 2',
      'loki_tasks_total{status="completed"} 50',
      'loki_tasks_total{status="failed"} 3',
    ]);
  });
});

describe('render: the end of the exposition', () => {
  it('renders no families as nothing at all, then only the end marker of the format', () => {
    const snap = snapshotOf([['loki_up', [{ value: 1 }]]]);
    expect(render(snap, 'prometheus', [])).toBe('');
    expect(render(snap, 'openmetrics', [])).toBe('# EOF\n');
    // The process families alone, which a snapshot never holds: the same.
    const process = (FAMILIES as readonly MetricFamily[]).filter((f) => f.scope === 'process');
    expect(process.length).toBeGreaterThan(0);
    expect(render(snap, 'prometheus', process)).toBe('');
    expect(render(snap, 'openmetrics', process)).toBe('# EOF\n');
  });
});

describe('contentType', () => {
  it('names each format exactly', () => {
    expect(contentType('prometheus')).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect(contentType('openmetrics')).toBe('application/openmetrics-text; version=1.0.0; charset=utf-8');
  });
});

describe('negotiate', () => {
  // What Prometheus sends (scrape/scrape.go acceptHeader): each configured scrape protocol with a
  // falling q starting at 0.<number of known protocols + 1>, then */* one step lower. 2.x knows
  // four protocols (q from 0.5), 3.x five (q from 0.6) and adds `escaping` to the 1.0.0 formats.
  const cases: [string, string | null | undefined, Format][] = [
    [
      'Prometheus 3.x default',
      'application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2',
      'openmetrics',
    ],
    [
      'Prometheus 2.x default',
      'application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1',
      'openmetrics',
    ],
    ['Prometheus 3.x, scrape_protocols: [PrometheusText0.0.4]', 'text/plain;version=0.0.4;q=0.6,*/*;q=0.5', 'prometheus'],
    ['Prometheus 2.x, scrape_protocols: [PrometheusText0.0.4]', 'text/plain;version=0.0.4;q=0.5,*/*;q=0.4', 'prometheus'],
    ['Prometheus 3.x, scrape_protocols: [PrometheusText1.0.0]', 'text/plain;version=1.0.0;escaping=allow-utf-8;q=0.6,*/*;q=0.5', 'prometheus'],
    [
      'Prometheus 3.x, scrape_protocols: [PrometheusText1.0.0, OpenMetricsText1.0.0]',
      'text/plain;version=1.0.0;escaping=allow-utf-8;q=0.6,application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,*/*;q=0.4',
      'prometheus',
    ],
    [
      'Prometheus 3.x, scrape_protocols: [OpenMetricsText1.0.0]',
      'application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,*/*;q=0.5',
      'openmetrics',
    ],
    [
      'Prometheus 3.x with protobuf first (native histograms)',
      'application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.6,application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1',
      'openmetrics',
    ],
    [
      'Prometheus 2.x, scrape_protocols: [PrometheusProto, PrometheusText0.0.4]',
      'application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.5,text/plain;version=0.0.4;q=0.4,*/*;q=0.3',
      'prometheus',
    ],
    ['curl default', '*/*', 'prometheus'],
    ['no header', undefined, 'prometheus'],
    ['null header', null, 'prometheus'],
    ['empty header', '', 'prometheus'],
    ['whitespace', '   ', 'prometheus'],
    ['garbage', ';;;,,,==/', 'prometheus'],
    ['not a media type', 'openmetrics', 'prometheus'],
    ['browser asking for HTML', 'text/html', 'prometheus'],
    ['browser default', 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8', 'prometheus'],
    ['bare OpenMetrics', 'application/openmetrics-text', 'openmetrics'],
    ['OpenMetrics 0.0.1 (same wire format)', 'application/openmetrics-text;version=0.0.1', 'openmetrics'],
    ['unsupported OpenMetrics version alone', 'application/openmetrics-text;version=2.0.0', 'prometheus'],
    ['unsupported OpenMetrics version with */*', 'application/openmetrics-text;version=2.0.0,*/*;q=0.1', 'prometheus'],
    ['application/*', 'application/*', 'openmetrics'],
    ['case and spaces', ' Application/OpenMetrics-Text ; Version=1.0.0 ; Q=0.9 , text/plain;q=0.5', 'openmetrics'],
    ['quoted version', 'application/openmetrics-text;version="1.0.0"', 'openmetrics'],
    ['equal q, text first', 'text/plain;version=0.0.4,application/openmetrics-text;version=1.0.0', 'prometheus'],
    ['equal q, OpenMetrics first', 'application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4', 'openmetrics'],
    ['higher q wins whatever the order', 'text/plain;q=0.2,application/openmetrics-text;q=0.9', 'openmetrics'],
    ['text preferred by q', 'application/openmetrics-text;q=0.2,text/plain;q=0.9', 'prometheus'],
    // q=0 means "not acceptable".
    ['OpenMetrics refused, anything else fine', 'application/openmetrics-text;q=0,*/*', 'prometheus'],
    ['OpenMetrics refused with q=0.000', 'application/openmetrics-text;version=1.0.0;q=0.000', 'prometheus'],
    ['0.0.4 refused, anything else fine', 'text/plain;q=0,*/*', 'openmetrics'],
    ['0.0.4 refused, OpenMetrics offered', 'text/plain;version=0.0.4;q=0,application/openmetrics-text;version=1.0.0;q=0.1', 'openmetrics'],
    ['everything refused: still the default', 'text/plain;q=0,application/openmetrics-text;q=0', 'prometheus'],
    ['*/* refused', '*/*;q=0', 'prometheus'],
    ['a less specific range does not override a refusal', 'application/openmetrics-text;version=1.0.0;q=0,application/*;q=1', 'prometheus'],
    ['unparseable q counts as refusal', 'application/openmetrics-text;q=high', 'prometheus'],
    ['q above 1 is clamped, not preferred', 'text/plain;version=0.0.4,application/openmetrics-text;q=5', 'prometheus'],
  ];

  for (const [name, accept, format] of cases) {
    it(`${name} → ${format}`, () => {
      expect(negotiate(accept)).toBe(format);
    });
  }

  // The exact Content-Type each Accept header is answered with (literals, not contentType() of the
  // expected format, so a swapped table or a wrong negotiation both fail here).
  const TEXT_0_0_4 = 'text/plain; version=0.0.4; charset=utf-8';
  const OPENMETRICS_1 = 'application/openmetrics-text; version=1.0.0; charset=utf-8';
  it.each(cases)('%s: answered with exactly the Content-Type of its format', (_name, accept, format) => {
    expect(contentType(negotiate(accept))).toBe(format === 'openmetrics' ? OPENMETRICS_1 : TEXT_0_0_4);
  });
  it('the cases cover both formats (so the check above checks both)', () => {
    expect(new Set(cases.map(([, , format]) => format))).toEqual(new Set(['prometheus', 'openmetrics']));
  });
});

/**
 * Issue 13: weights at and beyond their bounds, a weight given twice, and parameters after the
 * weight. RFC 9110 §12.4.2: a qvalue is 0 to 1 with at most three decimals, 0 meaning "not
 * acceptable". §12.5.1: "Recipients SHOULD process any parameter named "q" as weight, regardless of
 * parameter ordering", and the RFC 7231 accept-extension grammar (parameters after the weight) is
 * gone, so a parameter after q is a media-range parameter like any other. The RFC says nothing of a
 * repeated q: the first one is the weight (what RFC 7231's grammar made it, and what render.ts
 * documents); a malformed weight (`abc`, `-1`, empty) is q=0, and one above 1 is clamped to 1.
 */
describe('negotiate: q bounds, repeated q, parameter order', () => {
  const cases: [string, string, Format][] = [
    // Repeated q in one media range: the first is the weight.
    ['repeated q: the first (0.1) loses to text at 0.5', 'application/openmetrics-text;q=0.1;q=0.9,text/plain;q=0.5', 'prometheus'],
    ['repeated q: the first (0.9) beats text at 0.5', 'application/openmetrics-text;q=0.9;q=0.1,text/plain;q=0.5', 'openmetrics'],
    ['repeated q: a first q=0 refuses, whatever follows', 'application/openmetrics-text;q=0;q=1,text/plain;q=0.001', 'prometheus'],
    ['repeated q: a first valid q is not undone by a malformed second one', 'application/openmetrics-text;q=0.9;q=abc,text/plain;q=0.5', 'openmetrics'],
    // q=0: not acceptable, also alone and against */*.
    ['q=0 alone: the default, never the refused format', 'application/openmetrics-text;q=0', 'prometheus'],
    ['q=0.0 refuses like q=0', 'application/openmetrics-text;version=1.0.0;q=0.0,*/*;q=0.5', 'prometheus'],
    ['text at q=0 and */*: OpenMetrics, the only acceptable one', 'text/plain;version=0.0.4;q=0,*/*;q=0.001', 'openmetrics'],
    // The bounds of a weight.
    ['q=0.001, the least acceptable weight, is still acceptable', 'application/openmetrics-text;q=0.001,text/plain;q=0', 'openmetrics'],
    ['q=0.001 alone is acceptable', 'application/openmetrics-text;q=0.001', 'openmetrics'],
    ['0.002 beats 0.001 (text)', 'application/openmetrics-text;q=0.001,text/plain;q=0.002', 'prometheus'],
    ['0.002 beats 0.001 (OpenMetrics)', 'text/plain;q=0.001,application/openmetrics-text;q=0.002', 'openmetrics'],
    ['q=1.0 equals q=1: a tie goes to the first (text)', 'text/plain;q=1.0,application/openmetrics-text', 'prometheus'],
    ['q=1.000 equals q=1: a tie goes to the first (OpenMetrics)', 'application/openmetrics-text;q=1.000,text/plain', 'openmetrics'],
    ['q=1 beats q=0.999', 'text/plain;q=0.999,application/openmetrics-text;q=1', 'openmetrics'],
    // Ties are decided by the first range that gives a format its weight, not a later repeat.
    ['a format named again at the same weight keeps its first place', 'application/openmetrics-text;q=0.5,text/plain;q=0.5,application/openmetrics-text;q=0.5', 'openmetrics'],
    // Malformed weights.
    ['q=1.5 (above 1) is clamped to 1: beats 0.9', 'text/plain;q=0.9,application/openmetrics-text;q=1.5', 'openmetrics'],
    ['q=1.5 (above 1) is clamped to 1: ties with q=1 and the first wins', 'text/plain;q=1,application/openmetrics-text;q=1.5', 'prometheus'],
    ['q=abc is a refusal', 'application/openmetrics-text;q=abc,text/plain;q=0.1', 'prometheus'],
    ['q=abc is a refusal that */* does not override', 'application/openmetrics-text;q=abc,*/*', 'prometheus'],
    ['q=-1 is a refusal', 'application/openmetrics-text;q=-1,text/plain;q=0.1', 'prometheus'],
    ['an empty q is a refusal', 'application/openmetrics-text;q=,text/plain;q=0.1', 'prometheus'],
    ['q=1e0 (exponent form) is a refusal', 'application/openmetrics-text;q=1e0,text/plain;q=0.1', 'prometheus'],
    ['q=.5 is a half', 'text/plain;q=0.4,application/openmetrics-text;q=.5', 'openmetrics'],
    ['a quoted q is read', 'text/plain;q=0.4,application/openmetrics-text;q="0.5"', 'openmetrics'],
    ['spaces around q and its value', 'text/plain ; q = 0.4 , application/openmetrics-text ; q = 0.5', 'openmetrics'],
    // Parameter order: a parameter after q is still a parameter of the range.
    ['version after q: the same as before it', 'application/openmetrics-text;q=0.9;version=1.0.0,text/plain;q=0.5', 'openmetrics'],
    ['an unsupported version after q does not match OpenMetrics', 'application/openmetrics-text;q=0.9;version=2.0.0,text/plain;q=0.5', 'prometheus'],
    ['an unsupported version before q does not match OpenMetrics', 'application/openmetrics-text;version=2.0.0;q=0.9,text/plain;q=0.5', 'prometheus'],
    ['a refusal of version 1.0.0 written after q outranks the bare type', 'application/openmetrics-text;q=0;version=1.0.0,application/openmetrics-text;q=1', 'prometheus'],
    ['a refusal of 0.0.4 written after q outranks bare text/plain', 'text/plain;q=0;version=0.0.4,text/plain;q=1,application/openmetrics-text;q=0.1', 'openmetrics'],
    ['version 1.0.0 after q outranks a bare refusal', 'application/openmetrics-text;q=0,application/openmetrics-text;q=0.5;version=1.0.0', 'openmetrics'],
  ];
  for (const [name, accept, format] of cases) {
    it(`${name} → ${format}`, () => {
      expect(negotiate(accept)).toBe(format);
    });
  }
});

/**
 * Issue 13: the Accept syntax a scraper or proxy may send beyond the plain cases: quoted parameter
 * values (which may hold `,` `;` and escaped quotes), a backslash outside quotes, malformed ranges
 * and quotes, repeated parameters, and weights from equally or more specific ranges.
 */
describe('negotiate: Accept syntax', () => {
  const cases: [string, string, Format][] = [
    // Quoted strings: `,` and `;` inside them split nothing.
    ['a quoted value may hold , and ;', 'application/openmetrics-text;q=0.5;foo="a,text/plain;q=1,b"', 'openmetrics'],
    ['an escaped quote does not end a quoted value', 'application/openmetrics-text;q=0.5;foo="\\",text/plain,\\""', 'openmetrics'],
    ['a quoted value ends at its closing quote', 'application/openmetrics-text;q=0.5;foo="ab",text/plain', 'prometheus'],
    ['a backslash outside quotes is a plain character', 'text/plain;q=0.5;a=\\,application/openmetrics-text', 'openmetrics'],
    ['an escape inside a quoted version is undone', 'application/openmetrics-text;version="1.0.\\0"', 'openmetrics'],
    // Only a value quoted at both ends is unquoted.
    ['q=0.5" (no opening quote) is a refusal', 'application/openmetrics-text;q=0.5"', 'prometheus'],
    ['q="0.55 (no closing quote) is a refusal', 'application/openmetrics-text;q="0.55', 'prometheus'],
    // Weights with more digits.
    ['q=10 is clamped to 1', 'text/plain;q=0.5,application/openmetrics-text;q=10', 'openmetrics'],
    ['q=.55 is read', 'text/plain;q=0.5,application/openmetrics-text;q=.55', 'openmetrics'],
    // Malformed ranges match nothing.
    ['a media type with two slashes is ignored', 'application/openmetrics-text/extra', 'prometheus'],
    ['*/plain (a subtype under *) is ignored, not read as */*', '*/plain;q=0.9,application/openmetrics-text;q=0.5', 'openmetrics'],
    ['a parameter without = is ignored (qs is no weight)', 'application/openmetrics-text;qs', 'openmetrics'],
    ['a repeated parameter: the first counts (version 2.0.0 is not served)', 'application/openmetrics-text;version=2.0.0;version=1.0.0', 'prometheus'],
    // Equally specific ranges: the best weight; a more specific one overrides whatever its weight.
    [
      'two OpenMetrics versions: the better weight counts (0.9 beats text at 0.5)',
      'application/openmetrics-text;version=1.0.0;q=0.1,application/openmetrics-text;version=0.0.1;q=0.9,text/plain;q=0.5',
      'openmetrics',
    ],
    ['a more specific later range overrides a broader one, even with a lower weight', 'application/*;q=0.9,application/openmetrics-text;q=0.1,text/plain;q=0.5', 'prometheus'],
  ];
  for (const [name, accept, format] of cases) {
    it(`${name} → ${format}`, () => {
      expect(negotiate(accept)).toBe(format);
    });
  }
});

describe('histograms', () => {
  it('print _bucket samples with le after the family labels, then _sum and _count, in both formats', () => {
    const snap = snapshotOf([
      [
        'loki_iteration_duration_seconds',
        [
          { suffix: '_bucket', labels: { le: '60.0' }, value: 1 },
          { suffix: '_bucket', labels: { le: '+Inf' }, value: 2 },
          { suffix: '_sum', value: 100.5 },
          { suffix: '_count', value: 2 },
        ],
      ],
    ]);
    const family = FAMILIES.filter((f) => f.name === 'loki_iteration_duration_seconds');
    for (const format of ['prometheus', 'openmetrics'] as const) {
      const out = render(snap, format, family);
      expect(out).toContain('# TYPE loki_iteration_duration_seconds histogram\n');
      expect(out).toContain(
        'loki_iteration_duration_seconds_bucket{le="60.0"} 1\nloki_iteration_duration_seconds_bucket{le="+Inf"} 2\n' +
          'loki_iteration_duration_seconds_sum 100.5\nloki_iteration_duration_seconds_count 2\n',
      );
    }
  });

  it('print le and a suffix for histograms only, le on _bucket samples only', () => {
    const gauge: MetricFamily[] = [{ name: 'loki_source_ok', type: 'gauge', help: 'h', labels: ['source'] }];
    const odd: Sample[] = [{ suffix: '_bucket', labels: { source: 's', le: '1' }, value: 1 }];
    const histogram = FAMILIES.filter((f) => f.name === 'loki_iteration_duration_seconds');
    const samples: Sample[] = [
      { suffix: '_sum', labels: { le: '60.0' }, value: 3 },
      { suffix: '_bucket', value: 4 }, // no labels at all: no le
      { value: 5 }, // no suffix: the family name alone
    ];
    for (const format of FORMATS) {
      const g = lines(render(snapshotOf([['loki_source_ok', odd]]), format, gauge));
      expect(g.filter((l) => !l.startsWith('#'))).toEqual(['loki_source_ok{source="s"} 1']);
      const h = lines(render(snapshotOf([['loki_iteration_duration_seconds', samples]]), format, histogram));
      expect(h.filter((l) => !l.startsWith('#'))).toEqual([
        'loki_iteration_duration_seconds_sum 3',
        'loki_iteration_duration_seconds_bucket 4',
        'loki_iteration_duration_seconds 5',
      ]);
    }
  });
});
