/**
 * The shipped alert rules (monitoring/prometheus/loki-alerts.yml) and recording rules
 * (loki-recording.yml) are valid, and their promtool unit tests pass, cover every alert both ways
 * and every recording rule with exact values, and fail when a rule is put back to the guide's (or
 * upstream's, or a naive) broken form (so this test can fail).
 */
import { copyFile, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cleanTemps, loadYaml, MONITORING, run, tempDir } from './support.js';

const RULES = join(MONITORING, 'prometheus/loki-alerts.yml');
const TESTS = join(MONITORING, 'prometheus/loki-alerts.test.yml');
/** The 9.x telemetry alerts' unit tests, in a file of their own (evaluated every minute). */
const TELEMETRY_TESTS = join(MONITORING, 'prometheus/loki-alerts-telemetry.test.yml');
const RECORDING = join(MONITORING, 'prometheus/loki-recording.yml');
const RECORDING_TESTS = join(MONITORING, 'prometheus/loki-recording.test.yml');
const GUIDE_ALERTS = ['LokiSessionDown', 'LokiBudgetWarning', 'LokiBudgetCritical', 'LokiStagnation', 'LokiHighFailureRate', 'LokiTooManyAgents'];
const EXTRA_ALERTS = ['LokiExporterDown', 'LokiStateUnreadable', 'LokiSourceInvalid', 'LokiStateStale'];
/** On Loki Mode 9.x's per-model usage, iterations and receipts. */
const TELEMETRY_ALERTS = ['LokiBudgetExhaustionPredicted', 'LokiReceiptsStalled', 'LokiReceiptsUnknownShareHigh', 'LokiHighIterationFailureRate'];
const ALERTS = [...GUIDE_ALERTS, ...EXTRA_ALERTS, ...TELEMETRY_ALERTS];
const RECORDS = ['loki:model_cost_usd_per_hour:rate5m', 'loki:model_tokens:rate5m', 'loki:model_cache_hit:ratio_rate5m', 'loki:iterations_failed:ratio_rate1h'];

interface Rule { alert?: string; record?: string; expr: string; for?: string }
interface RuleFile { groups: { name: string; interval?: string; rules: Rule[] }[] }
interface UnitTests {
  rule_files: string[];
  tests: {
    name: string;
    input_series: { series: string; values: string }[];
    alert_rule_test?: { eval_time: string; alertname: string; exp_alerts: { exp_labels: Record<string, string> }[] }[];
    promql_expr_test?: { expr: string; eval_time: string; exp_samples: { labels: string; value: number }[] }[];
  }[];
}

afterAll(cleanTemps);

/** The unit-test file that tests an alert. */
const testsOf = (alert: string) => (TELEMETRY_ALERTS.includes(alert) ? TELEMETRY_TESTS : TESTS);

/** Runs a file's shipped unit tests against a copy of its rules with one rule's expr replaced. */
async function testWithExpr(name: string, expr: string, rulesFile = RULES, testsFile = testsOf(name)) {
  const dir = await tempDir('loki-rules-');
  const rules = loadYaml(rulesFile) as RuleFile;
  const rule = rules.groups.flatMap((g) => g.rules).find((r) => r.alert === name || r.record === name);
  if (!rule) throw new Error(`no rule ${name}`);
  rule.expr = expr;
  await writeFile(join(dir, basename(rulesFile)), JSON.stringify(rules));
  await copyFile(testsFile, join(dir, basename(testsFile)));
  return run('promtool', ['test', 'rules', basename(testsFile)], { cwd: dir });
}

