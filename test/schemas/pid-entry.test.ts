import { describe, expect, it } from 'vitest';
import { readPidEntry, startedMs } from '../../src/schemas/pid-entry.js';

const bytes = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));

describe('readPidEntry / startedMs', () => {
  it('reads the wrapper and its helpers, with `started` as ISO text or epoch seconds or ms', () => {
    const wrapper = readPidEntry(bytes({ pid: 4242, kind: 'wrapper', label: 'run.sh', started: '2026-02-14T09:12:04Z' }));
    expect(wrapper).toEqual({ ok: true, value: { pid: 4242, kind: 'wrapper', label: 'run.sh', started: Date.parse('2026-02-14T09:12:04Z') } });
    if (wrapper.ok) expect(startedMs(wrapper.value)).toBe(Date.parse('2026-02-14T09:12:04Z'));
    expect(startedMs({ pid: 1, started: 1_771_060_324 })).toBe(1_771_060_324_000);
    expect(startedMs({ pid: 1, started: 1_771_060_324_123 })).toBe(1_771_060_324_123);
    // 1e11 is still seconds (year 5138); only larger values are already ms.
    expect(startedMs({ pid: 1, started: 1e11 })).toBe(1e14);
    expect(startedMs({ pid: 1, started: 1e11 + 1 })).toBe(1e11 + 1);
  });

  it('has no start time when `started` is missing or null', () => {
    expect(startedMs({ pid: 1 })).toBeUndefined();
    expect(startedMs({ pid: 1, started: null })).toBeUndefined();
  });

  it.each([
    [{ pid: 0 }, 'pid: Expected a pid from 1'],
    [{ pid: 4194305 }, 'pid: Invalid value: Expected <=4194304'],
    [{ pid: 5, ppid: 0 }, 'ppid: Expected a pid from 1'],
    [{ label: 'x' }, 'pid: Invalid key: Expected "pid"'],
  ])('rejects %j', (entry, problem) => {
    expect(readPidEntry(bytes(entry))).toEqual({ ok: false, problem });
  });
});
