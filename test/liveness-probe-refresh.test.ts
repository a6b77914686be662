/**
 * RunnerProbe across refreshes: `prepare` parses the new `pids/` and `sessions/` entries in slices
 * ahead of `probe` (counted by slicer steps), and the candidates follow the files whatever changed.
 */
import { describe, expect, it } from 'vitest';
import type { Slicer } from '../src/file-set-collector.js';
import { RunnerProbe } from '../src/liveness.js';
import type { FileSetEntryRead, StateReading } from '../src/stores/store.js';
import { readingOf } from './support/readings.js';
import { alive, STOPPED } from './support/pids.js';

const T = Date.parse('2026-02-14T09:30:00Z');

const encoder = new TextEncoder();
const file = (name: string, content: unknown, version: string, mtimeMs = T): FileSetEntryRead => ({
  name,
  present: true,
  bytes: encoder.encode(typeof content === 'string' ? content : JSON.stringify(content)),
  mtimeMs,
  version,
});

/** A local reading: `loki.pid`, `pids/` wrappers, `sessions/<id>/loki.pid`, and the latest session_start. */
function state(spec: { pidFile: number; pidFileMs: number; wrappers: number[]; sessions: number[]; sessionStart: { pid: number; ms: number } }): StateReading {
  const base = readingOf({
    documents: { 'loki.pid': { content: `${spec.pidFile}\n`, mtimeMs: spec.pidFileMs } },
    events: { present: true, lines: 1, sessionPid: spec.sessionStart.pid, sessionStartMs: spec.sessionStart.ms },
    processes: { isProcessAlive: alive, hostPidNamespace: true },
  });
  return {
    ...base,
    pids: { present: true, files: spec.wrappers.map((pid) => file(`${pid}.json`, { pid, kind: 'wrapper', started: T / 1000 }, `w${pid}`)) },
    sessions: { present: true, files: spec.sessions.map((pid) => file(`s${pid}`, `${pid}\n`, `s${pid}`, T + 1_000)) },
  };
}

describe('RunnerProbe across refreshes', () => {
  it('follows the state when everything naming a process changed at once', () => {
    const probe = new RunnerProbe('auto', () => undefined);
    const running = state({ pidFile: 101, pidFileMs: T, wrappers: [102], sessions: [103], sessionStart: { pid: 104, ms: T + 2_000 } });
    expect(probe.probe(running).verdict).toEqual({ decided: true, alive: true, pid: 103, startedMs: T + 1_000 });
    // Every file and event now names another, dead, process.
    const gone = state({ pidFile: 901, pidFileMs: T + 60_000, wrappers: [902], sessions: [903], sessionStart: { pid: 904, ms: T + 62_000 } });
    expect(probe.probe(gone).verdict).toEqual(STOPPED);
    expect(probe.probe(running).verdict).toEqual({ decided: true, alive: true, pid: 103, startedMs: T + 1_000 });
  });

  it('prepare parses each new pids/ and sessions/ entry, consulting the slicer once for each, and none it has seen', async () => {
    const probe = new RunnerProbe('auto', () => undefined);
    let steps = 0;
    const slicer: Slicer = { step: () => void steps++ };
    const reading = state({ pidFile: 901, pidFileMs: T, wrappers: [902, 903, 101], sessions: [904, 905], sessionStart: { pid: 906, ms: T } });
    await probe.prepare(reading, slicer);
    expect(steps).toBe(5);
    expect(probe.probe(reading).verdict).toEqual({ decided: true, alive: true, pid: 101, startedMs: T });
    await probe.prepare(reading, slicer);
    const more = state({ pidFile: 901, pidFileMs: T, wrappers: [902, 903, 101], sessions: [904, 905, 907], sessionStart: { pid: 906, ms: T } });
    await probe.prepare(more, slicer);
    expect(steps).toBe(6);
  });
});
