/**
 * `isProcessAlive` as signal 0 answers it to a process that may not signal the target. EPERM means
 * the process exists but belongs to another user (an exporter running as `prometheus` next to a
 * runner started by a developer): it is alive. ESRCH means there is no such process: dead.
 *
 * The tests run as root, to whom kill(pid, 0) never answers EPERM, so the check runs in a child
 * that drops to nobody (uid/gid 65534) first. The child runs `src/stores/fs/processes.ts` itself,
 * bundled from the source on the spot, so it is the code under test and not a copy. (A mutation
 * run's active mutant is not in that child: the in-process tests below stage the kernel's EPERM
 * answer with a `process.kill` spy.)
 */
import { spawn, spawnSync } from 'node:child_process';
import fs, { readFileSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { dirname } from 'node:path';
import { build } from 'esbuild';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { bootTimeMs, CLOCK_TICKS_PER_SECOND, isProcessAlive, parseProcStat, processStartMs } from '../../src/stores/fs/processes.js';
import { cleanTrees, deadPid, liveHelper } from '../support/loki-tree.js';

afterEach(cleanTrees);

const SOURCE = new URL('../../src/stores/fs/processes.ts', import.meta.url).pathname.replace('/dist/src/', '/src/');
const NOBODY = 65534;

interface Answer {
  readonly pid: number;
  /** What `process.kill(pid, 0)` gave the child: `ok`, or the error code. */
  readonly signal0: string;
  readonly alive: boolean;
}

/**
 * For each pid, as uid/gid nobody: what signal 0 answers, and what `isProcessAlive` makes of it
 * (given `startedByMs`, the same for every pid, when set).
 */
async function askAsNobody(pids: readonly number[], startedByMs?: number): Promise<Answer[]> {
  const probe = `
    import { isProcessAlive } from './processes.ts';
    process.setgroups([]);
    process.setgid(${NOBODY});
    process.setuid(${NOBODY});
    const answers = ${JSON.stringify(pids)}.map((pid) => {
      let signal0 = 'ok';
      try { process.kill(pid, 0); } catch (error) { signal0 = error.code; }
      return { pid, signal0, alive: isProcessAlive(pid, ${startedByMs ?? 'undefined'}) };
    });
    process.stdout.write(JSON.stringify({ uid: process.getuid(), gid: process.getgid(), answers }));
  `;
  const { outputFiles } = await build({
    stdin: { contents: probe, resolveDir: dirname(SOURCE), loader: 'ts', sourcefile: 'probe.ts' },
    bundle: true,
    platform: 'node',
    format: 'esm',
    write: false,
    logLevel: 'silent',
  });
  const child = spawnSync(process.execPath, ['--input-type=module', '-e', outputFiles[0]!.text], { encoding: 'utf8' });
  expect(child.stderr).toBe('');
  expect(child.status).toBe(0);
  const result = JSON.parse(child.stdout) as { uid: number; gid: number; answers: Answer[] };
  expect([result.uid, result.gid]).toEqual([NOBODY, NOBODY]);
  return result.answers;
}

const asRootOnLinux = process.platform === 'linux' && process.getuid?.() === 0;

describe.runIf(asRootOnLinux)('isProcessAlive for a process of another user', () => {
  it('EPERM: a live process owned by someone else is alive', async () => {
    const helper = liveHelper();
    // this test process and a child it started, both root's
    expect(await askAsNobody([process.pid, helper])).toEqual([
      { pid: process.pid, signal0: 'EPERM', alive: true },
      { pid: helper, signal0: 'EPERM', alive: true },
    ]);
  });

  it('EPERM from a zombie: someone else\'s process that has exited but is not yet reaped is dead', async () => {
    // The child exits after a second; by then its parent has exec'd into `sleep 8`, which never reaps
    // it: a zombie of root's. (A child exiting at once could be reaped by sh itself before the exec,
    // as dash reaps finished jobs between commands: a loaded CI machine saw that.)
    const parent = spawn('sh', ['-c', 'sleep 1 & echo $!; exec sleep 8'], { stdio: ['ignore', 'pipe', 'ignore'] });
    try {
      const zombie = await new Promise<number>((resolve) => parent.stdout.once('data', (d: Buffer) => resolve(Number(d.toString().trim()))));
      await expect.poll(() => readFileSync(`/proc/${zombie}/stat`, 'utf8').replace(/^.*\) /s, '')[0], { timeout: 5_000 }).toBe('Z');
      expect(await askAsNobody([zombie])).toEqual([{ pid: zombie, signal0: 'EPERM', alive: false }]);
      expect(isProcessAlive(zombie)).toBe(false);
    } finally {
      parent.kill('SIGKILL');
    }
  });

  it('EPERM from a process that started after the time given: someone else\'s reused pid is dead', async () => {
    const helper = liveHelper();
    const started = processStartMs(helper)!;
    expect(await askAsNobody([helper], started - 1_000)).toEqual([{ pid: helper, signal0: 'EPERM', alive: false }]);
    expect(await askAsNobody([helper], started + 1_000)).toEqual([{ pid: helper, signal0: 'EPERM', alive: true }]);
  });

  it('ESRCH: an exited process is dead, whoever asks', async () => {
    const gone = deadPid();
    expect(await askAsNobody([gone])).toEqual([{ pid: gone, signal0: 'ESRCH', alive: false }]);
    expect(isProcessAlive(gone)).toBe(false);
  });
});

