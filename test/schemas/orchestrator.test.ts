import { describe, expect, it } from 'vitest';
import { MAX_COUNT } from '../../src/schemas/parse.js';
import { readOrchestrator } from '../../src/schemas/orchestrator.js';

const bytes = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));

describe('readOrchestrator (state/orchestrator.json, free-form but for currentIteration)', () => {
  it('reads currentIteration as a count, absent or null as none, and keeps the rest as the agent wrote it', () => {
    expect(readOrchestrator(bytes({ currentIteration: 7, phase: 'build' }))).toEqual({ ok: true, value: { currentIteration: 7, phase: 'build' } });
    expect(readOrchestrator(bytes({ currentIteration: '7' }))).toEqual({ ok: true, value: { currentIteration: 7 } });
    expect(readOrchestrator(bytes({ currentIteration: null }))).toEqual({ ok: true, value: { currentIteration: null } });
    expect(readOrchestrator(bytes({ notes: [] }))).toEqual({ ok: true, value: { notes: [] } });
    expect(readOrchestrator(bytes({ currentIteration: MAX_COUNT }))).toEqual({ ok: true, value: { currentIteration: MAX_COUNT } });
  });

  it.each([
    ['a negative iteration', { currentIteration: -1 }],
    ['a fractional iteration', { currentIteration: 2.5 }],
    ['an iteration past MAX_COUNT', { currentIteration: MAX_COUNT + 1 }],
    ['an iteration that is not a number', { currentIteration: 'seven' }],
    ['a boolean iteration', { currentIteration: true }],
  ])('a file with %s is bad', (_what, value) => {
    expect(readOrchestrator(bytes(value)).ok).toBe(false);
  });
});
