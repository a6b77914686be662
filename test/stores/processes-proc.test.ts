/**
 * What src/stores/fs/processes.ts reads from Linux's /proc besides a process's own stat line: the
 * boot time (`/proc/stat`'s `btime`, read once and again only after the wall clock was stepped),
 * the pid namespace (`/proc/self/ns/pid`, read once), and a process start that cannot be known
 * (no `btime`, a stat line cut short before field 22).
 *
 * The module caches both answers, so each test imports it afresh (`vi.resetModules()`). The /proc
 * paths a test names are redirected to real files (or a real symlink) in a temp directory, read by
 * the real `readFileSync`/`readlinkSync` with the module's own arguments; the redirect is installed
 * on node:fs and published to ES imports with `syncBuiltinESMExports`. Every other path is read as is.
 */
import fs from 'node:fs';
import { writeFile, symlink } from 'node:fs/promises';
import { syncBuiltinESMExports } from 'node:module';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { cleanTrees, liveHelper, tempDir } from '../support/loki-tree.js';

const realRead = fs.readFileSync;
const realLink = fs.readlinkSync;

afterEach(async () => {
  fs.readFileSync = realRead;
  fs.readlinkSync = realLink;
  syncBuiltinESMExports();
  vi.restoreAllMocks();
  await cleanTrees();
});

/** The module as a process that has just started sees it: nothing cached. */
async function fresh() {
  vi.resetModules();
  return import('../../src/stores/fs/processes.js');
}

/**
 * Reads of the /proc paths in `to` go to the files there instead (`readFileSync`, `readlinkSync`);
 * returns how many times each was read. A target can be changed later through the returned map.
 */
function redirect(to: Record<string, string>): { readonly reads: Record<string, number>; readonly to: Record<string, string> } {
  const reads: Record<string, number> = {};
  const route = (path: unknown) => {
    const key = String(path);
    if (!(key in to)) return path;
    reads[key] = (reads[key] ?? 0) + 1;
    return to[key];
  };
  fs.readFileSync = ((path: unknown, ...rest: unknown[]) => (realRead as (...a: unknown[]) => unknown)(route(path), ...rest)) as typeof fs.readFileSync;
  fs.readlinkSync = ((path: unknown, ...rest: unknown[]) => (realLink as (...a: unknown[]) => unknown)(route(path), ...rest)) as typeof fs.readlinkSync;
  syncBuiltinESMExports();
  return { reads, to };
}

/** A file in a temp directory holding `content`. */
async function fileOf(content: string | Uint8Array): Promise<string> {
  const path = join(await tempDir(), 'proc-file');
  await writeFile(path, content);
  return path;
}

const STAT = 'cpu  10 0 20 300 0 0 0 0 0 0\nintr 0\nctxt 100\n';
const BTIME = 1_700_000_000;

describe('the boot time: /proc/stat\'s `btime` line', () => {
  it('only a line that is exactly `btime <digits>`: not one that ends in it, nor one that starts with it', async () => {
    redirect({ '/proc/stat': await fileOf(`${STAT}notbtime 5\nbtime 12x\nbtime ${BTIME}\nprocesses 9\n`) });
    expect((await fresh()).bootTimeMs()).toBe(BTIME * 1000);
  });

  it('read as bytes (latin1): a line that is `btime <digits>` only when decoded as UTF-8 (U+2028 ends a line there) is no btime', async () => {
    const bytes = Buffer.concat([Buffer.from(`${STAT}btime ${BTIME}`), Buffer.from([0xe2, 0x80, 0xa8]), Buffer.from('\nprocesses 9\n')]);
    redirect({ '/proc/stat': await fileOf(bytes) });
    expect((await fresh()).bootTimeMs()).toBeUndefined();
  });

  it('read once; again only when the wall clock moved more than 1 s against the monotonic one', async () => {
    const procStat = redirect({ '/proc/stat': await fileOf(`${STAT}btime ${BTIME}\n`) });
    const { bootTimeMs } = await fresh();
    const clock = { wall: 1_800_000_000_000, mono: 500 };
    vi.spyOn(Date, 'now').mockImplementation(() => clock.wall);
    vi.spyOn(performance, 'now').mockImplementation(() => clock.mono);
    expect(bootTimeMs()).toBe(BTIME * 1000);
    expect(procStat.reads['/proc/stat']).toBe(1);
    // A stepped clock gives another btime; until the step is seen, the one read is kept.
    procStat.to['/proc/stat'] = await fileOf(`${STAT}btime ${BTIME + 3600}\n`);
    // 10 s pass on both clocks: no step.
    clock.wall += 10_000;
    clock.mono += 10_000;
    expect(bootTimeMs()).toBe(BTIME * 1000);
    // Stepped by exactly 1 s: not more than 1 s.
    clock.wall += 1_000;
    expect(bootTimeMs()).toBe(BTIME * 1000);
    expect(procStat.reads['/proc/stat']).toBe(1);
    // Stepped by an hour: read again.
    clock.wall += 3_600_000;
    expect(bootTimeMs()).toBe((BTIME + 3600) * 1000);
    expect(procStat.reads['/proc/stat']).toBe(2);
    expect(bootTimeMs()).toBe((BTIME + 3600) * 1000);
    expect(procStat.reads['/proc/stat']).toBe(2);
  });
});

describe.runIf(process.platform === 'linux')('a process start that cannot be known: signal 0 and the state decide', () => {
  it('no btime in /proc/stat: a live process is alive whatever startedByMs says, its start unknown', async () => {
    redirect({ '/proc/stat': await fileOf(STAT) });
    const { isProcessAlive, processStartMs } = await fresh();
    const helper = liveHelper();
    expect(processStartMs(helper)).toBeUndefined();
    expect(isProcessAlive(helper, 0)).toBe(true);
    expect(isProcessAlive(process.pid, 0)).toBe(true);
  });

  it('a stat line cut short before field 22 (starttime): alive whatever startedByMs says, its start unknown', async () => {
    const helper = liveHelper();
    redirect({ [`/proc/${helper}/stat`]: await fileOf(`${helper} (node) S 1 ${helper} ${helper} 0 -1\n`) });
    const { bootTimeMs, isProcessAlive, processStartMs } = await fresh();
    expect(bootTimeMs()).toEqual(expect.any(Number)); // the real boot time is known
    expect(processStartMs(helper)).toBeUndefined();
    expect(isProcessAlive(helper, 0)).toBe(true);
  });
});

describe('the pid namespace: /proc/self/ns/pid, read once', () => {
  /** A symlink whose target is `name`, as /proc/self/ns/pid is. */
  async function nsLink(name: string): Promise<string> {
    const path = join(await tempDir(), 'pid');
    await symlink(name, path);
    return path;
  }

  it('the host\'s when it is the initial namespace (pid:[4026531836]); not in another one', async () => {
    redirect({ '/proc/self/ns/pid': await nsLink('pid:[4026531836]') });
    expect((await fresh()).inHostPidNamespace()).toBe(true);
    redirect({ '/proc/self/ns/pid': await nsLink('pid:[4026532711]') });
    expect((await fresh()).inHostPidNamespace()).toBe(false);
  });

  it('read once: later calls answer from the first reading', async () => {
    const ns = redirect({ '/proc/self/ns/pid': await nsLink('pid:[4026532711]') });
    const { inHostPidNamespace } = await fresh();
    expect(inHostPidNamespace()).toBe(false);
    expect(inHostPidNamespace()).toBe(false);
    expect(ns.reads['/proc/self/ns/pid']).toBe(1);
  });
});
