/**
 * bcrypt off the event loop: the right answers from the thread, and the event loop free while it works.
 */
import bcrypt from 'bcryptjs';
import { describe, expect, it } from 'vitest';
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
