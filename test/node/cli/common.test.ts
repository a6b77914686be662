/**
 * src/node/cli/common.ts: flag parsing every command shares, settings from flags over the
 * environment (an error names what the user gave: the flag or the variable), and why a state
 * directory cannot be read.
 */
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError } from '../../../src/config.js';
import { configFrom, dirProblem, parse, UsageError } from '../../../src/node/cli/common.js';
import { cleanTrees, tempDir } from '../../support/loki-tree.js';
import { capture } from './io.js';

afterEach(cleanTrees);

/** What `fn` threw. */
function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('nothing was thrown');
}

describe('parse', () => {
  const options = { dir: { type: 'string' }, once: { type: 'boolean' } } as const;

  it('reads the command\'s flags, and --help / -h for every command', () => {
    expect(parse(['--dir', '/x', '--once'], options).values).toEqual({ dir: '/x', once: true });
    expect(parse(['--dir=/y'], options).values).toEqual({ dir: '/y' });
    expect(parse([], options).values).toEqual({});
    expect(parse(['--help'], options).values).toEqual({ help: true });
    expect(parse(['-h'], options).values).toEqual({ help: true });
  });

  it('turns an unknown flag, a stray argument or a missing value into a UsageError with node\'s words', () => {
    const cases: [string[], string][] = [
      [['--bogus'], "Unknown option '--bogus'"],
      [['-x'], "Unknown option '-x'"],
      [['stray'], "Unexpected argument 'stray'. This command does not take positional arguments"],
      [['--dir'], "Option '--dir <value>' argument missing"],
    ];
    for (const [args, message] of cases) {
      const error = thrown(() => parse(args, options));
      expect(error).toBeInstanceOf(UsageError);
      expect((error as Error).message).toBe(message);
    }
  });
});

describe('configFrom', () => {
  it('takes a given flag over the environment, and the environment for a flag not given', () => {
    const io = capture({ LOKI_METRICS_PORT: '1234', LOKI_METRICS_HOST: '10.0.0.1' }).io;
    const config = configFrom(io, { LOKI_METRICS_PORT: ['--port', '4321'], LOKI_METRICS_HOST: ['--host', undefined] });
    expect(config.port).toBe(4321);
    expect(config.host).toBe('10.0.0.1');
    expect(configFrom(io, {}).port).toBe(1234);
    expect(configFrom(capture().io, {}).port).toBe(57373);
  });

  it('names the flag when a given flag is bad', () => {
    const error = thrown(() => configFrom(capture({ LOKI_METRICS_PORT: '1234' }).io, { LOKI_METRICS_PORT: ['--port', 'abc'] }));
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).message).toBe('invalid --port "abc": must be a whole number from 1 to 65535');
    expect((error as ConfigError).variable).toBe('LOKI_METRICS_PORT');
    // A secret is not repeated, and its flag is still named.
    expect((thrown(() => configFrom(capture().io, { LOKI_METRICS_TOKEN: ['--token', 'short'] })) as Error).message).toBe(
      'invalid --token: must be at least 16 characters of A-Z a-z 0-9 - . _ ~ + / (empty for none)',
    );
  });

  it('names the variable when the environment is bad: its flag not given, or another flag', () => {
    const io = capture({ LOKI_METRICS_PORT: 'abc' }).io;
    for (const flags of [{}, { LOKI_METRICS_PORT: ['--port', undefined] as const }, { LOKI_METRICS_HOST: ['--host', 'localhost'] as const }]) {
      const error = thrown(() => configFrom(io, flags));
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).message).toBe('invalid LOKI_METRICS_PORT "abc": must be a whole number from 1 to 65535');
      expect((error as ConfigError).variable).toBe('LOKI_METRICS_PORT');
    }
  });
});

describe('dirProblem', () => {
  it('finds nothing wrong with a directory', async () => {
    expect(dirProblem(await tempDir())).toBeUndefined();
  });

  it('says what is wrong: missing, not a directory, or unreadable and why', async () => {
    const root = await tempDir();
    const file = join(root, 'file');
    await writeFile(file, 'x');
    expect(dirProblem(join(root, 'missing'))).toBe(`no state directory at ${join(root, 'missing')}`);
    expect(dirProblem(file)).toBe(`${file} is not a directory`);
    expect(dirProblem(join(file, '.loki'))).toBe(`no state directory at ${join(file, '.loki')}`); // ENOTDIR
    await symlink(join(root, 'b'), join(root, 'a'));
    await symlink(join(root, 'a'), join(root, 'b'));
    expect(dirProblem(join(root, 'a'))).toBe(`cannot read ${join(root, 'a')} (ELOOP)`);
    await mkdir(join(root, 'real'));
    await symlink(join(root, 'real'), join(root, 'link'));
    expect(dirProblem(join(root, 'link'))).toBeUndefined(); // a link to a directory is one
  });
});
