/**
 * The Node support policy (docs/development.md, "Node versions") held to what enforces it: the
 * majors CI runs the suite on (.ci/node-versions), package.json's `engines` and `@types/node`, the
 * `engines` of every package installed (package-lock.json), and the Node running this suite.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import semver from 'semver';
import { describe, expect, it } from 'vitest';

const ROOT = new URL('../..', import.meta.url).pathname.replace(/\/dist\/$/, '/');
const read = (path: string): string => readFileSync(join(ROOT, path), 'utf8');

interface LockEntry {
  readonly version?: string;
  readonly dev?: boolean;
  readonly optional?: boolean;
  readonly engines?: { readonly node?: string } | readonly string[];
  readonly os?: readonly string[];
  readonly cpu?: readonly string[];
}

/** Whether npm installs the entry here: platform packages (sharp's Windows builds) are skipped elsewhere. */
const installedHere = (entry: LockEntry): boolean =>
  (entry.os === undefined || entry.os.includes(process.platform)) && (entry.cpu === undefined || entry.cpu.includes(process.arch));

/** A lock entry's Node range; some old packages give `engines` as an array, which npm ignores. */
const nodeRange = (entry: LockEntry): string | undefined => (Array.isArray(entry.engines) ? undefined : (entry.engines as { node?: string } | undefined)?.node);

/** The supported majors, from the table of docs/development.md's "Node versions". */
function policyMajors(): number[] {
  const doc = read('docs/development.md');
  const section = doc.slice(doc.indexOf('## Node versions'), doc.indexOf('\n## ', doc.indexOf('## Node versions') + 1));
  return [...section.matchAll(/^\| (\d+)\s+\| [^|]+\| (\d{4}-\d{2}-\d{2})\s+\|$/gm)].map((row) => Number(row[1]));
}

/** The releases CI runs the suite on, in the file's order. */
function ciReleases(): string[] {
  return read('.ci/node-versions').split('\n').map((line) => line.trim()).filter((line) => line !== '' && !line.startsWith('#'));
}

const pkg = JSON.parse(read('package.json')) as { engines: { node: string }; devDependencies: Record<string, string> };
const lock = JSON.parse(read('package-lock.json')) as { packages: Record<string, LockEntry> };

describe('the supported Node majors', () => {
  const majors = policyMajors();
  const releases = ciReleases();

  it('are the table\'s rows, and CI runs exactly one release of each, a valid version', () => {
    expect(majors.length).toBeGreaterThan(0);
    expect(releases.every((release) => semver.valid(release) === release)).toBe(true);
    expect(releases.map((release) => semver.major(release)).sort()).toEqual([...majors].sort());
  });

  it('are what `engines` admits: it starts in the oldest, admits every release CI runs, and refuses Node 20', () => {
    const range = pkg.engines.node;
    expect(semver.validRange(range)).not.toBeNull();
    expect(semver.minVersion(range)!.major).toBe(Math.min(...majors));
    for (const release of releases) expect(semver.satisfies(release, range), `${release} in ${range}`).toBe(true);
    expect(semver.satisfies('20.20.2', range)).toBe(false);
  });

  it('typecheck against the oldest: @types/node is its major', () => {
    expect(semver.major(pkg.devDependencies['@types/node']!)).toBe(Math.min(...majors));
  });

  it('are admitted by every installed package\'s own `engines`: the toolchain moves with them', () => {
    const refused: string[] = [];
    let checked = 0;
    for (const [path, entry] of Object.entries(lock.packages)) {
      const node = nodeRange(entry);
      if (path === '' || node === undefined || !installedHere(entry)) continue;
      checked++;
      for (const release of releases) if (!semver.satisfies(release, node)) refused.push(`${path}@${entry.version} (${node}) refuses ${release}`);
    }
    expect(checked).toBeGreaterThan(50); // the whole lockfile was read, not an empty one
    expect(refused).toEqual([]);
  });

  it('cover no version a runtime dependency refuses: its `engines` admits all that ours does (a user\'s Node may be any)', () => {
    const runtime = Object.entries(lock.packages).filter(([path, entry]) => path.startsWith('node_modules/') && entry.dev !== true && nodeRange(entry) !== undefined);
    expect(runtime.map(([path]) => path)).toContain('node_modules/@hono/node-server');
    for (const [path, entry] of runtime) expect(semver.subset(pkg.engines.node, nodeRange(entry)!), path).toBe(true);
  });

  it('include the Node running this suite (CI runs it on each of them; no other is supported)', () => {
    expect(majors).toContain(semver.major(process.version));
  });
});
