/**
 * The Node fleet's catalog on real files: named directories, Loki Mode's project registry (its real
 * format, written atomically as Loki Mode does), projects appearing and going away without a
 * restart, and every kind of bad registry: each with one log line and the other projects served.
 */
import { mkdir, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config.js';
import { NodeProjectCatalog } from '../../src/node/projects.js';
import { startFleetServer, type RunningServer } from '../../src/node/server.js';
import { cleanTrees, materialize, tempDir } from '../support/loki-tree.js';

const catalogs: NodeProjectCatalog[] = [];
const servers: RunningServer[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) await server.close();
  for (const catalog of catalogs.splice(0)) catalog.close();
  await cleanTrees();
});

/** A project directory as Loki Mode has it: `<path>/.loki`. */
async function project(root: string, name: string, fixture = 'running'): Promise<string> {
  const path = join(root, name);
  await mkdir(path, { recursive: true });
  await rename(await materialize(fixture, { pid: 'alive', mtimeMs: Date.now() }), join(path, '.loki'));
  return path;
}

type Entry = { path: string; name?: string | null; alias?: string | null; status?: string; id?: string };
/** Writes the registry as Loki Mode's registry.py does: JSON to a temp file, renamed over it. */
async function writeRegistry(file: string, entries: Entry[] | string): Promise<void> {
  const text =
    typeof entries === 'string'
      ? entries
      : JSON.stringify({ version: '1.0', projects: Object.fromEntries(entries.map((e, i) => [e.id ?? `id${i}`, { id: e.id ?? `id${i}`, alias: null, status: 'running', ...e }])) }, null, 2);
  await writeFile(`${file}.tmp`, text);
  await rename(`${file}.tmp`, file);
}

function catalogOf(options: Partial<ConstructorParameters<typeof NodeProjectCatalog>[0]> & { registryFile?: string }, logs: string[]) {
  const catalog = new NodeProjectCatalog({ named: [], maxProjects: 100, log: (l) => logs.push(l), checkEveryMs: 0, storeOptions: { watch: false }, ...options });
  catalogs.push(catalog);
  return catalog;
}

