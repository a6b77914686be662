/**
 * LOKI_MAX_PROJECTS on the registry's projects: which ones the cap keeps (those under way, status
 * `running` or `active`, first, then the registry's order) and how the one log line names the
 * ones left out (five by name, then how many more). Real registry files and project trees.
 */
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { NodeProjectCatalog } from '../../src/node/projects.js';
import { cleanTrees, materialize, tempDir } from '../support/loki-tree.js';

const catalogs: NodeProjectCatalog[] = [];
afterEach(async () => {
  for (const catalog of catalogs.splice(0)) catalog.close();
  await cleanTrees();
});

/** A registry listing one real project directory under several names, with their statuses. */
async function registryOf(entries: readonly { name: string; status: string }[]): Promise<string> {
  const root = await tempDir('loki-fleet-');
  const path = join(root, 'shared');
  await mkdir(path);
  await rename(await materialize('running', { pid: 'alive', mtimeMs: Date.now() }), join(path, '.loki'));
  const file = join(root, 'projects.json');
  const projects = Object.fromEntries(entries.map((e, i) => [`id${i}`, { id: `id${i}`, path, name: e.name, alias: null, status: e.status }]));
  await writeFile(file, JSON.stringify({ version: '1.0', projects }));
  return file;
}

function catalogOf(registryFile: string, maxProjects: number, logs: string[]) {
  const catalog = new NodeProjectCatalog({ named: [], maxProjects, log: (l) => logs.push(l), checkEveryMs: 0, storeOptions: { watch: false }, registryFile });
  catalogs.push(catalog);
  return catalog;
}

describe('the cap on registry projects', () => {
  it('keeps projects under way first, `active` as well as `running`, each kind in the registry\'s order', async () => {
    const file = await registryOf([
      { name: 'idle', status: 'stopped' },
      { name: 'busy', status: 'active' },
      { name: 'done', status: 'completed' },
      { name: 'run', status: 'running' },
      { name: 'also-busy', status: 'active' },
    ]);
    expect((await catalogOf(file, 2, []).list()).map((p) => p.name)).toEqual(['busy', 'run']);
    expect((await catalogOf(file, 4, []).list()).map((p) => p.name)).toEqual(['busy', 'run', 'also-busy', 'idle']);
  });

  it('names five left out, and says how many more only beyond five', async () => {
    const six = Array.from({ length: 6 }, (_, i) => ({ name: `p${i}`, status: 'stopped' }));
    const seven = [...six, { name: 'p6', status: 'stopped' }];
    for (const [entries, tail] of [[six, ''], [seven, ' and 1 more']] as const) {
      const logs: string[] = [];
      const file = await registryOf(entries);
      expect((await catalogOf(file, 1, logs).list()).map((p) => p.name)).toEqual(['p0']);
      expect(logs).toEqual([
        `loki-metrics: project registry ${file} lists ${entries.length} usable projects; serving 1 (LOKI_MAX_PROJECTS=1: the named ones, then running ones first); left out: "p1", "p2", "p3", "p4", "p5"${tail}`,
      ]);
    }
  });
});
