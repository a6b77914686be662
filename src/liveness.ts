/**
 * Whether the session's runner is alive, decided the same way wherever the processes can be seen
 * (the exporter next to Loki Mode, or the sync client for the Worker).
 *
 * The runner is the process in `loki.pid` (or `sessions/<id>/loki.pid`), in 9.x a `pids/` entry of
 * kind `wrapper` (or `runner`, which upstream's dashboard also counts), or the pid the latest
 * `session_start` names in `data.pid`. When this side sees the runner's pid namespace, the pids decide: a dead
 * runner is stopped however fresh `dashboard-state.json` is (the status monitor survives a SIGKILL
 * of the runner and keeps rewriting it). When it cannot (a container reading a mounted `.loki`),
 * the heartbeat decides, as before. `LOKI_LIVENESS` chooses: `auto` (default) sees the namespace
 * when the exporter is in the host's pid namespace or any pid the state names is alive; `pid`
 * always trusts the pids; `heartbeat` never does. Where the platform shows when a process started
 * (Linux `/proc`), a live process that started after the state says the runner was already running
 * is not the runner but another program that got its pid after it died: dead.
 */
import { readPidEntry, startedMs, type PidEntry } from './schemas/pid-entry.js';
import { readPidFile } from './schemas/pid.js';
import type { SourceStatus } from './snapshot.js';
import { FileSetCollector, type Slicer } from './file-set-collector.js';
import { SourceTracker, type Log } from './source-tracker.js';
import type { RunnerVerdict, StateReading } from './stores/store.js';

export const LIVENESS_MODES = ['auto', 'pid', 'heartbeat'] as const;
export type LivenessMode = (typeof LIVENESS_MODES)[number];

/** A process the state names as a runner, with when it started (ms) where known. */
export interface RunnerCandidate {
  readonly pid: number;
  readonly startedMs?: number;
  /**
   * By when the state says this process was running: the latest of the times the files naming it
   * give (a `pids/` entry's `started`, a pid file's mtime; for a weak witness its `session_start`).
   * Each is written after the process started. A live process with this pid that started later
   * (beyond START_SLACK_MS) got the number after the runner died. Absent when no file gives a time.
   */
  readonly runningByMs?: number;
  /**
   * Named only by an event (the latest `session_start`), not by a pid file: it can tell that the
   * runner is gone, but a live process with that pid after the pid file went away may be another
   * program that reused the number, so alone it does not prove the runner alive.
   */
  readonly weak?: boolean;
}

/**
 * How much later than `runningByMs` a process may have started and still be the runner: `/proc`'s
 * boot time is whole seconds, a registry's `started` may be too, and some filesystems keep mtimes
 * in whole seconds (or two). Only a runner that died within this long of its start could have its
 * pid taken over unseen.
 */
export const START_SLACK_MS = 5_000;

export interface ProcessFacts {
  readonly runners: readonly RunnerCandidate[];
  /** Registered helpers (status monitor, resource monitor): alive ones prove we see the namespace. */
  readonly helpers: readonly number[];
}

/**
 * The rule, pure. `decided` is false when the pids cannot decide (the namespace is not visible, or
 * the state names no runner under `auto`): the caller then falls back to the heartbeat.
 */
export function judgeRunner(
  facts: ProcessFacts,
  isAlive: (pid: number, startedByMs?: number) => boolean,
  hostPidNamespace: boolean,
  mode: LivenessMode,
): RunnerVerdict {
  if (mode === 'heartbeat') return { decided: false, alive: false };
  const runs = (runner: RunnerCandidate) => isAlive(runner.pid, runner.runningByMs === undefined ? undefined : runner.runningByMs + START_SLACK_MS);
  const alive = facts.runners.filter(runs);
  const live = mode === 'pid' ? alive : alive.filter((runner) => !runner.weak);
  const visible = mode === 'pid' || hostPidNamespace || live.length > 0 || facts.helpers.some((pid) => isAlive(pid));
  // `pid` mode: no runner named means none is running. `auto`: a tree without any pid file (an
  // odd layout, a hand-made demo), or whose only live runner is a weak witness, keeps the heartbeat.
  const onlyWeakAlive = live.length === 0 && alive.length > 0;
  const decided = visible && (mode === 'pid' || (facts.runners.length > 0 && !onlyWeakAlive));
  if (!decided) return { decided: false, alive: false };
  // Several live runners (sessions side by side): the newest one is the current session.
  let newest: RunnerCandidate | undefined;
  for (const runner of live) if (!newest || (runner.startedMs ?? -Infinity) > (newest.startedMs ?? -Infinity)) newest = runner;
  return {
    decided: true,
    alive: newest !== undefined,
    ...(newest !== undefined ? { pid: newest.pid } : {}),
    ...(newest?.startedMs !== undefined ? { startedMs: newest.startedMs } : {}),
  };
}

/**
 * Runners and helpers probed at most: the newest by start (a registry of 80,000 stale entries must
 * not cost 80,000 signals per refresh, nor stall another project's scrape).
 */
export const MAX_CANDIDATES = 32;

