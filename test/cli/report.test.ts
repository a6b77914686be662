/**
 * What the CLI prints, in this process: `scrape`'s table, `scrape --all`'s fleet table and `check`'s
 * verdicts, from real scrapes of the fixture trees (collected and rendered as the exporter does) and
 * from hand-written expositions for the states a tree cannot produce. The layout is the rule, so the
 * expected outputs are whole strings: a key column of 10 and one space, then the value; the fleet
 * table's columns two spaces apart, padded to their widest visible text; colour only from a paint.
 */
import { afterEach, describe, expect, it } from 'vitest';
import {
  ANSI_PAINT,
  formatCheck,
  formatDuration,
  formatFleetTable,
  formatScrapeTable,
  formatUsd,
  NO_PAINT,
  parseExposition,
  type ParsedSample,
} from '../../src/cli/report.js';
import { createCollector } from '../../src/collect.js';
import { render } from '../../src/render.js';
import type { Snapshot, SourceStatus } from '../../src/snapshot.js';
import { FsStateStore } from '../../src/stores/fs.js';
import { cleanTrees, materialize } from '../support/loki-tree.js';

const NOW = Date.parse('2026-02-14T11:47:55Z');
const FRESH = NOW - 1_000;
const LONG_AGO = NOW - 6 * 3600_000;

afterEach(cleanTrees);

/** A state directory scraped as `loki-metrics serve` would serve it at NOW: its samples and its snapshot. */
async function scrapeDir(dir: string): Promise<{ samples: ParsedSample[]; snapshot: Snapshot }> {
  const store = new FsStateStore(dir, { watch: false });
  try {
    const collector = createCollector({ maxIterations: 1000, heartbeatWindowMs: 30_000, agentsHoldMs: 10_000, version: '9.9.9', log: () => undefined });
    const snapshot = collector.collect(await store.read(), NOW);
    return { samples: parseExposition(render(snapshot, 'prometheus')), snapshot };
  } finally {
    await store.close();
  }
}

/** test/fixtures/running: alive, iteration 6 of 1000, tasks 3/2/5/1, agents 3 of 6, $3.5313 of a $25 budget, 50 events. */
const running = async () => scrapeDir(await materialize('running', { pid: 'alive', mtimeMs: FRESH }));
/** test/fixtures/paused: alive and paused by the budget guard, $5.0421 of a $5 budget. */
const paused = async () => scrapeDir(await materialize('paused', { pid: 'alive', mtimeMs: FRESH }));
/** test/fixtures/malformed: stopped, three sources torn, no budget. */
const malformed = async () => scrapeDir(await materialize('malformed', { pid: 'dead', mtimeMs: LONG_AGO }));
const missing = async () => scrapeDir('/nonexistent/loki-metrics-report-test/.loki');

const G = (t: string) => `\x1b[32m${t}\x1b[0m`;
const Y = (t: string) => `\x1b[33m${t}\x1b[0m`;
const R = (t: string) => `\x1b[31m${t}\x1b[0m`;
const D = (t: string) => `\x1b[2m${t}\x1b[0m`;