describe('monitoring/prometheus/loki-alerts.yml', () => {
  it('passes promtool check rules and keeps the guide\'s six alert names', () => {
    const result = run('promtool', ['check', 'rules', RULES]);
    expect(result.output).toContain(`SUCCESS: ${ALERTS.length} rules found`);
    expect(result.status).toBe(0);
    const names = (loadYaml(RULES) as RuleFile).groups.flatMap((g) => g.rules.map((r) => r.alert));
    expect(names).toEqual(ALERTS);
  });

  it.each(['loki-alerts.test.yml', 'loki-alerts-telemetry.test.yml'])('passes its promtool unit tests (%s)', (file) => {
    const result = run('promtool', ['test', 'rules', file], { cwd: join(MONITORING, 'prometheus') });
    expect(result.output).toContain('SUCCESS');
    expect(result.status).toBe(0);
  });

  it('tests every alert with a series that fires and one that must not', () => {
    for (const alert of ALERTS) {
      const tests = loadYaml(testsOf(alert)) as UnitTests;
      expect(tests.rule_files).toEqual(['loki-alerts.yml']);
      let fires = false;
      let silent = false;
      for (const group of tests.tests) {
        // A target is identified by instance, project and session (a fleet exporter's projects
        // share one instance) and, for per-source series, source.
        const key = (l: Record<string, string | undefined>) => [l.instance, l.project, l.session, l.source].map((v) => v ?? '').join('|');
        const label = (series: string, name: string) => new RegExp(`\\b${name}="([^"]*)"`).exec(series)?.[1];
        const instances = new Set(
          group.input_series
            .filter((s) => s.series.includes('instance='))
            .map((s) => key(Object.fromEntries(['instance', 'project', 'session', 'source'].map((n) => [n, label(s.series, n)])))),
        );
        for (const check of group.alert_rule_test ?? []) {
          if (check.alertname !== alert) continue;
          if (check.exp_alerts.length > 0) fires = true;
          // promtool compares the exact set of alerts: an input target missing from exp_alerts is
          // one that provably does not fire, and an empty exp_alerts proves silence outright.
          const expected = new Set(check.exp_alerts.map((a) => key(a.exp_labels)));
          if (check.exp_alerts.length === 0 || [...instances].some((i) => !expected.has(i))) silent = true;
        }
      }
      expect({ alert, fires, silent }).toEqual({ alert, fires: true, silent: true });
    }
  });

  // The guide's own expressions (seed-defects.md 1, 3, 4) and a missing guard must make the
  // unit tests fail: proof that they test what the fixes fix.
  it.each([
    ['LokiHighFailureRate', 'loki_tasks_total{status="failed"} / sum(loki_tasks_total) > 0.1'],
    ['LokiSessionDown', 'loki_session_status == 0'],
    ['LokiBudgetWarning', 'loki_cost_usd > 4.00'],
    ['LokiBudgetCritical', 'loki_cost_usd > 4.50'],
    ['LokiStagnation', 'changes(loki_iteration_current[30m]) == 0 and loki_session_status == 1'],
    ['LokiStateStale', 'time() - loki_source_mtime_seconds{source="dashboard-state.json"} > 300'],
    // no limit (0) and paused sessions must not fire; nor one already past its limit
    ['LokiBudgetExhaustionPredicted', 'predict_linear(loki_cost_usd[30m], 3600) >= loki_budget_limit_usd'],
    ['LokiBudgetExhaustionPredicted', 'predict_linear(loki_cost_usd[30m], 3600) >= loki_budget_limit_usd and loki_budget_limit_usd > 0 and loki_session_status == 1'],
    // upstream's suggestion, for a gauge: fires with no receipts at all
    ['LokiReceiptsStalled', 'increase(loki_receipts_total[6h]) == 0'],
    // without 6 hours of history: fires for a target scraped for less
    ['LokiReceiptsStalled', 'loki_receipts_total > 0 and changes(loki_receipts_total[6h]) == 0 and loki_session_status == 1'],
    // the verdict label never matches the total's label set: never fires
    ['LokiReceiptsUnknownShareHigh', 'loki_receipts_by_verdict{verdict="unknown"} / loki_receipts_total > 0.2'],
    // without the volume guard: a single failed iteration fires
    ['LokiHighIterationFailureRate', 'sum without(outcome) (increase(loki_iterations_total{outcome="failed"}[1h])) / sum without(outcome) (increase(loki_iterations_total[1h])) > 0.5'],
  ])('fails with the broken %s expression', async (alert, expr) => {
    const result = await testWithExpr(alert, expr);
    expect(result.status).not.toBe(0);
    expect(result.output).toContain(`alertname: ${alert}`);
  });
});

/**
 * A fleet exporter's projects are targets that share `instance` and differ by `project`: forms that
 * match or aggregate on (job, instance) merge them or drop one. Each must fail the fleet groups of
 * the unit tests (whose expected labels, and the many-to-many errors such forms raise, name the
 * project), proof that those groups test what per-project matching gets right.
 */