export interface RunnerProbeResult {
  readonly verdict: RunnerVerdict;
  /** `loki.pid`, `pids`, `sessions` as sources. */
  readonly sources: readonly SourceStatus[];
}

/**
 * Tracks the files that name the runner's processes and judges liveness from them. Used by the
 * collector and by the sync client, so the Worker receives the verdict a local exporter would make.
 */
export class RunnerProbe {
  readonly #pidFile: SourceTracker<number>;
  readonly #pids: FileSetCollector<PidEntry>;
  readonly #sessions: FileSetCollector<number>;
  readonly #mode: LivenessMode;

  /** The candidates, kept while the files naming them are unchanged (the collectors keep their values' identity). */
  #memo: { inputs: readonly unknown[]; facts: ProcessFacts } | undefined;

  constructor(mode: LivenessMode, log: Log) {
    this.#mode = mode;
    this.#pidFile = new SourceTracker('loki.pid', readPidFile, log);
    this.#pids = new FileSetCollector('pids', readPidEntry, log);
    this.#sessions = new FileSetCollector('sessions', readPidFile, log);
  }

  /** Parses new `pids/` and `sessions/` entries in slices ahead of `probe` (FileSetCollector.prepare). */
  async prepare(reading: StateReading, slicer: Slicer): Promise<void> {
    await this.#pids.prepare(reading.pids, slicer);
    await this.#sessions.prepare(reading.sessions, slicer);
  }

  probe(reading: StateReading): RunnerProbeResult {
    const pidFile = this.#pidFile.update(reading.documents['loki.pid']);
    const pids = this.#pids.update(reading.pids);
    const sessions = this.#sessions.update(reading.sessions);
    const sources = [pidFile.status, pids.status, sessions.status];
    // Synced state: the verdict was made where the processes are.
    if (reading.runner) return { verdict: reading.runner, sources };

    const facts = this.#facts(reading, pids.values, pidFile.value, sessions.values);
    const verdict = judgeRunner(facts, (pid, startedByMs) => reading.isProcessAlive(pid, startedByMs), reading.hostPidNamespace, this.#mode);
    return { verdict, sources };
  }

  /** Who may be the runner, from the files naming processes: linear, memoised, capped. */
  #facts(reading: StateReading, pidValues: readonly { name: string; value: PidEntry }[], pidFile: number | undefined, sessionValues: readonly { name: string; value: number }[]): ProcessFacts {
    const inputs = [pidValues, pidFile, reading.documents['loki.pid'].mtimeMs, sessionValues, reading.sessions.files, reading.events.sessionPid, reading.events.sessionStartMs];
    if (this.#memo && this.#memo.inputs.every((input, i) => input === inputs[i])) return this.#memo.facts;
    const runners = new Map<number, RunnerCandidate>();
    const helpers: { pid: number; startedMs?: number }[] = [];
    const add = (pid: number, at: number | undefined) => {
      const known = runners.get(pid);
      // The same runner named twice: the first start known wins (the registry's over a file's mtime);
      // it was running by the latest time given (an older file may speak of an earlier holder of the pid).
      const startedMs = known?.startedMs ?? at;
      const runningByMs = latest(known?.runningByMs, at);
      runners.set(pid, { pid, ...(startedMs !== undefined ? { startedMs } : {}), ...(runningByMs !== undefined ? { runningByMs } : {}) });
    };
    // `pids/` first: its `started` is the process's own; a pid file's mtime is when it was written.
    for (const { value } of pidValues) {
      if (value.kind === 'wrapper' || value.kind === 'runner') add(value.pid, startedMs(value));
      else helpers.push({ pid: value.pid, ...(startedMs(value) !== undefined ? { startedMs: startedMs(value)! } : {}) });
    }
    if (pidFile !== undefined) add(pidFile, reading.documents['loki.pid'].mtimeMs);
    const sessionFiles = new Map(reading.sessions.files.map((f) => [f.name, f.mtimeMs]));
    for (const { name, value } of sessionValues) add(value, sessionFiles.get(name));
    // The latest session_start names its runner: after a clean exit (5.4x removes loki.pid and has
    // no registry) it is what tells that the runner is gone.
    const named = reading.events.sessionPid;
    if (named !== undefined && !runners.has(named)) {
      const at = reading.events.sessionStartMs;
      runners.set(named, { pid: named, weak: true, ...(at !== undefined ? { startedMs: at, runningByMs: at } : {}) });
    }
    const newestFirst = (a: { startedMs?: number }, b: { startedMs?: number }) => (b.startedMs ?? -Infinity) - (a.startedMs ?? -Infinity);
    const candidates = [...runners.values()];
    const kept = candidates.length > MAX_CANDIDATES ? candidates.sort(newestFirst).slice(0, MAX_CANDIDATES) : candidates;
    const newestHelpers = helpers.length > MAX_CANDIDATES ? helpers.sort(newestFirst).slice(0, MAX_CANDIDATES) : helpers;
    const facts = { runners: kept, helpers: newestHelpers.map((h) => h.pid) };
    this.#memo = { inputs, facts };
    return facts;
  }
}

const latest = (a: number | undefined, b: number | undefined) => (a === undefined ? b : b === undefined ? a : Math.max(a, b));
