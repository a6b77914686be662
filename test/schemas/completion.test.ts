import { describe, expect, it } from 'vitest';
import { readCompletion } from '../../src/schemas/completion.js';

const bytes = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));

describe('readCompletion (state/completion.json, 9.x)', () => {
  it('reads the outcome the runner wrote, trimmed, and keeps the fields it does not check', () => {
    expect(readCompletion(bytes({ outcome: ' completed\n', iterations: 12 }))).toEqual({ ok: true, value: { outcome: 'completed', iterations: 12 } });
    expect(readCompletion(bytes({ outcome: 'x'.repeat(64) }))).toEqual({ ok: true, value: { outcome: 'x'.repeat(64) } });
  });

  it.each([
    ['no outcome', {}],
    ['an outcome that is not a string', { outcome: 3 }],
    ['an empty outcome', { outcome: '' }],
    ['an outcome of blanks', { outcome: '   ' }],
    ['an outcome longer than a name (64)', { outcome: 'x'.repeat(65) }],
    ['an array', [{ outcome: 'completed' }]],
  ])('a file with %s is bad, not an outcome', (_what, value) => {
    expect(readCompletion(bytes(value)).ok).toBe(false);
  });
});
