/**
 * Hand-built snapshots for the formatter tests: no collector, no files, just data.
 */
import type { FamilyName } from '../../src/catalogue.js';
import type { Sample, Snapshot } from '../../src/snapshot.js';

/** A snapshot holding exactly `entries` (families left out have no samples). */
export function snapshotOf(entries: Iterable<readonly [FamilyName, readonly Sample[]]> = []): Snapshot {
  return { samples: new Map(entries), sources: [], up: true, takenAtMs: 0 };
}

/** A source path that needs every label-value escape: backslash, double quote, newline. */
export const AWKWARD_SOURCE = 'metrics/eff\\ic"ien\ncy';

/** Version label value with a quote and a backslash, as a hostile build might stamp it. */
export const AWKWARD_VERSION = '1.2.3-"dev"\\x';

/** The other build labels of `fullSnapshot()`. */
export const BUILD_REVISION = '0123456789abcdef0123456789abcdef01234567';
export const BUILD_NODEVERSION = 'v20.20.2';

/**
 * Every family of the catalogue (the process families too) with realistic samples: all four task statuses, several sources
 * (one whose name needs escaping), non-finite values in a gauge, a large counter and a tiny cost.
 */
export function fullSnapshot(): Snapshot {
  return snapshotOf([
    ['loki_session_status', [{ value: 1 }]],
    ['loki_iteration_current', [{ value: 42 }]],
    ['loki_iteration_max', [{ value: 1000 }]],
    [
      'loki_tasks_total',
      [
        { labels: { status: 'pending' }, value: 7 },
        { labels: { status: 'in_progress' }, value: 2 },
        { labels: { status: 'completed' }, value: 50 },
        { labels: { status: 'failed' }, value: 3 },
      ],
    ],
    ['loki_agents_active', [{ value: 4 }]],
    ['loki_agents_total', [{ value: 9 }]],
    ['loki_cost_usd', [{ value: 0.000001 }]],
    ['loki_events_total', [{ value: 123456789012 }]],
    ['loki_uptime_seconds', [{ value: 3600.5 }]],
    ['loki_up', [{ value: 1 }]],
    ['loki_budget_limit_usd', [{ value: Infinity }]],
    ['loki_budget_exceeded', [{ value: 0 }]],
    [
      'loki_source_ok',
      [
        { labels: { source: 'dashboard-state.json' }, value: 1 },
        { labels: { source: 'loki.pid' }, value: 1 },
        { labels: { source: 'state/agents.json' }, value: 0 },
        { labels: { source: 'events.jsonl' }, value: 1 },
        { labels: { source: AWKWARD_SOURCE }, value: 0 },
      ],
    ],
    [
      'loki_source_mtime_seconds',
      [
        { labels: { source: 'dashboard-state.json' }, value: 1767225600.123 },
        { labels: { source: 'loki.pid' }, value: NaN },
        { labels: { source: 'events.jsonl' }, value: -Infinity },
        { labels: { source: AWKWARD_SOURCE }, value: 1767225599 },
      ],
    ],
    ['loki_exporter_build_info', [{ labels: { version: AWKWARD_VERSION, demo: 'false', revision: BUILD_REVISION, nodeversion: BUILD_NODEVERSION }, value: 1 }]],
    ['loki_receipts_total', [{ value: 5 }]],
    [
      'loki_receipts_by_verdict',
      [
        { labels: { verdict: 'verified' }, value: 1 },
        { labels: { verdict: 'with_gaps' }, value: 1 },
        { labels: { verdict: 'not_verified' }, value: 1 },
        { labels: { verdict: 'unknown' }, value: 2 },
      ],
    ],
    [
      'loki_receipts_with_provenance',
      [
        { labels: { kind: 'attestation' }, value: 2 },
        { labels: { kind: 'gpg' }, value: 0 },
      ],
    ],
    [
      'loki_model_tokens_total',
      [
        { labels: { family: 'opus', model: 'claude-opus-4-6', type: 'input' }, value: 1_000_000 },
        { labels: { family: 'opus', model: 'claude-opus-4-6', type: 'cache_read' }, value: 2.5e12 },
        { labels: { family: 'other', model: 'openrouter/"odd"\\model', type: 'output' }, value: 0 },
      ],
    ],
    ['loki_model_cost_usd_total', [{ labels: { family: 'opus', model: 'claude-opus-4-6' }, value: 12.345678 }]],
    [
      'loki_iterations_total',
      [
        { labels: { outcome: 'completed' }, value: 7 },
        { labels: { outcome: 'failed' }, value: 1 },
      ],
    ],
    [
      'loki_iteration_duration_seconds',
      [
        ...[['1.0', 0], ['5.0', 0], ['15.0', 1], ['30.0', 1], ['60.0', 2], ['120.0', 4], ['300.0', 6], ['600.0', 7], ['1200.0', 8], ['1800.0', 8], ['3600.0', 8], ['7200.0', 8], ['14400.0', 8], ['+Inf', 8]].map(
          ([le, value]) => ({ suffix: '_bucket' as const, labels: { le: le as string }, value: value as number }),
        ),
        { suffix: '_sum', value: 2412.5 },
        { suffix: '_count', value: 8 },
      ],
    ],
    ['loki_run_outcome', [{ labels: { outcome: 'max_iterations' }, value: 1 }]],
    ['loki_exporter_scrape_duration_seconds', [{ value: 0.000734 }]],
    // the process families, as a runtime with a process (Node) adds them to every scrape
    ['process_cpu_seconds_total', [{ value: 12.345 }]],
    ['process_start_time_seconds', [{ value: 1767225600.5 }]],
    ['process_resident_memory_bytes', [{ value: 58_204_160 }]],
    ['process_open_fds', [{ value: 23 }]],
    ['nodejs_eventloop_lag_seconds', [{ value: 0.001234 }]],
  ]);
}
