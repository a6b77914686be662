import { describe, expect, it } from 'vitest';
import { readAutonomyState } from '../../src/schemas/autonomy-state.js';
import { MAX_COUNT } from '../../src/schemas/parse.js';
import { MAX_PID } from '../../src/schemas/pid.js';

const bytes = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));

describe('readAutonomyState (9.x autonomy-state.json: the runner\'s loop state)', () => {
  it('reads the iteration counter, the status and the runner\'s pid, each optional or null, and keeps the rest', () => {
    expect(readAutonomyState(bytes({ iterationCount: 7, status: 'running', pid: 4242, phase: 'build' }))).toEqual({ ok: true, value: { iterationCount: 7, status: 'running', pid: 4242, phase: 'build' } });
    expect(readAutonomyState(bytes({ iterationCount: null, status: null, pid: null }))).toEqual({ ok: true, value: { iterationCount: null, status: null, pid: null } });
    expect(readAutonomyState(bytes({}))).toEqual({ ok: true, value: {} });
    expect(readAutonomyState(bytes({ iterationCount: MAX_COUNT, pid: MAX_PID })).ok).toBe(true);
  });

  it.each([
    ['a negative iteration counter', { iterationCount: -1 }],
    ['a counter past MAX_COUNT', { iterationCount: MAX_COUNT + 1 }],
    ['a status that is not text', { status: 3 }],
    ['pid 0 (no process)', { pid: 0 }],
    ['a pid past MAX_PID', { pid: MAX_PID + 1 }],
  ])('a file with %s is bad', (_what, value) => {
    expect(readAutonomyState(bytes(value)).ok).toBe(false);
  });
});
