/** What every command shares: its output streams, flag parsing, and settings from flags over the environment. */
import { statSync } from 'node:fs';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import type { Paint } from '../../cli/report.js';
import { ConfigError, parseConfig, type Config, type EnvName } from '../../config.js';

export type Io = {
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
  readonly env: NodeJS.ProcessEnv;
  readonly paint: Paint;
};

/** A mistake in the command line: printed with a pointer to --help, exit 2. */
export class UsageError extends Error {}

const commonFlags = {
  help: { type: 'boolean', short: 'h' },
} as const satisfies ParseArgsConfig['options'];

export function parse<T extends NonNullable<ParseArgsConfig['options']>>(args: string[], options: T) {
  try {
    return parseArgs({ args, options: { ...commonFlags, ...options }, strict: true, allowPositionals: false });
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
}

/** Flags by the variable they set, with their values: errors about a given flag name the flag. */
export type FlagValues = Partial<Record<EnvName, readonly [flag: string, value: string | undefined]>>;

export function configFrom(io: Io, flags: FlagValues): Config {
  const overrides: Partial<Record<EnvName, string | undefined>> = {};
  for (const [name, [, value]] of Object.entries(flags) as [EnvName, readonly [string, string | undefined]][]) overrides[name] = value;
  try {
    return parseConfig(io.env, overrides);
  } catch (error) {
    const flag = error instanceof ConfigError && error.variable ? flags[error.variable] : undefined;
    if (error instanceof ConfigError && flag && flag[1] !== undefined) {
      throw new ConfigError(error.message.replace(`invalid ${error.variable}`, `invalid ${flag[0]}`), error.variable);
    }
    throw error;
  }
}

/** Why `dir` cannot be read as a state directory, or undefined when it is a directory. */
export function dirProblem(dir: string): string | undefined {
  try {
    return statSync(dir).isDirectory() ? undefined : `${dir} is not a directory`;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return code === 'ENOENT' || code === 'ENOTDIR' ? `no state directory at ${dir}` : `cannot read ${dir} (${code ?? 'error'})`;
  }
}
