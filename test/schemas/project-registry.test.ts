/**
 * Loki Mode's project registry (`~/.loki/dashboard/projects.json`) as bytes: the entries kept, the
 * ones left out with their key and reason, and the files that are no registry at all.
 */
import { describe, expect, it } from 'vitest';
import { readProjectRegistry } from '../../src/schemas/project-registry.js';

const bytes = (value: unknown) => new TextEncoder().encode(typeof value === 'string' ? value : JSON.stringify(value));

describe('readProjectRegistry', () => {
  it('reads each entry as Loki Mode writes it, dropping empty and null optional fields', () => {
    const reading = readProjectRegistry(
      bytes({
        version: '1.0',
        projects: {
          '0a1b2c3d4e5f': { id: '0a1b2c3d4e5f', path: '/srv/app', name: 'app', alias: 'shop', status: 'running', pid: 4242, port: 57374 },
          k2: { id: null, path: '/srv/other', name: '', alias: null, status: null },
          k3: { path: '/srv/bare' },
        },
      }),
    );
    expect(reading).toEqual({
      ok: true,
      value: {
        entries: [
          { key: '0a1b2c3d4e5f', id: '0a1b2c3d4e5f', path: '/srv/app', name: 'app', alias: 'shop', status: 'running' },
          { key: 'k2', path: '/srv/other' },
          { key: 'k3', path: '/srv/bare' },
        ],
        rejected: [],
      },
    });
  });

  it('leaves out a bad entry with its key and the field at fault; the others stand', () => {
    const reading = readProjectRegistry(
      bytes({ projects: { good: { path: '/srv/a' }, nopath: { name: 'x' }, empty: { path: '' }, typed: { path: '/srv/b', name: 7 }, scalar: 'x' } }),
    );
    expect(reading.ok).toBe(true);
    if (!reading.ok) return;
    expect(reading.value.entries).toEqual([{ key: 'good', path: '/srv/a' }]);
    expect(reading.value.rejected).toEqual([
      { key: 'nopath', problem: expect.stringMatching(/^path: /) },
      { key: 'empty', problem: expect.stringMatching(/^path: Expected the project directory/) },
      { key: 'typed', problem: expect.stringMatching(/^name: /) },
      { key: 'scalar', problem: expect.stringMatching(/Expected Object/) },
    ]);
  });

  it.each([
    ['an array', []],
    ['null', null],
    ['a number', 5],
    ['a string', 'abc'],
  ])('rejects the whole file when `projects` is %s, not an object', (_what, projects) => {
    expect(readProjectRegistry(bytes({ version: '1.0', projects }))).toEqual({ ok: false, problem: 'projects: Expected an object of projects' });
  });

  it('rejects a file that is a list, not an object', () => {
    expect(readProjectRegistry(bytes([{ projects: {} }]))).toEqual({ ok: false, problem: 'Invalid type: Expected Object, not an Array' });
  });

  it('rejects a file without projects, and one that is not JSON', () => {
    const missing = readProjectRegistry(bytes({ version: '1.0' }));
    expect(missing.ok).toBe(false);
    if (!missing.ok) expect(missing.problem).toMatch(/^projects: /);
    expect(readProjectRegistry(bytes('{"projects": {'))).toEqual({ ok: false, problem: 'not valid JSON (torn mid-write?)' });
  });
});
