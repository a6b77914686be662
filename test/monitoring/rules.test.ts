/**
 * The shipped alert rules (monitoring/prometheus/loki-alerts.yml) are valid, and their promtool
 * unit tests pass, cover every alert both ways, and fail when a rule is put back to the guide's
 * broken form (so this test can fail).
 */
import { copyFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cleanTemps, loadYaml, MONITORING, run, tempDir } from './support.js';

const RULES = join(MONITORING, 'prometheus/loki-alerts.yml');
const TESTS = join(MONITORING, 'prometheus/loki-alerts.test.yml');
const GUIDE_ALERTS = ['LokiSessionDown', 'LokiBudgetWarning', 'LokiBudgetCritical', 'LokiStagnation', 'LokiHighFailureRate', 'LokiTooManyAgents'];
const EXTRA_ALERTS = ['LokiExporterDown', 'LokiStateUnreadable', 'LokiSourceInvalid', 'LokiStateStale'];

interface Rule { alert?: string; expr: string; for?: string }
interface RuleFile { groups: { name: string; interval?: string; rules: Rule[] }[] }
interface UnitTests {
  rule_files: string[];
  tests: {
    name: string;
    input_series: { series: string; values: string }[];
    alert_rule_test?: { eval_time: string; alertname: string; exp_alerts: { exp_labels: Record<string, string> }[] }[];
  }[];
}

afterAll(cleanTemps);

/** Runs the shipped unit tests against a copy of the rules with one alert's expr replaced. */
async function testWithExpr(alert: string, expr: string) {
  const dir = await tempDir('loki-rules-');
  const rules = loadYaml(RULES) as RuleFile;
  const rule = rules.groups.flatMap((g) => g.rules).find((r) => r.alert === alert);
  if (!rule) throw new Error(`no rule ${alert}`);
  rule.expr = expr;
  await writeFile(join(dir, 'loki-alerts.yml'), JSON.stringify(rules));
  await copyFile(TESTS, join(dir, 'loki-alerts.test.yml'));
  return run('promtool', ['test', 'rules', 'loki-alerts.test.yml'], { cwd: dir });
}

describe('monitoring/prometheus/loki-alerts.yml', () => {
  it('passes promtool check rules and keeps the guide\'s six alert names', () => {
    const result = run('promtool', ['check', 'rules', RULES]);
    expect(result.output).toContain('SUCCESS: 10 rules found');
    expect(result.status).toBe(0);
    const names = (loadYaml(RULES) as RuleFile).groups.flatMap((g) => g.rules.map((r) => r.alert));
    expect(names).toEqual([...GUIDE_ALERTS, ...EXTRA_ALERTS]);
  });

  it('passes its promtool unit tests', () => {
    const result = run('promtool', ['test', 'rules', 'loki-alerts.test.yml'], { cwd: join(MONITORING, 'prometheus') });
    expect(result.output).toContain('SUCCESS');
    expect(result.status).toBe(0);
  });

  it('tests every alert with a series that fires and one that must not', () => {
    const tests = loadYaml(TESTS) as UnitTests;
    for (const alert of [...GUIDE_ALERTS, ...EXTRA_ALERTS]) {
      let fires = false;
      let silent = false;
      for (const group of tests.tests) {
        // A target is identified by instance and, for per-source series, source.
        const key = (instance?: string, source?: string) => `${instance ?? ''}|${source ?? ''}`;
        const instances = new Set(
          group.input_series
            .filter((s) => s.series.includes('instance='))
            .map((s) => key(/instance="([^"]*)"/.exec(s.series)?.[1], /source="([^"]*)"/.exec(s.series)?.[1])),
        );
        for (const check of group.alert_rule_test ?? []) {
          if (check.alertname !== alert) continue;
          if (check.exp_alerts.length > 0) fires = true;
          // promtool compares the exact set of alerts: an input target missing from exp_alerts is
          // one that provably does not fire, and an empty exp_alerts proves silence outright.
          const expected = new Set(check.exp_alerts.map((a) => key(a.exp_labels.instance, a.exp_labels.source)));
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
  ])('fails with the broken %s expression', async (alert, expr) => {
    const result = await testWithExpr(alert, expr);
    expect(result.status).not.toBe(0);
    expect(result.output).toContain(`alertname: ${alert}`);
  });
});