describe('the rules per project of a fleet exporter (targets sharing an instance)', () => {
  const FLEET_TESTS = /name: fleet|project="/;

  it('every alert and recording rule is tested with two or more projects on one instance', () => {
    const label = (text: string, name: string) => new RegExp(`\\b${name}="([^"]*)"`).exec(text)?.[1];
    for (const [file, names] of [[TESTS, [...GUIDE_ALERTS, ...EXTRA_ALERTS]], [TELEMETRY_TESTS, TELEMETRY_ALERTS], [RECORDING_TESTS, RECORDS]] as const) {
      const fleet = (loadYaml(file) as UnitTests).tests.filter((g) => g.name.startsWith('fleet:'));
      expect(fleet.length, file).toBeGreaterThan(0);
      for (const name of names) {
        // Some group expects `name` for a project P on instance I while its input has another
        // project Q on I: the rule told the two apart (promtool checks the exact set).
        const proven = fleet.some((group) => {
          const inputs = group.input_series.map((s) => [label(s.series, 'instance'), label(s.series, 'project')] as const);
          const expected = [
            ...(group.alert_rule_test ?? []).filter((c) => c.alertname === name).flatMap((c) => c.exp_alerts.map((a) => [a.exp_labels.instance, a.exp_labels.project] as const)),
            ...(group.promql_expr_test ?? []).filter((c) => c.expr === name).flatMap((c) => c.exp_samples.map((x) => [label(x.labels, 'instance'), label(x.labels, 'project')] as const)),
          ];
          return expected.some(([instance, project]) => project !== undefined && inputs.some(([i, p]) => i === instance && p !== undefined && p !== project));
        });
        expect({ name, proven }).toEqual({ name, proven: true });
      }
    }
  });

  it.each([
    // the shipped form before fleets: a stopped project hid another project's failed scrape
    ['LokiSessionDown', 'label_replace(loki_session_status == 0, "reason", "session stopped", "", "") or on(job, instance) label_replace(up{job="loki-mode"} == 0, "reason", "exporter unreachable", "", "") or label_replace(absent(up{job="loki-mode"}), "reason", "no loki-mode target", "", "")'],
    ['LokiSessionDown', 'label_replace(loki_session_status == 0, "reason", "session stopped", "", "") or on(job, instance, session) label_replace(up{job="loki-mode"} == 0, "reason", "exporter unreachable", "", "") or label_replace(absent(up{job="loki-mode"}), "reason", "no loki-mode target", "", "")'],
    ['LokiBudgetWarning', '(loki_cost_usd >= 0.8 * loki_budget_limit_usd and loki_budget_limit_usd > 0) or on(job, instance) (loki_cost_usd > 4.00 unless loki_budget_limit_usd > 0)'],
    ['LokiBudgetCritical', '(loki_cost_usd >= 0.9 * loki_budget_limit_usd and loki_budget_limit_usd > 0) or on(job, instance) (loki_cost_usd and loki_budget_exceeded == 1) or (loki_cost_usd > 4.50 unless loki_budget_limit_usd > 0)'],
    ['LokiStagnation', 'changes(loki_iteration_current[30m]) == 0 and on(job, instance) loki_session_status == 1 and loki_iteration_current offset 30m'],
    ['LokiHighFailureRate', 'sum by (job, instance) (loki_tasks_total{status="failed"}) / sum by (job, instance) (loki_tasks_total) > 0.1'],
    ['LokiTooManyAgents', 'max by (job, instance) (loki_agents_active) > 50'],
    ['LokiExporterDown', 'min by (job, instance) (up{job="loki-mode"}) == 0'],
    ['LokiStateUnreadable', 'min by (job, instance) (loki_up) == 0'],
    ['LokiSourceInvalid', 'min by (job, instance, source) (loki_source_ok) == 0'],
    ['LokiStateStale', 'time() - loki_source_mtime_seconds{source="dashboard-state.json"} > 300 and on(job, instance) loki_session_status == 1'],
    ['LokiBudgetExhaustionPredicted', 'max by (job, instance) (predict_linear(loki_cost_usd[30m], 3600) >= loki_budget_limit_usd and loki_budget_limit_usd > 0 and loki_cost_usd < loki_budget_limit_usd and loki_session_status == 1)'],
    ['LokiReceiptsStalled', 'max by (job, instance) (loki_receipts_total > 0 and changes(loki_receipts_total[6h]) == 0 and loki_receipts_total offset 6h and loki_session_status == 1)'],
    ['LokiReceiptsUnknownShareHigh', 'loki_receipts_by_verdict{verdict="unknown"} / on(job, instance) (loki_receipts_total > 0) > 0.2'],
    ['LokiHighIterationFailureRate', 'sum by (job, instance) (increase(loki_iterations_total{outcome="failed"}[1h])) / sum by (job, instance) (increase(loki_iterations_total[1h])) > 0.5 and sum by (job, instance) (increase(loki_iterations_total[1h])) >= 3'],
  ])('fails with %s merging the projects of an instance: %s', async (alert, expr) => {
    const result = await testWithExpr(alert, expr);
    expect(result.status).not.toBe(0);
    expect(result.output).toMatch(new RegExp(`(alertname|rule): ${alert}\\b`));
    expect(result.output).toMatch(FLEET_TESTS);
  });

  it.each([
    ['loki:model_cost_usd_per_hour:rate5m', 'sum by (job, instance, session, family, model) (rate(loki_model_cost_usd_total[5m])) * 3600'],
    ['loki:model_tokens:rate5m', 'sum by (job, instance, session, type) (rate(loki_model_tokens_total[5m]))'],
    ['loki:model_cache_hit:ratio_rate5m', 'sum by (job, instance, session) (rate(loki_model_tokens_total{type="cache_read"}[5m])) / (sum by (job, instance, session) (rate(loki_model_tokens_total{type=~"input|cache_read|cache_creation"}[5m])) > 0)'],
    ['loki:iterations_failed:ratio_rate1h', 'sum by (job, instance, session) (rate(loki_iterations_total{outcome="failed"}[1h])) / (sum by (job, instance, session) (rate(loki_iterations_total[1h])) > 0)'],
  ])('fails with %s merging the projects of an instance: %s', async (record, expr) => {
    const result = await testWithExpr(record, expr, RECORDING, RECORDING_TESTS);
    expect(result.status).not.toBe(0);
    expect(result.output).toContain(`expr: "${record}"`);
    expect(result.output).toMatch(FLEET_TESTS);
  });
});

