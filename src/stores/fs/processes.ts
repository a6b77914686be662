/**
 * What a local store can tell about the processes of the machine it runs on.
 */
import { readFileSync, readlinkSync } from 'node:fs';
import { errorCode } from './read-file.js';

/**
 * Signal 0: alive unless the kernel says there is no such process (EPERM = someone else's). A
 * zombie (Linux `/proc/<pid>/stat` state Z: dead, not yet reaped by its parent) answers signal 0
 * too, for seconds after a SIGKILL; it is dead. With `startedByMs`, where the platform shows when a
 * process started (Linux `/proc`), a process that started after it is dead too: not the one the
 * state names but another program that got its number later. Without `/proc` (macOS) signal 0
 * alone decides.
 */
export function isProcessAlive(pid: number, startedByMs?: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    // Someone else's process still has to be checked for being a zombie.
    if (errorCode(error) !== 'EPERM') return false;
  }
  const stat = readProcStat(pid);
  // No /proc (macOS) or the process just went: signal 0 said it was there.
  if (stat === undefined) return true;
  if (stat.state === 'Z') return false;
  if (startedByMs === undefined) return true;
  const started = startMsOf(stat);
  return started === undefined || started <= startedByMs;
}

/** The fields of `/proc/<pid>/stat` this module reads. */
export interface ProcStat {
  /** Field 3: `R`, `S`, `Z`... */
  readonly state: string;
  /** Field 22: when the process started, in clock ticks since boot (absent from a line cut short). */
  readonly startTicks?: number;
}

/**
 * `pid (comm) state ppid ... starttime ...`: comm may hold spaces and parentheses, so the fields
 * are counted from the last ')'. Undefined when there is no state where it should be.
 */
export function parseProcStat(text: string): ProcStat | undefined {
  const close = text.lastIndexOf(')');
  if (close < 0) return undefined;
  // Fields 3 onward; field 22 (starttime) is the 20th of them.
  const fields = text.slice(close + 2).split(' ');
  const state = fields[0] ?? '';
  if (state.length !== 1) return undefined;
  const ticks = fields[19] ?? '';
  const startTicks = /^\d{1,15}$/.test(ticks) ? Number(ticks) : undefined;
  return startTicks === undefined ? { state } : { state, startTicks };
}

function readProcStat(pid: number): ProcStat | undefined {
  try {
    return parseProcStat(readFileSync(`/proc/${pid}/stat`, 'latin1'));
  } catch {
    return undefined;
  }
}

/**
 * Clock ticks per second in `/proc/<pid>/stat` (USER_HZ, `getconf CLK_TCK`): 100 on every Linux
 * architecture Node runs on (alpha and ia64 had 1024); the kernel fixes it for user space whatever
 * its own HZ.
 */
export const CLOCK_TICKS_PER_SECOND = 100;

let bootTime: { readonly ms: number | undefined; readonly wallOffsetMs: number } | undefined;

/** The wall clock minus the monotonic one: moves only when the wall clock is stepped (or the machine slept). */
const wallOffsetMs = () => Date.now() - performance.now();

/**
 * When the machine booted (ms since the epoch), from `/proc/stat`'s `btime` (whole seconds). Read
 * once, and again only after the wall clock was stepped: `btime` is the boot time on the current
 * clock, which is the clock a runner starting now dates its files by.
 */
export function bootTimeMs(): number | undefined {
  const offset = wallOffsetMs();
  if (bootTime === undefined || Math.abs(offset - bootTime.wallOffsetMs) > 1_000) {
    let ms: number | undefined;
    try {
      const match = /^btime (\d+)$/m.exec(readFileSync('/proc/stat', 'latin1'));
      if (match) ms = Number(match[1]) * 1000;
    } catch {
      // no /proc (macOS): no start times
    }
    bootTime = { ms, wallOffsetMs: offset };
  }
  return bootTime.ms;
}

function startMsOf(stat: ProcStat): number | undefined {
  const boot = bootTimeMs();
  if (boot === undefined || stat.startTicks === undefined) return undefined;
  return boot + (stat.startTicks * 1000) / CLOCK_TICKS_PER_SECOND;
}

/** When the process started (ms since the epoch), where `/proc` shows it; undefined elsewhere or once it is gone. */
export function processStartMs(pid: number): number | undefined {
  const stat = readProcStat(pid);
  return stat === undefined ? undefined : startMsOf(stat);
}

/** The inode of Linux's initial pid namespace (PROC_PID_INIT_INO): the host's, not a container's. */
const INIT_PID_NAMESPACE = 'pid:[4026531836]';

let hostNamespace: boolean | undefined;

/**
 * Whether this process sees every process of the host: Linux's initial pid namespace, or a system
 * without pid namespaces (macOS, no /proc). Inside a container this is false, and a pid that a
 * runner on the host wrote means nothing here. Read once.
 */
export function inHostPidNamespace(): boolean {
  if (hostNamespace === undefined) {
    try {
      hostNamespace = readlinkSync('/proc/self/ns/pid') === INIT_PID_NAMESPACE;
    } catch (error) {
      // No /proc or no namespace support: nothing isolates our view of the processes.
      hostNamespace = errorCode(error) === 'ENOENT';
    }
  }
  return hostNamespace;
}
