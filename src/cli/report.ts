/**
 * What the CLI prints, as pure functions of text and data: `scrape`'s readable table and `check`'s
 * verdicts. Runtime-free so they are tested without a terminal; colour is the caller's decision.
 */
import type { SourceStatus } from '../snapshot.js';

/** One `name{labels} value` line of Prometheus text 0.0.4. */
export interface ParsedSample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

// A name, labels, a value and an optional timestamp; a comment, a blank or an odd line never matches.
const SAMPLE_LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+-?\d+(?:\.\d+)?)?$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

function parseValue(text: string): number {
  if (text === '+Inf' || text === 'Inf') return Infinity;
  if (text === '-Inf') return -Infinity;
  return Number(text); // NaN for `NaN`, as for anything that is no number
}

/** Parses the samples of an exposition (either format); comments and odd lines are skipped. */
export function parseExposition(text: string): ParsedSample[] {
  const samples: ParsedSample[] = [];
  for (const line of text.split('\n')) {
    const match = SAMPLE_LINE.exec(line);
    if (!match) continue;
    const labels: Record<string, string> = {};
    for (const label of (match[3] ?? '').matchAll(LABEL)) {
      labels[label[1] as string] = (label[2] as string).replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    }
    samples.push({ name: match[1] as string, labels, value: parseValue(match[4] as string) });
  }
  return samples;
}

export interface Paint {
  readonly good: (text: string) => string;
  readonly warn: (text: string) => string;
  readonly bad: (text: string) => string;
  readonly dim: (text: string) => string;
}

export const NO_PAINT: Paint = { good: (t) => t, warn: (t) => t, bad: (t) => t, dim: (t) => t };

/** ANSI colours; only ever used when stdout is a terminal and `NO_COLOR` is unset. */
export const ANSI_PAINT: Paint = {
  good: (t) => `\x1b[32m${t}\x1b[0m`,
  warn: (t) => `\x1b[33m${t}\x1b[0m`,
  bad: (t) => `\x1b[31m${t}\x1b[0m`,
  dim: (t) => `\x1b[2m${t}\x1b[0m`,
};

/** `3723.4` → `1h 2m 3s`; under a minute `42s`. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds <= 0) return '0s';
  const total = Math.floor(seconds);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  if (h > 0) return `${h}h ${m}m ${s}s`;
  if (m > 0) return `${m}m ${s}s`;
  return `${s}s`;
}

/** `3.5313` → `$3.53`; sub-cent amounts keep enough digits to be non-zero (at least 4, at most 20). */
export function formatUsd(usd: number): string {
  if (!Number.isFinite(usd)) return String(usd);
  if (usd > 0 && usd < 0.01) return `$${usd.toFixed(Math.min(20, Math.max(4, Math.ceil(-Math.log10(usd)))))}`;
  return `$${usd.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 })}`;
}

const STATUS_WORDS: Readonly<Record<number, string>> = { 0: 'stopped', 1: 'running', 2: 'paused' };

/** The readable table `loki-metrics scrape` prints by default. */
export function formatScrapeTable(samples: readonly ParsedSample[], paint: Paint = NO_PAINT): string {
  const one = (name: string, labels: Record<string, string> = {}): number | undefined =>
    samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
  const num = (value: number | undefined) => (value === undefined ? '-' : String(value));

  const status = one('loki_session_status');
  const word = status === undefined ? 'unknown' : (STATUS_WORDS[status] ?? `unknown (${status})`);
  const statusText = status === 1 ? paint.good(word) : status === 2 ? paint.warn(word) : paint.bad(word);

  const task = (s: string) => num(one('loki_tasks_total', { status: s }));
  const cost = one('loki_cost_usd');
  const limit = one('loki_budget_limit_usd');
  const exceeded = one('loki_budget_exceeded') === 1;
  const budget =
    limit !== undefined && limit > 0
      ? ` of ${formatUsd(limit)} budget${exceeded ? `, ${paint.bad('exceeded')}` : ''}`
      : exceeded
        ? ` (${paint.bad('budget exceeded')})`
        : '';
  const sources = samples.filter((s) => s.name === 'loki_source_ok');
  const badSources = sources.filter((s) => s.value === 0).map((s) => s.labels.source ?? '?');
  const up = one('loki_up');
  const uptime = one('loki_uptime_seconds');

  const rows: [string, string][] = [
    ['Session', statusText],
    ['Iteration', `${num(one('loki_iteration_current'))} / ${num(one('loki_iteration_max'))}`],
    ['Uptime', uptime === undefined ? '-' : formatDuration(uptime)],
    ['Tasks', `${task('pending')} pending, ${task('in_progress')} in progress, ${task('completed')} completed, ${task('failed')} failed`],
    ['Agents', `${num(one('loki_agents_active'))} active of ${num(one('loki_agents_total'))}`],
    ['Cost', `${cost === undefined ? '-' : formatUsd(cost)}${budget}`],
    ['Events', num(one('loki_events_total'))],
    ['State dir', up === 1 ? paint.good('readable') : up === 0 ? paint.bad('unreadable') : '-'],
    ['Sources', sources.length === 0 ? '-' : badSources.length === 0 ? paint.good('all ok') : paint.bad(`problems: ${badSources.join(', ')}`)],
  ];
  return rows.map(([key, value]) => `${key.padEnd(10)} ${value}`).join('\n') + '\n';
}