describe('parseProcStat: the fields of /proc/<pid>/stat', () => {
  /** A real line's shape: fields 3 to 52 after `pid (comm)`, field 22 (starttime) set to `start`. */
  const line = (comm: string, state: string, start: string) => {
    const fields = [state, '1', '4242', '4242', '0', '-1', '4194560', '120', '0', '0', '0', '3', '1', '0', '0', '20', '0', '1', '0', start];
    return `4243 (${comm}) ${fields.join(' ')} 12345678 391 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0\n`;
  };

  it('counts from the last ")", so a comm with spaces and parentheses changes nothing', () => {
    for (const comm of ['node', 'a b', 'x) S 1 2 3 (y', ') )', 'loki (runner) ) 9']) {
      expect(parseProcStat(line(comm, 'S', '801431')), comm).toEqual({ state: 'S', startTicks: 801431 });
    }
    expect(parseProcStat(line('sleep) Z 9', 'Z', '17'))).toEqual({ state: 'Z', startTicks: 17 });
  });

  it('keeps the state of a line cut short, without a start; no state, no answer', () => {
    // toStrictEqual: no `startTicks` key at all, not one set to undefined
    expect(parseProcStat('4243 (a) b) R 1 4242')).toStrictEqual({ state: 'R' });
    expect(parseProcStat(line('a', 'S', '12x'))).toStrictEqual({ state: 'S' });
    expect(parseProcStat(line('a', 'S', '-5'))).toStrictEqual({ state: 'S' });
    expect(parseProcStat('4243 node S 1')).toBeUndefined();
    expect(parseProcStat('4243 (a)')).toBeUndefined();
    expect(parseProcStat('')).toBeUndefined();
  });

  it('without any ")" there is no answer, whatever the line holds; a ")" first of all still closes the comm', () => {
    expect(parseProcStat('4S 1 4242')).toBeUndefined();
    expect(parseProcStat('xR')).toBeUndefined();
    expect(parseProcStat(') S 1 4242')).toStrictEqual({ state: 'S' });
  });
});

const hasGetconf = process.platform === 'linux' && spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).status === 0;

