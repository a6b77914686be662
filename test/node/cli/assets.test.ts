/**
 * src/node/cli/assets.ts in this process: `loki-metrics assets` finds the monitoring/ directory of
 * its own package from its own file (the source here; the built and installed layouts as temp
 * packages), lists it, and says clearly when it cannot. test/package/pack.test.ts runs it from an
 * installed tarball.
 */
import { readdirSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { assetFiles, assets, assetsDir } from '../../../src/node/cli/assets.js';
import { main } from '../../../src/node/cli/main.js';
import { USAGE } from '../../../src/node/cli/usage.js';
import { capture } from './io.js';

const REPO = fileURLToPath(new URL('../../..', import.meta.url)).replace(/\/$/, '');
const MONITORING = join(REPO, 'monitoring');

const temps: string[] = [];
afterEach(async () => {
  await Promise.all(temps.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

/** A temp directory holding `files` (path → content; a path ending in `/` is an empty directory). */
async function tree(files: Record<string, string>): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'loki-test-assets-'));
  temps.push(root);
  for (const [path, content] of Object.entries(files)) {
    if (path.endsWith('/')) await mkdir(join(root, path), { recursive: true });
    else {
      await mkdir(dirname(join(root, path)), { recursive: true });
      await writeFile(join(root, path), content);
    }
  }
  return root;
}

const ours = JSON.stringify({ name: 'loki-metrics', version: '0.0.0' });

/** The files under `dir`, listed another way (Node's recursive readdir), sorted. */
const filesUnder = (dir: string) =>
  readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((path) => !statSync(join(dir, path)).isDirectory())
    .sort();

async function run(args: string[]) {
  const c = capture();
  const code = await main(args, c.io);
  return { code, out: c.out(), err: c.err() };
}

describe('assetsDir', () => {
  it('finds this repository\'s monitoring/ from the module itself, with the rules and their tests in it', () => {
    expect(assetsDir()).toBe(MONITORING);
    const files = assetFiles(assetsDir());
    for (const file of ['prometheus/loki-alerts.yml', 'prometheus/loki-recording.yml', 'prometheus/loki-alerts.test.yml', 'prometheus/scrape-plain.yml']) {
      expect(files).toContain(file);
    }
  });

  it('finds monitoring/ next to package.json from the built module (dist/src/node/cli/) and inside a project\'s node_modules', async () => {
    const built = await tree({ 'package.json': ours, 'dist/src/node/cli/assets.js': '', 'monitoring/prometheus/loki-alerts.yml': '' });
    expect(assetsDir(join(built, 'dist/src/node/cli/assets.js'))).toBe(join(built, 'monitoring'));
    // An installed copy: the nearest loki-metrics package wins, not a project around it with its own monitoring/.
    const project = await tree({
      'package.json': JSON.stringify({ name: 'my-app' }),
      'monitoring/mine.yml': '',
      'node_modules/loki-metrics/package.json': ours,
      'node_modules/loki-metrics/dist/src/node/cli/assets.js': '',
      'node_modules/loki-metrics/monitoring/prometheus/loki-alerts.yml': '',
    });
    expect(assetsDir(join(project, 'node_modules/loki-metrics/dist/src/node/cli/assets.js'))).toBe(join(project, 'node_modules/loki-metrics/monitoring'));
  });

  it('says where it looked when there is no loki-metrics package above, or it has no monitoring/ directory', async () => {
    const other = await tree({ 'package.json': JSON.stringify({ name: 'someone-else' }), 'a/b.js': '', 'monitoring/x.yml': '' });
    expect(() => assetsDir(join(other, 'a/b.js'))).toThrow(new Error(`cannot find the monitoring assets: no loki-metrics package.json above ${join(other, 'a/b.js')}`));
    const bare = await tree({ 'package.json': ours, 'dist/x.js': '' });
    expect(() => assetsDir(join(bare, 'dist/x.js'))).toThrow(new Error(`the monitoring assets are missing: ${join(bare, 'monitoring')} is not a directory (reinstall loki-metrics)`));
    const file = await tree({ 'package.json': ours, 'dist/x.js': '', monitoring: 'not a directory' });
    expect(() => assetsDir(join(file, 'dist/x.js'))).toThrow(new Error(`the monitoring assets are missing: ${join(file, 'monitoring')} is not a directory (reinstall loki-metrics)`));
  });
});

describe('assetFiles', () => {
  it('lists every file at any depth relative to the directory, sorted by code unit, without the directories', async () => {
    const root = await tree({ 'b.yml': '', 'a.yml': '', 'a/z/deep.yml': '', 'a/x.yml': '', 'B.yml': '', 'empty/': '', 'a/empty/': '' });
    expect(assetFiles(root)).toEqual(['B.yml', 'a.yml', 'a/x.yml', 'a/z/deep.yml', 'b.yml']);
  });

  it('lists every file of this repository\'s monitoring/', () => {
    expect(assetFiles(MONITORING)).toEqual(filesUnder(MONITORING));
  });
});

describe('loki-metrics assets', () => {
  it('prints the directory\'s absolute path, one line, exit 0', async () => {
    expect(await run(['assets'])).toEqual({ code: 0, out: `${MONITORING}\n`, err: '' });
  });

  it('prints the files in it with --list, one per line, relative to it', async () => {
    const listed = await run(['assets', '--list']);
    expect(listed).toEqual({ code: 0, out: filesUnder(MONITORING).map((file) => `${file}\n`).join(''), err: '' });
    expect(listed.out.split('\n')).toContain('prometheus/loki-alerts.yml');
  });

  it('prints its help for --help, -h and help assets', async () => {
    for (const args of [['assets', '--help'], ['assets', '-h'], ['help', 'assets'], ['assets', '--list', '--help']]) {
      expect(await run(args)).toEqual({ code: 0, out: USAGE.assets, err: '' });
    }
  });

  it('names only files that exist in its help\'s examples', () => {
    const named = [...USAGE.assets!.matchAll(/"\$\(loki-metrics assets\)\/([^"]+)"/g)].map((m) => m[1]!);
    expect(named.length).toBeGreaterThan(0);
    for (const file of named) expect(assetFiles(MONITORING)).toContain(file);
  });

  it('refuses arguments and unknown flags with exit 2 and a pointer to its help', async () => {
    const pointer = `Run 'loki-metrics assets --help' for usage.\n`;
    expect(await run(['assets', 'prometheus'])).toEqual({ code: 2, out: '', err: expect.stringMatching(/^loki-metrics: Unexpected argument 'prometheus'/) });
    expect((await run(['assets', 'prometheus'])).err.endsWith(pointer)).toBe(true);
    expect(await run(['assets', '--path'])).toEqual({ code: 2, out: '', err: expect.stringMatching(/^loki-metrics: Unknown option '--path'/) });
    expect(await run(['assets', '--list=yes'])).toMatchObject({ code: 2, out: '' });
  });

  it('fails with the reason, printing nothing on stdout, when its package has no monitoring/', async () => {
    const bare = await tree({ 'package.json': ours, 'dist/src/node/cli/assets.js': '' });
    const c = capture();
    await expect(assets([], c.io, join(bare, 'dist/src/node/cli/assets.js'))).rejects.toThrow(`${join(bare, 'monitoring')} is not a directory`);
    await expect(assets(['--list'], c.io, join(bare, 'dist/src/node/cli/assets.js'))).rejects.toThrow('the monitoring assets are missing');
    expect(c.out()).toBe('');
  });
});
