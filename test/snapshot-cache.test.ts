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
});