describe('parseExposition', () => {
  it('reads samples with escaped labels and special values, skipping comments', () => {
    const text = '# HELP a x\n# TYPE a gauge\na 1\nb{x="q\\"\\\\\\n",y="2"} NaN\nc +Inf\n# EOF\n';
    expect(parseExposition(text)).toEqual([
      { name: 'a', labels: {}, value: 1 },
      { name: 'b', labels: { x: 'q"\\\n', y: '2' }, value: Number.NaN },
      { name: 'c', labels: {}, value: Infinity },
    ]);
  });

  it('reads +Inf, Inf, -Inf, NaN and plain numbers as numbers', () => {
    const values = parseExposition('a +Inf\nb Inf\nc -Inf\nd NaN\ne 1e3\nf -0.5\ng 3.5313\n').map((s) => s.value);
    expect(values).toEqual([Infinity, Infinity, -Infinity, Number.NaN, 1000, -0.5, 3.5313]);
  });

  it('takes any run of blanks between the parts, and a timestamp after the value', () => {
    expect(parseExposition('a 1 1700000000000\nb  2\nc{x="y"}\t3\nd 4  1700000000000\ne 5\t\t1700000000000\nf 6 1700000000.125\n')).toEqual([
      { name: 'a', labels: {}, value: 1 },
      { name: 'b', labels: {}, value: 2 },
      { name: 'c', labels: { x: 'y' }, value: 3 },
      { name: 'd', labels: {}, value: 4 },
      { name: 'e', labels: {}, value: 5 },
      { name: 'f', labels: {}, value: 6 },
    ]);
  });

  it('skips blank lines and lines that are not one sample', () => {
    // A timestamp is a number (an integer in text 0.0.4, a float in OpenMetrics): `loki_up 1 #` is no sample.
    const text = ['', 'loki_up', '9loki_up 1', 'loki_up 1 1700000000000 extra', '{x="1"} 2', 'loki_up 2 #', 'loki_up 3 x1', '# TYPE loki_up gauge', 'loki_up 1', '   ', ''].join('\n');
    expect(parseExposition(text)).toEqual([{ name: 'loki_up', labels: {}, value: 1 }]);
  });

  it('reads a real scrape: every family the table uses, with its labels', async () => {
    const { samples } = await running();
    const value = (name: string, labels: Record<string, string> = {}) => samples.find((s) => s.name === name && JSON.stringify(s.labels) === JSON.stringify(labels))?.value;
    expect(value('loki_cost_usd')).toBe(3.5313);
    expect(value('loki_tasks_total', { status: 'in_progress' })).toBe(2);
    expect(value('loki_source_ok', { source: 'signals/BUDGET_EXCEEDED' })).toBe(1);
    expect(value('loki_iteration_duration_seconds_bucket', { le: '+Inf' })).toBe(5);
    expect(samples.some((s) => s.name.startsWith('#') || s.name === 'HELP' || s.name === 'TYPE')).toBe(false);
  });
});

describe('paints', () => {
  it('ANSI: green good, yellow warn, red bad, dim dim, each reset after', () => {
    expect(ANSI_PAINT.good('ok')).toBe('\x1b[32mok\x1b[0m');
    expect(ANSI_PAINT.warn('ok')).toBe('\x1b[33mok\x1b[0m');
    expect(ANSI_PAINT.bad('ok')).toBe('\x1b[31mok\x1b[0m');
    expect(ANSI_PAINT.dim('ok')).toBe('\x1b[2mok\x1b[0m');
  });

  it('none: the text as it is', () => {
    expect([NO_PAINT.good('a'), NO_PAINT.warn('b'), NO_PAINT.bad('c'), NO_PAINT.dim('d')]).toEqual(['a', 'b', 'c', 'd']);
  });
});

describe('formatDuration', () => {
  it('spells whole seconds as hours, minutes and seconds, leaving out leading zero units', () => {
    expect(formatDuration(42.9)).toBe('42s');
    expect(formatDuration(59.99)).toBe('59s');
    expect(formatDuration(60)).toBe('1m 0s');
    expect(formatDuration(125)).toBe('2m 5s');
    expect(formatDuration(3599)).toBe('59m 59s');
    expect(formatDuration(3600)).toBe('1h 0m 0s');
    expect(formatDuration(3723.4)).toBe('1h 2m 3s');
    expect(formatDuration(90061)).toBe('25h 1m 1s'); // no days
  });

  it('shows 0s for zero, negative and non-finite durations', () => {
    expect(formatDuration(0)).toBe('0s');
    expect(formatDuration(0.4)).toBe('0s');
    expect(formatDuration(-5)).toBe('0s');
    expect(formatDuration(-3723)).toBe('0s');
    expect(formatDuration(Number.NaN)).toBe('0s');
    expect(formatDuration(Infinity)).toBe('0s');
  });
});

