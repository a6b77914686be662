import { describe, expect, it } from 'vitest';
import { readPidFile } from '../../src/schemas/pid.js';

const bytes = (text: string) => new TextEncoder().encode(text);

describe('readPidFile', () => {
  it('accepts a pid with surrounding whitespace', () => {
    expect(readPidFile(bytes('48213\n'))).toEqual({ ok: true, value: 48213 });
    expect(readPidFile(bytes(' 7 '))).toEqual({ ok: true, value: 7 });
    // The whole range 1..MAX_PID, both ends included.
    expect(readPidFile(bytes('1'))).toEqual({ ok: true, value: 1 });
    expect(readPidFile(bytes('4194304'))).toEqual({ ok: true, value: 4194304 });
  });

  it.each([
    ['', /empty file/],
    ['\n', /empty file/],
    ['0', /out of range/],
    ['-5', /not a pid/],
    ['1.5', /not a pid/],
    ['4294967296', /out of range/],
    ['4194305', /out of range/],
    ['12ab', /not a pid/],
  ])('rejects %j', (text, problem) => {
    const result = readPidFile(bytes(text));
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.problem).toMatch(problem);
  });

  it('rejects invalid UTF-8', () => {
    expect(readPidFile(new Uint8Array([0xff, 0x31]))).toEqual({ ok: false, problem: 'invalid UTF-8' });
  });
});
