import { describe, expect, it } from 'vitest';
import { SnapshotCache } from '../src/snapshot-cache.js';
import type { Snapshot } from '../src/snapshot.js';

const snapshot = (takenAtMs: number): Snapshot => ({ samples: new Map(), sources: [], up: true, takenAtMs });

describe('SnapshotCache', () => {
  it('serves one refresh to concurrent callers and for the TTL, then refreshes', async () => {
    let now = 1_000;
    let refreshes = 0;
    let release!: () => void;
    const cache = new SnapshotCache(
      () => {
        refreshes++;
        return new Promise<Snapshot>((resolve) => (release = () => resolve(snapshot(now))));
      },
      2_000,
      () => now,
    );
    const pending = [cache.get(), cache.get(), cache.get()];
    release();
    const got = await Promise.all(pending);
    expect(refreshes).toBe(1);
    expect(new Set(got).size).toBe(1);
    now += 1_999;
    expect(await cache.get()).toBe(got[0]);
    now += 1;
    const next = cache.get();
    release();
    expect(await next).not.toBe(got[0]);
    expect(refreshes).toBe(2);
  });

  it('serves a snapshot taken this very millisecond, and refreshes when the clock jumps backwards', async () => {
    let now = 5_000;
    let refreshes = 0;
    const cache = new SnapshotCache(() => (refreshes++, Promise.resolve(snapshot(now))), 2_000, () => now);
    expect(cache.last).toBeUndefined();
    const first = await cache.get();
    expect(cache.last).toBe(first);
    expect(await cache.get()).toBe(first); // age 0
    expect(refreshes).toBe(1);
    now -= 1; // the clock went back: the cached snapshot is from the "future", so expired
    const fresh = await cache.get();
    expect(refreshes).toBe(2);
    expect(fresh.takenAtMs).toBe(4_999);
    expect(cache.last).toBe(fresh);
  });

  it('lets the next caller retry after a failed refresh', async () => {
    let fail = true;
    const cache = new SnapshotCache(() => (fail ? Promise.reject(new Error('x')) : Promise.resolve(snapshot(0))), 2_000, () => 0);
    await expect(cache.get()).rejects.toThrow('x');
    fail = false;
    await expect(cache.get()).resolves.toMatchObject({ up: true });
  });
});

describe('SnapshotCache without single-flight (Workers)', () => {
  it('gives each concurrent caller its own refresh, still serving finished snapshots for the TTL', async () => {
    let now = 0;
    let refreshes = 0;
    const cache = new SnapshotCache(() => (refreshes++, Promise.resolve(snapshot(now))), 2_000, () => now, false);
    await Promise.all([cache.get(), cache.get(), cache.get()]);
    expect(refreshes).toBe(3);
    now += 1_000;
    await cache.get();
    expect(refreshes).toBe(3);
    now += 1_000;
    await cache.get();
    expect(refreshes).toBe(4);
  });

  it('keeps the newest snapshot when refreshes finish out of order (a later finisher of the same time wins)', async () => {
    const resolvers: ((s: Snapshot) => void)[] = [];
    const cache = new SnapshotCache(() => new Promise<Snapshot>((resolve) => resolvers.push(resolve)), 2_000, () => 0, false);
    const [a, b, c] = [cache.get(), cache.get(), cache.get()];
    const newer = snapshot(10);
    const older = snapshot(5);
    const sameTime = snapshot(10);
    resolvers[1]!(newer);
    expect(await b).toBe(newer);
    resolvers[0]!(older);
    expect(await a).toBe(older); // its caller still gets what it asked for…
    expect(cache.last).toBe(newer); // …but the cache keeps the newer one
    resolvers[2]!(sameTime);
    expect(await c).toBe(sameTime);
    expect(cache.last).toBe(sameTime);
  });
});