describe('formatUsd', () => {
  it('shows dollars with two decimals and thousands separators', () => {
    expect(formatUsd(3.5313)).toBe('$3.53');
    expect(formatUsd(1234.5)).toBe('$1,234.50');
    expect(formatUsd(1234567.891)).toBe('$1,234,567.89');
    expect(formatUsd(25)).toBe('$25.00');
    expect(formatUsd(0)).toBe('$0.00');
    expect(formatUsd(0.01)).toBe('$0.01');
    expect(formatUsd(-2.5)).toBe('$-2.50'); // never a cost, and not a sub-cent amount either
  });

  it('keeps a sub-cent amount non-zero: four decimals, more when the first digit comes later', () => {
    expect(formatUsd(0.0042)).toBe('$0.0042');
    expect(formatUsd(0.0099)).toBe('$0.0099');
    expect(formatUsd(0.001)).toBe('$0.0010');
    expect(formatUsd(0.00042)).toBe('$0.0004');
    // 40 input tokens at $1 per million: not $0.0000
    expect(formatUsd(0.00004)).toBe('$0.00004');
    expect(formatUsd(0.0000123)).toBe('$0.00001');
    expect(formatUsd(1e-25)).toBe('$0.00000000000000000000'); // at most 20 decimals
  });

  it('shows a non-finite amount as the number it is, without a dollar sign', () => {
    expect(formatUsd(Number.NaN)).toBe('NaN');
    expect(formatUsd(Infinity)).toBe('Infinity');
  });
});

