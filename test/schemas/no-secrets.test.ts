/**
 * Problems name the field and what was expected, never the value: a secret in a wrong-typed field
 * must not reach /health, the logs or (through sync) the Worker. Also: control characters in file
 * names and problems cannot forge log lines.
 */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createCollector } from '../../src/collect.js';
import { escapeForLog } from '../../src/log.js';
import { render } from '../../src/render.js';
import { readAgents } from '../../src/schemas/agents.js';
import { readBudget, readBudgetSignal } from '../../src/schemas/budget.js';
import { readDashboardState } from '../../src/schemas/dashboard-state.js';
import { readEfficiencyFile } from '../../src/schemas/efficiency.js';
import { readEventLine } from '../../src/schemas/event-line.js';
import { describeIssues, type ParseResult } from '../../src/schemas/parse.js';
import { readPidFile } from '../../src/schemas/pid.js';
import { readPidEntry } from '../../src/schemas/pid-entry.js';
import { readPricing } from '../../src/schemas/pricing.js';
import { readProof } from '../../src/schemas/proof.js';
import { FsStateStore } from '../../src/stores/fs.js';
import { cleanTrees, materialize } from '../support/loki-tree.js';

const SECRET = 'sk-live-SECRET-0123456789';
const NOW = Date.parse('2026-02-14T11:47:55Z');
const enc = (text: string) => new TextEncoder().encode(text);

const stores: FsStateStore[] = [];
afterEach(async () => {
  for (const s of stores.splice(0)) s.close();
  await cleanTrees();
});

function problemOf(result: ParseResult<unknown>): string {
  expect(result.ok).toBe(false);
  return result.ok ? '' : result.problem;
}

describe('problems never quote the rejected value', () => {
  it.each<[string, () => ParseResult<unknown>, string]>([
    ['dashboard-state.json', () => readDashboardState(enc(JSON.stringify({ iteration: SECRET }))), 'iteration'],
    ['dashboard-state.json (tasks)', () => readDashboardState(enc(JSON.stringify({ tasks: { pending: SECRET } }))), 'tasks.pending'],
    ['metrics/budget.json', () => readBudget(enc(JSON.stringify({ limit: SECRET }))), 'limit'],
    ['metrics/budget.json (boolean)', () => readBudget(enc(JSON.stringify({ exceeded: SECRET }))), 'exceeded'],
    ['signals/BUDGET_EXCEEDED', () => readBudgetSignal(enc(JSON.stringify({ timestamp: SECRET }))), 'timestamp'],
    ['metrics/efficiency/*', () => readEfficiencyFile(enc(JSON.stringify({ cost_usd: SECRET }))), 'cost_usd'],
    ['pricing.json', () => readPricing(enc(JSON.stringify({ models: { opus: { input: SECRET } } }))), 'models.opus.input'],
    ['pids/*.json', () => readPidEntry(enc(JSON.stringify({ pid: SECRET }))), 'pid'],
    ['state/agents.json', () => readAgents(enc(JSON.stringify(SECRET))), ''],
    ['events.jsonl line', () => readEventLine(JSON.stringify({ type: 'x', timestamp: SECRET })), 'timestamp'],
    ['loki.pid', () => readPidFile(enc(SECRET)), ''],
    ['loki.pid (out of range)', () => readPidFile(enc('4194305')), ''],
    ['dashboard-state.json (a fraction)', () => readDashboardState(enc('{"iteration": 4194305.5}')), 'iteration'],
    ['metrics/efficiency/* (a fraction of a token)', () => readEfficiencyFile(enc('{"iteration": "4194305.5"}')), 'iteration'],
  ])('%s', (_kind, parse, path) => {
    const problem = problemOf(parse());
    expect(problem).not.toContain('SECRET');
    expect(problem).not.toContain('4194305');
    expect(problem).not.toMatch(/received/i);
    if (path) expect(problem.startsWith(`${path}: `)).toBe(true);
  });

  it('proofs: a wrong-typed field', () => {
    const problem = problemOf(readProof(enc(JSON.stringify({ honesty: { headline: 12345678901 }, verification: SECRET }))));
    expect(problem).not.toContain('SECRET');
    expect(problem).not.toContain('12345678901');
    expect(problem).toMatch(/^honesty\.headline: /);
  });

  it('names what was expected, and caps the text', () => {
    expect(problemOf(readBudget(enc(JSON.stringify({ limit: SECRET }))))).toBe('limit: Expected a numeric string');
    // Checks that expect nothing in particular say `Received <value>` in valibot: cut as well.
    expect(problemOf(readDashboardState(enc('{"iteration": 1234567.5}')))).toBe('iteration: Expected an integer');
    expect(problemOf(readEfficiencyFile(enc('{"cost_usd": 1e400}')))).toBe('cost_usd: Expected a finite number (+1 more)');
    const longKey = 'k'.repeat(500);
    const problem = problemOf(readPricing(enc(JSON.stringify({ models: { [longKey]: { input: SECRET } } }))));
    expect(problem.length).toBeLessThanOrEqual(200);
    expect(problem).not.toContain(longKey);
    expect(describeIssues([])).toBe('invalid');
  });

  it('nowhere in the collector: problems, log lines, snapshot sources, rendered output', async () => {
    const dir = await materialize('v9-running', { registry: { wrapper: 'alive', helpers: 'alive' } });
    await writeFile(join(dir, 'dashboard-state.json'), JSON.stringify({ iteration: SECRET, mode: 'autonomous' }));
    await writeFile(join(dir, 'metrics/budget.json'), JSON.stringify({ limit: SECRET }));
    await writeFile(join(dir, 'metrics/efficiency/iteration-1.json'), JSON.stringify({ cost_usd: SECRET }));
    await writeFile(join(dir, 'pricing.json'), JSON.stringify({ models: { opus: { input: SECRET } } }));
    await writeFile(join(dir, 'loki.pid'), `${SECRET}\n`);
    await writeFile(join(dir, 'pids/3999002.json'), JSON.stringify({ pid: SECRET }));
    await writeFile(join(dir, 'proofs/run-20260210090000-1001-0001/proof.json'), JSON.stringify({ honesty: { headline: [SECRET] } }));
    await mkdir(join(dir, 'signals'), { recursive: true });
    await writeFile(join(dir, 'signals/BUDGET_EXCEEDED'), JSON.stringify({ timestamp: SECRET }));
    const logs: string[] = [];
    const store = new FsStateStore(dir, { watch: false });
    stores.push(store);
    const collector = createCollector({
      maxIterations: 1000,
      heartbeatWindowMs: 30_000,
      agentsHoldMs: 10_000,
      version: '9.9.9',
      log: (line) => logs.push(line),
    });
    const snapshot = collector.collect(await store.read(), NOW);
    const bad = snapshot.sources.filter((s) => !s.ok).map((s) => s.source);
    // The secrets were seen (each file is reported bad) …
    expect(bad).toEqual(
      expect.arrayContaining(['dashboard-state.json', 'metrics/budget.json', 'metrics/efficiency', 'pricing.json', 'loki.pid', 'pids', 'proofs', 'signals/BUDGET_EXCEEDED']),
    );
    expect(logs.length).toBeGreaterThanOrEqual(8);
    // … and quoted nowhere.
    expect(JSON.stringify(snapshot.sources)).not.toContain('SECRET');
    expect(logs.join('\n')).not.toContain('SECRET');
    expect(render(snapshot, 'prometheus')).not.toContain('SECRET');
    expect(render(snapshot, 'openmetrics')).not.toContain('SECRET');
  });
});

