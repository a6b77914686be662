/**
 * `isProcessAlive` as signal 0 answers it to a process that may not signal the target. EPERM means
 * the process exists but belongs to another user (an exporter running as `prometheus` next to a
 * runner started by a developer): it is alive. ESRCH means there is no such process: dead.
 *
 * The tests run as root, to whom kill(pid, 0) never answers EPERM, so the check runs in a child
 * that drops to nobody (uid/gid 65534) first. The child runs `src/stores/fs/processes.ts` itself,
 * bundled from the source on the spot, so it is the code under test and not a copy.
 */
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { build } from 'esbuild';
import { afterEach, describe, expect, it } from 'vitest';
import { isProcessAlive } from '../../src/stores/fs/processes.js';
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

/** For each pid, as uid/gid nobody: what signal 0 answers, and what `isProcessAlive` makes of it. */
async function askAsNobody(pids: readonly number[]): Promise<Answer[]> {
  const probe = `
    import { isProcessAlive } from './processes.ts';
    process.setgroups([]);
    process.setgid(${NOBODY});
    process.setuid(${NOBODY});
    const answers = ${JSON.stringify(pids)}.map((pid) => {
      let signal0 = 'ok';
      try { process.kill(pid, 0); } catch (error) { signal0 = error.code; }
      return { pid, signal0, alive: isProcessAlive(pid) };
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
    // `sleep 0` exits at once; its parent execs into `sleep 5`, which never reaps it: a zombie of root's.
    const parent = spawn('sh', ['-c', 'sleep 0 & echo $!; exec sleep 5'], { stdio: ['ignore', 'pipe', 'ignore'] });
    try {
      const zombie = await new Promise<number>((resolve) => parent.stdout.once('data', (d: Buffer) => resolve(Number(d.toString().trim()))));
      await expect.poll(() => readFileSync(`/proc/${zombie}/stat`, 'utf8').replace(/^.*\) /s, '')[0], { timeout: 5_000 }).toBe('Z');
      expect(await askAsNobody([zombie])).toEqual([{ pid: zombie, signal0: 'EPERM', alive: false }]);
      expect(isProcessAlive(zombie)).toBe(false);
    } finally {
      parent.kill('SIGKILL');
    }
  });

  it('ESRCH: an exited process is dead, whoever asks', async () => {
    const gone = deadPid();
    expect(await askAsNobody([gone])).toEqual([{ pid: gone, signal0: 'ESRCH', alive: false }]);
    expect(isProcessAlive(gone)).toBe(false);
  });
});