describe('monitoring/prometheus/loki-recording.yml', () => {
  it('passes promtool check rules with level:metric:operations names', () => {
    const result = run('promtool', ['check', 'rules', RECORDING]);
    expect(result.output).toContain(`SUCCESS: ${RECORDS.length} rules found`);
    expect(result.status).toBe(0);
    const rules = (loadYaml(RECORDING) as RuleFile).groups.flatMap((g) => g.rules);
    expect(rules.map((r) => r.record)).toEqual(RECORDS);
    for (const name of RECORDS) expect(name).toMatch(/^loki:[a-z0-9_]+:[a-z0-9_]+$/);
    // Target labels survive: no rule aggregates with by(), which would drop job/instance/session.
    for (const rule of rules) expect(rule.expr, rule.record).not.toMatch(/\bby\s*\(/);
  });

  it('passes its promtool unit tests', () => {
    const result = run('promtool', ['test', 'rules', 'loki-recording.test.yml'], { cwd: join(MONITORING, 'prometheus') });
    expect(result.output).toContain('SUCCESS');
    expect(result.status).toBe(0);
  });

  it('tests every recording rule with exact values, and a run start (counter reset)', () => {
    const tests = loadYaml(RECORDING_TESTS) as UnitTests;
    const checks = tests.tests.flatMap((g) => g.promql_expr_test ?? []);
    for (const record of RECORDS) {
      const exact = checks.filter((c) => c.expr === record && c.exp_samples.length > 0);
      expect(exact.length, record).toBeGreaterThan(0);
      for (const c of exact) for (const s of c.exp_samples) expect(typeof s.value, record).toBe('number');
    }
    const reset = tests.tests.find((g) => /counter reset/.test(g.name));
    expect(reset?.input_series.some((s) => s.values.includes('1000 0 50'))).toBe(true);
    expect(reset?.promql_expr_test?.map((c) => c.expr)).toEqual(expect.arrayContaining(['loki:model_cost_usd_per_hour:rate5m', 'increase(loki_model_tokens_total{type="input"}[5m])']));
  });

  // Naive forms that the unit tests must reject: proof that they test what the rules get right.
  it.each([
    // a gauge function on a counter that resets at every run start goes negative
    ['loki:model_cost_usd_per_hour:rate5m', 'delta(loki_model_cost_usd_total[5m]) * 12'],
    ['loki:model_cost_usd_per_hour:rate5m', 'deriv(loki_model_cost_usd_total[5m]) * 3600'],
    // by() drops the target's labels: sessions and instances merge
    ['loki:model_tokens:rate5m', 'sum by (type) (rate(loki_model_tokens_total[5m]))'],
    // no divide-by-zero guard: NaN samples for idle targets
    ['loki:model_cache_hit:ratio_rate5m', 'sum without (family, model, type) (rate(loki_model_tokens_total{type="cache_read"}[5m])) / sum without (family, model, type) (rate(loki_model_tokens_total{type=~"input|cache_read|cache_creation"}[5m]))'],
    // output tokens are not prompt tokens
    ['loki:model_cache_hit:ratio_rate5m', 'sum without (family, model, type) (rate(loki_model_tokens_total{type="cache_read"}[5m])) / (sum without (family, model, type) (rate(loki_model_tokens_total[5m])) > 0)'],
    ['loki:iterations_failed:ratio_rate1h', 'sum without (outcome) (rate(loki_iterations_total{outcome="failed"}[1h])) / sum without (outcome) (rate(loki_iterations_total[1h]))'],
  ])('fails with the naive %s expression %s', async (record, expr) => {
    const result = await testWithExpr(record, expr, RECORDING, RECORDING_TESTS);
    expect(result.status).not.toBe(0);
    expect(result.output).toContain(`expr: "${record}"`);
  });
});