describe.runIf(process.platform === 'linux')('process start times from /proc', () => {
  it.runIf(hasGetconf)('CLOCK_TICKS_PER_SECOND is this system\'s USER_HZ (getconf CLK_TCK)', () => {
    expect(CLOCK_TICKS_PER_SECOND).toBe(Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()));
  });

  it('reads the boot time as /proc/stat gives it, in ms', () => {
    const btime = /^btime (\d+)$/m.exec(readFileSync('/proc/stat', 'latin1'))![1]!;
    expect(bootTimeMs()).toBe(Number(btime) * 1000);
  });

  it('a process started between two clock readings is read as started between them (boot time whole seconds, ticks 10 ms)', () => {
    const before = Date.now();
    const helper = liveHelper();
    const after = Date.now();
    const started = processStartMs(helper)!;
    // btime is rounded down to the second, so a start may read up to 1 s early; never late.
    expect(started).toBeGreaterThanOrEqual(before - 1_000 - 10);
    expect(started).toBeLessThanOrEqual(after + 10);
    expect(processStartMs(deadPid())).toBeUndefined();
  });

  it('isProcessAlive(pid, startedByMs): dead when the process started after startedByMs, alive at or before it', () => {
    const helper = liveHelper();
    const started = processStartMs(helper)!;
    expect(isProcessAlive(helper)).toBe(true);
    expect(isProcessAlive(helper, started)).toBe(true);
    expect(isProcessAlive(helper, started - 1)).toBe(false);
    expect(isProcessAlive(helper, 0)).toBe(false);
    expect(isProcessAlive(process.pid, Date.now())).toBe(true);
    expect(isProcessAlive(deadPid(), Date.now())).toBe(false);
  });
});

describe('isProcessAlive in-process, signal 0 answering EPERM (the kernel\'s answer for another user\'s process)', () => {
  /** Runs `body` with `process.kill(pid, 0)` failing with EPERM for `pid`, as it does for a process of another user. */
  function signal0Refused<T>(pid: number, body: () => T): T {
    const realKill = process.kill.bind(process);
    const spy = vi.spyOn(process, 'kill').mockImplementation((target: number, signal?: string | number) => {
      if (target === pid && signal === 0) throw Object.assign(new Error(`kill EPERM`), { code: 'EPERM', errno: -1, syscall: 'kill' });
      return realKill(target, signal);
    });
    try {
      return body();
    } finally {
      spy.mockRestore();
    }
  }

  it('a live process: alive (it is there, just not ours); a pid the kernel does not know: dead', () => {
    const helper = liveHelper();
    expect(signal0Refused(helper, () => isProcessAlive(helper))).toBe(true);
    expect(signal0Refused(helper, () => isProcessAlive(helper, Date.now()))).toBe(true);
    const gone = deadPid();
    expect(isProcessAlive(gone)).toBe(false); // ESRCH
  });
});

describe('without /proc (macOS), or a process whose /proc entry is gone', () => {
  /** Runs `body` with `readFileSync` and `readlinkSync` failing with `code` for /proc paths, as on a system without /proc. */
  async function withoutProc<T>(code: string, body: () => T | Promise<T>): Promise<T> {
    const realRead = fs.readFileSync;
    const realLink = fs.readlinkSync;
    const fail = (path: unknown) => {
      if (String(path).startsWith('/proc/')) throw Object.assign(new Error(`${code}: ${String(path)}`), { code });
    };
    fs.readFileSync = ((path: unknown, ...rest: unknown[]) => (fail(path), (realRead as (...a: unknown[]) => unknown)(path, ...rest))) as typeof fs.readFileSync;
    fs.readlinkSync = ((path: unknown, ...rest: unknown[]) => (fail(path), (realLink as (...a: unknown[]) => unknown)(path, ...rest))) as typeof fs.readlinkSync;
    syncBuiltinESMExports();
    try {
      return await body();
    } finally {
      fs.readFileSync = realRead;
      fs.readlinkSync = realLink;
      syncBuiltinESMExports();
    }
  }

  it('a process signal 0 finds is alive: nothing else can tell, whatever startedByMs says', async () => {
    await withoutProc('ENOENT', () => {
      expect(isProcessAlive(process.pid)).toBe(true);
      expect(isProcessAlive(process.pid, 0)).toBe(true);
      expect(processStartMs(process.pid)).toBeUndefined();
    });
  });

  it('the host pid namespace: assumed when there is no /proc (ENOENT), not when /proc refuses to say', async () => {
    vi.resetModules();
    const fresh = () => import('../../src/stores/fs/processes.js');
    expect(await withoutProc('ENOENT', async () => (await fresh()).inHostPidNamespace())).toBe(true);
    vi.resetModules();
    expect(await withoutProc('EACCES', async () => (await fresh()).inHostPidNamespace())).toBe(false);
    vi.resetModules();
  });
});