describe('formatScrapeTable', () => {
  it('a running session (fixture running/): nine rows in a fixed order, values from column 11', async () => {
    const { samples } = await running();
    expect(formatScrapeTable(samples)).toBe(`Session    running
Iteration  6 / 1000
Uptime     2h 35m 51s
Tasks      3 pending, 2 in progress, 5 completed, 1 failed
Agents     3 active of 6
Cost       $3.53 of $25.00 budget
Events     50
State dir  readable
Sources    all ok
`);
    // Without a paint, no colour at all; with ANSI, the good words in green.
    expect(formatScrapeTable(samples, NO_PAINT)).toBe(formatScrapeTable(samples));
    expect(formatScrapeTable(samples, ANSI_PAINT)).toBe(`Session    ${G('running')}
Iteration  6 / 1000
Uptime     2h 35m 51s
Tasks      3 pending, 2 in progress, 5 completed, 1 failed
Agents     3 active of 6
Cost       $3.53 of $25.00 budget
Events     50
State dir  ${G('readable')}
Sources    ${G('all ok')}
`);
  });

  it('a paused session over its budget (fixture paused/): paused in yellow, the budget exceeded in red', async () => {
    const { samples } = await paused();
    expect(formatScrapeTable(samples)).toBe(`Session    paused
Iteration  8 / 1000
Uptime     13h 42m 14s
Tasks      1 pending, 0 in progress, 8 completed, 0 failed
Agents     2 active of 4
Cost       $5.04 of $5.00 budget, exceeded
Events     18
State dir  readable
Sources    all ok
`);
    const painted = formatScrapeTable(samples, ANSI_PAINT).split('\n');
    expect(painted[0]).toBe(`Session    ${Y('paused')}`);
    expect(painted[5]).toBe(`Cost       $5.04 of $5.00 budget, ${R('exceeded')}`);
  });

  it('a stopped session with torn sources (fixture malformed/): stopped and the bad sources in red, in their order', async () => {
    const { samples } = await malformed();
    expect(formatScrapeTable(samples)).toBe(`Session    stopped
Iteration  2 / 1000
Uptime     0s
Tasks      0 pending, 0 in progress, 0 completed, 0 failed
Agents     0 active of 0
Cost       $0.56
Events     6
State dir  readable
Sources    problems: dashboard-state.json, state/agents.json, metrics/efficiency
`);
    const painted = formatScrapeTable(samples, ANSI_PAINT).split('\n');
    expect(painted[0]).toBe(`Session    ${R('stopped')}`);
    expect(painted[8]).toBe(`Sources    ${R('problems: dashboard-state.json, state/agents.json, metrics/efficiency')}`);
  });

  it('a state directory that cannot be read: unreadable in red', async () => {
    const { samples } = await missing();
    expect(formatScrapeTable(samples)).toBe(`Session    stopped
Iteration  0 / 1000
Uptime     0s
Tasks      0 pending, 0 in progress, 0 completed, 0 failed
Agents     0 active of 0
Cost       $0.00
Events     0
State dir  unreadable
Sources    all ok
`);
    expect(formatScrapeTable(samples, ANSI_PAINT).split('\n')[7]).toBe(`State dir  ${R('unreadable')}`);
  });

  it('shows an absent value as -, an absent status as unknown (red), whatever else the scrape holds', () => {
    const empty = `Session    unknown
Iteration  - / -
Uptime     -
Tasks      - pending, - in progress, - completed, - failed
Agents     - active of -
Cost       -
Events     -
State dir  -
Sources    -
`;
    expect(formatScrapeTable([])).toBe(empty);
    // Other families, even with the same labels, are not these rows.
    const others = parseExposition('loki_model_cost_usd_total{model="opus"} 1.35\nloki_tasks{status="pending"} 9\nloki_budget_exceeded_total 1\nloki_receipts_total 0\nloki_iterations_total{outcome="failed"} 0\n');
    expect(formatScrapeTable(others)).toBe(empty);
    expect(formatScrapeTable([], ANSI_PAINT).split('\n')[0]).toBe(`Session    ${R('unknown')}`);
  });

  it('names a status code it does not know, in red', () => {
    const samples = parseExposition('loki_session_status 7\n');
    expect(formatScrapeTable(samples).split('\n')[0]).toBe('Session    unknown (7)');
    expect(formatScrapeTable(samples, ANSI_PAINT).split('\n')[0]).toBe(`Session    ${R('unknown (7)')}`);
  });

  it('shows NaN values as NaN, a NaN uptime as 0s, and a NaN loki_up as -', () => {
    const samples = parseExposition('loki_session_status NaN\nloki_iteration_current NaN\nloki_iteration_max +Inf\nloki_uptime_seconds NaN\nloki_cost_usd NaN\nloki_events_total NaN\nloki_up NaN\n');
    expect(formatScrapeTable(samples).split('\n').slice(0, 8)).toEqual([
      'Session    unknown (NaN)',
      'Iteration  NaN / Infinity',
      'Uptime     0s',
      'Tasks      - pending, - in progress, - completed, - failed',
      'Agents     - active of -',
      'Cost       NaN',
      'Events     NaN',
      'State dir  -',
    ]);
  });

  it('picks each task count by its status label, in any order', () => {
    const samples = parseExposition('loki_tasks_total{status="failed"} 4\nloki_tasks_total{status="completed"} 3\nloki_tasks_total{status="in_progress"} 2\nloki_tasks_total{status="pending"} 1\n');
    expect(formatScrapeTable(samples).split('\n')[3]).toBe('Tasks      1 pending, 2 in progress, 3 completed, 4 failed');
    const some = parseExposition('loki_tasks_total{status="completed"} 3\nloki_tasks_total{other="pending"} 7\n');
    expect(formatScrapeTable(some).split('\n')[3]).toBe('Tasks      - pending, - in progress, 3 completed, - failed');
  });

  it('states the budget after the cost: its limit when positive, exceeded or not', () => {
    const cost = (text: string, paint = NO_PAINT) => formatScrapeTable(parseExposition(text), paint).split('\n')[5];
    expect(cost('loki_cost_usd 3.5313\nloki_budget_limit_usd 25\nloki_budget_exceeded 0\n')).toBe('Cost       $3.53 of $25.00 budget');
    expect(cost('loki_cost_usd 12\nloki_budget_limit_usd 10\nloki_budget_exceeded 1\n')).toBe('Cost       $12.00 of $10.00 budget, exceeded');
    expect(cost('loki_cost_usd 12\nloki_budget_limit_usd 10\nloki_budget_exceeded 1\n', ANSI_PAINT)).toBe(`Cost       $12.00 of $10.00 budget, ${R('exceeded')}`);
    // No limit (absent or 0): no budget, unless the guard says it was exceeded.
    expect(cost('loki_cost_usd 1\nloki_budget_limit_usd 0\nloki_budget_exceeded 0\n')).toBe('Cost       $1.00');
    expect(cost('loki_cost_usd 1\n')).toBe('Cost       $1.00');
    expect(cost('loki_cost_usd 1\nloki_budget_exceeded 1\n')).toBe('Cost       $1.00 (budget exceeded)');
    expect(cost('loki_cost_usd 1\nloki_budget_limit_usd 0\nloki_budget_exceeded 1\n', ANSI_PAINT)).toBe(`Cost       $1.00 (${R('budget exceeded')})`);
    // Only 1 means exceeded; an absent cost still shows the budget.
    expect(cost('loki_budget_limit_usd 10\nloki_budget_exceeded 2\n')).toBe('Cost       - of $10.00 budget');
    expect(cost('loki_cost_usd 0.004\nloki_budget_limit_usd 0.005\n')).toBe('Cost       $0.0040 of $0.0050 budget');
  });

  it('lists every bad source by name, ? for one without a name; all ok only when none is bad', () => {
    const sources = (text: string) => formatScrapeTable(parseExposition(text)).split('\n')[8];
    expect(sources('loki_source_ok{source="loki.pid"} 0\nloki_source_ok{source="events.jsonl"} 1\nloki_source_ok 0\nloki_source_ok{source="pids"} 0\n')).toBe(
      'Sources    problems: loki.pid, ?, pids',
    );
    expect(sources('loki_source_ok{source="loki.pid"} 1\nloki_budget_exceeded 0\nloki_source_mtime_seconds{source="pids"} 0\n')).toBe('Sources    all ok');
  });
});

