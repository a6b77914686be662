/**
 * What a local store can tell about the processes of the machine it runs on.
 */
import { readFileSync, readlinkSync } from 'node:fs';
import { errorCode } from './read-file.js';

/**
 * Signal 0: alive unless the kernel says there is no such process (EPERM = someone else's). A
 * zombie (Linux `/proc/<pid>/stat` state Z: dead, not yet reaped by its parent) answers signal 0
 * too, for seconds after a SIGKILL; it is dead.
 */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    // Someone else's process still has to be checked for being a zombie.
    if (errorCode(error) !== 'EPERM') return false;
  }
  return !isZombie(pid);
}

function isZombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    // `pid (comm) S ...`: comm may hold spaces and parentheses, so the state follows the last ')'.
    return stat.charAt(stat.lastIndexOf(')') + 2) === 'Z';
  } catch {
    return false; // no /proc (macOS) or the process just went: signal 0 said it was there
  }
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