describe('NodeProjectCatalog', () => {
  it('follows the registry: projects appear and go away without a restart, their stores closed', async () => {
    const root = await tempDir('loki-fleet-');
    const file = join(root, 'projects.json');
    const a = await project(root, 'app-a');
    const b = await project(root, 'app-b', 'paused');
    await writeRegistry(file, [{ path: a, name: 'app-a' }]);
    const logs: string[] = [];
    const catalog = catalogOf({ registryFile: file, named: [{ name: 'fixed', dir: join(a, '.loki') }] }, logs);
    expect((await catalog.list()).map((p) => p.name)).toEqual(['fixed', 'app-a']);
    const storeA = catalog.store('app-a');
    expect(storeA).toBeDefined();
    expect(catalog.store('app-a')).toBe(storeA);
    await writeRegistry(file, [{ path: b, name: 'app-b' }]);
    expect((await catalog.list()).map((p) => p.name)).toEqual(['fixed', 'app-b']);
    expect(catalog.store('app-a')).toBeUndefined();
    expect((await catalog.store('app-b')!.read()).available).toBe(true);
    expect(logs).toEqual([]);
  });

  it('names projects by alias, name or directory, valid and unique', async () => {
    const root = await tempDir('loki-fleet-');
    const file = join(root, 'projects.json');
    const one = await project(join(root, 'x'), 'web');
    const two = await project(join(root, 'y'), 'web');
    const three = await project(root, 'My Project!');
    const four = await project(root, 'aliased');
    await writeRegistry(file, [
      { path: one, name: 'web', id: 'aaaaaa111111' },
      { path: two, name: 'web', id: 'bbbbbb222222' },
      { path: three, name: null },
      { path: four, name: 'aliased', alias: 'short' },
    ]);
    const catalog = catalogOf({ registryFile: file }, []);
    expect((await catalog.list()).map((p) => p.name)).toEqual(['web', 'web-bbbbbb', 'My-Project-', 'short']);
  });

  it('keeps the last good list when the registry is torn or not JSON, and says so once', async () => {
    const root = await tempDir('loki-fleet-');
    const file = join(root, 'projects.json');
    const a = await project(root, 'a');
    await writeRegistry(file, [{ path: a, name: 'a' }]);
    const logs: string[] = [];
    const catalog = catalogOf({ registryFile: file }, logs);
    expect((await catalog.list()).map((p) => p.name)).toEqual(['a']);
    for (const [text, expected] of [
      ['{"version": "1.0", "projects": {"x": {"pa', /not valid JSON/],
      ['[1, 2, 3]', /projects/],
      ['{"projects": []}', /Expected an object of projects/],
      ['', /empty file/],
    ] as const) {
      logs.length = 0;
      await writeRegistry(file, text);
      expect((await catalog.list()).map((p) => p.name)).toEqual(['a']);
      await catalog.list();
      expect(logs).toHaveLength(1);
      expect(logs[0]).toMatch(expected);
      expect(logs[0]).toMatch(/keeping the 1 projects read before$/);
    }
  });

  it('leaves out entries whose path is missing, relative, a file or a symlink, with one line each', async () => {
    const root = await tempDir('loki-fleet-');
    const file = join(root, 'projects.json');
    const good = await project(root, 'good');
    await writeFile(join(root, 'plain-file'), 'x');
    await symlink(good, join(root, 'link'));
    await writeRegistry(file, [
      { path: join(root, 'nope'), name: 'missing' },
      { path: 'relative/dir', name: 'relative' },
      { path: join(root, 'plain-file'), name: 'file' },
      { path: join(root, 'link'), name: 'link' },
      { path: good, name: 'good' },
    ]);
    const withoutPath = JSON.stringify({ version: '1.0', projects: { k: { name: 'nopath' } } });
    const logs: string[] = [];
    const catalog = catalogOf({ registryFile: file }, logs);
    expect((await catalog.list()).map((p) => p.name)).toEqual(['good']);
    expect(logs).toEqual([
      expect.stringMatching(/project "missing" left out: its directory does not exist$/),
      expect.stringMatching(/project "relative" left out: its path is not absolute$/),
      expect.stringMatching(/project "file" left out: its path is not a directory$/),
      expect.stringMatching(/project "link" left out: its path is a symlink$/),
    ]);
    logs.length = 0;
    await writeRegistry(file, withoutPath);
    expect(await catalog.list()).toEqual([]);
    expect(logs).toEqual([expect.stringMatching(/entry "k" left out: path: /)]);
  });

  it('serves at most LOKI_MAX_PROJECTS of thousands, running ones first, and says so', async () => {
    const root = await tempDir('loki-fleet-');
    const file = join(root, 'projects.json');
    const dir = await project(root, 'shared');
    const entries: Entry[] = Array.from({ length: 3000 }, (_, i) => ({ path: dir, name: `p${i}`, status: i === 2999 ? 'running' : 'stopped' }));
    await writeRegistry(file, entries);
    const logs: string[] = [];
    const catalog = catalogOf({ registryFile: file, maxProjects: 5 }, logs);
    const names = (await catalog.list()).map((p) => p.name);
    expect(names).toEqual(['p2999', 'p0', 'p1', 'p2', 'p3']);
    expect(logs).toEqual([expect.stringMatching(/lists 3000 usable projects; serving 5 \(LOKI_MAX_PROJECTS=5\)$/)]);
  });

  it('a registry that does not exist yet is no error; it is picked up when it appears', async () => {
    const root = await tempDir('loki-fleet-');
    const file = join(root, 'projects.json');
    const logs: string[] = [];
    const catalog = catalogOf({ registryFile: file }, logs);
    expect(await catalog.list()).toEqual([]);
    expect(logs).toEqual([expect.stringMatching(/does not exist \(yet\)/)]);
    await writeRegistry(file, [{ path: await project(root, 'late'), name: 'late' }]);
    expect((await catalog.list()).map((p) => p.name)).toEqual(['late']);
  });

  it('over HTTP: discovery follows the registry, and an unreadable project is loki_up 0 for itself only', async () => {
    const root = await tempDir('loki-fleet-');
    const file = join(root, 'projects.json');
    const a = await project(root, 'a');
    const b = await project(root, 'b', 'paused');
    await writeRegistry(file, [{ path: a, name: 'a' }]);
    const catalog = catalogOf({ registryFile: file }, []);
    const server = await startFleetServer({ ...parseConfig({ LOKI_METRICS_CACHE_SECONDS: '0' }), port: 0 }, catalog, () => undefined);
    servers.push(server);
    const origin = new URL(server.url).origin;
    const targets = async () => ((await (await fetch(`${origin}/targets`)).json()) as { labels: { project: string } }[]).map((t) => t.labels.project);
    const up = async (name: string) => (await (await fetch(`${origin}/metrics?project=${name}`)).text()).match(/^loki_up (\d)$/m)?.[1];
    expect(await targets()).toEqual(['a']);
    await writeRegistry(file, [{ path: a, name: 'a' }, { path: b, name: 'b' }]);
    expect(await targets()).toEqual(['a', 'b']);
    expect([await up('a'), await up('b')]).toEqual(['1', '1']);
    await rename(join(b, '.loki'), join(b, 'moved'));
    expect([await up('a'), await up('b')]).toEqual(['1', '0']);
    await rm(join(b, 'moved'), { recursive: true });
    await writeRegistry(file, [{ path: a, name: 'a' }]);
    expect(await targets()).toEqual(['a']);
    expect((await fetch(`${origin}/metrics?project=b`)).status).toBe(404);
    const health = (await (await fetch(`${origin}/health?project=a`)).json()) as { projects: number; watch: { mode: string } };
    expect(health.projects).toBe(1);
  });
});
