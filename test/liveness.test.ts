/**
 * Runner liveness: the pure rule (`judgeRunner`) with a stated set of live pids, and `RunnerProbe`
 * over real `.loki` trees read through the real fs store, with real pids (this process is alive; an
 * exited child is dead). On Linux a live process counts only if it started before the state says its
 * runner was running, so the trees here are dated after this process started.
 */
import { mkdir, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { judgeRunner, LIVENESS_MODES, RunnerProbe, type LivenessMode, type ProcessFacts } from '../src/liveness.js';
import { FsStateStore } from '../src/stores/fs.js';
import type { RunnerVerdict, StateReading } from '../src/stores/store.js';
import { cleanTrees, deadPid, tempDir } from './support/loki-tree.js';
import { fileOf, readingOf } from './support/readings.js';
import { alive, LIVE, LIVE2, DEAD, DEAD2, NOT_DECIDED, STOPPED } from './support/pids.js';

const stores: FsStateStore[] = [];
afterEach(async () => {
  for (const store of stores.splice(0)) store.close();
  await cleanTrees();
});

// ---- the rule ------------------------------------------------------------------------------------


const facts = (runners: ProcessFacts['runners'], helpers: number[] = []): ProcessFacts => ({ runners, helpers });

describe('judgeRunner', () => {
  it('never decides in heartbeat mode, whatever the pids say', () => {
    for (const host of [true, false]) {
      expect(judgeRunner(facts([{ pid: LIVE, startedMs: 5 }], [LIVE2]), alive, host, 'heartbeat')).toEqual(NOT_DECIDED);
      expect(judgeRunner(facts([{ pid: DEAD }]), alive, host, 'heartbeat')).toEqual(NOT_DECIDED);
      expect(judgeRunner(facts([]), alive, host, 'heartbeat')).toEqual(NOT_DECIDED);
    }
  });

  it('always decides in pid mode: a named runner by its pid, no runner named means none is running', () => {
    for (const host of [true, false]) {
      expect(judgeRunner(facts([]), alive, host, 'pid')).toEqual(STOPPED);
      expect(judgeRunner(facts([], [LIVE]), alive, host, 'pid')).toEqual(STOPPED);
      expect(judgeRunner(facts([{ pid: DEAD, startedMs: 5 }]), alive, host, 'pid')).toEqual(STOPPED);
      expect(judgeRunner(facts([{ pid: LIVE, startedMs: 5 }]), alive, host, 'pid')).toEqual({ decided: true, alive: true, pid: LIVE, startedMs: 5 });
    }
  });

  describe('auto', () => {
    it('decides in the host pid namespace: a dead runner is stopped', () => {
      expect(judgeRunner(facts([{ pid: DEAD }]), alive, true, 'auto')).toEqual(STOPPED);
      expect(judgeRunner(facts([{ pid: LIVE }]), alive, true, 'auto')).toEqual({ decided: true, alive: true, pid: LIVE });
    });

    it('does not decide when the state names no runner at all, even in the host namespace', () => {
      expect(judgeRunner(facts([]), alive, true, 'auto')).toEqual(NOT_DECIDED);
      expect(judgeRunner(facts([], [LIVE]), alive, true, 'auto')).toEqual(NOT_DECIDED);
      expect(judgeRunner(facts([]), alive, false, 'auto')).toEqual(NOT_DECIDED);
      expect(judgeRunner(facts([], [LIVE]), alive, false, 'auto')).toEqual(NOT_DECIDED);
    });

    it('in a container, decides only when some runner or registered helper is alive', () => {
      // Nothing named is alive: the pids may be the host's, so the heartbeat decides.
      expect(judgeRunner(facts([{ pid: DEAD }]), alive, false, 'auto')).toEqual(NOT_DECIDED);
      expect(judgeRunner(facts([{ pid: DEAD }], [DEAD2]), alive, false, 'auto')).toEqual(NOT_DECIDED);
      // A live runner proves the namespace is visible.
      expect(judgeRunner(facts([{ pid: LIVE, startedMs: 7 }]), alive, false, 'auto')).toEqual({ decided: true, alive: true, pid: LIVE, startedMs: 7 });
    });

    it('in a container, a dead runner next to a live helper is stopped (the runner was SIGKILLed)', () => {
      expect(judgeRunner(facts([{ pid: DEAD, startedMs: 7 }], [DEAD2, LIVE]), alive, false, 'auto')).toEqual(STOPPED);
    });

    it('judges by the live runners when some are dead', () => {
      expect(judgeRunner(facts([{ pid: DEAD, startedMs: 9 }, { pid: LIVE, startedMs: 3 }]), alive, false, 'auto')).toEqual({
        decided: true,
        alive: true,
        pid: LIVE,
        startedMs: 3,
      });
    });
  });

  it('reports the newest of several live runners, whatever their order', () => {
    const older = { pid: LIVE, startedMs: 1_000 };
    const newer = { pid: LIVE2, startedMs: 2_000 };
    const deadNewest = { pid: DEAD, startedMs: 3_000 };
    for (const mode of ['auto', 'pid'] as const) {
      expect(judgeRunner(facts([older, newer, deadNewest]), alive, true, mode)).toEqual({ decided: true, alive: true, ...newer });
      expect(judgeRunner(facts([deadNewest, newer, older]), alive, true, mode)).toEqual({ decided: true, alive: true, ...newer });
    }
    // A runner whose start is unknown loses to one whose start is known.
    expect(judgeRunner(facts([{ pid: LIVE }, older]), alive, true, 'auto')).toEqual({ decided: true, alive: true, ...older });
    expect(judgeRunner(facts([older, { pid: LIVE2 }]), alive, true, 'auto')).toEqual({ decided: true, alive: true, ...older });
  });

  it('asks only about the named pids', () => {
    const asked = new Set<number>();
    judgeRunner(facts([{ pid: DEAD }], [DEAD2, LIVE]), (pid) => (asked.add(pid), alive(pid)), false, 'auto');
    expect([...asked].every((pid) => [DEAD, DEAD2, LIVE].includes(pid))).toBe(true);
    expect(asked.has(DEAD)).toBe(true);
  });

  it('knows exactly the three modes', () => {
    expect([...LIVENESS_MODES].sort()).toEqual(['auto', 'heartbeat', 'pid']);
  });
});

// ---- the probe over real trees --------------------------------------------------------------------

/** When the trees' runners wrote `loki.pid`: now (whole seconds), after this process and its parent started. */
const T_PID_FILE = Math.floor(Date.now() / 1000) * 1000;
/** A registry entry's `started`, 90 minutes after that. */
const T_STARTED = new Date(T_PID_FILE + 90 * 60_000).toISOString().replace('.000Z', 'Z');
const DEAD_PID = deadPid();

interface Tree {
  /** Content of `loki.pid`, and its mtime (ms). */
  pidFile?: { text: string; mtimeMs?: number };
  /** `pids/<name>` → content (JSON text). */
  pids?: Record<string, string>;
  /** `sessions/<id>/loki.pid` → pid, and the file's mtime (ms). */
  sessions?: Record<string, { pid: number; mtimeMs?: number }>;
}

async function tree(spec: Tree): Promise<string> {
  const dir = join(await tempDir(), '.loki');
  await mkdir(dir, { recursive: true });
  if (spec.pidFile) {
    await writeFile(join(dir, 'loki.pid'), spec.pidFile.text);
    if (spec.pidFile.mtimeMs !== undefined) await utimes(join(dir, 'loki.pid'), spec.pidFile.mtimeMs / 1000, spec.pidFile.mtimeMs / 1000);
  }
  if (spec.pids) {
    await mkdir(join(dir, 'pids'));
    for (const [name, text] of Object.entries(spec.pids)) await writeFile(join(dir, 'pids', name), text);
  }
  for (const [id, { pid, mtimeMs }] of Object.entries(spec.sessions ?? {})) {
    const path = join(dir, 'sessions', id, 'loki.pid');
    await mkdir(join(dir, 'sessions', id), { recursive: true });
    await writeFile(path, `${pid}\n`);
    if (mtimeMs !== undefined) await utimes(path, mtimeMs / 1000, mtimeMs / 1000);
  }
  return dir;
}

async function reading(dir: string, hostPidNamespace: boolean): Promise<StateReading> {
  const store = new FsStateStore(dir, { watch: false, hostPidNamespace });
  stores.push(store);
  return store.read();
}

const pidEntry = (fields: Record<string, unknown>) => JSON.stringify({ label: 'x', ...fields });

async function probe(spec: Tree, hostPidNamespace: boolean, mode: LivenessMode = 'auto') {
  const logs: string[] = [];
  const result = new RunnerProbe(mode, (line) => logs.push(line)).probe(await reading(await tree(spec), hostPidNamespace));
  return { ...result, logs };
}

describe('RunnerProbe', () => {
  it('sanity: this process is alive, the exited child is not', async () => {
    const r = await reading(await tree({}), false);
    expect(r.isProcessAlive(process.pid)).toBe(true);
    expect(r.isProcessAlive(DEAD_PID)).toBe(false);
  });

  it('returns the three sources loki.pid, pids, sessions', async () => {
    const { sources } = await probe({ pidFile: { text: `${process.pid}\n` } }, true);
    expect(sources.map((s) => s.source)).toEqual(['loki.pid', 'pids', 'sessions']);
    expect(sources.every((s) => s.ok)).toBe(true);
    expect(sources.map((s) => s.present)).toEqual([true, false, false]);
  });

  it('takes a live loki.pid runner, started when the file was written (its mtime)', async () => {
    for (const host of [true, false]) {
      const { verdict } = await probe({ pidFile: { text: `${process.pid}\n`, mtimeMs: T_PID_FILE } }, host);
      expect(verdict).toEqual({ decided: true, alive: true, pid: process.pid, startedMs: T_PID_FILE });
    }
  });

  it('a dead loki.pid runner: stopped in the host namespace, undecided in a container with nothing alive', async () => {
    const spec: Tree = { pidFile: { text: `${DEAD_PID}\n`, mtimeMs: T_PID_FILE } };
    expect((await probe(spec, true)).verdict).toEqual(STOPPED);
    expect((await probe(spec, false)).verdict).toEqual(NOT_DECIDED);
    expect((await probe(spec, false, 'pid')).verdict).toEqual(STOPPED);
    expect((await probe({ pidFile: { text: `${process.pid}\n` } }, true, 'heartbeat')).verdict).toEqual(NOT_DECIDED);
  });

  it('in a container, a dead runner next to a live registered helper is stopped', async () => {
    const { verdict } = await probe(
      {
        pidFile: { text: `${DEAD_PID}\n`, mtimeMs: T_PID_FILE },
        pids: {
          [`${DEAD_PID}.json`]: pidEntry({ pid: DEAD_PID, kind: 'wrapper', started: T_STARTED }),
          // The status monitor survives the runner's SIGKILL.
          [`${process.pid}.json`]: pidEntry({ pid: process.pid, ppid: DEAD_PID, started: T_STARTED }),
        },
      },
      false,
    );
    expect(verdict).toEqual(STOPPED);
  });

  it('takes the wrapper entry\'s own start (ISO text) over the mtime of a loki.pid naming the same pid', async () => {
    const { verdict } = await probe(
      {
        pidFile: { text: `${process.pid}\n`, mtimeMs: T_PID_FILE },
        pids: { [`${process.pid}.json`]: pidEntry({ pid: process.pid, kind: 'wrapper', started: T_STARTED }) },
      },
      false,
    );
    expect(verdict).toEqual({ decided: true, alive: true, pid: process.pid, startedMs: Date.parse(T_STARTED) });
  });

  it('takes an entry of kind runner as a runner too (upstream counts both)', async () => {
    const { verdict } = await probe({ pids: { 'r.json': pidEntry({ pid: process.pid, kind: 'runner', started: T_STARTED }) } }, false);
    expect(verdict).toEqual({ decided: true, alive: true, pid: process.pid, startedMs: Date.parse(T_STARTED) });
  });

  it('takes the mtime of a loki.pid naming a wrapper whose entry has no start', async () => {
    const { verdict } = await probe(
      {
        pidFile: { text: `${process.pid}\n`, mtimeMs: T_PID_FILE },
        pids: { [`${process.pid}.json`]: pidEntry({ pid: process.pid, kind: 'wrapper' }) },
      },
      false,
    );
    expect(verdict).toEqual({ decided: true, alive: true, pid: process.pid, startedMs: T_PID_FILE });
  });

  it('reads a wrapper entry\'s numeric start as epoch seconds', async () => {
    const seconds = Date.parse(T_STARTED) / 1000;
    const { verdict } = await probe({ pids: { 'w.json': pidEntry({ pid: process.pid, kind: 'wrapper', started: seconds }) } }, false);
    expect(verdict).toEqual({ decided: true, alive: true, pid: process.pid, startedMs: seconds * 1000 });
  });

  it('a live helper alone names no runner: undecided under auto, stopped under pid', async () => {
    const helperOnly = await probe({ pids: { 'h.json': pidEntry({ pid: process.pid, started: T_STARTED }) } }, true);
    expect(helperOnly.verdict).toEqual(NOT_DECIDED); // auto, no runner named
    const helperOnlyPid = await probe({ pids: { 'h.json': pidEntry({ pid: process.pid, kind: 'monitor' }) } }, true, 'pid');
    expect(helperOnlyPid.verdict).toEqual(STOPPED);
  });

  it('reports a bad pids/ entry as a bad source and does not use it', async () => {
    const { verdict, sources, logs } = await probe(
      {
        pidFile: { text: `${DEAD_PID}\n`, mtimeMs: T_PID_FILE },
        // Would name a live wrapper, but its `started` is not a timestamp: the entry is rejected.
        pids: { [`${process.pid}.json`]: pidEntry({ pid: process.pid, kind: 'wrapper', started: 'yesterday' }) },
      },
      false,
    );
    // Had the entry been used, the live wrapper would have decided "alive".
    expect(verdict).toEqual(NOT_DECIDED);
    const pids = sources.find((s) => s.source === 'pids');
    expect(pids).toMatchObject({ ok: false, present: true });
    expect(pids?.problem).toContain(`${process.pid}.json`);
    expect(sources.find((s) => s.source === 'loki.pid')?.ok).toBe(true);
    expect(logs.some((line) => line.includes(`pids/${process.pid}.json`))).toBe(true);
  });

  it('reports a bad loki.pid as a bad source', async () => {
    const { verdict, sources } = await probe({ pidFile: { text: 'garbage\n' } }, true);
    expect(sources[0]).toMatchObject({ source: 'loki.pid', ok: false, present: true });
    expect(verdict).toEqual(NOT_DECIDED); // no runner named
  });

  it('takes runners from sessions/<id>/loki.pid, started at that file\'s mtime', async () => {
    const { verdict } = await probe(
      {
        sessions: {
          old: { pid: DEAD_PID, mtimeMs: T_PID_FILE + 60_000 },
          live: { pid: process.pid, mtimeMs: T_PID_FILE },
        },
      },
      false,
    );
    expect(verdict).toEqual({ decided: true, alive: true, pid: process.pid, startedMs: T_PID_FILE });
  });

  it('reports the newest of several live runners', async () => {
    // Two live processes: this one and its parent (the test runner).
    const parent = process.ppid;
    const newer = T_PID_FILE + 3_600_000;
    const spec = (mine: number, theirs: number): Tree => ({
      pidFile: { text: `${process.pid}\n`, mtimeMs: mine },
      sessions: { other: { pid: parent, mtimeMs: theirs } },
    });
    const r1 = await probe(spec(T_PID_FILE, newer), false);
    expect(r1.verdict).toEqual({ decided: true, alive: true, pid: parent, startedMs: newer });
    const r2 = await probe(spec(newer, T_PID_FILE), false);
    expect(r2.verdict).toEqual({ decided: true, alive: true, pid: process.pid, startedMs: newer });
  });

  it('returns a synced reading\'s verdict unchanged, whatever the pids here say', async () => {
    const dir = await tree({ pidFile: { text: `${process.pid}\n`, mtimeMs: T_PID_FILE } });
    const local = await reading(dir, true);
    for (const runner of [STOPPED, NOT_DECIDED, { decided: true, alive: true, pid: 4242, startedMs: 1 }] as RunnerVerdict[]) {
      const result = new RunnerProbe('auto', () => undefined).probe({ ...local, runner });
      expect(result.verdict).toBe(runner);
      expect(result.sources.map((s) => s.source)).toEqual(['loki.pid', 'pids', 'sessions']);
    }
    // Even in pid mode, where the local pids would decide otherwise.
    expect(new RunnerProbe('pid', () => undefined).probe({ ...local, runner: STOPPED }).verdict).toBe(STOPPED);
  });

  it('follows the files across probes: a runner that exits, and a new one that starts', async () => {
    const dir = await tree({ pidFile: { text: `${process.pid}\n`, mtimeMs: T_PID_FILE } });
    const store = new FsStateStore(dir, { watch: false, hostPidNamespace: true });
    stores.push(store);
    const runner = new RunnerProbe('auto', () => undefined);
    expect(runner.probe(await store.read()).verdict).toMatchObject({ decided: true, alive: true, pid: process.pid });
    await writeFile(join(dir, 'loki.pid'), `${DEAD_PID}\n`);
    expect(runner.probe(await store.read()).verdict).toEqual(STOPPED);
    await mkdir(join(dir, 'pids'));
    await writeFile(join(dir, 'pids', 'w.json'), pidEntry({ pid: process.pid, kind: 'wrapper', started: T_STARTED }));
    expect(runner.probe(await store.read()).verdict).toEqual({ decided: true, alive: true, pid: process.pid, startedMs: Date.parse(T_STARTED) });
  });
});

describe('a runner named only by the latest session_start (a weak witness)', () => {
  const weak = (pid: number) => ({ pid, weak: true, startedMs: 1_000 });
  it('tells that the runner is gone, where the namespace is visible', () => {
    expect(judgeRunner({ runners: [weak(DEAD)], helpers: [] }, alive, true, 'auto')).toEqual({ decided: true, alive: false });
  });

  it('alone does not prove the runner alive (its pid may have been reused): the heartbeat decides', () => {
    expect(judgeRunner({ runners: [weak(LIVE)], helpers: [] }, alive, true, 'auto')).toEqual({ decided: false, alive: false });
    // `pid` mode trusts it
    expect(judgeRunner({ runners: [weak(LIVE)], helpers: [] }, alive, true, 'pid')).toMatchObject({ decided: true, alive: true, pid: LIVE });
  });

  it('does not stand in the way of a live runner named by a pid file', () => {
    const verdict = judgeRunner({ runners: [{ pid: LIVE2, startedMs: 2_000 }, weak(LIVE)], helpers: [] }, alive, true, 'auto');
    expect(verdict).toEqual({ decided: true, alive: true, pid: LIVE2, startedMs: 2_000 });
  });
});

describe('one runner, named twice or tied', () => {
  it('two live runners started at the same moment: the first named is the current one', () => {
    const a = { pid: LIVE, startedMs: 5_000 };
    const b = { pid: LIVE2, startedMs: 5_000 };
    for (const mode of ['auto', 'pid'] as const) {
      expect(judgeRunner(facts([a, b]), alive, true, mode)).toEqual({ decided: true, alive: true, ...a });
      expect(judgeRunner(facts([b, a]), alive, true, mode)).toEqual({ decided: true, alive: true, ...b });
    }
  });

  it('on a tie, the registry\'s wrapper (named first) wins over loki.pid', async () => {
    const { verdict } = await probe(
      {
        pidFile: { text: `${process.ppid}\n`, mtimeMs: Date.parse(T_STARTED) },
        pids: { [`${process.pid}.json`]: pidEntry({ pid: process.pid, kind: 'wrapper', started: T_STARTED }) },
      },
      true,
    );
    expect(verdict).toEqual({ decided: true, alive: true, pid: process.pid, startedMs: Date.parse(T_STARTED) });
  });

  it('a session_start naming the loki.pid runner adds no second runner: its start stays loki.pid\'s mtime (pid mode too)', () => {
    const reading = readingOf({
      documents: { 'loki.pid': { content: `${LIVE}\n`, mtimeMs: T_PID_FILE } },
      events: { present: true, lines: 1, sessionStartMs: T_PID_FILE + 60_000, sessionPid: LIVE },
      processes: { isProcessAlive: alive, hostPidNamespace: true },
    });
    for (const mode of ['auto', 'pid'] as const) {
      expect(new RunnerProbe(mode, () => undefined).probe(reading).verdict).toEqual({ decided: true, alive: true, pid: LIVE, startedMs: T_PID_FILE });
    }
  });
});

describe('the probe on hand-built readings (stated pids, no files)', () => {
  const T_REGISTRY = Date.parse('2026-02-14T09:30:00Z');
  const T_LATER = T_REGISTRY + 3_600_000;

  it('a runner named by its registry entry and by a later-written loki.pid keeps the registry\'s start, not the newer mtime', () => {
    const base = readingOf({
      documents: { 'loki.pid': { content: `${LIVE}\n`, mtimeMs: T_LATER } },
      processes: { isProcessAlive: alive, hostPidNamespace: true },
    });
    const entry = { name: `${LIVE}.json`, ...fileOf({ pid: LIVE, kind: 'wrapper', started: new Date(T_REGISTRY).toISOString() }) };
    const reading: StateReading = { ...base, pids: { present: true, files: [entry] } };
    for (const mode of ['auto', 'pid'] as const) {
      expect(new RunnerProbe(mode, () => undefined).probe(reading).verdict).toEqual({ decided: true, alive: true, pid: LIVE, startedMs: T_REGISTRY });
    }
  });

  it('asks about no process but the ones the state names', () => {
    const asked: number[] = [];
    // In a container kill(pid, 0) may well find some unrelated process alive under any number.
    const isProcessAlive = (pid: number) => {
      asked.push(pid);
      return pid !== DEAD;
    };
    const reading = readingOf({ documents: { 'loki.pid': { content: `${DEAD}\n` } }, processes: { isProcessAlive, hostPidNamespace: false } });
    expect(new RunnerProbe('auto', () => undefined).probe(reading).verdict).toEqual(NOT_DECIDED);
    expect([...new Set(asked)]).toEqual([DEAD]);
  });

  it('a live runner the latest session_start names next to a dead loki.pid runner: a weak witness, started at the session_start', () => {
    const reading = readingOf({
      documents: { 'loki.pid': { content: `${DEAD}\n`, mtimeMs: T_REGISTRY } },
      events: { present: true, lines: 1, sessionStartMs: T_LATER, sessionPid: LIVE },
      processes: { isProcessAlive: alive, hostPidNamespace: true },
    });
    // `pid` trusts it, with the session_start as its start
    expect(new RunnerProbe('pid', () => undefined).probe(reading).verdict).toEqual({ decided: true, alive: true, pid: LIVE, startedMs: T_LATER });
    // `auto`: alone it proves nothing (the pid may have been reused), so the heartbeat decides
    expect(new RunnerProbe('auto', () => undefined).probe(reading).verdict).toEqual(NOT_DECIDED);
  });
});
