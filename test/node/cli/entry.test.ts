/**
 * src/node/cli.ts, the `bin` entry, imported in this process: it runs main with this process's
 * arguments (without node and the script), writes to its streams and sets its exit code.
 */
import { afterEach, beforeEach, expect, it, vi } from 'vitest';
import { USAGE } from '../../../src/node/cli/usage.js';
import { VERSION } from '../../../src/version.js';

const argv = process.argv;
let written: { stdout: string; stderr: string };

beforeEach(() => {
  vi.spyOn(process.stdout, 'write').mockImplementation((text) => ((written.stdout += String(text)), true));
  vi.spyOn(process.stderr, 'write').mockImplementation((text) => ((written.stderr += String(text)), true));
});

afterEach(() => {
  vi.restoreAllMocks();
  process.argv = argv;
  process.exitCode = undefined;
});

async function runEntry(...args: string[]) {
  vi.resetModules(); // a fresh evaluation: the entry runs when it is imported
  written = { stdout: '', stderr: '' };
  process.argv = [process.execPath, '/usr/local/bin/loki-metrics', ...args];
  const entry = await import('../../../src/node/cli.js');
  await entry.exited;
  const code = process.exitCode;
  process.exitCode = undefined;
  return { code, ...written };
}

it('runs the command the arguments after the script name give, on stdout, with its exit code', async () => {
  expect(await runEntry('--version')).toEqual({ code: 0, stdout: `${VERSION}\n`, stderr: '' });
});

it('prints errors on stderr and sets a failing exit code', async () => {
  expect(await runEntry('frobnicate')).toEqual({ code: 2, stdout: '', stderr: `loki-metrics: unknown command "frobnicate"\nRun 'loki-metrics --help' for usage.\n` });
  expect(await runEntry()).toEqual({ code: 2, stdout: USAGE.main, stderr: '' });
});
