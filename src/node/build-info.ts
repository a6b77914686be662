/**
 * What `loki_exporter_build_info` says about a Node build beyond the version: the git commit it was
 * built from and the Node.js version running it. Read once at startup (synchronously, a few small
 * files), never on a scrape.
 */
import { readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface NodeBuildInfo {
  /** `LOKI_METRICS_REVISION`, else the commit of the package's own git checkout, else `unknown`. */
  readonly revision: string;
  /** `process.version`, e.g. `v20.20.2`. */
  readonly nodeversion: string;
}

export interface NodeBuildInfoOptions {
  /** The package root to look for `.git` in. Default: found from this module (`packageRoot()`). */
  readonly root?: string;
}

/** The package's name in its package.json: how its root is recognised. */
const PACKAGE_NAME = 'loki-metrics';

/** A full commit id: SHA-1, or SHA-256 in a repository using that object format. */
const COMMIT = /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/;
/** A branch or other ref HEAD may point to (no `..`: it is joined onto a path). */
const REF = /^refs\/(?!.*\.\.)[\w./-]+$/;

/** `AppDeps.build` for the Node entry: `createApp({ ..., build: nodeBuildInfo(process.env) })`. */
export function nodeBuildInfo(
  env: Readonly<Record<string, string | undefined>> = process.env,
  options: NodeBuildInfoOptions = {},
): NodeBuildInfo {
  const given = env.LOKI_METRICS_REVISION?.trim();
  let revision = given !== undefined && given !== '' ? given : undefined;
  if (revision === undefined) {
    const root = options.root ?? packageRoot();
    revision = root !== undefined ? gitRevision(root) : undefined;
  }
  return { revision: revision ?? 'unknown', nodeversion: process.version };
}

/**
 * The directory of the nearest package.json named loki-metrics at or above `from` (this module by
 * default: `dist/src/node/` when built, `src/node/` when tests run the source), or undefined.
 */
export function packageRoot(from: string = fileURLToPath(import.meta.url)): string | undefined {
  let dir = dirname(from);
  for (;;) {
    const text = readOptional(join(dir, 'package.json'));
    if (text !== undefined) {
      try {
        if ((JSON.parse(text) as { name?: unknown } | null)?.name === PACKAGE_NAME) return dir;
      } catch {
        // not JSON: not ours, keep looking
      }
    }
    const parent = dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

/**
 * The full commit id checked out in `root`, read from the repository's files (no git binary):
 * `.git/HEAD`, detached or `ref: refs/...` followed to the loose ref file or `packed-refs`. A `.git`
 * file (`gitdir: ...`, a linked worktree or submodule) is followed, and a worktree's refs are read
 * from its common directory. Undefined when `root` is no checkout or anything is unreadable.
 */
export function gitRevision(root: string): string | undefined {
  try {
    let gitDir = join(root, '.git');
    if (statSync(gitDir).isFile()) {
      const pointer = /^gitdir:\s*(.+?)\s*$/m.exec(readFileSync(gitDir, 'utf8'))?.[1];
      if (pointer === undefined) return undefined;
      gitDir = resolve(root, pointer);
    }
    const head = readFileSync(join(gitDir, 'HEAD'), 'utf8').trim();
    if (COMMIT.test(head)) return head;
    const ref = /^ref:\s*(\S+)$/.exec(head)?.[1];
    if (ref === undefined || !REF.test(ref)) return undefined;
    const common = readOptional(join(gitDir, 'commondir'))?.trim();
    const refsDir = common ? resolve(gitDir, common) : gitDir;
    const loose = readOptional(join(refsDir, ref))?.trim();
    if (loose !== undefined && COMMIT.test(loose)) return loose;
    for (const line of (readOptional(join(refsDir, 'packed-refs')) ?? '').split('\n')) {
      const [commit, name] = line.trim().split(' ');
      if (name === ref && commit !== undefined && COMMIT.test(commit)) return commit;
    }
  } catch {
    // no checkout, or not one we can read
  }
  return undefined;
}

function readOptional(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}
