/**
 * Whose registry the Node fleet follows: as ssh treats its files, one owned by the user the
 * exporter runs as, or by root; never one owned by another user. Where the platform has no user
 * ids (no `process.getuid`), ownership is not checked. Real registry files, chown'ed (as root).
 */
import { chown, mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { NodeProjectCatalog } from '../../src/node/projects.js';
import { cleanTrees, materialize, tempDir } from '../support/loki-tree.js';

const catalogs: NodeProjectCatalog[] = [];
const getuid = Object.getOwnPropertyDescriptor(process, 'getuid');
afterEach(async () => {
  vi.restoreAllMocks();
  if (getuid) Object.defineProperty(process, 'getuid', getuid);
  for (const catalog of catalogs.splice(0)) catalog.close();
  await cleanTrees();
});

/** A project directory as Loki Mode has it: `<path>/.loki`. */
async function project(root: string, name: string): Promise<string> {
  const path = join(root, name);
  await mkdir(path, { recursive: true });
  await rename(await materialize('running', { pid: 'alive', mtimeMs: Date.now() }), join(path, '.loki'));
  return path;
}

/** Writes a registry of one project (as Loki Mode does: a temp file renamed over it), owned by `uid`. */
async function writeRegistry(file: string, path: string, name: string, uid: number): Promise<void> {
  await writeFile(`${file}.tmp`, JSON.stringify({ version: '1.0', projects: { [name]: { id: name, path, name, alias: null, status: 'running' } } }));
  await chown(`${file}.tmp`, uid, uid);
  await rename(`${file}.tmp`, file);
}

async function setup() {
  const root = await tempDir('loki-fleet-');
  const file = join(root, 'projects.json');
  const path = await project(root, 'app');
  const logs: string[] = [];
  let catalog: NodeProjectCatalog | undefined;
  // Made at the first look, when the registry has been written.
  const names = async () => {
    if (!catalog) catalogs.push((catalog = new NodeProjectCatalog({ named: [], maxProjects: 100, log: (l) => logs.push(l), checkEveryMs: 0, storeOptions: { watch: false }, registryFile: file })));
    return (await catalog.list()).map((p) => p.name);
  };
  return { file, path, logs, names };
}

// chown needs root; the test suite runs as root in CI and in the container.
describe.runIf(process.getuid?.() === 0)('the registry owner check', () => {
  it('follows a registry owned by the exporter\'s user or by root, and refuses one owned by anyone else', async () => {
    vi.spyOn(process, 'getuid').mockReturnValue(1000);
    const { file, path, logs, names } = await setup();
    await writeRegistry(file, path, 'mine', 1000);
    expect(await names()).toEqual(['mine']);
    await writeRegistry(file, path, 'roots', 0);
    expect(await names()).toEqual(['roots']);
    await writeRegistry(file, path, 'theirs', 65534);
    expect(await names()).toEqual(['roots']);
    expect(logs).toEqual([`loki-metrics: project registry ${file}: owned by another user (uid 65534); keeping the 1 projects read before`]);
    await writeRegistry(file, path, 'mine-again', 1000);
    expect(await names()).toEqual(['mine-again']);
  });

  it('checks no owner where the platform has no user ids', async () => {
    Object.defineProperty(process, 'getuid', { value: undefined, configurable: true, writable: true, enumerable: true });
    const { file, path, logs, names } = await setup();
    await writeRegistry(file, path, 'anyones', 65534);
    expect(await names()).toEqual(['anyones']);
    expect(logs).toEqual([]);
  });
});
