/**
 * RunnerProbe's cap (issue 19, item 5): at most MAX_CANDIDATES runners and MAX_CANDIDATES helpers are
 * probed, the newest by start (an entry without a start counts as oldest), whatever the registry
 * holds. Counted by the pids probed, on hand-built readings.
 */
import { describe, expect, it } from 'vitest';
import { MAX_CANDIDATES, RunnerProbe, type LivenessMode } from '../src/liveness.js';
import { unreadableReading, type FileSetEntryRead, type StateReading } from '../src/stores/store.js';
import { NOT_DECIDED, STOPPED } from './support/pids.js';

const S0 = 1_700_000_000; // epoch seconds, as a registry's `started`

/** A `pids/` entry; `started` in epoch seconds, none when undefined. */
const entry = (pid: number, kind: string | null, started?: number): FileSetEntryRead => ({
  name: `${pid}.json`,
  present: true,
  bytes: new TextEncoder().encode(JSON.stringify({ pid, kind, ...(started !== undefined ? { started } : {}) })),
  mtimeMs: 1,
  version: `v${pid}`,
});

/** Probes a registry holding `files` (in that order); the pids asked about, in order, and the verdict. */
function probeRegistry(files: FileSetEntryRead[], live: (pid: number) => boolean, hostPidNamespace: boolean, mode: LivenessMode = 'auto') {
  const probed: number[] = [];
  const state: StateReading = {
    ...unreadableReading('unused'),
    available: true,
    pids: { present: true, files },
    isProcessAlive: (pid) => (probed.push(pid), live(pid)),
    hostPidNamespace,
  };
  const { verdict } = new RunnerProbe(mode, () => undefined).probe(state);
  return { probed, verdict };
}

const range = (from: number, n: number) => Array.from({ length: n }, (_, i) => from + i);
const sorted = (pids: Iterable<number>) => [...pids].sort((a, b) => a - b);

describe('RunnerProbe over a huge registry (issue 19, item 5)', () => {
  it(`probes at most ${MAX_CANDIDATES} runners and ${MAX_CANDIDATES} helpers, the newest, whatever the registry holds`, () => {
    const enc = new TextEncoder();
    const entry = (pid: number, kind: string | null, started: number) => ({
      name: `${pid}.json`,
      present: true,
      bytes: enc.encode(JSON.stringify({ pid, kind, started })),
      mtimeMs: 1,
      version: `v${pid}`,
    });
    // 40,000 stale wrappers and helpers; the newest wrapper (started last) is the live one.
    const files = Array.from({ length: 40_000 }, (_, i) => entry(i + 2, i % 2 ? 'wrapper' : null, 1_700_000_000 + i));
    const live = files[files.length - 1]!;
    const probed: number[] = [];
    const base = unreadableReading('unused');
    const state: StateReading = {
      ...base,
      available: true,
      pids: { present: true, files },
      isProcessAlive: (pid) => (probed.push(pid), pid === 40_001),
      hostPidNamespace: true,
    };
    const probe = new RunnerProbe('auto', () => undefined);
    const { verdict } = probe.probe(state);
    expect(JSON.parse(new TextDecoder().decode(live.bytes))).toMatchObject({ pid: 40_001, kind: 'wrapper' });
    expect(verdict).toEqual({ decided: true, alive: true, pid: 40_001, startedMs: (1_700_000_000 + 39_999) * 1000 });
    expect(probed.length).toBeLessThanOrEqual(2 * MAX_CANDIDATES);
    // A second refresh of the same files probes as few again (the live verdict is never cached).
    probed.length = 0;
    expect(probe.probe(state).verdict).toEqual(verdict);
    expect(probed.length).toBeGreaterThan(0);
    expect(probed.length).toBeLessThanOrEqual(2 * MAX_CANDIDATES);
  });
});

describe(`RunnerProbe probes at most ${MAX_CANDIDATES} helpers, the newest`, () => {
  // A dead wrapper; 40 helpers started one second apart (pids 2000.. in order of start); 8 more without a start.
  const RUNNER = 1000;
  const helpers = range(2000, 40).map((pid, i) => entry(pid, null, S0 + i));
  const startless = range(2100, 8).map((pid) => entry(pid, 'monitor'));
  const newest = range(2000 + 40 - MAX_CANDIDATES, MAX_CANDIDATES);

  it('in a container with nothing alive, asks about the runner and the newest helpers only, whatever their order', () => {
    for (const files of [[entry(RUNNER, 'wrapper', S0), ...startless, ...helpers], [...helpers].reverse().concat(startless, [entry(RUNNER, 'wrapper', S0)])]) {
      const { probed, verdict } = probeRegistry(files, () => false, false);
      expect(verdict).toEqual(NOT_DECIDED);
      expect(probed).toHaveLength(1 + MAX_CANDIDATES);
      expect(sorted(probed)).toEqual([RUNNER, ...newest]);
    }
  });

  it('a live helper among the newest shows the namespace (the dead runner is stopped); one beyond the cap is never asked about', () => {
    const files = [entry(RUNNER, 'wrapper', S0), ...startless, ...helpers];
    expect(probeRegistry(files, (pid) => pid === newest[0], false).verdict).toEqual(STOPPED);
    const oldest = probeRegistry(files, (pid) => pid === 2000 || pid === 2100, false);
    expect(oldest.verdict).toEqual(NOT_DECIDED);
    expect(oldest.probed).not.toContain(2000);
    expect(oldest.probed).not.toContain(2100);
  });
});

describe(`RunnerProbe probes at most ${MAX_CANDIDATES} runners, the newest`, () => {
  // 36 wrappers started one second apart (pids 3000.., the newest alive), and 8 without a start.
  const wrappers = range(3000, 36).map((pid, i) => entry(pid, 'wrapper', S0 + i));
  const startless = range(3100, 8).map((pid) => entry(pid, 'wrapper'));
  const newest = range(3000 + 36 - MAX_CANDIDATES, MAX_CANDIDATES);
  const LIVE = 3035;

  it('asks about the newest runners, a start-less one counting as oldest, whatever their order', () => {
    const orders = [[...startless, ...wrappers], [...wrappers, ...startless], [...wrappers].reverse().concat(startless), [...startless, ...[...wrappers].reverse()]];
    for (const files of orders) {
      for (const mode of ['auto', 'pid'] as const) {
        const { probed, verdict } = probeRegistry(files, (pid) => pid === LIVE, true, mode);
        expect(verdict).toEqual({ decided: true, alive: true, pid: LIVE, startedMs: (S0 + 35) * 1000 });
        expect(sorted(probed)).toEqual(newest);
      }
    }
  });
});