describe('log injection', () => {
  it('escapeForLog escapes C0/C1 controls, DEL and line separators, and nothing else', () => {
    expect(escapeForLog('a\nb\rc\td\u001b[31me\u0000f\u007fg\u0085h\u009bi\u2028j')).toBe(
      'a\\nb\\rc\\td\\x1b[31me\\x00f\\x7fg\\x85h\\x9bi\\u2028j',
    );
    expect(escapeForLog('plain “text” é 日本')).toBe('plain “text” é 日本');
  });

  it('a file named with a newline in metrics/efficiency/ cannot forge a log line', async () => {
    const dir = await materialize('running', { pid: 'alive' });
    const evil = 'evil\nloki-metrics: forged.json';
    await writeFile(join(dir, 'metrics/efficiency', evil), '{"cost_usd": "nope"}');
    await writeFile(join(dir, 'metrics/budget.json'), '{"limit": "\\u001b[2J"}');
    await rm(join(dir, 'events.jsonl'));
    await mkdir(join(dir, 'events.jsonl\u001b'));
    const logs: string[] = [];
    const store = new FsStateStore(dir, { watch: false });
    stores.push(store);
    const collector = createCollector({
      maxIterations: 1000,
      heartbeatWindowMs: 30_000,
      agentsHoldMs: 10_000,
      version: '9.9.9',
      log: (line) => logs.push(line),
    });
    const snapshot = collector.collect(await store.read(), NOW);
    const forged = logs.find((line) => line.includes('forged'));
    expect(forged).toBe('loki-metrics: metrics/efficiency/evil\\nloki-metrics: forged.json: cost_usd: Expected a numeric string');
    for (const line of logs) expect(line).not.toMatch(/[\u0000-\u001f\u007f-\u009f]/);
    const efficiency = snapshot.sources.find((s) => s.source === 'metrics/efficiency');
    expect(efficiency?.problem).toContain('evil\\nloki-metrics: forged.json: ');
    for (const source of snapshot.sources) expect(source.problem ?? '').not.toMatch(/[\u0000-\u001f\u007f-\u009f]/);
  });
});
