/**
 * A dead runner's pid reused by a later process (issue 19, item 6): `judgeRunner` asks whether each
 * runner started by the time the state gives (plus START_SLACK_MS), `RunnerProbe` takes that time
 * from the files naming the runner, and on Linux real processes and `/proc` decide. Split from
 * liveness.test.ts.
 */
import { readFileSync } from 'node:fs';
import { mkdir, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createCollector } from '../src/collect.js';
import { judgeRunner, RunnerProbe, START_SLACK_MS, type ProcessFacts } from '../src/liveness.js';
import { FsStateStore } from '../src/stores/fs.js';
import type { FileSetEntryRead, StateReading } from '../src/stores/store.js';
import { cleanTrees, liveHelper, tempDir } from './support/loki-tree.js';
import { fileOf, readingOf } from './support/readings.js';
import { valueOf } from './support/samples.js';
import { alive, LIVE, LIVE2, DEAD2, STOPPED } from './support/pids.js';

const stores: FsStateStore[] = [];
afterEach(async () => {
  for (const store of stores.splice(0)) store.close();
  await cleanTrees();
});

const facts = (runners: ProcessFacts['runners'], helpers: number[] = []): ProcessFacts => ({ runners, helpers });
const pidEntry = (fields: Record<string, unknown>) => JSON.stringify({ label: 'x', ...fields });

describe('judgeRunner asks whether each runner started by the time the state gives, plus START_SLACK_MS', () => {
  it('passes runningByMs + START_SLACK_MS for runners, nothing for runners without a time or for helpers', () => {
    const asked: [number, number | undefined][] = [];
    const isAlive = (pid: number, startedByMs?: number) => (asked.push([pid, startedByMs]), false);
    judgeRunner(facts([{ pid: LIVE, startedMs: 5, runningByMs: 7_000 }, { pid: LIVE2 }], [DEAD2]), isAlive, false, 'auto');
    expect(asked).toEqual([
      [LIVE, 7_000 + START_SLACK_MS],
      [LIVE2, undefined],
      [DEAD2, undefined],
    ]);
  });

  it('a runner the start check rejects is dead: stopped where the namespace is visible', () => {
    // LIVE answers signal 0, but started after 1_000 + slack
    const startedAt = 1_000 + START_SLACK_MS + 1;
    const isAlive = (pid: number, startedByMs?: number) => alive(pid) && (startedByMs === undefined || startedAt <= startedByMs);
    expect(judgeRunner(facts([{ pid: LIVE, startedMs: 1_000, runningByMs: 1_000 }]), isAlive, true, 'auto')).toEqual(STOPPED);
    expect(judgeRunner(facts([{ pid: LIVE, startedMs: 1_000, runningByMs: 1_001 }]), isAlive, true, 'auto')).toMatchObject({ alive: true, pid: LIVE });
  });
});

describe('RunnerProbe: by when the state says each runner was running', () => {
  const T = Date.parse('2026-02-14T09:30:00Z');
  /** Probes `base` with `pids/` entries; returns what each pid was asked with, and the verdict. */
  function probeAsking(base: StateReading, entries: FileSetEntryRead[] = []) {
    const asked = new Map<number, number | undefined>();
    const reading: StateReading = {
      ...base,
      ...(entries.length > 0 ? { pids: { present: true, files: entries } } : {}),
      isProcessAlive: (pid, startedByMs) => (asked.set(pid, startedByMs), true),
      hostPidNamespace: true,
    };
    const { verdict } = new RunnerProbe('auto', () => undefined).probe(reading);
    return { asked, verdict };
  }
  const entry = (pid: number, startedMs?: number) => ({ name: `${pid}.json`, ...fileOf({ pid, kind: 'wrapper', ...(startedMs !== undefined ? { started: startedMs / 1000 } : {}) }) });
  const local = { isProcessAlive: () => true, hostPidNamespace: true };
  const pidFile = (pid: number, mtimeMs: number) => readingOf({ documents: { 'loki.pid': { content: `${pid}\n`, mtimeMs } }, processes: local });

  it('loki.pid: its mtime; a session_start naming another pid (a weak witness): its time', () => {
    const base = readingOf({
      documents: { 'loki.pid': { content: `${LIVE}\n`, mtimeMs: T } },
      events: { present: true, lines: 1, sessionStartMs: T + 9_000, sessionPid: LIVE2 },
      processes: local,
    });
    expect(probeAsking(base).asked).toEqual(new Map([[LIVE, T + START_SLACK_MS], [LIVE2, T + 9_000 + START_SLACK_MS]]));
  });

  it('named by a registry entry and a pid file: the later of the two times (an older file may be about an earlier holder of the pid)', () => {
    for (const [started, mtime] of [[T, T + 60_000], [T + 60_000, T]] as const) {
      const { asked, verdict } = probeAsking(pidFile(LIVE, mtime), [entry(LIVE, started)]);
      expect(asked.get(LIVE)).toBe(T + 60_000 + START_SLACK_MS);
      // the session still starts at the registry's own start
      expect(verdict).toEqual({ decided: true, alive: true, pid: LIVE, startedMs: started });
    }
  });

  it('a registry entry without `started` adds no time: the pid file\'s counts, and with none signal 0 alone decides', () => {
    expect([...probeAsking(pidFile(LIVE, T), [entry(LIVE)]).asked]).toEqual([[LIVE, T + START_SLACK_MS]]);
    expect([...probeAsking(readingOf({ processes: local }), [entry(LIVE)]).asked]).toEqual([[LIVE, undefined]]);
  });

  it('a pid file without a modification time adds none: the registry entry\'s `started` counts', () => {
    const unstamped = readingOf({ documents: { 'loki.pid': { content: `${LIVE}\n` } }, processes: local });
    const { asked, verdict } = probeAsking(unstamped, [entry(LIVE, T)]);
    expect([...asked]).toEqual([[LIVE, T + START_SLACK_MS]]);
    expect(verdict).toEqual({ decided: true, alive: true, pid: LIVE, startedMs: T });
  });
});

