/**
 * Basic auth over bcrypt: real bcrypt for the answers, a counted comparison for the cache rules.
 */
import bcrypt from 'bcryptjs';
import { describe, expect, it } from 'vitest';
import { BasicAuthUsers } from '../src/basic-auth.js';

const HASH = bcrypt.hashSync('right', 4);

function counted(users: Record<string, string>, options: { ttlMs?: number; maxEntries?: number } = {}) {
  let now = 1_000_000;
  const compared: string[] = [];
  const auth = new BasicAuthUsers(users, {
    ...options,
    clock: () => now,
    compare: async (password, hash) => {
      compared.push(hash);
      return bcrypt.compare(password, hash);
    },
  });
  return { auth, compared, advance: (ms: number) => (now += ms) };
}

describe('BasicAuthUsers', () => {
  it('checks real bcrypt hashes, $2y$ included', async () => {
    const auth = new BasicAuthUsers({ a: HASH, b: HASH.replace('$2b$', '$2y$') });
    expect(await auth.verify('a', 'right')).toBe(true);
    expect(await auth.verify('b', 'right')).toBe(true);
    expect(await auth.verify('a', 'wrong')).toBe(false);
    expect(await auth.verify('a', 'right ')).toBe(false);
    expect(await auth.verify('c', 'right')).toBe(false);
    expect(await auth.verify('constructor', 'right')).toBe(false);
  });

  it('remembers a success: repeated scrapes run bcrypt once while they keep coming within the TTL', async () => {
    const { auth, compared, advance } = counted({ a: HASH }, { ttlMs: 60_000 });
    for (let i = 0; i < 10; i++) {
      expect(await auth.verify('a', 'right')).toBe(true);
      advance(15_000);
    }
    expect(compared).toHaveLength(1);
    advance(60_000); // 75 s since the last use: lapsed
    expect(await auth.verify('a', 'right')).toBe(true);
    expect(compared).toHaveLength(2);
    advance(59_999);
    expect(await auth.verify('a', 'right')).toBe(true);
    expect(compared).toHaveLength(2);
  });

  it('never remembers a failure, and a remembered success does not let another password in', async () => {
    const { auth, compared } = counted({ a: HASH });
    expect(await auth.verify('a', 'right')).toBe(true);
    expect(await auth.verify('a', 'wrong')).toBe(false);
    expect(await auth.verify('a', 'wrong')).toBe(false);
    expect(compared).toHaveLength(3);
  });

  it('an unknown user costs a bcrypt comparison too (no timing tell), and never passes', async () => {
    const { auth, compared } = counted({ a: HASH });
    expect(await auth.verify('nobody', 'right')).toBe(false);
    expect(compared).toHaveLength(1);
  });

  it('checks an unknown user against the costliest configured hash: as slow as a wrong password (issue 19, item 14)', async () => {
    const cost6 = bcrypt.hashSync('other', 6);
    const { auth, compared } = counted({ a: HASH, b: cost6 });
    expect(await auth.verify('nobody', 'right')).toBe(false);
    expect(compared).toEqual([cost6]);
  });

  it('runs one comparison for a burst of identical requests that arrive while it runs', async () => {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let comparisons = 0;
    const auth = new BasicAuthUsers({ a: HASH }, { compare: async (password, hash) => (comparisons++, await gate, bcrypt.compare(password, hash)) });
    const answers = Promise.all(Array.from({ length: 8 }, () => auth.verify('a', 'right')));
    // Every request is past its cache lookup and waiting on the one comparison before it finishes.
    while (comparisons === 0) await new Promise((r) => setTimeout(r, 1));
    await new Promise((r) => setTimeout(r, 20));
    release();
    expect(await answers).toEqual(Array(8).fill(true));
    expect(comparisons).toBe(1);
  });

  it('a remembered success lapses exactly ttlMs after its last use', async () => {
    const { auth, compared, advance } = counted({ a: HASH }, { ttlMs: 1_000 });
    await auth.verify('a', 'right');
    advance(999);
    await auth.verify('a', 'right'); // renews the lease until 999 + 1000
    expect(compared).toHaveLength(1);
    advance(1_000);
    await auth.verify('a', 'right');
    expect(compared).toHaveLength(2);
  });

  it('keeps at most maxEntries successes, dropping the least recently used', async () => {
    const users = { a: HASH, b: HASH, c: HASH };
    const { auth, compared } = counted(users, { maxEntries: 2 });
    await auth.verify('a', 'right');
    await auth.verify('b', 'right');
    await auth.verify('a', 'right'); // a is now the most recent
    await auth.verify('c', 'right'); // evicts b
    expect(compared).toHaveLength(3);
    await auth.verify('a', 'right');
    expect(compared).toHaveLength(3);
    await auth.verify('b', 'right');
    expect(compared).toHaveLength(4);
  });

  it('an unknown user never passes, even if the comparison says yes', async () => {
    const auth = new BasicAuthUsers({ a: HASH }, { compare: async () => true });
    expect(await auth.verify('nobody', 'anything')).toBe(false);
    expect(await auth.verify('a', 'anything')).toBe(true);
  });

  it('a comparison that throws is a failure, not a crash', async () => {
    const auth = new BasicAuthUsers({ a: HASH }, { compare: async () => { throw new Error('boom'); } });
    expect(await auth.verify('a', 'right')).toBe(false);
  });
});
