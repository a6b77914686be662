/**
 * bcrypt off the event loop: the right answers from the thread, and the event loop free while it works.
 */
import bcrypt from 'bcryptjs';
import { describe, expect, it, vi } from 'vitest';
import { compareOffThread } from '../../src/node/bcrypt-thread.js';

describe('compareOffThread', () => {
  it('answers as bcryptjs does: right, wrong, $2y$, and a malformed hash is a failure', async () => {
    const hash = bcrypt.hashSync('right', 4);
    expect(await compareOffThread('right', hash)).toBe(true);
    expect(await compareOffThread('wrong', hash)).toBe(false);
    expect(await compareOffThread('right', hash.replace('$2b$', '$2y$'))).toBe(true);
    expect(await compareOffThread('right', 'not a hash')).toBe(false);
    // Answers go to the right caller when several are under way.
    expect(await Promise.all(['wrong', 'right', 'also wrong'].map((p) => compareOffThread(p, hash)))).toEqual([false, true, false]);
  });

  it('leaves the event loop free: it turns thousands of times while a cost-12 check runs (bcryptjs on the loop: a handful)', async () => {
    const hash = bcrypt.hashSync('right', 12);
    await compareOffThread('warm', bcrypt.hashSync('x', 4)); // the thread is up
    let done = false;
    const check = compareOffThread('wrong', hash).then((ok) => ((done = true), ok));
    let turns = 0;
    while (!done) {
      await new Promise((r) => setImmediate(r));
      turns++;
    }
    expect(await check).toBe(false);
    expect(turns).toBeGreaterThan(1_000);
  });
});

/**
 * A thread that dies (here: made to throw, or terminated) fails the checks it held, and the next
 * check starts a new thread. The real Worker, only counted.
 */
const threads = vi.hoisted(() => ({ created: [] as import('node:worker_threads').Worker[] }));
vi.mock('node:worker_threads', async (original) => {
  const real = await original<typeof import('node:worker_threads')>();
  class CountedWorker extends real.Worker {
    constructor(...args: ConstructorParameters<typeof real.Worker>) {
      super(...args);
      threads.created.push(this);
    }
  }
  return { ...real, Worker: CountedWorker };
});

describe('compareOffThread when its thread dies', () => {
  it('a terminated thread fails its waiting check (a refusal), and the next check gets a new thread', async () => {
    const hash = bcrypt.hashSync('right', 4);
    expect(await compareOffThread('right', hash)).toBe(true);
    const before = threads.created.length;
    const thread = threads.created.at(-1)!;
    const waiting = compareOffThread('right', bcrypt.hashSync('right', 12));
    await thread.terminate();
    expect(await waiting).toBe(false);
    expect(await compareOffThread('right', hash)).toBe(true);
    expect(threads.created.length).toBe(before + 1);
  });

  it('a thread that throws fails its waiting check; the exit that follows does not drop its successor', async () => {
    const hash = bcrypt.hashSync('right', 4);
    expect(await compareOffThread('right', hash)).toBe(true);
    const before = threads.created.length;
    const thread = threads.created.at(-1)!;
    thread.postMessage(null); // the thread's handler cannot destructure null: an uncaught error there
    const waiting = compareOffThread('right', hash); // queued behind it: never answered
    let successor: Promise<boolean> | undefined;
    // Runs after the module's own 'error' listener: a check between the thread's error and its exit.
    thread.once('error', () => (successor = compareOffThread('right', hash)));
    const exited = new Promise((r) => thread.once('exit', r));
    expect(await waiting).toBe(false);
    await exited;
    expect(await successor).toBe(true);
    expect(await compareOffThread('right', hash)).toBe(true);
    expect(threads.created.length).toBe(before + 1);
  });
});
