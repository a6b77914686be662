/**
 * The pure rules of rules.ts on hand-built inputs: the boundaries the fixture-based collector tests
 * do not reach.
 */
import { describe, expect, it } from 'vitest';
import { currentSession, isHeartbeat, NEW_RUN_MARGIN_MS, runOutcome, type SessionInput } from '../src/rules.js';

const NOW = Date.parse('2026-02-14T12:00:00Z');
const START = NOW - 600_000; // the latest session_start, 10 min ago

function input(overrides: Partial<SessionInput> = {}): SessionInput {
  return {
    verdict: { decided: true, alive: true, pid: 4242, startedMs: START - 5_000 },
    heartbeat: false,
    syncStale: false,
    paused: false,
    stopping: false,
    events: { present: true, lines: 10, sessionStartMs: START, sessionPid: 4242 },
    state: {},
    stateMtimeMs: undefined,
    pidFileMtimeMs: undefined,
    nowMs: NOW,
    ...overrides,
  };
}

describe('currentSession', () => {
  it('a live runner started before the latest session_start: that session, its uptime', () => {
    expect(currentSession(input())).toEqual({ alive: true, status: 1, newRun: false, latestStartMs: START, uptimeSeconds: 600 });
  });

  it('a live runner started more than the margin after it is a new run, timed from the runner', () => {
    const verdict = { decided: true, alive: true, pid: 5151, startedMs: START + NEW_RUN_MARGIN_MS + 1 };
    const s = currentSession(input({ verdict }));
    expect(s).toMatchObject({ newRun: true, latestStartMs: verdict.startedMs });
    expect(s.uptimeSeconds).toBe((NOW - verdict.startedMs) / 1000);
    // exactly at the margin: still the events' session (whole-second timestamps)
    expect(currentSession(input({ verdict: { ...verdict, startedMs: START + NEW_RUN_MARGIN_MS } })).newRun).toBe(false);
  });

  it('a session_start naming the live runner is current however late the runner claims to have started', () => {
    const verdict = { decided: true, alive: true, pid: 4242, startedMs: START + 60_000 };
    expect(currentSession(input({ verdict })).newRun).toBe(false);
    expect(currentSession(input({ verdict, events: { present: true, lines: 1, sessionStartMs: START } })).newRun).toBe(true);
  });

  it('no new run from a dead runner, an undecided verdict, or without any session_start', () => {
    const late = START + 60_000;
    expect(currentSession(input({ verdict: { decided: true, alive: false, startedMs: late } })).newRun).toBe(false);
    expect(currentSession(input({ verdict: { decided: false, alive: false }, heartbeat: true })).newRun).toBe(false);
    const noEvents = currentSession(input({ verdict: { decided: true, alive: true, pid: 1, startedMs: late }, events: { present: false, lines: 0 } }));
    expect(noEvents).toMatchObject({ newRun: false, latestStartMs: undefined, uptimeSeconds: (NOW - late) / 1000 });
  });

  it('decided verdicts win over the heartbeat; undecided ones fall back to it; a stale sync stops everything', () => {
    expect(currentSession(input({ verdict: { decided: true, alive: false }, heartbeat: true })).status).toBe(0);
    expect(currentSession(input({ verdict: { decided: false, alive: false }, heartbeat: true })).status).toBe(1);
    expect(currentSession(input({ verdict: { decided: false, alive: false }, heartbeat: false })).status).toBe(0);
    expect(currentSession(input({ syncStale: true }))).toMatchObject({ alive: false, status: 0, uptimeSeconds: 0 });
  });

  it('paused wins over stopping; stopping ends a live session', () => {
    expect(currentSession(input({ paused: true, stopping: true })).status).toBe(2);
    expect(currentSession(input({ stopping: true })).status).toBe(0);
    expect(currentSession(input({ paused: true, verdict: { decided: true, alive: false } })).status).toBe(0);
  });

  it('never reports a negative uptime for a start in the future', () => {
    const events = { present: true, lines: 1, sessionStartMs: NOW + 3_600_000, sessionPid: 4242 };
    expect(currentSession(input({ events })).uptimeSeconds).toBe(0);
  });
});

describe('isHeartbeat', () => {
  it('is the window either side of now, inclusive, and never for an unknown mtime', () => {
    expect(isHeartbeat(NOW - 30_000, NOW, 30_000)).toBe(true);
    expect(isHeartbeat(NOW - 30_001, NOW, 30_000)).toBe(false);
    expect(isHeartbeat(NOW + 30_000, NOW, 30_000)).toBe(true);
    expect(isHeartbeat(NOW + 30_001, NOW, 30_000)).toBe(false);
    expect(isHeartbeat(undefined, NOW, 30_000)).toBe(false);
  });
});

describe('runOutcome', () => {
  it('names a known outcome written at or after the latest session start, else nothing', () => {
    expect(runOutcome({ outcome: 'complete' }, START, START)).toBe('complete');
    expect(runOutcome({ outcome: ' MAX_ITERATIONS ' }, START + 1, START)).toBe('max_iterations');
    expect(runOutcome({ outcome: 'complete' }, START - 1, START)).toBeUndefined();
    expect(runOutcome({ outcome: 'complete' }, undefined, START)).toBeUndefined();
    expect(runOutcome({ outcome: 'complete' }, undefined, undefined)).toBe('complete');
    expect(runOutcome(undefined, START, START)).toBeUndefined();
  });

  it('is `other` for an outcome upstream does not write, never the file\'s text', () => {
    expect(runOutcome({ outcome: 'rm -rf' }, START, START)).toBe('other');
  });
});
