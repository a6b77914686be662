/**
 * createStateSources (src/state-sources.ts): every source updated from one reading, in the order
 * the snapshot reports them; their values through collect.ts are tested in test/collect.test.ts.
 */
import { describe, expect, it } from 'vitest';
import type { Slicer } from '../src/file-set-collector.js';
import { createStateSources } from '../src/state-sources.js';
import type { FileSetRead } from '../src/stores/store.js';
import { fileOf, readingOf } from './support/readings.js';

const NOW = Date.parse('2026-02-14T10:00:00Z');

describe('createStateSources', () => {
  it('lists every source once, in the order docs/metrics.md gives, with absent documents as no value', () => {
    const read = createStateSources('auto', () => undefined).read(readingOf({}));
    expect(read.statuses.map((s) => s.source)).toEqual([
      'dashboard-state.json', 'loki.pid', 'state/agents.json', 'metrics/efficiency', 'events.jsonl', 'pricing.json', 'metrics/budget.json',
      'signals/BUDGET_EXCEEDED', 'state/orchestrator.json', 'queue/current-task.json', 'autonomy-state.json', 'state/completion.json', 'proofs', 'pids', 'sessions',
    ]);
    expect(read.statuses.every((s) => s.ok && !s.present)).toBe(true);
    expect(read.state).toEqual({});
    expect([read.agents, read.pricing, read.budget, read.budgetSignal, read.orchestrator, read.currentTask, read.autonomy, read.completion]).toEqual(Array(8).fill(undefined));
  });

  it('parses each document into its own value', () => {
    const read = createStateSources('auto', () => undefined).read(
      readingOf({
        documents: {
          'dashboard-state.json': { content: { mode: 'paused' } },
          'queue/current-task.json': { content: { id: 'iteration-6' } },
          'state/orchestrator.json': { content: { currentIteration: 4 } },
          'metrics/budget.json': { content: { limit: 5 } },
        },
      }),
    );
    expect(read.state.mode).toBe('paused');
    expect(read.currentTask?.id).toBe('iteration-6');
    expect(read.orchestrator?.currentIteration).toBe(4);
    expect(read.budget).toMatchObject({ limit: 5 });
  });

  it("logs events.jsonl's problem once while it lasts, and once when it is ok again", () => {
    const logs: string[] = [];
    const sources = createStateSources('auto', (line) => logs.push(line));
    const bad = readingOf({ events: { present: true, lines: 3, mtimeMs: NOW, error: 'line 2: not valid JSON' } });
    const events = (r: ReturnType<typeof sources.read>) => r.statuses.find((s) => s.source === 'events.jsonl');
    expect(events(sources.read(bad))).toEqual({ source: 'events.jsonl', ok: false, present: true, mtimeMs: NOW, problem: 'line 2: not valid JSON' });
    sources.read(bad);
    expect(logs).toEqual(['loki-metrics: events.jsonl: line 2: not valid JSON']);
    expect(events(sources.read(readingOf({ events: { present: true, lines: 3, mtimeMs: NOW } })))).toStrictEqual({ source: 'events.jsonl', ok: true, present: true, mtimeMs: NOW });
    expect(logs).toEqual(['loki-metrics: events.jsonl: line 2: not valid JSON', 'loki-metrics: events.jsonl: ok again']);
  });

  it('prepares every file set: the slicer is consulted once per new entry of efficiency, proofs, pids and sessions', async () => {
    const set = (...names: string[]): FileSetRead => ({ present: true, files: names.map((name, i) => ({ name, ...fileOf(`${100 + i}\n`), version: `v${i}` })) });
    const reading = { ...readingOf({}), efficiency: set('iteration-1.json', 'iteration-2.json'), proofs: set('run-1'), pids: set('100.json', '101.json', '102.json'), sessions: set('s1') };
    let steps = 0;
    const slicer: Slicer = { step: () => void steps++ };
    const sources = createStateSources('auto', () => undefined);
    await sources.prepare(reading, slicer);
    expect(steps).toBe(7);
    await sources.prepare(reading, slicer);
    expect(steps).toBe(7);
  });
});

