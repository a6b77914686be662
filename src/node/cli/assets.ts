/**
 * `loki-metrics assets`: where the monitoring assets shipped with this package are (monitoring/:
 * alert and recording rules and their promtool tests, scrape configs, dashboards, the nginx proxy,
 * web configs), so that an installed package's recipes can be copied or loaded:
 * `cp -r "$(loki-metrics assets)" ~/loki-monitoring`.
 */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { packageRoot } from '../build-info.js';
import { parse, type Io } from './common.js';
import { USAGE } from './usage.js';

/** The assets' directory, next to package.json in the repository and in an installed package. */
const ASSETS = 'monitoring';

/**
 * The absolute path of the monitoring/ directory of the package `from` belongs to (this module by
 * default: dist/src/node/cli/ when built or installed, src/node/cli/ when tests run the source).
 * Throws, saying where it looked, when there is no such package or the directory is missing.
 */
export function assetsDir(from: string = fileURLToPath(import.meta.url)): string {
  const root = packageRoot(from);
  if (root === undefined) throw new Error(`cannot find the monitoring assets: no loki-metrics package.json above ${from}`);
  const dir = join(root, ASSETS);
  let isDirectory = false;
  try {
    isDirectory = statSync(dir).isDirectory();
  } catch {
    // missing or unreadable: said below
  }
  if (!isDirectory) throw new Error(`the monitoring assets are missing: ${dir} is not a directory (reinstall loki-metrics)`);
  return dir;
}

/** Every file under `dir` (not the directories), relative to it with `/` separators, sorted. */
export function assetFiles(dir: string): string[] {
  // Sorted by UTF-16 code unit (sort's default), not by locale: the same order on every machine.
  return walk(dir, '').sort();
}

function walk(dir: string, prefix: string): string[] {
  const files: string[] = [];
  for (const entry of readdirSync(join(dir, prefix), { withFileTypes: true })) {
    const path = prefix === '' ? entry.name : `${prefix}/${entry.name}`;
    if (entry.isDirectory()) files.push(...walk(dir, path));
    else files.push(path);
  }
  return files;
}

export async function assets(args: string[], io: Io, from?: string): Promise<number> {
  const { values } = parse(args, { list: { type: 'boolean' } });
  if (values.help) return io.out(USAGE.assets as string), 0;
  const dir = assetsDir(from);
  io.out(values.list ? assetFiles(dir).map((file) => `${file}\n`).join('') : `${dir}\n`);
  return 0;
}