describe('formatFleetTable', () => {
  it('one row per project under a header, columns padded to their widest text, then the count and total cost', async () => {
    const projects = [
      { name: 'alpha', samples: (await running()).samples },
      { name: 'beta', samples: (await paused()).samples },
      { name: 'gone', samples: (await missing()).samples },
      { name: 'down', samples: 'no answer' },
    ];
    expect(formatFleetTable(projects)).toBe(`PROJECT  SESSION    ITERATION  TASKS DONE/FAILED  COST   STATE DIR
alpha    running    6/1000     5/1                $3.53  readable
beta     paused     8/1000     8/0                $5.04  readable
gone     stopped    0/1000     0/0                $0.00  unreadable
down     no answer
4 projects, total cost $8.57
`);
    // Padding counts the visible text, not the colour codes; the last cell is never padded.
    expect(formatFleetTable(projects, ANSI_PAINT)).toBe(`PROJECT  SESSION    ITERATION  TASKS DONE/FAILED  COST   STATE DIR
alpha    ${G('running')}    6/1000     5/1                $3.53  ${G('readable')}
beta     ${Y('paused')}     8/1000     8/0                $5.04  ${G('readable')}
gone     ${R('stopped')}    0/1000     0/0                $0.00  ${R('unreadable')}
down     ${R('no answer')}
4 projects, total cost $8.57
`);
  });

  it('widens a column to its longest cell, and shows absent values as - and an absent status as unknown', () => {
    const projects = [
      { name: 'a-very-long-project-name', samples: parseExposition('loki_session_status 7\nloki_iteration_current 12\nloki_iteration_max 1000000\nloki_tasks_total{status="completed"} 1234\nloki_tasks_total{status="failed"} 56789\nloki_cost_usd 1234.5\n') },
      { name: 'b', samples: [] },
    ];
    expect(formatFleetTable(projects)).toBe(`PROJECT                   SESSION      ITERATION   TASKS DONE/FAILED  COST       STATE DIR
a-very-long-project-name  unknown (7)  12/1000000  1234/56789         $1,234.50  -
b                         unknown      -/-         -/-                -          -
2 projects, total cost $1,234.50
`);
    expect(formatFleetTable(projects, ANSI_PAINT).split('\n')[2]).toBe(`b                         ${R('unknown')}      -/-         -/-                -          -`);
  });

  it('counts one project in the singular and none in the plural; the total adds every known cost', () => {
    const one = formatFleetTable([{ name: 'solo', samples: parseExposition('loki_session_status 1\nloki_cost_usd 0.004\nloki_up 1\n') }]);
    expect(one).toBe(`PROJECT  SESSION  ITERATION  TASKS DONE/FAILED  COST     STATE DIR
solo     running  -/-        -/-                $0.0040  readable
1 project, total cost $0.0040
`);
    expect(formatFleetTable([])).toBe('PROJECT  SESSION  ITERATION  TASKS DONE/FAILED  COST  STATE DIR\n0 projects, total cost $0.00\n');
    const three = ['loki_cost_usd 1.25\n', 'loki_up 0\n', 'loki_cost_usd 2.5\n'].map((text, i) => ({ name: `p${i}`, samples: parseExposition(text) }));
    expect(formatFleetTable(three).split('\n').at(-2)).toBe('3 projects, total cost $3.75');
  });

  it('pads a failed project\'s message by its visible width too', () => {
    const projects = [
      { name: 'x', samples: 'no answer' },
      { name: 'y', samples: parseExposition('loki_session_status 0\n') },
    ];
    expect(formatFleetTable(projects, ANSI_PAINT)).toBe(`PROJECT  SESSION    ITERATION  TASKS DONE/FAILED  COST  STATE DIR
x        ${R('no answer')}
y        ${R('stopped')}    -/-        -/-                -     -
2 projects, total cost $0.00
`);
  });
});

