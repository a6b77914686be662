/**
 * The pure rules of rules.ts on hand-built inputs: the boundaries the fixture-based collector tests
 * do not reach.
 */
import { foldUsage, maxIteration } from '../src/usage-totals.js';
import { describe, expect, it } from 'vitest';
import {
  holdAgentCounts,
  budgetState,
  agentCounts,
  currentAutonomyState,
  currentIteration,
  currentSession,
  isHeartbeat,
  NEW_RUN_MARGIN_MS,
  runOutcome,
  taskCounts,
  type SessionInput,
} from '../src/rules.js';
import type { Agent } from '../src/schemas/agents.js';
import type { AutonomyState } from '../src/schemas/autonomy-state.js';
import type { DashboardState } from '../src/schemas/dashboard-state.js';
import type { EfficiencyRecord } from '../src/schemas/efficiency.js';
import type { EventsSummary } from '../src/stores/store.js';

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

  it('a live runner without a known pid, after a session_start that names none, is a new run too', () => {
    const verdict = { decided: true, alive: true, startedMs: START + 60_000 };
    expect(currentSession(input({ verdict, events: { present: true, lines: 1, sessionStartMs: START } }))).toMatchObject({ newRun: true, latestStartMs: START + 60_000 });
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

describe('uptime around a session start at or after now (the clock jumped back, or a writer with a fast clock)', () => {
  const startingAt = (sessionStartMs: number) => currentSession(input({ events: { present: true, lines: 1, sessionStartMs, sessionPid: 4242 } }));

  it('is 0 for a session that starts exactly now', () => {
    expect(startingAt(NOW).uptimeSeconds).toBe(0);
  });

  it('is clamped to 0, never negative, for a start 1 ms ahead or far in the future; the session still runs', () => {
    expect(startingAt(NOW + 1).uptimeSeconds).toBe(0);
    const far = startingAt(NOW + 86_400_000);
    expect(far).toMatchObject({ alive: true, status: 1, newRun: false, latestStartMs: NOW + 86_400_000, uptimeSeconds: 0 });
  });

  it('counts in milliseconds from 1 ms after the start', () => {
    expect(startingAt(NOW - 1).uptimeSeconds).toBe(0.001);
  });

  it('rounds the uptime to whole milliseconds (a fractional uptime_seconds in the snapshot)', () => {
    const uptime = (uptime_seconds: number) =>
      currentSession(
        input({ verdict: { decided: false, alive: false }, heartbeat: true, events: { present: false, lines: 0 }, state: { uptime_seconds }, stateMtimeMs: NOW - 1_000 }),
      ).uptimeSeconds;
    // written 1 s ago: 96.0004 s and 96.0006 s
    expect(uptime(95.0004)).toBe(96);
    expect(uptime(95.0006)).toBe(96.001);
  });
});

describe('where the current session starts, best source first', () => {
  // Each source names a different start, so the uptime tells which one was taken.
  const EVENTS = NOW - 100_000;
  const STARTED_AT = NOW - 200_000;
  const STATE_MTIME = NOW - 10_000; // with uptime_seconds 290: started NOW - 300 s
  const RUNNER = NOW - 400_000;
  const PID_FILE = NOW - 500_000;
  const everything: Partial<SessionInput> = {
    verdict: { decided: true, alive: true, pid: 4242, startedMs: RUNNER },
    events: { present: true, lines: 3, sessionStartMs: EVENTS, sessionPid: 4242 },
    state: { startedAt: new Date(STARTED_AT).toISOString(), uptime_seconds: 290 },
    stateMtimeMs: STATE_MTIME,
    pidFileMtimeMs: PID_FILE,
  };
  const uptime = (overrides: Partial<SessionInput>) => currentSession(input({ ...everything, ...overrides })).uptimeSeconds;
  const noEvents = { events: { present: true, lines: 3 } };

  it('the latest session_start over the snapshot\'s startedAt', () => {
    expect(uptime({})).toBe(100);
  });

  it('then startedAt over uptime_seconds', () => {
    expect(uptime(noEvents)).toBe(200);
  });

  it('then uptime_seconds counted from the snapshot\'s mtime, when startedAt is missing or not a date', () => {
    expect(uptime({ ...noEvents, state: { uptime_seconds: 290 } })).toBe(300);
    expect(uptime({ ...noEvents, state: { startedAt: 'yesterday', uptime_seconds: 290 } })).toBe(300);
    expect(uptime({ ...noEvents, state: { startedAt: null, uptime_seconds: 290 } })).toBe(300);
  });

  it('then the live runner\'s start, when uptime_seconds or the snapshot\'s mtime is missing', () => {
    expect(uptime({ ...noEvents, state: {} })).toBe(400);
    expect(uptime({ ...noEvents, state: { uptime_seconds: 290 }, stateMtimeMs: undefined })).toBe(400);
  });

  it('then loki.pid\'s mtime, when the pids did not decide (alive by the heartbeat)', () => {
    expect(uptime({ ...noEvents, state: {}, verdict: { decided: false, alive: false }, heartbeat: true })).toBe(500);
  });

  it('no start known at all: alive with an uptime of 0', () => {
    const s = currentSession(input({ ...everything, ...noEvents, state: {}, verdict: { decided: false, alive: false }, heartbeat: true, pidFileMtimeMs: undefined }));
    expect(s).toMatchObject({ alive: true, status: 1, uptimeSeconds: 0 });
  });
});

describe('currentIteration: best source first', () => {
  interface Sources {
    events?: EventsSummary;
    counter?: AutonomyState;
    state?: DashboardState;
    task?: unknown;
    efficiency?: (number | undefined)[];
    orchestrator?: number | null;
  }
  const SESSION: EventsSummary = { present: true, lines: 5, sessionStartMs: START };
  const NO_SESSION: EventsSummary = { present: true, lines: 5 };
  function iteration(sources: Sources): number {
    const records = (sources.efficiency ?? []).map((n, i) => ({
      name: `iteration-${i + 1}.json`,
      value: (n === undefined ? {} : { iteration: n }) as EfficiencyRecord,
    }));
    // The highest iteration as the collector computes it: the efficiency files folded into totals.
    return currentIteration(sources.events ?? NO_SESSION, sources.counter, sources.state ?? {}, sources.task, maxIteration(foldUsage(records)), sources.orchestrator);
  }
  // Every source disagrees, each better one saying less than the next: neither "the highest wins"
  // nor a swapped pair can give the expected answers.
  const queues = (id: string): DashboardState => ({ tasks: { inProgress: [{ id }] } });
  const all: Sources = {
    counter: { iterationCount: 3 },
    state: { iteration: 4, ...queues('iteration-5') },
    task: 'iteration-5',
    efficiency: [6],
    orchestrator: 7,
  };

  it('after a session_start: its latest iteration_start, over every other source', () => {
    expect(iteration({ ...all, events: { ...SESSION, iteration: 2 } })).toBe(2);
    // an iteration_start of 0 is an answer too
    expect(iteration({ ...all, events: { ...SESSION, iteration: 0 } })).toBe(0);
  });

  it('after a session_start without an iteration_start: the runner\'s counter, else 0 whatever the rest says', () => {
    expect(iteration({ ...all, events: SESSION })).toBe(3);
    expect(iteration({ ...all, events: SESSION, counter: { iterationCount: null } })).toBe(0);
    expect(iteration({ ...all, events: SESSION, counter: undefined })).toBe(0);
  });

  it('without a session_start: the runner\'s counter (0 included) over the snapshot\'s iteration', () => {
    expect(iteration(all)).toBe(3);
    expect(iteration({ ...all, counter: { iterationCount: 0 } })).toBe(0);
    // a null counter is none: the next source answers
    expect(iteration({ ...all, counter: { iterationCount: null } })).toBe(4);
    expect(iteration({ ...all, counter: undefined })).toBe(4);
  });

  it('then a non-zero snapshot iteration over the task queues', () => {
    const rest = { ...all, counter: undefined };
    expect(iteration(rest)).toBe(4);
    expect(iteration({ ...rest, state: { iteration: 0, ...queues('iteration-5') } })).toBe(5);
    expect(iteration({ ...rest, state: { iteration: null, ...queues('iteration-5') } })).toBe(5);
  });

  it('then the highest iteration-N of the current task and the in-progress, completed and failed queues', () => {
    const rest = { efficiency: [6], orchestrator: 7 };
    expect(iteration({ ...rest, task: 'iteration-5' })).toBe(5);
    expect(iteration({ ...rest, state: queues('iteration-5') })).toBe(5);
    const state = (inProgress: string, completed: string, failed: string): DashboardState => ({
      tasks: { inProgress: [{ id: inProgress }], completed: [{ id: completed }], failed: [{ id: failed }], pending: [{ id: 'iteration-99' }] },
    });
    // whichever holds the highest (pending is not a started iteration)
    expect(iteration({ ...rest, task: 'iteration-12', state: state('iteration-2', 'iteration-3', 'iteration-4') })).toBe(12);
    expect(iteration({ ...rest, task: 'iteration-2', state: state('iteration-12', 'iteration-3', 'iteration-4') })).toBe(12);
    expect(iteration({ ...rest, task: 'iteration-2', state: state('iteration-3', 'iteration-12', 'iteration-4') })).toBe(12);
    expect(iteration({ ...rest, task: 'iteration-2', state: state('iteration-3', 'iteration-4', 'iteration-12') })).toBe(12);
  });

  it('ids that are not iteration-N say nothing: the efficiency files answer', () => {
    const rest = { efficiency: [6], orchestrator: 7 };
    expect(iteration({ ...rest, task: 'task-5', state: queues('feature-5') })).toBe(6);
    expect(iteration({ ...rest, task: 5, state: { tasks: { inProgress: [{ id: 5 }, null, 'iteration-5'] } } })).toBe(6);
    expect(iteration({ ...rest, task: 'iteration-0' })).toBe(6);
    // nor does a list whose only element is such an id (it would read as the id if turned into text)
    expect(iteration({ ...rest, task: ['iteration-9'], state: { tasks: { inProgress: [{ id: ['iteration-9'] }] } } })).toBe(6);
  });

  it('then the highest efficiency-file iteration over orchestrator.json', () => {
    expect(iteration({ efficiency: [6], orchestrator: 7 })).toBe(6);
    expect(iteration({ efficiency: [2, 6, 4], orchestrator: 7 })).toBe(6);
    // files without an iteration field say nothing
    expect(iteration({ efficiency: [undefined, undefined], orchestrator: 7 })).toBe(7);
    expect(iteration({ efficiency: [0], orchestrator: 7 })).toBe(7);
  });

  it('then orchestrator.json\'s currentIteration, else 0', () => {
    expect(iteration({ orchestrator: 7 })).toBe(7);
    expect(iteration({ orchestrator: null })).toBe(0);
    expect(iteration({})).toBe(0);
  });
});

describe('currentAutonomyState: the runner\'s counter only when it describes the current run', () => {
  const state: AutonomyState = { iterationCount: 5 };

  it('without a pid: written no more than NEW_RUN_MARGIN_MS before the latest session_start', () => {
    expect(currentAutonomyState(state, START, undefined, START)).toBe(state);
    expect(currentAutonomyState(state, START - NEW_RUN_MARGIN_MS, undefined, START)).toBe(state);
    expect(currentAutonomyState(state, START - NEW_RUN_MARGIN_MS - 1, undefined, START)).toBeUndefined();
  });

  it('without a session_start or an mtime to compare, it stands', () => {
    expect(currentAutonomyState(state, START - 3_600_000, undefined, undefined)).toBe(state);
    expect(currentAutonomyState(state, undefined, undefined, START)).toBe(state);
    expect(currentAutonomyState(undefined, START, 4242, START)).toBeUndefined();
  });

  it('with a pid and a live runner: that runner\'s, however old; another\'s never', () => {
    const own = { ...state, pid: 4242 };
    expect(currentAutonomyState(own, START - 3_600_000, 4242, START)).toBe(own);
    expect(currentAutonomyState(own, START + 1_000, 5151, START)).toBeUndefined();
    // no live runner known: the mtime decides
    expect(currentAutonomyState(own, START - NEW_RUN_MARGIN_MS - 1, undefined, START)).toBeUndefined();
    expect(currentAutonomyState(own, START, undefined, START)).toBe(own);
    expect(currentAutonomyState({ ...state, pid: null }, START, 5151, START)).toEqual({ ...state, pid: null });
  });
});

describe('agentCounts: which status words mean working now', () => {
  const agent = (status: unknown, i = 0): Agent => ({ tool_id: `toolu_${i}`, status });
  const one = (status: unknown) => agentCounts([agent(status)], {});

  it.each(['active', 'running', 'busy', 'working'])('%j is active', (status) => {
    expect(one(status)).toEqual({ active: 1, total: 1 });
  });

  it.each(['Active', 'RUNNING', ' busy', 'working\n', '\tWorKing '])('%j is active: compared trimmed and case-insensitively', (status) => {
    expect(one(status)).toEqual({ active: 1, total: 1 });
  });

  it.each(['idle', 'done', 'completed', 'failed', 'pending', 'in_progress', 'waiting', 'activ', 'actively', 'inactive', 'run', 'runs', 'work', 'busy-ish', 'not running', 'act ive', ''])(
    '%j is not active (but is an agent)',
    (status) => {
      expect(one(status)).toEqual({ active: 0, total: 1 });
    },
  );

  it.each([null, undefined, 1, true, ['active'], { status: 'active' }])('a status that is not a string (%j) is not active', (status) => {
    expect(one(status)).toEqual({ active: 0, total: 1 });
  });

  it('counts exactly the active agents of a mixed list', () => {
    const statuses = ['active', 'running', 'busy', 'working', 'Active', ' RUNNING ', 'idle', 'activ', 'run', '', null, 'done'];
    expect(agentCounts(statuses.map(agent), {})).toEqual({ active: 6, total: 12 });
  });

  it('agents.json when it lists anyone, else the snapshot\'s agents, else the flat counts', () => {
    const state: DashboardState = { agents: [{ id: 'a', status: 'active' }, { id: 'b', status: 'idle' }, 'x', 3, null], running_agents: 7, total_agents: 9 };
    expect(agentCounts([agent('busy', 1), agent('busy', 2), agent('idle', 3)], state)).toEqual({ active: 2, total: 3 });
    expect(agentCounts([], state)).toEqual({ active: 1, total: 2 });
    expect(agentCounts(undefined, state)).toEqual({ active: 1, total: 2 });
    expect(agentCounts([], { ...state, agents: ['x', 3, []] })).toEqual({ active: 7, total: 9 });
    expect(agentCounts([], { running_agents: 7 })).toEqual({ active: 7, total: 7 });
    expect(agentCounts([], {})).toEqual({ active: 0, total: 0 });
  });
});

describe('taskCounts', () => {
  it('counts each queue of the snapshot\'s tasks, a queue left out as 0', () => {
    expect(taskCounts({ tasks: { pending: [{}, {}], inProgress: [{}], completed: [{}, {}, {}], failed: [{}, {}, {}, {}] } })).toEqual({
      pending: 2,
      in_progress: 1,
      completed: 3,
      failed: 4,
    });
    expect(taskCounts({ tasks: {} })).toEqual({ pending: 0, in_progress: 0, completed: 0, failed: 0 });
  });

  it("reads loki demo's flat counts when there are no queues, absent as 0", () => {
    expect(taskCounts({ pending_tasks: 3, in_progress_tasks: 1, completed_tasks: 5, failed_tasks: 2 })).toEqual({ pending: 3, in_progress: 1, completed: 5, failed: 2 });
    expect(taskCounts({})).toEqual({ pending: 0, in_progress: 0, completed: 0, failed: 0 });
  });
});

describe('budgetState (split out of the collector, issue 20)', () => {
  const base = { file: undefined, defaultLimitUsd: undefined, signal: undefined, sessionStartMs: 1_000, costUsd: 5 };
  it('takes the file limit (limit, then budget_limit); 0 or none falls back to LOKI_BUDGET_LIMIT, then 0', () => {
    expect(budgetState({ ...base, file: { limit: 10, budget_limit: 20 } }).limit).toBe(10);
    expect(budgetState({ ...base, file: { budget_limit: 20 } }).limit).toBe(20);
    expect(budgetState({ ...base, file: { limit: 0 }, defaultLimitUsd: 7 }).limit).toBe(7);
    expect(budgetState({ ...base, file: { limit: null }, defaultLimitUsd: 7 }).limit).toBe(7);
    expect(budgetState({ ...base }).limit).toBe(0);
  });

  it('is exceeded when the file says so, when the cost reaches a positive limit, or when the signal belongs to this session', () => {
    expect(budgetState({ ...base, file: { exceeded: true } }).exceeded).toBe(true);
    expect(budgetState({ ...base, defaultLimitUsd: 5 }).exceeded).toBe(true); // cost 5 >= 5
    expect(budgetState({ ...base, defaultLimitUsd: 5.01 }).exceeded).toBe(false);
    expect(budgetState({ ...base, costUsd: 0, defaultLimitUsd: 0 }).exceeded).toBe(false); // no limit is never reached
    expect(budgetState({ ...base, signal: { atMs: 1_000 } }).exceeded).toBe(true);
    expect(budgetState({ ...base, signal: { atMs: 999 } }).exceeded).toBe(false); // an earlier session's
    expect(budgetState({ ...base, signal: { atMs: undefined } }).exceeded).toBe(false); // of unknown time, after a session start
    expect(budgetState({ ...base, sessionStartMs: undefined, signal: { atMs: undefined } }).exceeded).toBe(true); // no session start known
  });
});

describe('holdAgentCounts (split out of the collector, issue 20)', () => {
  const empty = { active: 0, total: 0 };
  it('reports a non-empty count and holds it; an empty one within holdMs shows the held counts, later or after a clock jump back the empty ones', () => {
    const first = holdAgentCounts({ active: 2, total: 3 }, undefined, 1_000, 10_000);
    expect(first).toEqual({ shown: { active: 2, total: 3 }, held: { active: 2, total: 3, atMs: 1_000 } });
    expect(holdAgentCounts(empty, first.held, 11_000, 10_000).shown).toEqual({ active: 2, total: 3, atMs: 1_000 });
    expect(holdAgentCounts(empty, first.held, 11_001, 10_000).shown).toEqual(empty);
    expect(holdAgentCounts(empty, first.held, 999, 10_000).shown).toEqual(empty);
    expect(holdAgentCounts(empty, undefined, 1_000, 10_000)).toEqual({ shown: empty, held: undefined });
    // An empty read keeps what is held (its time does not move).
    expect(holdAgentCounts(empty, first.held, 5_000, 10_000).held).toBe(first.held);
  });
});
