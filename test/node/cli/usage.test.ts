/**
 * src/node/cli/usage.ts: the help texts. Every command the overview lists has its own help and is
 * one `loki-metrics` runs; every flag a help text names is one its command takes; the environment
 * list names every variable with its default, in columns.
 */
import { describe, expect, it } from 'vitest';
import { ENV, type EnvName } from '../../../src/config.js';
import { main } from '../../../src/node/cli/main.js';
import { USAGE } from '../../../src/node/cli/usage.js';
import { capture } from './io.js';

const COMMANDS = ['serve', 'scrape', 'check', 'sync', 'token', 'assets'];

/** The names the overview's `Commands:` section lists. */
const listed = () => {
  const section = USAGE.main!.split('\nCommands:\n')[1]!.split('\n\n')[0]!;
  return section.split('\n').map((line) => /^ {2}(\S+) {2,}\S/.exec(line)?.[1]);
};

describe('USAGE', () => {
  it('has the overview and one text per command, each opening with its usage line', () => {
    expect(Object.keys(USAGE).sort()).toEqual(['main', ...COMMANDS].sort());
    expect(USAGE.main!.startsWith('Usage: loki-metrics <command> [options]\n\n')).toBe(true);
    for (const command of COMMANDS) expect(USAGE[command]!.startsWith(`Usage: loki-metrics ${command} `)).toBe(true);
  });

  it('lists every command in the overview, and only commands loki-metrics runs (besides help and version)', async () => {
    expect(listed()).toEqual([...COMMANDS, 'help', 'version']);
    for (const command of COMMANDS) {
      const c = capture();
      expect(await main(['help', command], c.io)).toBe(0);
      expect(c.out()).toBe(USAGE[command]);
    }
  });

  it('names only flags its command takes', async () => {
    for (const command of COMMANDS) {
      const flags = [...new Set(USAGE[command]!.match(/(?<![\w-])--[a-z][a-z.-]*/g))];
      expect(flags.length).toBeGreaterThan(command === 'check' || command === 'token' || command === 'assets' ? 0 : 3);
      for (const flag of flags) {
        // A string flag takes `=value`, a boolean one stands alone; either way --help then ends it at once.
        const takes = async (args: string[]) => main([command, ...args, '--help'], capture().io);
        const codes = [await takes([`${flag}=x`]), await takes([flag])];
        expect({ command, flag, taken: codes.includes(0) }).toEqual({ command, flag, taken: true });
      }
    }
  });

  it('lists every variable with its default, aligned, in the overview and serve\'s help', () => {
    const line = (name: EnvName, shown: string) => `  ${name}${' '.repeat(30 - name.length)} default: ${shown}`;
    for (const text of [USAGE.main!, USAGE.serve!]) {
      const lines = text.split('Environment (flags win over environment):\n')[1]!.split('\n');
      expect(lines).toEqual([...(Object.keys(ENV) as EnvName[]).map((name) => line(name, ENV[name] === '' ? '(none)' : ENV[name])), '']);
    }
    expect(USAGE.main).toContain('\n  LOKI_DIR                       default: .loki\n');
    expect(USAGE.main).toContain('\n  LOKI_METRICS_TOKEN             default: (none)\n');
    expect(USAGE.main).toContain('\n  LOKI_METRICS_PORT              default: 57373\n');
  });
});