/**
 * Real processes, real `/proc`, scraped through the collector: a pid that a process started after
 * the runner's files were written now holds is not the runner. Where there is no `/proc` (macOS)
 * signal 0 alone decides, as before.
 */
describe.runIf(process.platform === 'linux')('a dead runner\'s pid reused by a later process (issue 19, item 6)', () => {
  /** A tree naming `pid` as its runner, with a fresh dashboard-state.json (the heartbeat alone would say running). */
  async function treeNaming(pid: number, files: { pidFileMtimeMs?: number; wrapperStartedMs?: number; sessionStartMs?: number }): Promise<string> {
    const dir = join(await tempDir(), '.loki');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'dashboard-state.json'), JSON.stringify({ mode: 'autonomous' }));
    if (files.pidFileMtimeMs !== undefined) {
      await writeFile(join(dir, 'loki.pid'), `${pid}\n`);
      await utimes(join(dir, 'loki.pid'), files.pidFileMtimeMs / 1000, files.pidFileMtimeMs / 1000);
    }
    if (files.wrapperStartedMs !== undefined) {
      await mkdir(join(dir, 'pids'));
      await writeFile(join(dir, 'pids', `${pid}.json`), pidEntry({ pid, kind: 'wrapper', started: new Date(files.wrapperStartedMs).toISOString() }));
    }
    if (files.sessionStartMs !== undefined) {
      const line = { timestamp: new Date(files.sessionStartMs).toISOString(), type: 'session_start', data: { pid } };
      await writeFile(join(dir, 'events.jsonl'), `${JSON.stringify(line)}\n`);
    }
    return dir;
  }

  async function sessionStatus(dir: string): Promise<number | undefined> {
    const store = new FsStateStore(dir, { watch: false, hostPidNamespace: true });
    stores.push(store);
    const collector = createCollector({ maxIterations: 1000, heartbeatWindowMs: 30_000, agentsHoldMs: 10_000, version: '9.9.9', log: () => undefined });
    return valueOf(collector.collect(await store.read(), Date.now()), 'loki_session_status');
  }

  /** Whole seconds, as `started` and event timestamps are written. */
  const second = (ms: number) => Math.floor(ms / 1000) * 1000;

  /**
   * A live process, and when /proc says it started, read here rather than by the code under test:
   * boot time (`btime`, s) + field 22 of its stat line (ticks since boot, 100 a second).
   */
  function newProcess(): { pid: number; startMs: number } {
    const pid = liveHelper();
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    const ticks = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
    const btime = Number(/^btime (\d+)$/m.exec(readFileSync('/proc/stat', 'latin1'))![1]);
    return { pid, startMs: btime * 1000 + ticks * 10 };
  }

  it('loki.pid written a minute before its pid\'s process started: stopped; written after: running', async () => {
    const { pid, startMs } = newProcess();
    expect(await sessionStatus(await treeNaming(pid, { pidFileMtimeMs: startMs - 60_000 }))).toBe(0);
    expect(await sessionStatus(await treeNaming(pid, { pidFileMtimeMs: startMs + 1_000 }))).toBe(1);
  });

  it('a pids/ wrapper entry started a minute before its pid\'s process: stopped; started with it: running', async () => {
    const { pid, startMs } = newProcess();
    expect(await sessionStatus(await treeNaming(pid, { wrapperStartedMs: second(startMs - 60_000) }))).toBe(0);
    expect(await sessionStatus(await treeNaming(pid, { wrapperStartedMs: second(startMs) }))).toBe(1);
  });

  it('a stale wrapper entry next to a loki.pid written after the process started: running (the later time counts)', async () => {
    const { pid, startMs } = newProcess();
    expect(await sessionStatus(await treeNaming(pid, { wrapperStartedMs: startMs - 60_000, pidFileMtimeMs: startMs + 1_000 }))).toBe(1);
    expect(await sessionStatus(await treeNaming(pid, { wrapperStartedMs: startMs - 60_000, pidFileMtimeMs: startMs - 60_000 }))).toBe(0);
  });

  it(`allows a start up to START_SLACK_MS (${START_SLACK_MS} ms) after the state's time, not more`, async () => {
    const { pid, startMs } = newProcess();
    expect(await sessionStatus(await treeNaming(pid, { pidFileMtimeMs: startMs - START_SLACK_MS + 500 }))).toBe(1);
    expect(await sessionStatus(await treeNaming(pid, { pidFileMtimeMs: startMs - START_SLACK_MS - 500 }))).toBe(0);
  });

  it('5.4x after a clean exit (no loki.pid): a session_start naming a pid a later process holds says the runner is gone', async () => {
    const { pid, startMs } = newProcess();
    // Before: a live pid named only by the event proved nothing, and the fresh heartbeat said running.
    expect(await sessionStatus(await treeNaming(pid, { sessionStartMs: second(startMs - 60_000) }))).toBe(0);
    // Its own runner, alive: still only a weak witness; the heartbeat decides.
    expect(await sessionStatus(await treeNaming(pid, { sessionStartMs: second(startMs + 1_000) }))).toBe(1);
  });

});
