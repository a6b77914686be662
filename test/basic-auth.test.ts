/**
 * Basic auth over bcrypt: real bcrypt for the answers, a counted comparison for the cache rules.
 */
import bcrypt from 'bcryptjs';
import { describe, expect, it, vi } from 'vitest';
import { BasicAuthUsers, bcryptCost } from '../src/basic-auth.js';

const HASH = bcrypt.hashSync('right', 4);

function counted(users: Record<string, string>, options: { ttlMs?: number; maxEntries?: number; failureTtlMs?: number; maxFailures?: number } = {}) {
  let now = 1_000_000;
  const compared: string[] = [];
  const auth = new BasicAuthUsers(users, {
    failureDelayMs: 0,
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

  it('without users, a name is still checked against a real bcrypt hash of cost 10: no answer comes sooner for it', async () => {
    const { auth, compared } = counted({});
    expect(await auth.verify('anyone', 'anything')).toBe(false);
    expect(compared).toHaveLength(1);
    expect(bcryptCost(compared[0]!)).toBe(10);
    expect(compared[0]).toMatch(/^\$2b\$10\$[./A-Za-z0-9]{53}$/);
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

  it('remembers a failure for failureTtlMs (10 s by default), and a remembered success does not let another password in', async () => {
    const { auth, compared, advance } = counted({ a: HASH });
    expect(await auth.verify('a', 'right')).toBe(true);
    expect(await auth.verify('a', 'wrong')).toBe(false);
    advance(9_999);
    expect(await auth.verify('a', 'wrong')).toBe(false);
    expect(compared).toHaveLength(2);
    advance(1);
    expect(await auth.verify('a', 'wrong')).toBe(false);
    expect(compared).toHaveLength(3);
    // A remembered failure never stands in the way of the right password.
    expect(await auth.verify('a', 'right')).toBe(true);
  });

  it('keeps at most maxFailures failures, dropping the oldest', async () => {
    const { auth, compared } = counted({ a: HASH }, { maxFailures: 2 });
    for (const password of ['w1', 'w2', 'w3', 'w2', 'w3', 'w1']) expect(await auth.verify('a', password)).toBe(false);
    // w1 fell out when w3 came; w2 and w3 were remembered; w1 checked again.
    expect(compared).toHaveLength(4);
  });

  it('an unknown user costs a bcrypt comparison too (no timing tell), and never passes', async () => {
    const { auth, compared } = counted({ a: HASH });
    expect(await auth.verify('nobody', 'right')).toBe(false);
    expect(compared).toHaveLength(1);
  });

  it('bcryptCost reads the cost of a $2a$/$2b$/$2y$ hash, and 0 for anything else', () => {
    expect(bcryptCost(HASH)).toBe(4);
    expect(bcryptCost(bcrypt.hashSync('x', 6).replace('$2b$', '$2y$'))).toBe(6);
    expect(bcryptCost('not a hash')).toBe(0);
    expect(bcryptCost(`x${bcrypt.hashSync('x', 6)}`)).toBe(0);
  });

  it('checks an unknown user against the costliest hash wherever it is listed', async () => {
    const cost6 = bcrypt.hashSync('other', 6);
    const { auth, compared } = counted({ b: cost6, a: HASH });
    expect(await auth.verify('nobody', 'right')).toBe(false);
    expect(compared).toEqual([cost6]);
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

describe('BasicAuthUsers under a flood of wrong passwords (issue 19, item 2)', () => {
  /** A comparison that waits until released, so checks stay "waiting for bcrypt" as under load. */
  function gated(options: { maxChecks?: number; maxChecksPerClient?: number } = {}) {
    const releases: (() => void)[] = [];
    const busy: string[] = [];
    let comparisons = 0;
    const auth = new BasicAuthUsers(
      { a: HASH },
      {
        failureDelayMs: 0,
        ...options,
        onBusy: (client) => busy.push(client),
        compare: async (password, hash) => {
          comparisons++;
          await new Promise<void>((resolve) => releases.push(resolve));
          return bcrypt.compare(password, hash);
        },
      },
    );
    return { auth, busy, comparisons: () => comparisons, releaseAll: () => releases.splice(0).forEach((r) => r()) };
  }
  const settle = () => new Promise((r) => setTimeout(r, 10));

  it('one client gets at most 2 checks waiting by default; beyond that it is refused at once, unchecked, and told to onBusy', async () => {
    const { auth, busy, comparisons, releaseAll } = gated();
    const answers = Array.from({ length: 6 }, (_, i) => auth.verify('a', `wrong ${i}`, '10.0.0.1'));
    await settle();
    expect(comparisons()).toBe(2);
    expect(busy).toEqual(['10.0.0.1', '10.0.0.1', '10.0.0.1', '10.0.0.1']);
    // Another client still has its share, and once the first client's checks end it has its own again.
    const other = auth.verify('a', 'right', '10.0.0.2');
    await settle();
    expect(comparisons()).toBe(3);
    releaseAll();
    expect(await Promise.all(answers)).toEqual([false, false, false, false, false, false]);
    expect(await other).toBe(true);
    void auth.verify('a', 'wrong again', '10.0.0.1');
    await settle();
    expect(comparisons()).toBe(4);
    releaseAll();
  });

  it('at most 8 checks wait in all by default, whoever asks; a remembered success is answered while they wait', async () => {
    const { auth, busy, comparisons, releaseAll } = gated();
    // Remember the right password first.
    const first = auth.verify('a', 'right', 'scraper');
    await settle();
    releaseAll();
    expect(await first).toBe(true);
    const flood = Array.from({ length: 12 }, (_, i) => auth.verify('a', `wrong ${i}`, `client ${i}`));
    await settle();
    expect(comparisons()).toBe(1 + 8);
    // Which 4 are refused depends on when each one's cache key is ready (WebCrypto answers in any order).
    expect(busy).toHaveLength(4);
    expect(new Set(busy).size).toBe(4);
    // The scraper's remembered success needs no check: answered while all 8 still wait.
    expect(await auth.verify('a', 'right', 'scraper')).toBe(true);
    expect(comparisons()).toBe(9);
    releaseAll();
    expect(new Set(await Promise.all(flood))).toEqual(new Set([false]));
  });

  it('answers a refusal 0.5 s after deciding it by default (checked, unchecked, remembered or unknown user alike), a success at once', async () => {
    const delays: number[] = [];
    const auth = new BasicAuthUsers({ a: HASH }, { maxChecksPerClient: 1, delay: async (ms) => void delays.push(ms) });
    expect(await auth.verify('a', 'right')).toBe(true);
    expect(delays).toEqual([]);
    expect(await auth.verify('a', 'wrong')).toBe(false); // checked
    expect(await auth.verify('a', 'wrong')).toBe(false); // remembered
    expect(await auth.verify('nobody', 'x')).toBe(false); // unknown user
    expect(await Promise.all([auth.verify('a', 'w1', 'c'), auth.verify('a', 'w2', 'c')])).toEqual([false, false]); // one unchecked
    expect(delays).toEqual([500, 500, 500, 500, 500]);
  });

  it('a client whose check ends gets back one place, not all of them', async () => {
    const releases: (() => void)[] = [];
    let comparisons = 0;
    const compare = async () => {
      comparisons++;
      await new Promise<void>((resolve) => releases.push(resolve));
      return false;
    };
    const auth = new BasicAuthUsers({ a: HASH }, { failureDelayMs: 0, compare });
    const first = auth.verify('a', 'w1', 'c');
    void auth.verify('a', 'w2', 'c');
    await settle();
    expect(comparisons).toBe(2);
    releases.shift()!();
    await first;
    // One of its two checks ended: one place back, so of two more only one is checked.
    void auth.verify('a', 'w3', 'c');
    void auth.verify('a', 'w4', 'c');
    await settle();
    expect(comparisons).toBe(3);
    releases.splice(0).forEach((release) => release());
  });

  it('requests that name no client share one allowance, the same as client ""', async () => {
    const { auth, comparisons, busy, releaseAll } = gated({ maxChecksPerClient: 1 });
    void auth.verify('a', 'w1');
    void auth.verify('a', 'w2', '');
    await settle();
    expect(comparisons()).toBe(1);
    expect(busy).toEqual(['']);
    releaseAll();
  });

  it('the bounds are options', async () => {
    const { auth, comparisons, releaseAll } = gated({ maxChecks: 3, maxChecksPerClient: 5 });
    void Promise.all(Array.from({ length: 5 }, (_, i) => auth.verify('a', `wrong ${i}`, 'one')));
    await settle();
    expect(comparisons()).toBe(3);
    releaseAll();
  });

  it('with failureDelayMs 0 a refusal is not delayed at all, and by default it waits on a real timer', async () => {
    const delays: number[] = [];
    const none = new BasicAuthUsers({ a: HASH }, { failureDelayMs: 0, delay: async (ms) => void delays.push(ms), compare: async () => false });
    expect(await none.verify('a', 'wrong')).toBe(false);
    expect(delays).toEqual([]);
    vi.useFakeTimers({ toFake: ['setTimeout'] });
    try {
      const timed = new BasicAuthUsers({ a: HASH }, { compare: async () => false });
      let done = false;
      const answer = timed.verify('a', 'wrong').then((ok) => ((done = true), ok));
      // The check is decided first (a digest, the comparison); then the delay's timer is set.
      while (vi.getTimerCount() === 0) await new Promise((r) => setImmediate(r));
      await vi.advanceTimersByTimeAsync(499);
      expect(done).toBe(false);
      await vi.advanceTimersByTimeAsync(1);
      expect(await answer).toBe(false);
    } finally {
      vi.useRealTimers();
    }
  });

  it('a reloaded config keeps what the old one remembered where the hash is unchanged, and nothing where it changed', async () => {
    let compared = 0;
    const compare = async (password: string, hash: string) => (compared++, bcrypt.compare(password, hash));
    const old = new BasicAuthUsers({ a: HASH, b: HASH }, { compare, failureDelayMs: 0 });
    expect(await old.verify('a', 'right')).toBe(true);
    expect(await old.verify('b', 'right')).toBe(true);
    expect(await old.verify('a', 'wrong')).toBe(false);
    compared = 0;
    const other = bcrypt.hashSync('right', 4);
    const next = new BasicAuthUsers({ a: HASH, b: other }, { compare, inheritFrom: old, failureDelayMs: 0 });
    expect(await next.verify('a', 'right')).toBe(true);
    expect(await next.verify('a', 'wrong')).toBe(false);
    expect(compared).toBe(0);
    expect(await next.verify('b', 'right')).toBe(true);
    expect(compared).toBe(1);
  });
});
