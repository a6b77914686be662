/**
 * The fleet's per-project apps, bounded by what their stores retain (`maxRetainedBytes`): at the
 * bound exactly nothing goes, and stores without `retainedBytes` (they count as nothing) and
 * catalogs without `forget` (both optional) are served like any other. Real stores on real trees.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config.js';
import { createFleetApp, type ProjectCatalog } from '../src/fleet.js';
import { FsStateStore } from '../src/stores/fs.js';
import type { StateStore } from '../src/stores/store.js';
import { CountingStore } from './support/counting-store.js';
import { cleanTrees, materialize } from './support/loki-tree.js';

const stores: StateStore[] = [];
afterEach(async () => {
  await Promise.all(stores.splice(0).map((s) => s.close?.()));
  await cleanTrees();
});

/** A real store that counts its refreshes, and says it retains `bytes` when given (else has no `retainedBytes`). */
async function storeOf(bytes?: number): Promise<CountingStore> {
  const inner = new FsStateStore(await materialize('running', { pid: 'alive', mtimeMs: Date.now() }), { watch: false });
  const store = new CountingStore(inner);
  if (bytes !== undefined) Object.assign(store, { retainedBytes: () => bytes });
  stores.push(store);
  return store;
}

/** A catalog of fixed projects, without the optional `health` and `forget`. */
function plainCatalog(projects: Record<string, StateStore>): ProjectCatalog {
  return { list: async () => Object.keys(projects).map((name) => ({ name })), store: (name) => projects[name] };
}

const config = parseConfig({ LOKI_METRICS_CACHE_SECONDS: '60' });

describe('the apps kept under maxRetainedBytes', () => {
  it('keeps every app while what is retained is exactly the bound', async () => {
    const projects = { a: await storeOf(500), b: await storeOf(500), c: await storeOf(0) };
    const forgotten: string[] = [];
    const catalog = { ...plainCatalog(projects), forget: (name: string) => void forgotten.push(name) };
    const app = createFleetApp({ catalog, config, log: () => undefined, maxRetainedBytes: 1000 });
    for (const name of ['a', 'b', 'c', 'a', 'b']) expect((await app.request(`/metrics?project=${name}`)).status).toBe(200);
    expect(forgotten).toEqual([]);
    expect([projects.a.reads, projects.b.reads, projects.c.reads]).toEqual([1, 1, 1]); // no app made twice
  });

  it('serves stores without retainedBytes as retaining nothing: none is dropped for them', async () => {
    const projects = { a: await storeOf(), b: await storeOf(), c: await storeOf() };
    const app = createFleetApp({ catalog: plainCatalog(projects), config, log: () => undefined, maxRetainedBytes: 1 });
    for (const name of ['a', 'b', 'c', 'a', 'b', 'c']) expect({ name, status: (await app.request(`/metrics?project=${name}`)).status }).toEqual({ name, status: 200 });
    expect([projects.a.reads, projects.b.reads, projects.c.reads]).toEqual([1, 1, 1]);
  });

  it('drops the oldest apps, with or without retainedBytes, from a catalog that has no forget', async () => {
    const projects = { plain: await storeOf(), big: await storeOf(2000), next: await storeOf() };
    const app = createFleetApp({ catalog: plainCatalog(projects), config, log: () => undefined, maxRetainedBytes: 1000 });
    for (const name of ['plain', 'big']) expect((await app.request(`/metrics?project=${name}`)).status).toBe(200);
    // 2,000 kept when `next` comes: `plain` (the oldest, retaining nothing) goes, then `big`.
    expect((await app.request('/metrics?project=next')).status).toBe(200);
    expect((await app.request('/metrics?project=next')).status).toBe(200);
    for (const name of ['plain', 'big']) expect((await app.request(`/metrics?project=${name}`)).status).toBe(200);
    expect([projects.plain.reads, projects.big.reads, projects.next.reads]).toEqual([2, 2, 1]);
  });
});
