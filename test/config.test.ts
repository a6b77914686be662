import { describe, expect, it } from 'vitest';
import { checkDistinct, ConfigError, parseConfig, parseNamedDir } from '../src/config.js';

/** The ConfigError `run` throws; fails the test when it throws nothing or something else. */
function configErrorOf(run: () => unknown): ConfigError {
  try {
    run();
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  throw new Error('no ConfigError thrown');
}

describe('parseConfig', () => {
  it('has safe, documented defaults', () => {
    const config = parseConfig({});
    expect(config).toMatchObject({
      dir: '.loki',
      host: '127.0.0.1',
      port: 57373,
      metricsPath: '/metrics',
      enabled: true,
      maxIterations: 1000,
      cacheTtlMs: 2000,
      heartbeatWindowMs: 30_000,
      liveness: 'auto',
      maxSessions: 100,
    });
    // unset: the Worker derives them from its binding (sync/cadence.ts)
    expect(config.syncStaleMs).toBeUndefined();
    expect(config.syncPushMs).toBeUndefined();
    expect(config.syncHeartbeatMs).toBeUndefined();
    // unset: /health is public without a token, and needs the token when one is set (app.ts)
    expect(config.healthPublic).toBeUndefined();
    expect(config.token).toBeUndefined();
    expect(config.syncToken).toBeUndefined();
    expect(config.budgetLimitUsd).toBeUndefined();
  });

  it('reads every variable and lets flags override the environment', () => {
    const config = parseConfig(
      {
        LOKI_DIR: '/state/.loki',
        LOKI_METRICS_HOST: '0.0.0.0',
        LOKI_METRICS_PORT: '9000',
        LOKI_METRICS_PATH: '/loki/metrics',
        LOKI_METRICS_ENABLED: 'false',
        LOKI_MAX_ITERATIONS: '50',
        LOKI_BUDGET_LIMIT: '12.50',
        LOKI_METRICS_TOKEN: 'abcdefghijklmnop',
        LOKI_METRICS_HEALTH_PUBLIC: 'no',
        LOKI_METRICS_CACHE_SECONDS: '0.5',
        LOKI_HEARTBEAT_WINDOW_SECONDS: '90',
        LOKI_LIVENESS: 'heartbeat',
        LOKI_SYNC_TOKEN: 'sync-secret-0123456789',
        LOKI_SYNC_STALE_SECONDS: '60',
        LOKI_SYNC_PUSH_SECONDS: '30',
        LOKI_SYNC_HEARTBEAT_SECONDS: '120',
        LOKI_MAX_SESSIONS: '7',
      },
      { LOKI_METRICS_PORT: '9100', LOKI_DIR: undefined },
    );
    expect(config).toMatchObject({
      dir: '/state/.loki',
      host: '0.0.0.0',
      port: 9100,
      metricsPath: '/loki/metrics',
      enabled: false,
      maxIterations: 50,
      budgetLimitUsd: 12.5,
      token: 'abcdefghijklmnop',
      healthPublic: false,
      cacheTtlMs: 500,
      heartbeatWindowMs: 90_000,
      liveness: 'heartbeat',
      syncToken: 'sync-secret-0123456789',
      syncStaleMs: 60_000,
      syncPushMs: 30_000,
      syncHeartbeatMs: 120_000,
      maxSessions: 7,
    });
  });

  it.each([
    ['', undefined],
    ['  ', undefined],
    ['true', true],
    ['YES', true],
    ['on', true],
    ['1', true],
    ['false', false],
    ['0', false],
    ['off', false],
  ])('reads LOKI_METRICS_HEALTH_PUBLIC=%j as %j', (value, expected) => {
    expect(parseConfig({ LOKI_METRICS_HEALTH_PUBLIC: value }).healthPublic).toBe(expected);
  });

  it('names the variable a ConfigError is about, so the CLI can name its flag', () => {
    let error: unknown;
    try {
      parseConfig({}, { LOKI_METRICS_PORT: 'abc' });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).variable).toBe('LOKI_METRICS_PORT');
  });

  it.each([
    ['LOKI_MAX_ITERATIONS', 'lots', /LOKI_MAX_ITERATIONS "lots": must be a whole number/],
    ['LOKI_MAX_ITERATIONS', '0', /LOKI_MAX_ITERATIONS/],
    ['LOKI_MAX_ITERATIONS', '1.5', /LOKI_MAX_ITERATIONS/],
    ['LOKI_METRICS_PORT', '70000', /LOKI_METRICS_PORT "70000"/],
    ['LOKI_METRICS_PORT', '-1', /LOKI_METRICS_PORT/],
    ['LOKI_METRICS_PATH', 'metrics', /absolute URL path/],
    ['LOKI_METRICS_PATH', '/health', /must not be/],
    ['LOKI_METRICS_ENABLED', 'maybe', /must be true or false/],
    ['LOKI_BUDGET_LIMIT', '-3', /amount in USD/],
    ['LOKI_METRICS_HOST', 'a b', /host name/],
    ['LOKI_METRICS_CACHE_SECONDS', 'soon', /seconds/],
    ['LOKI_METRICS_HEALTH_PUBLIC', 'maybe', /LOKI_METRICS_HEALTH_PUBLIC "maybe": must be true or false/],
    ['LOKI_MAX_SESSIONS', '0', /LOKI_MAX_SESSIONS "0": must be a whole number from 1 to 100000/],
    ['LOKI_MAX_SESSIONS', 'lots', /LOKI_MAX_SESSIONS/],
    ['LOKI_MAX_SESSIONS', '100001', /LOKI_MAX_SESSIONS/],
    ['LOKI_LIVENESS', 'psychic', /LOKI_LIVENESS "psychic": must be one of/],
  ])('stops on %s=%j with one clear line', (name, value, message) => {
    let error: unknown;
    try {
      parseConfig({ [name]: value });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toMatch(message);
    expect((error as Error).message).not.toContain('\n');
  });

  /**
   * Issue 13: each whole-number setting at its bounds. The lowest and highest allowed values are
   * read; one past either end is refused with exactly one line naming the variable, the value and
   * the range. Digits are read as a decimal number: leading zeros do not make it octal (`080` is
   * port 80, as a person writing it means), and surrounding spaces are trimmed; a sign, a
   * fraction, an exponent, hex, other scripts' digits or nothing at all are refused.
   */
  describe('whole-number bounds', () => {
    const bounds: [name: 'LOKI_METRICS_PORT' | 'LOKI_MAX_PROJECTS' | 'LOKI_MAX_SESSIONS', key: 'port' | 'maxProjects' | 'maxSessions', min: number, max: number][] = [
      ['LOKI_METRICS_PORT', 'port', 1, 65535],
      ['LOKI_MAX_PROJECTS', 'maxProjects', 1, 10_000],
      ['LOKI_MAX_SESSIONS', 'maxSessions', 1, 100_000],
    ];
    const refusal = (name: string, given: string, min: number, max: number) => `invalid ${name} ${JSON.stringify(given)}: must be a whole number from ${min} to ${max}`;
    const errorOf = (env: Record<string, string>): ConfigError => {
      try {
        parseConfig(env);
      } catch (e) {
        if (e instanceof ConfigError) return e;
        throw e;
      }
      throw new Error(`accepted ${JSON.stringify(env)}`);
    };

    for (const [name, key, min, max] of bounds) {
      it(`${name}: ${min} and ${max} are read, ${min - 1} and ${max + 1} refused in one line`, () => {
        expect(parseConfig({ [name]: String(min) })[key]).toBe(min);
        expect(parseConfig({ [name]: String(min + 1) })[key]).toBe(min + 1);
        expect(parseConfig({ [name]: String(max - 1) })[key]).toBe(max - 1);
        expect(parseConfig({ [name]: String(max) })[key]).toBe(max);
        for (const value of [min - 1, max + 1]) {
          const error = errorOf({ [name]: String(value) });
          expect(error.message).toBe(refusal(name, String(value), min, max));
          expect(error.variable).toBe(name);
        }
      });

      it(`${name}: leading zeros and spaces are decimal, anything but digits is refused`, () => {
        expect(parseConfig({ [name]: `0${max}` })[key]).toBe(max);
        expect(parseConfig({ [name]: `  ${max}\t` })[key]).toBe(max);
        expect(parseConfig({ [name]: '010' })[key]).toBe(10);
        for (const value of ['', ' ', '0', '00', '-1', '+1', '1.0', '1e2', '0x10', '١٠', '1 0', `${max}0`]) {
          expect(errorOf({ [name]: value }).message, JSON.stringify(value)).toBe(refusal(name, value, min, max));
        }
      });
    }

    it('LOKI_METRICS_PORT: 65535 is read, 65536 and 0 refused with the one-line message, 1 read, 080 is port 80', () => {
      expect(parseConfig({ LOKI_METRICS_PORT: '65535' }).port).toBe(65535);
      expect(() => parseConfig({ LOKI_METRICS_PORT: '65536' })).toThrow(/^invalid LOKI_METRICS_PORT "65536": must be a whole number from 1 to 65535$/);
      expect(() => parseConfig({ LOKI_METRICS_PORT: '0' })).toThrow(/^invalid LOKI_METRICS_PORT "0": must be a whole number from 1 to 65535$/);
      expect(parseConfig({ LOKI_METRICS_PORT: '1' }).port).toBe(1);
      expect(parseConfig({ LOKI_METRICS_PORT: '080' }).port).toBe(80);
      // A flag wins over the environment at the bound too.
      expect(parseConfig({ LOKI_METRICS_PORT: '65536' }, { LOKI_METRICS_PORT: '65535' }).port).toBe(65535);
      expect(() => parseConfig({ LOKI_METRICS_PORT: '65535' }, { LOKI_METRICS_PORT: '65536' })).toThrow(/^invalid LOKI_METRICS_PORT "65536": /);
    });
  });

  it('never echoes a bad token', () => {
    expect(() => parseConfig({ LOKI_METRICS_TOKEN: 'short secret' })).toThrow(ConfigError);
    try {
      parseConfig({ LOKI_METRICS_TOKEN: 'short secret' });
    } catch (e) {
      expect((e as Error).message).not.toContain('short secret');
      expect((e as Error).message).toContain('LOKI_METRICS_TOKEN');
    }
  });
});

/**
 * Issue 13: `serve --dir NAME=PATH` and `LOKI_PROJECTS` entries. A spec is a named project only when
 * what precedes its first `=` could be a name; anything path-like (a slash, or a leading `.` or `~`)
 * stays a plain path, so `--dir /tmp/a=b` and `--dir ./x=y` keep working.
 */
describe('parseNamedDir', () => {
  it('splits NAME=PATH at the first "=" and trims the path', () => {
    expect(parseNamedDir('web=/srv/web/.loki')).toEqual({ name: 'web', dir: '/srv/web/.loki' });
    expect(parseNamedDir('api=  /srv/my api/.loki \t')).toEqual({ name: 'api', dir: '/srv/my api/.loki' });
    expect(parseNamedDir('q=a=b')).toEqual({ name: 'q', dir: 'a=b' });
    // A dot or a tilde inside or at the end of a name does not make it a path.
    expect(parseNamedDir('v1.2=x')).toEqual({ name: 'v1.2', dir: 'x' });
    expect(parseNamedDir('a.=x')).toEqual({ name: 'a.', dir: 'x' });
  });

  it.each(['.loki', '/srv/web/.loki', '/tmp/a=b', 'sub/dir=x', './a=b', '../a=b', '.hidden=x', '~/state=x', '~user=x'])(
    'reads %j as a plain path',
    (spec) => {
      expect(parseNamedDir(spec)).toBeUndefined();
    },
  );

  it.each([
    ['=/srv/x', 'invalid project name "": use 1-64 characters of A-Z a-z 0-9 . _ - starting with a letter or digit'],
    ['my project=/x', 'invalid project name "my project": use 1-64 characters of A-Z a-z 0-9 . _ - starting with a letter or digit'],
    ['a~=/x', 'invalid project name "a~": use 1-64 characters of A-Z a-z 0-9 . _ - starting with a letter or digit'],
    ['-web=/x', 'invalid project name "-web": use 1-64 characters of A-Z a-z 0-9 . _ - starting with a letter or digit'],
    [`${'n'.repeat(65)}=/x`, `invalid project name "${'n'.repeat(65)}": use 1-64 characters of A-Z a-z 0-9 . _ - starting with a letter or digit`],
    ['web=', 'project web has no directory: use NAME=PATH'],
    ['web=  \t', 'project web has no directory: use NAME=PATH'],
  ])('refuses %j with a ConfigError saying why', (spec, message) => {
    const error = configErrorOf(() => parseNamedDir(spec));
    expect(error.message).toBe(message);
    expect(error.name).toBe('ConfigError');
    expect(String(error)).toBe(`ConfigError: ${message}`);
  });

  it('takes names of 1 to 64 characters', () => {
    expect(parseNamedDir('a=/x')).toEqual({ name: 'a', dir: '/x' });
    expect(parseNamedDir(`${'n'.repeat(64)}=/x`)).toEqual({ name: 'n'.repeat(64), dir: '/x' });
  });
});

describe('checkDistinct', () => {
  it('accepts distinct names and names the first one given twice', () => {
    expect(() => checkDistinct([])).not.toThrow();
    expect(() => checkDistinct([{ name: 'a', dir: '/x' }, { name: 'b', dir: '/x' }])).not.toThrow();
    const projects = [{ name: 'a', dir: '/1' }, { name: 'b', dir: '/2' }, { name: 'b', dir: '/3' }, { name: 'a', dir: '/4' }];
    expect(configErrorOf(() => checkDistinct(projects)).message).toBe('project b is given twice');
  });
});

describe('parseConfig: projects and the registry', () => {
  it('has no named projects and does not follow the registry by default', () => {
    const config = parseConfig({});
    expect(config.projects).toEqual([]);
    expect(config.projectsFromRegistry).toBe(false);
    expect(config.registryFile).toBe('~/.loki/dashboard/projects.json');
    expect(config.maxProjects).toBe(100);
  });

  it('reads LOKI_PROJECTS as comma-separated NAME=PATH entries, skipping blanks and spaces', () => {
    expect(parseConfig({ LOKI_PROJECTS: ' web=/srv/web/.loki ,, api=/srv/api/.loki,  ' }).projects).toEqual([
      { name: 'web', dir: '/srv/web/.loki' },
      { name: 'api', dir: '/srv/api/.loki' },
    ]);
    expect(parseConfig({ LOKI_PROJECTS: 'solo=/s' }).projects).toEqual([{ name: 'solo', dir: '/s' }]);
    expect(parseConfig({ LOKI_PROJECTS: ' , ' }).projects).toEqual([]);
  });

  it.each([
    ['web', 'invalid LOKI_PROJECTS: each entry must be NAME=PATH'],
    ['web=/a,/srv/b', 'invalid LOKI_PROJECTS: each entry must be NAME=PATH'],
    ['my web=/a', 'invalid LOKI_PROJECTS: invalid project name "my web": use 1-64 characters of A-Z a-z 0-9 . _ - starting with a letter or digit'],
    ['web=', 'invalid LOKI_PROJECTS: project web has no directory: use NAME=PATH'],
    ['web=/a,api=/b,web=/c', 'invalid LOKI_PROJECTS: project web is given twice'],
    ['web=/a\nb', 'invalid LOKI_PROJECTS "web=/a\\nb": must be NAME=PATH entries separated by commas'],
  ])('refuses LOKI_PROJECTS=%j naming the variable', (value, message) => {
    const error = configErrorOf(() => parseConfig({ LOKI_PROJECTS: value }));
    expect(error.message).toBe(message);
    expect(error.variable).toBe('LOKI_PROJECTS');
  });

  it.each([
    ['true', true],
    ['1', true],
    ['Yes', true],
    ['ON', true],
    ['false', false],
    ['0', false],
    ['no', false],
    ['off', false],
  ])('reads LOKI_PROJECTS_FROM_REGISTRY and LOKI_METRICS_ENABLED=%j as %j', (value, expected) => {
    const config = parseConfig({ LOKI_PROJECTS_FROM_REGISTRY: value, LOKI_METRICS_ENABLED: value });
    expect(config.projectsFromRegistry).toBe(expected);
    expect(config.enabled).toBe(expected);
  });

  it('reads the registry file and refuses an empty or multi-line one', () => {
    expect(parseConfig({ LOKI_REGISTRY_FILE: ' /etc/loki/projects.json ' }).registryFile).toBe('/etc/loki/projects.json');
    expect(configErrorOf(() => parseConfig({ LOKI_REGISTRY_FILE: ' ' })).message).toBe('invalid LOKI_REGISTRY_FILE " ": must not be empty');
    expect(configErrorOf(() => parseConfig({ LOKI_REGISTRY_FILE: 'a\rb' })).message).toBe('invalid LOKI_REGISTRY_FILE "a\\rb": must be a file path');
  });
});

describe('parseConfig: optional settings', () => {
  it('leaves unset optional settings out of the config', () => {
    const keys = Object.keys(parseConfig({ LOKI_BUDGET_LIMIT: ' ', LOKI_METRICS_TOKEN: '', LOKI_SYNC_TOKEN: '', LOKI_METRICS_WEB_CONFIG: '' }));
    for (const key of ['budgetLimitUsd', 'token', 'syncToken', 'webConfigFile']) expect(keys, key).not.toContain(key);
  });

  it('reads the web config file path, and refuses one with a line break', () => {
    expect(parseConfig({ LOKI_METRICS_WEB_CONFIG: ' /etc/loki/web.yml ' }).webConfigFile).toBe('/etc/loki/web.yml');
    expect(parseConfig({}, { LOKI_METRICS_WEB_CONFIG: 'web.yml' }).webConfigFile).toBe('web.yml');
    const error = configErrorOf(() => parseConfig({ LOKI_METRICS_WEB_CONFIG: 'a\nweb.yml' }));
    expect(error.message).toBe('invalid LOKI_METRICS_WEB_CONFIG "a\\nweb.yml": must be a file path');
    expect(error.variable).toBe('LOKI_METRICS_WEB_CONFIG');
  });

  it('refuses / as the metrics path: the landing page lives there', () => {
    expect(configErrorOf(() => parseConfig({ LOKI_METRICS_PATH: '/' })).message).toBe('invalid LOKI_METRICS_PATH "/": must not be / or /health');
    expect(parseConfig({ LOKI_METRICS_PATH: '/m' }).metricsPath).toBe('/m');
  });

  it.each(['LOKI_METRICS_TOKEN', 'LOKI_SYNC_TOKEN'] as const)('refuses a short %s without quoting it', (name) => {
    const error = configErrorOf(() => parseConfig({ [name]: 'too-short' }));
    expect(error.message).toBe(`invalid ${name}: must be at least 16 characters of A-Z a-z 0-9 - . _ ~ + / (empty for none)`);
    expect(error.variable).toBe(name);
  });
});

/** Issue 20: the rules of the settings' own syntax, each at the edge that would let a wrong value in. */
describe('parseConfig: the syntax of seconds, amounts, paths and host names', () => {
  it('seconds: digits with an optional fraction, nothing before or after; read to the millisecond', () => {
    expect(parseConfig({ LOKI_METRICS_CACHE_SECONDS: '1.25' }).cacheTtlMs).toBe(1250);
    expect(parseConfig({ LOKI_HEARTBEAT_WINDOW_SECONDS: '0.5' }).heartbeatWindowMs).toBe(500);
    for (const value of ['a5', '5a', '-5', '.5', '5.', '1e3', '5 s']) {
      expect(configErrorOf(() => parseConfig({ LOKI_METRICS_CACHE_SECONDS: value })).message, value).toBe(
        `invalid LOKI_METRICS_CACHE_SECONDS ${JSON.stringify(value)}: must be a number of seconds from 0 to 3600`,
      );
    }
  });

  it('the sync cadence: empty for the default, else seconds from its minimum to a day, both ends included', () => {
    const cadence = [
      ['LOKI_SYNC_STALE_SECONDS', 'syncStaleMs', 0],
      ['LOKI_SYNC_PUSH_SECONDS', 'syncPushMs', 1],
      ['LOKI_SYNC_HEARTBEAT_SECONDS', 'syncHeartbeatMs', 1],
    ] as const;
    for (const [name, key, min] of cadence) {
      expect(parseConfig({ [name]: String(min) })[key], name).toBe(min * 1000);
      expect(parseConfig({ [name]: '86400' })[key], name).toBe(86_400_000);
      expect(parseConfig({ [name]: '2.25' })[key], name).toBe(2250);
      // Unset or empty: the key is left out (a Worker derives it from its binding), not present as undefined.
      expect(Object.keys(parseConfig({ [name]: '' })), name).not.toContain(key);
      expect(Object.keys(parseConfig({})), name).not.toContain(key);
      // Only digits and one point: JavaScript's Number would read `1e3`, `0x10`, `.5` and `5.` too.
      for (const value of ['86400.001', '86401', 'x5', '5x', '1.x', '-1', '1e3', '0x10', '.5', '5.', '+5']) {
        expect(configErrorOf(() => parseConfig({ [name]: value })).message, `${name}=${value}`).toBe(
          `invalid ${name} ${JSON.stringify(value)}: must be a number of seconds from ${min} to 86400`,
        );
      }
    }
    // A push or heartbeat of no time at all, or under a second, would hammer the Worker.
    for (const name of ['LOKI_SYNC_PUSH_SECONDS', 'LOKI_SYNC_HEARTBEAT_SECONDS'] as const) {
      for (const value of ['0', '0.5', '0.999']) expect(() => parseConfig({ [name]: value }), `${name}=${value}`).toThrow(/from 1 to 86400$/);
    }
  });

  it('LOKI_BUDGET_LIMIT: a whole or decimal amount in USD, or empty for none', () => {
    expect(parseConfig({ LOKI_BUDGET_LIMIT: '25' }).budgetLimitUsd).toBe(25);
    expect(parseConfig({ LOKI_BUDGET_LIMIT: '12.50' }).budgetLimitUsd).toBe(12.5);
    for (const value of ['$25', '25$', '12.', '1e3', 'ten']) expect(() => parseConfig({ LOKI_BUDGET_LIMIT: value }), value).toThrow(/amount in USD/);
  });

  it('LOKI_METRICS_PATH: an absolute path of URL-safe characters and nothing else', () => {
    expect(parseConfig({ LOKI_METRICS_PATH: '/a/b_c-d.e~f' }).metricsPath).toBe('/a/b_c-d.e~f');
    for (const value of ['x/metrics', '/metrics?x=1', '/metrics#', '/met rics']) {
      expect(configErrorOf(() => parseConfig({ LOKI_METRICS_PATH: value })).message, value).toMatch(/must be an absolute URL path such as \/metrics$/);
    }
  });

  it('LOKI_METRICS_ALLOWED_HOSTS: host names (RFC 1123 labels of up to 63) or *, separated by commas; blanks skipped', () => {
    expect(parseConfig({}).allowedHosts).toEqual([]);
    expect(parseConfig({ LOKI_METRICS_ALLOWED_HOSTS: ' metrics.example , ,localhost,*,example.org.' }).allowedHosts).toEqual(['metrics.example', 'localhost', '*', 'example.org.']);
    const label = `a${'b'.repeat(62)}`;
    expect(parseConfig({ LOKI_METRICS_ALLOWED_HOSTS: `${label}.${label}` }).allowedHosts).toEqual([`${label}.${label}`]);
    for (const value of ['-lead.example', 'under_score.example', `${label}c.example`, 'a..b', 'x.example/path', 'ok.example,bad host', '**']) {
      expect(configErrorOf(() => parseConfig({ LOKI_METRICS_ALLOWED_HOSTS: value })).message, value).toBe(
        `invalid LOKI_METRICS_ALLOWED_HOSTS ${JSON.stringify(value)}: must be host names separated by commas, or *`,
      );
    }
  });

  it('LOKI_LIVENESS names every mode it takes', () => {
    expect(configErrorOf(() => parseConfig({ LOKI_LIVENESS: 'x' })).message).toBe('invalid LOKI_LIVENESS "x": must be one of auto, pid, heartbeat');
    for (const mode of ['auto', 'heartbeat', 'pid']) expect(parseConfig({ LOKI_LIVENESS: mode.toUpperCase() }).liveness).toBe(mode);
  });
});
