/**
 * The Node fleet's catalog on real files: named directories, Loki Mode's project registry (its real
 * format, written atomically as Loki Mode does), projects appearing and going away without a
 * restart, and every kind of bad registry: each with one log line and the other projects served.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import { chmod, chown, mkdir, readFile, rename, rm, symlink, truncate, unlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { parseConfig } from '../../src/config.js';
import { NodeProjectCatalog } from '../../src/node/projects.js';
import { startFleetServer, type RunningServer } from '../../src/node/server.js';
import { cleanTrees, materialize, tempDir } from '../support/loki-tree.js';

const catalogs: NodeProjectCatalog[] = [];
const servers: RunningServer[] = [];
afterEach(async () => {
  vi.restoreAllMocks();
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

  it('never blocks on a FIFO put at the registry path, nor follows a link there (issue 19, item 4)', async () => {
    const root = await tempDir('loki-fleet-');
    const file = join(root, 'projects.json');
    const a = await project(root, 'app-a');
    await writeRegistry(file, [{ path: a, name: 'app-a' }]);
    const logs: string[] = [];
    const catalog = catalogOf({ registryFile: file, named: [{ name: 'fixed', dir: join(a, '.loki') }] }, logs);
    expect((await catalog.list()).map((p) => p.name)).toEqual(['fixed', 'app-a']);
    await unlink(file);
    execFileSync('mkfifo', [file]);
    // A blocking open would never return here (nothing writes to the FIFO): the test would time out.
    expect((await catalog.list()).map((p) => p.name)).toEqual(['fixed', 'app-a']);
    expect(logs.at(-1)).toMatch(/projects\.json: not a regular file; keeping the 1 projects read before$/);
    await unlink(file);
    const elsewhere = join(root, 'elsewhere.json');
    await writeRegistry(elsewhere, []);
    await symlink(elsewhere, file);
    expect((await catalog.list()).map((p) => p.name)).toEqual(['fixed', 'app-a']);
    expect(logs.at(-1)).toMatch(/projects\.json: is a symbolic link \(not followed\); keeping the 1 projects read before$/);
  });

  it('checks a project path as written (a trailing / or /. is no way round the symlink check), and the registry as ssh would (issue 19, item 10)', async () => {
    const root = await tempDir('loki-fleet-');
    const file = join(root, 'projects.json');
    const real = await project(root, 'real');
    await symlink(real, join(root, 'link'));
    await writeRegistry(file, [{ path: real, name: 'real' }, { path: `${join(root, 'link')}/`, name: 'slash' }, { path: `${join(root, 'link')}/.`, name: 'dot' }]);
    const logs: string[] = [];
    const catalog = catalogOf({ registryFile: file }, logs);
    expect((await catalog.list()).map((p) => p.name)).toEqual(['real']);
    expect(logs.filter((l) => l.includes('its path is a symlink'))).toHaveLength(2);
    // Writable by others: refused, the projects read before kept.
    await writeRegistry(file, [{ path: real, name: 'changed' }]);
    await chmod(file, 0o666);
    expect((await catalog.list()).map((p) => p.name)).toEqual(['real']);
    expect(logs.at(-1)).toMatch(/projects\.json: writable by group or others \(mode 666; chmod go-w it\); keeping the 1 projects read before$/);
    await chmod(file, 0o644);
    expect((await catalog.list()).map((p) => p.name)).toEqual(['changed']);
    // Owned by another user (root's own files are fine, as ssh allows).
    if (process.getuid?.() === 0) {
      await writeRegistry(file, [{ path: real, name: 'theirs' }]);
      await chown(file, 65534, 65534);
      expect((await catalog.list()).map((p) => p.name)).toEqual(['changed']);
      expect(logs.at(-1)).toMatch(/owned by another user \(uid 65534\)/);
    }
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

  it('makes any label a valid project name: runs of bad characters, leading junk, nothing left, too long', async () => {
    const root = await tempDir('loki-fleet-');
    const file = join(root, 'projects.json');
    const dir = await project(root, 'p');
    await writeRegistry(file, [
      { path: dir, alias: 'My  Project: v2' },
      { path: dir, alias: '..hidden' },
      { path: dir, alias: '***' },
      { path: dir, alias: 'x'.repeat(100) },
    ]);
    const catalog = catalogOf({ registryFile: file }, []);
    expect((await catalog.list()).map((p) => p.name)).toEqual(['My-Project-v2', 'hidden', 'project', 'x'.repeat(64)]);
  });

  it('a name already taken gets the id, else the path hash; then -2, -3; fixed names count too; never over 64 characters', async () => {
    const root = await tempDir('loki-fleet-');
    const file = join(root, 'projects.json');
    const dirs = await Promise.all(['a', 'b', 'c', 'd', 'e', 'f', 'g'].map((n) => project(root, n)));
    // Loki Mode's id is the first 12 hex digits of the path's SHA-256: the fallback when an id is not hex.
    const hash6 = (path: string) => createHash('sha256').update(path).digest('hex').slice(0, 6);
    const long = 'L'.repeat(70);
    await writeRegistry(file, [
      { path: dirs[0]!, name: 'web', id: 'aaaaaa111111' },
      { path: dirs[1]!, name: 'web', id: 'aaaaaa222222' },
      { path: dirs[2]!, name: 'web', id: 'aaaaaa333333' },
      { path: dirs[3]!, name: 'web', id: 'abcdef-tail' },
      { path: dirs[4]!, name: 'web', id: 'lead-abcdef' },
      { path: dirs[5]!, alias: long, id: 'cccccc111111' },
      { path: dirs[6]!, alias: long, id: 'dddddd222222' },
    ]);
    const catalog = catalogOf({ registryFile: file, named: [{ name: 'web', dir: join(dirs[0]!, '.loki') }] }, []);
    const names = (await catalog.list()).map((p) => p.name);
    expect(names).toEqual([
      'web',
      'web-aaaaaa',
      'web-aaaaaa-2',
      'web-aaaaaa-3',
      `web-${hash6(dirs[3]!)}`,
      `web-${hash6(dirs[4]!)}`,
      'L'.repeat(64),
      `${'L'.repeat(57)}-dddddd`,
    ]);
    expect(new Set(names).size).toBe(names.length);
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
      // The same line again in this registry version is not repeated.
      { path: join(root, 'nope-too'), name: 'missing' },
      { path: 'relative/dir', name: 'relative' },
      { path: join(root, 'plain-file'), name: 'file' },
      { path: join(root, 'link'), name: 'link' },
      { path: join(root, 'plain-file', 'below'), name: 'under-a-file' },
      { path: join(root, 'n'.repeat(300)), name: 'too-long' },
      { path: good, name: 'good' },
    ]);
    const withoutPath = JSON.stringify({ version: '1.0', projects: { k: { name: 'nopath' } } });
    const logs: string[] = [];
    const catalog = catalogOf({ registryFile: file }, logs);
    expect((await catalog.list()).map((p) => p.name)).toEqual(['good']);
    expect(logs).toEqual([
      `loki-metrics: project registry ${file}: project "missing" left out: its directory does not exist`,
      expect.stringMatching(/project "relative" left out: its path is not absolute$/),
      expect.stringMatching(/project "file" left out: its path is not a directory$/),
      expect.stringMatching(/project "link" left out: its path is a symlink$/),
      expect.stringMatching(/project "under-a-file" left out: its directory does not exist$/),
      expect.stringMatching(/project "too-long" left out: its directory cannot be read \(ENAMETOOLONG\)$/),
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
    expect(logs).toEqual([
      expect.stringMatching(/lists 3000 usable projects; serving 5 \(LOKI_MAX_PROJECTS=5: the named ones, then running ones first\); left out: "p4", "p5", "p6", "p7", "p8" and 2990 more$/),
    ]);
  });

  it('the fixed projects take their share of LOKI_MAX_PROJECTS first, and are all served even beyond it', async () => {
    const root = await tempDir('loki-fleet-');
    const file = join(root, 'projects.json');
    const dir = await project(root, 'shared');
    await writeRegistry(file, Array.from({ length: 5 }, (_, i) => ({ path: dir, name: `r${i}` })));
    const logs: string[] = [];
    const catalog = catalogOf({ registryFile: file, named: [{ name: 'fixed', dir: join(dir, '.loki') }], maxProjects: 3 }, logs);
    expect((await catalog.list()).map((p) => p.name)).toEqual(['fixed', 'r0', 'r1']);
    expect(logs).toEqual([`loki-metrics: project registry ${file} lists 5 usable projects; serving 2 (LOKI_MAX_PROJECTS=3: the named ones, then running ones first); left out: "r2", "r3", "r4"`]);
    const crowded = catalogOf(
      {
        registryFile: file,
        named: [
          { name: 'one', dir: join(dir, '.loki') },
          { name: 'two', dir: join(dir, '.loki') },
        ],
        maxProjects: 1,
      },
      [],
    );
    expect((await crowded.list()).map((p) => p.name)).toEqual(['one', 'two']);
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

describe('NodeProjectCatalog without a registry', () => {
  it('serves the default directory first, then the named ones, and logs nothing', async () => {
    const root = await tempDir('loki-fleet-');
    const main = join(await project(root, 'main'), '.loki');
    const other = join(await project(root, 'other', 'paused'), '.loki');
    const logs: string[] = [];
    const catalog = catalogOf({ defaultDir: main, named: [{ name: 'other', dir: other }] }, logs);
    expect(catalog.defaultProject).toBe('default');
    expect(await catalog.list()).toEqual([{ name: 'default' }, { name: 'other' }]);
    expect(catalog.projects()).toEqual([
      { name: 'default', dir: main },
      { name: 'other', dir: other },
    ]);
    expect((await catalog.store('default')!.read()).available).toBe(true);
    expect(catalog.store('nope')).toBeUndefined();
    const named = catalogOf({ named: [{ name: 'other', dir: other }] }, logs);
    expect(named.defaultProject).toBeUndefined();
    expect(await named.list()).toEqual([{ name: 'other' }]);
    expect(logs).toEqual([]);
  });
});

describe('NodeProjectCatalog reading the registry file', () => {
  it('checks the registry at most once a second by default, and at most once per checkEveryMs', async () => {
    const root = await tempDir('loki-fleet-');
    const file = join(root, 'projects.json');
    const dir = await project(root, 'p');
    await writeRegistry(file, [{ path: dir, name: 'before' }]);
    let now = 10_000;
    vi.spyOn(performance, 'now').mockImplementation(() => now);
    const names = async (catalog: NodeProjectCatalog) => (await catalog.list()).map((p) => p.name);
    const byDefault = new NodeProjectCatalog({ named: [], maxProjects: 100, log: () => undefined, registryFile: file });
    catalogs.push(byDefault);
    const every5s = catalogOf({ registryFile: file, checkEveryMs: 5_000 }, []);
    expect(await names(byDefault)).toEqual(['before']);
    expect(await names(every5s)).toEqual(['before']);
    await writeRegistry(file, [{ path: dir, name: 'after' }]);
    now += 999;
    expect(await names(byDefault)).toEqual(['before']);
    now += 1;
    expect(await names(byDefault)).toEqual(['after']);
    now += 3_999;
    expect(await names(every5s)).toEqual(['before']);
    now += 1;
    expect(await names(every5s)).toEqual(['after']);
  });

  it('sees a registry edited in place: same inode, same size, a new modification time', async () => {
    const root = await tempDir('loki-fleet-');
    const file = join(root, 'projects.json');
    const dir = await project(root, 'p');
    await writeRegistry(file, [{ path: dir, name: 'aaaa' }]);
    const catalog = catalogOf({ registryFile: file }, []);
    expect((await catalog.list()).map((p) => p.name)).toEqual(['aaaa']);
    const text = await readFile(file, 'utf8');
    await writeFile(file, text.replaceAll('"aaaa"', '"bbbb"'));
    const later = Date.now() / 1000 + 5.123456;
    await utimes(file, later, later);
    expect((await catalog.list()).map((p) => p.name)).toEqual(['bbbb']);
  });

  it('a registry that is a directory or too large keeps the last good list and says why', async () => {
    const root = await tempDir('loki-fleet-');
    const file = join(root, 'projects.json');
    const dir = await project(root, 'a');
    await writeRegistry(file, [{ path: dir, name: 'a' }]);
    const logs: string[] = [];
    const catalog = catalogOf({ registryFile: file }, logs);
    expect((await catalog.list()).map((p) => p.name)).toEqual(['a']);
    await rm(file);
    await mkdir(file);
    expect((await catalog.list()).map((p) => p.name)).toEqual(['a']);
    expect(logs).toEqual([`loki-metrics: project registry ${file}: not a regular file; keeping the 1 projects read before`]);
    logs.length = 0;
    await rm(file, { recursive: true });
    await writeFile(file, '');
    await truncate(file, 8 * 1024 * 1024 + 1);
    expect((await catalog.list()).map((p) => p.name)).toEqual(['a']);
    expect(logs).toEqual([`loki-metrics: project registry ${file}: larger than 8388608 bytes; keeping the 1 projects read before`]);
  });

  it('reads a registry of exactly 8 MiB, the largest it accepts', async () => {
    const root = await tempDir('loki-fleet-');
    const file = join(root, 'projects.json');
    const dir = await project(root, 'big');
    const json = JSON.stringify({ version: '1.0', projects: { k: { path: dir, name: 'big' } } });
    await writeFile(file, json + ' '.repeat(8 * 1024 * 1024 - json.length));
    const logs: string[] = [];
    const catalog = catalogOf({ registryFile: file }, logs);
    expect((await catalog.list()).map((p) => p.name)).toEqual(['big']);
    expect(logs).toEqual([]);
  });

  it('a registry that cannot be reached for another reason after being missing is reported with that reason', async () => {
    const root = await tempDir('loki-fleet-');
    const file = join(root, 'dashboard', 'projects.json');
    const logs: string[] = [];
    const catalog = catalogOf({ registryFile: file }, logs);
    expect(await catalog.list()).toEqual([]);
    expect(logs).toEqual([`loki-metrics: project registry ${file} does not exist (yet); serving the projects it lists once it does`]);
    logs.length = 0;
    // ~/.loki/dashboard is a file: the registry can never be there.
    await writeFile(join(root, 'dashboard'), 'x');
    expect(await catalog.list()).toEqual([]);
    expect(logs).toEqual([`loki-metrics: project registry ${file}: ENOTDIR; keeping the 0 projects read before`]);
  });

  // sysfs files say 4096 bytes and hold a few: the same as a registry truncated while it is read.
  const shortFile = '/sys/devices/system/cpu/online';
  it.skipIf(!existsSync(shortFile))('reads a file shorter than its size said up to its end', async () => {
    const logs: string[] = [];
    const catalog = catalogOf({ registryFile: shortFile }, logs);
    expect(await catalog.list()).toEqual([]);
    expect(logs).toEqual([`loki-metrics: project registry ${shortFile}: not valid JSON (torn mid-write?); keeping the 0 projects read before`]);
  });

  it('closes the registry file after every read', async () => {
    const root = await tempDir('loki-fleet-');
    const file = join(root, 'projects.json');
    const dir = await project(root, 'p');
    const catalog = catalogOf({ registryFile: file }, []);
    // Synchronous from here on: nothing else in this process opens or closes a file meanwhile.
    const before = readdirSync('/proc/self/fd').length;
    for (let i = 0; i < 5; i++) {
      writeFileSync(`${file}.tmp`, JSON.stringify({ projects: { k: { path: dir, name: `p${i}` } } }));
      renameSync(`${file}.tmp`, file);
      expect(catalog.projects().map((p) => p.name)).toEqual([`p${i}`]);
    }
    expect(readdirSync('/proc/self/fd').length).toBe(before);
  });
});

/** The `running` fixture has one watched file-set directory (metrics/efficiency): one watch per open store. */
describe('NodeProjectCatalog stores and watches', () => {
  const enospc = () => {
    const error = new Error('ENOSPC: System limit for number of file watchers reached') as NodeJS.ErrnoException;
    error.code = 'ENOSPC';
    throw error;
  };

  it('keeps a listed project store across registry changes; closes those of removed and moved projects, and all on close()', async () => {
    const root = await tempDir('loki-fleet-');
    const file = join(root, 'projects.json');
    const a = await project(root, 'a');
    const b = await project(root, 'b');
    const moved = await project(root, 'a-moved', 'paused');
    await writeRegistry(file, [
      { path: a, name: 'a' },
      { path: b, name: 'b' },
    ]);
    const catalog = catalogOf({ registryFile: file, storeOptions: { watch: true } }, []);
    const storeA = catalog.store('a')!;
    await storeA.read();
    await catalog.store('b')!.read();
    expect(catalog.watchStatus()).toEqual({ inotify: 2, polling: 0 });
    expect(catalog.health()).toEqual({ projects: 2, watch: { mode: 'inotify', inotifyWatches: 2, pollingDirectories: 0 } });

    await writeRegistry(file, [{ path: a, name: 'a' }]);
    expect(catalog.watchStatus()).toEqual({ inotify: 2, polling: 0 });
    expect(catalog.projects()).toHaveLength(1);
    // b's store went with b; a's is the same one, its watch kept.
    expect(catalog.watchStatus()).toEqual({ inotify: 1, polling: 0 });
    expect(catalog.store('a')).toBe(storeA);

    await writeRegistry(file, [{ path: moved, name: 'a' }]);
    expect(catalog.projects()).toHaveLength(1);
    expect(catalog.watchStatus()).toEqual({ inotify: 0, polling: 0 });
    const storeMoved = catalog.store('a')!;
    expect(storeMoved).not.toBe(storeA);
    expect(catalog.projects()).toEqual([{ name: 'a', dir: join(moved, '.loki') }]);
    expect((await storeMoved.read()).available).toBe(true);
    expect(catalog.watchStatus()).toEqual({ inotify: 1, polling: 0 });

    catalog.close();
    expect(catalog.watchStatus()).toEqual({ inotify: 0, polling: 0 });
  });

  it('says `polling` in health when watches could not be made, counting every open store', async () => {
    const root = await tempDir('loki-fleet-');
    const a = join(await project(root, 'a'), '.loki');
    const b = join(await project(root, 'b'), '.loki');
    const watchFn = enospc as unknown as NonNullable<NonNullable<ConstructorParameters<typeof NodeProjectCatalog>[0]['storeOptions']>['watchFn']>;
    const catalog = catalogOf(
      {
        named: [
          { name: 'a', dir: a },
          { name: 'b', dir: b },
        ],
        storeOptions: { watch: true, watchFn },
      },
      [],
    );
    await catalog.store('a')!.read();
    await catalog.store('b')!.read();
    expect(catalog.health()).toEqual({ projects: 2, watch: { mode: 'polling', inotifyWatches: 0, pollingDirectories: 2 } });
  });
});
