import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';
import { VERSION } from '../src/version.js';

const json = (path: string) => JSON.parse(readFileSync(new URL(path, import.meta.url), 'utf8')) as Record<string, unknown>;

it('reports the package version in loki_exporter_build_info', () => {
  const pkg = json('../package.json') as { version: string };
  expect(VERSION).toBe(pkg.version);
});

it('agrees with the lock file, which npm ci installs from', () => {
  const lock = json('../package-lock.json') as { version: string; packages: Record<string, { version?: string }> };
  expect(VERSION).toBe(lock.version);
  expect(VERSION).toBe(lock.packages['']?.version);
});
