import type { RunnerVerdict } from '../../src/stores/store.js';

/** Stated liveness for the rule's tests: pids 1xx are alive, everything else dead. */
export const alive = (pid: number) => pid >= 100 && pid < 200;
export const LIVE = 101;
export const LIVE2 = 102;
export const DEAD = 901;
export const DEAD2 = 902;
export const NOT_DECIDED: RunnerVerdict = { decided: false, alive: false };
export const STOPPED: RunnerVerdict = { decided: true, alive: false };