describe('formatCheck', () => {
  it('a clean tree (fixture running/): readable, then every source padded to the longest name, ok or absent', async () => {
    const { snapshot } = await running();
    const text = formatCheck('/srv/app/.loki', snapshot.up, snapshot.problem, snapshot.sources);
    expect(text).toBe(`/srv/app/.loki: readable
  dashboard-state.json     ok
  loki.pid                 ok
  state/agents.json        ok
  metrics/efficiency       ok
  events.jsonl             ok
  pricing.json             ok
  metrics/budget.json      ok
  signals/BUDGET_EXCEEDED  absent
  state/orchestrator.json  ok
  queue/current-task.json  ok
  autonomy-state.json      ok
  state/completion.json    absent
  proofs                   absent
  pids                     absent
  sessions                 absent
`);
    const painted = formatCheck('/srv/app/.loki', snapshot.up, snapshot.problem, snapshot.sources, ANSI_PAINT).split('\n');
    expect(painted.slice(0, 2)).toEqual([`/srv/app/.loki: ${G('readable')}`, `  dashboard-state.json     ${G('ok')}`]);
    expect(painted[8]).toBe(`  signals/BUDGET_EXCEEDED  ${D('absent')}`);
  });

  it('a torn tree (fixture malformed/): BAD and the problem after it', async () => {
    const { snapshot } = await malformed();
    const text = formatCheck('/srv/app/.loki', snapshot.up, snapshot.problem, snapshot.sources);
    expect(text.split('\n').slice(0, 6)).toEqual([
      '/srv/app/.loki: readable',
      '  dashboard-state.json     BAD  not valid JSON (torn mid-write?)',
      '  loki.pid                 ok',
      '  state/agents.json        BAD  not valid JSON (torn mid-write?)',
      '  metrics/efficiency       BAD  2 bad file(s): iteration-2.json: Invalid type: Expected Object, not an Array; iteration-4.json: empty file (caught mid-write?)',
      '  events.jsonl             ok',
    ]);
    expect(formatCheck('/d', true, undefined, snapshot.sources.slice(0, 1), ANSI_PAINT)).toBe(`/d: ${G('readable')}\n  dashboard-state.json  ${R('BAD')}  not valid JSON (torn mid-write?)\n`);
  });

  it('a missing directory: unreadable and why, in red', async () => {
    const { snapshot } = await missing();
    const text = formatCheck('/nonexistent/.loki', snapshot.up, snapshot.problem, snapshot.sources);
    expect(text.split('\n').slice(0, 2)).toEqual(['/nonexistent/.loki: unreadable (missing)', '  dashboard-state.json     absent']);
    expect(formatCheck('/d', false, 'not a directory', [], ANSI_PAINT)).toBe(`/d: ${R('unreadable (not a directory)')}\n`);
    expect(formatCheck('/d', false, undefined, [])).toBe('/d: unreadable (unknown reason)\n');
  });

  it('pads to the longest source name, and prints a note after a good source too', () => {
    const sources: SourceStatus[] = [
      { source: 'a', ok: true, present: true },
      { source: 'metrics/efficiency', ok: true, present: true, problem: 'serving the last good value' },
      { source: 'ab', ok: false, present: true, problem: 'bad' },
      { source: 'abc', ok: false, present: false },
      { source: 'pids', ok: true, present: false },
    ];
    expect(formatCheck('/d', true, undefined, sources)).toBe(`/d: readable
  a                   ok
  metrics/efficiency  ok  serving the last good value
  ab                  BAD  bad
  abc                 BAD
  pids                absent
`);
  });
});
