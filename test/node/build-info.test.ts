/**
 * The build's revision and Node version: from LOKI_METRICS_REVISION, else read from a git checkout's
 * files (loose ref, packed-refs, detached HEAD, linked worktree), else `unknown`. Fake checkouts in
 * temp directories, and this repository's own checkout against `git rev-parse HEAD`.
 */
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { gitRevision, nodeBuildInfo, packageRoot } from '../../src/node/build-info.js';

const A = 'a'.repeat(40);
const B = '0123456789abcdef0123456789abcdef01234567';
const C = 'c0ffee'.padEnd(40, '9');

const temps: string[] = [];
afterEach(async () => {
  await Promise.all(temps.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

/** A package root named loki-metrics with the given files (paths relative to it). */
async function packageWith(files: Record<string, string>, name = 'loki-metrics'): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'loki-build-info-'));
  temps.push(root);
  await writeFile(join(root, 'package.json'), JSON.stringify({ name, version: '0.1.0' }));
  for (const [path, text] of Object.entries(files)) {
    await mkdir(dirname(join(root, path)), { recursive: true });
    await writeFile(join(root, path), text);
  }
  return root;
}

describe('nodeBuildInfo', () => {
  it('reads a branch from its loose ref file', async () => {
    const root = await packageWith({ '.git/HEAD': 'ref: refs/heads/main\n', '.git/refs/heads/main': `${A}\n` });
    expect(nodeBuildInfo({}, { root })).toEqual({ revision: A, nodeversion: process.version });
  });

  it('reads a branch from packed-refs (skipping the header, other refs and peeled lines)', async () => {
    const root = await packageWith({
      '.git/HEAD': 'ref: refs/heads/feature/self-metrics\n',
      '.git/packed-refs': `# pack-refs with: peeled fully-peeled sorted \n${A} refs/heads/main\n${B} refs/heads/feature/self-metrics\n${C} refs/tags/v0.1.0\n^${A}\n`,
    });
    expect(nodeBuildInfo({}, { root }).revision).toBe(B);
  });

  it('prefers the loose ref to a stale packed one, as git does', async () => {
    const root = await packageWith({
      '.git/HEAD': 'ref: refs/heads/main\n',
      '.git/refs/heads/main': `${C}\n`,
      '.git/packed-refs': `${A} refs/heads/main\n`,
    });
    expect(nodeBuildInfo({}, { root }).revision).toBe(C);
  });

  it('reads a detached HEAD', async () => {
    const root = await packageWith({ '.git/HEAD': `${B}\n` });
    expect(nodeBuildInfo({}, { root }).revision).toBe(B);
  });

  it('follows a .git file to a linked worktree, whose branches live in the common directory', async () => {
    const root = await packageWith({
      '.git': 'gitdir: main-repo/.git/worktrees/wt\n',
      'main-repo/.git/worktrees/wt/HEAD': 'ref: refs/heads/wt\n',
      'main-repo/.git/worktrees/wt/commondir': '../..\n',
      'main-repo/.git/refs/heads/wt': `${A}\n`,
    });
    expect(gitRevision(root)).toBe(A);
    expect(nodeBuildInfo({}, { root }).revision).toBe(A);
  });

  it('takes LOKI_METRICS_REVISION (trimmed) over the checkout; an empty one does not count', async () => {
    const root = await packageWith({ '.git/HEAD': 'ref: refs/heads/main\n', '.git/refs/heads/main': `${A}\n` });
    expect(nodeBuildInfo({ LOKI_METRICS_REVISION: ` ${B} ` }, { root }).revision).toBe(B);
    expect(nodeBuildInfo({ LOKI_METRICS_REVISION: 'v0.1.0-rc1' }, { root }).revision).toBe('v0.1.0-rc1');
    expect(nodeBuildInfo({ LOKI_METRICS_REVISION: '  ' }, { root }).revision).toBe(A);
  });

  it('says unknown without a checkout, or when HEAD leads nowhere valid', async () => {
    const cases: Record<string, string>[] = [
      {},
      { '.git/HEAD': 'ref: refs/heads/main\n' }, // a branch with no commit yet
      { '.git/HEAD': 'ref: refs/heads/main\n', '.git/refs/heads/main': 'not a hash\n' },
      { '.git/HEAD': 'garbage\n' },
      { '.git/HEAD': 'ref: refs/../../secret\n', secret: `${A}\n` }, // never leaves the git directory
      { '.git': 'not a gitdir line\n' },
    ];
    for (const files of cases) {
      const root = await packageWith(files);
      expect(nodeBuildInfo({}, { root }).revision, JSON.stringify(files)).toBe('unknown');
    }
    expect(nodeBuildInfo({ LOKI_METRICS_REVISION: '' }, { root: join(tmpdir(), 'no-such-dir-loki') })).toEqual({ revision: 'unknown', nodeversion: process.version });
  });

  it('takes a commit id of exactly 40 (SHA-1) or 64 (SHA-256) lower-case hex digits, nothing around it', async () => {
    const sha256 = '0123456789abcdef'.repeat(4);
    const valid = [B, sha256, 'f'.repeat(40), '9'.repeat(64)];
    const invalid = [B.slice(1), `${B}a`, sha256.slice(1), `${sha256}0`, `g${B.slice(1)}`, `x${B}`, `${B}x`, B.toUpperCase(), `${B} ${B}`, '0'.repeat(50), 'a', '0', 'z'.repeat(40), 'z'.repeat(64)];
    for (const head of valid) {
      const root = await packageWith({ '.git/HEAD': `${head}\n` });
      expect(nodeBuildInfo({}, { root }).revision, head).toBe(head);
    }
    for (const head of invalid) {
      const root = await packageWith({ '.git/HEAD': `${head}\n` });
      expect(nodeBuildInfo({}, { root }).revision, head).toBe('unknown');
    }
    // the same rule for a branch's loose ref and packed-refs line
    for (const commit of invalid) {
      const loose = await packageWith({ '.git/HEAD': 'ref: refs/heads/main\n', '.git/refs/heads/main': `${commit}\n` });
      expect(gitRevision(loose), commit).toBeUndefined();
      const packed = await packageWith({ '.git/HEAD': 'ref: refs/heads/main\n', '.git/packed-refs': `${commit} refs/heads/main\n` });
      expect(gitRevision(packed), commit).toBeUndefined();
    }
    const packed64 = await packageWith({ '.git/HEAD': 'ref: refs/heads/main\n', '.git/packed-refs': `${sha256} refs/heads/main\n` });
    expect(gitRevision(packed64)).toBe(sha256);
  });

  it('reads HEAD as git does: `ref:` then any spacing, one ref under refs/ of name characters, nothing after it', async () => {
    const accepted = ['ref: refs/heads/main', 'ref:refs/heads/main', 'ref:\trefs/heads/main', 'ref:   refs/heads/main'];
    for (const head of accepted) {
      const root = await packageWith({ '.git/HEAD': `${head}\n`, '.git/refs/heads/main': `${A}\n` });
      expect(gitRevision(root), head).toBe(A);
    }
    // branch names with dots, dashes, underscores and slashes
    for (const ref of ['refs/heads/release-1.2', 'refs/heads/feature/x_y', 'refs/remotes/origin/main']) {
      const root = await packageWith({ '.git/HEAD': `ref: ${ref}\n`, [`.git/${ref}`]: `${C}\n` });
      expect(gitRevision(root), ref).toBe(C);
    }
    // each of these would find a commit if it were followed
    const refused: [string, Record<string, string>][] = [
      ['see ref: refs/heads/main', { '.git/refs/heads/main': `${A}\n` }],
      ['ref: refs/heads/main extra', { '.git/refs/heads/main': `${A}\n` }],
      ['ref: heads/main', { '.git/heads/main': `${A}\n` }],
      ['ref: xrefs/heads/main', { '.git/xrefs/heads/main': `${A}\n` }],
      ['ref: refs/heads/ma@in', { '.git/refs/heads/ma@in': `${A}\n` }],
      ['ref: refs/heads/../../../secret', { secret: `${A}\n` }],
      ['ref: refs/../refs/heads/main', { '.git/refs/heads/main': `${A}\n` }],
    ];
    for (const [head, files] of refused) {
      const root = await packageWith({ '.git/HEAD': `${head}\n`, ...files });
      expect(gitRevision(root), head).toBeUndefined();
    }
  });

  it('reads files written with CRLF line endings or trailing blanks (a checkout copied from Windows)', async () => {
    const crlf = await packageWith({
      '.git/HEAD': 'ref: refs/heads/main\r\n',
      '.git/packed-refs': `# pack-refs with: peeled fully-peeled sorted\r\n${C} refs/heads/other\r\n${B} refs/heads/main\r\n`,
    });
    expect(gitRevision(crlf)).toBe(B);
    const blanks = await packageWith({ '.git/HEAD': 'ref: refs/heads/main  \n', '.git/packed-refs': `${B} refs/heads/main  \n` });
    expect(gitRevision(blanks)).toBe(B);
    const loose = await packageWith({ '.git/HEAD': `  ${A}\r\n` });
    expect(gitRevision(loose)).toBe(A);
  });

  it('follows a `.git` file written by hand: with or without the space, trailing blanks or CRLF, no final newline, an absolute path', async () => {
    const worktree = { 'main-repo/.git/worktrees/wt/HEAD': 'ref: refs/heads/wt\n', 'main-repo/.git/worktrees/wt/commondir': '../..\n', 'main-repo/.git/refs/heads/wt': `${A}\n` };
    for (const pointer of ['gitdir: main-repo/.git/worktrees/wt', 'gitdir:main-repo/.git/worktrees/wt', 'gitdir: main-repo/.git/worktrees/wt \t ', 'gitdir: main-repo/.git/worktrees/wt\r\n', 'gitdir: main-repo/.git/worktrees/wt\n']) {
      const root = await packageWith({ '.git': pointer, ...worktree });
      expect(gitRevision(root), JSON.stringify(pointer)).toBe(A);
    }
    const absolute = await packageWith(worktree);
    const elsewhere = await packageWith({ '.git': `gitdir: ${join(absolute, 'main-repo/.git/worktrees/wt')}\n` });
    expect(gitRevision(elsewhere)).toBe(A);
    // a line that only mentions gitdir is no pointer
    const mention = await packageWith({ '.git': 'see gitdir: main-repo/.git/worktrees/wt\n', ...worktree });
    expect(gitRevision(mention)).toBeUndefined();
    // a submodule's .git file names a git directory without commondir: its refs are its own
    const submodule = await packageWith({ '.git': 'gitdir: modules/sub\n', 'modules/sub/HEAD': 'ref: refs/heads/main\n', 'modules/sub/refs/heads/main': `${B}\n` });
    expect(gitRevision(submodule)).toBe(B);
    // an empty commondir names no other directory
    const emptyCommon = await packageWith({ '.git/HEAD': 'ref: refs/heads/main\n', '.git/commondir': '\n', '.git/refs/heads/main': `${C}\n` });
    expect(gitRevision(emptyCommon)).toBe(C);
  });

  it('reads LOKI_METRICS_REVISION from the process environment by default', () => {
    vi.stubEnv('LOKI_METRICS_REVISION', 'deployed-from-ci');
    try {
      expect(nodeBuildInfo()).toEqual({ revision: 'deployed-from-ci', nodeversion: process.version });
    } finally {
      vi.unstubAllEnvs();
    }
  });

  it('reports the running Node version', () => {
    expect(nodeBuildInfo({}).nodeversion).toMatch(/^v\d+\.\d+\.\d+/);
    expect(nodeBuildInfo({}).nodeversion).toBe(process.version);
  });

  it('in this repository, without the variable, reports the commit checked out (as git rev-parse HEAD does)', () => {
    const root = fileURLToPath(new URL('../..', import.meta.url));
    const git = spawnSync('git', ['rev-parse', '--show-toplevel', 'HEAD'], { cwd: root, encoding: 'utf8' });
    // Not a git checkout (a source tarball), or a copy inside one (Stryker's sandbox): nothing to compare with.
    const [top, head] = git.stdout.trim().split('\n');
    if (git.status !== 0 || resolve(top!) !== resolve(root)) return;
    expect(nodeBuildInfo({}).revision).toBe(head);
  });
});

describe('packageRoot', () => {
  it('walks up to the package.json named loki-metrics, past packages of other names', async () => {
    const root = await packageWith({ 'dist/src/node/build-info.js': '', 'dist/src/package.json': JSON.stringify({ name: 'other' }), 'bad/package.json': '{' });
    expect(packageRoot(join(root, 'dist/src/node/build-info.js'))).toBe(root);
    expect(packageRoot(join(root, 'bad/x.js'))).toBe(root);
  });

  it('finds this repository from the module itself (tests run the source under src/node/)', () => {
    expect(packageRoot()).toBe(fileURLToPath(new URL('../..', import.meta.url)).replace(/\/$/, ''));
  });

  it('is undefined where no loki-metrics package is above', async () => {
    const root = await packageWith({ 'a/b.js': '' }, 'someone-else');
    expect(packageRoot(join(root, 'a/b.js'))).toBeUndefined();
  });
});