/**
 * `scrape --all`: one row per project (padding counts the visible text, not the colour codes),
 * then the total cost.
 */
export function formatFleetTable(projects: readonly { readonly name: string; readonly samples: readonly ParsedSample[] | string }[], paint: Paint = NO_PAINT): string {
  const header = ['PROJECT', 'SESSION', 'ITERATION', 'TASKS DONE/FAILED', 'COST', 'STATE DIR'];
  let total = 0;
  const rows = projects.map(({ name, samples }): [string, string][] => {
    if (typeof samples === 'string') return [[name, name], [paint.bad(samples), samples]];
    const one = (metric: string, labels: Record<string, string> = {}) =>
      samples.find((s) => s.name === metric && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
    const num = (value: number | undefined) => (value === undefined ? '-' : String(value));
    const status = one('loki_session_status');
    const word = status === undefined ? 'unknown' : (STATUS_WORDS[status] ?? `unknown (${status})`);
    const cost = one('loki_cost_usd');
    total += cost ?? 0;
    const up = one('loki_up');
    const cells: [string, string][] = [
      [name, name],
      [status === 1 ? paint.good(word) : status === 2 ? paint.warn(word) : paint.bad(word), word],
      [`${num(one('loki_iteration_current'))}/${num(one('loki_iteration_max'))}`, ''],
      [`${num(one('loki_tasks_total', { status: 'completed' }))}/${num(one('loki_tasks_total', { status: 'failed' }))}`, ''],
      [cost === undefined ? '-' : formatUsd(cost), ''],
      up === 1 ? [paint.good('readable'), 'readable'] : up === 0 ? [paint.bad('unreadable'), 'unreadable'] : ['-', '-'],
    ];
    return cells.map(([shown, plain]) => [shown, plain || shown]);
  });
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i]?.[1] ?? '').length)));
  const line = (cells: readonly [string, string][]) =>
    cells.map(([shown, plain], i) => (i === cells.length - 1 ? shown : shown + ' '.repeat(Math.max(0, (widths[i] ?? 0) - plain.length)))).join('  ');
  const out = [line(header.map((h) => [h, h])), ...rows.map(line)];
  out.push(`${projects.length} project${projects.length === 1 ? '' : 's'}, total cost ${formatUsd(total)}`);
  return out.join('\n') + '\n';
}

/** The verdicts `loki-metrics check` prints, one line per source. */
export function formatCheck(dir: string, available: boolean, problem: string | undefined, sources: readonly SourceStatus[], paint: Paint = NO_PAINT): string {
  const lines = [`${dir}: ${available ? paint.good('readable') : paint.bad(`unreadable (${problem ?? 'unknown reason'})`)}`];
  const width = Math.max(...sources.map((s) => s.source.length));
  for (const s of sources) {
    const verdict = !s.ok ? paint.bad('BAD') : s.present ? paint.good('ok') : paint.dim('absent');
    lines.push(`  ${s.source.padEnd(width)}  ${verdict}${s.problem ? `  ${s.problem}` : ''}`);
  }
  return lines.join('\n') + '\n';
}
