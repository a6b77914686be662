/**
 * Text from the state directory on its way to a log line, /health or the Worker (src/log.ts): it
 * must stay on one line and must not reach a terminal as a control sequence. The characters that
 * can do either are defined here from Unicode, not taken from the module: C0 controls
 * (U+0000–U+001F), DEL (U+007F), C1 controls (U+0080–U+009F), and the line and paragraph separators
 * U+2028/U+2029 (which JavaScript and many viewers treat as line breaks).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { MAX_PROBLEM_CHARS as SYNC_MAX_PROBLEM_CHARS } from '../src/sync/protocol.js';
import { MAX_PROBLEM_CHARS, capText, escapeForLog } from '../src/log.js';

const isDangerous = (code: number) => code <= 0x1f || (code >= 0x7f && code <= 0x9f) || code === 0x2028 || code === 0x2029;

/** What a JavaScript string literal holding `escaped` means: the escape must read back as the character. */
const asJsString = (escaped: string): string => new Function(`return "${escaped}";`)() as string;

describe('escapeForLog', () => {
  it('escapes the line breaks and the tab as their usual backslash letters', () => {
    expect(escapeForLog('a\nb')).toBe('a\\nb');
    expect(escapeForLog('a\r\nb')).toBe('a\\r\\nb');
    expect(escapeForLog('a\tb')).toBe('a\\tb');
  });

  it('escapes a terminal escape sequence, so it prints as text', () => {
    expect(escapeForLog('\u001b[31mred\u001b[0m')).toBe('\\x1b[31mred\\x1b[0m');
    // an OSC sequence that would set the terminal's title, ended by BEL
    expect(escapeForLog('\u001b]0;pwned\u0007')).toBe('\\x1b]0;pwned\\x07');
  });

  it('escapes every dangerous character, and only those, as a JavaScript escape that reads back as it', () => {
    for (let code = 0; code <= 0xffff; code++) {
      const ch = String.fromCharCode(code);
      const out = escapeForLog(ch);
      if (!isDangerous(code)) {
        if (out !== ch) expect(out, `U+${code.toString(16)}`).toBe(ch);
        continue;
      }
      // printable ASCII only, in the shortest usual spelling: \n \r \t, else \xhh up to U+00FF, else \uhhhh
      const expected = ch === '\n' ? /^\\n$/ : ch === '\r' ? /^\\r$/ : ch === '\t' ? /^\\t$/ : code <= 0xff ? /^\\x[0-9a-f]{2}$/ : /^\\u[0-9a-f]{4}$/;
      if (!expected.test(out) || asJsString(out) !== ch) expect(out, `U+${code.toString(16)}`).toMatch(expected);
      if (asJsString(out) !== ch) expect(asJsString(out), `U+${code.toString(16)}`).toBe(ch);
    }
  });

  it('spells the boundaries of each range exactly', () => {
    expect(escapeForLog('\u0000\u0001\u001f \u007e\u007f\u0080\u009f\u00a0')).toBe('\\x00\\x01\\x1f \u007e\\x7f\\x80\\x9f\u00a0');
    expect(escapeForLog('\u2027\u2028\u2029\u202a')).toBe('\u2027\\u2028\\u2029\u202a');
  });

  it('escapes every occurrence and leaves the rest of the text as it was', () => {
    expect(escapeForLog('é 😀 "quoted" \\ back\nslash\nagain\u0085end')).toBe('é 😀 "quoted" \\ back\\nslash\\nagain\\x85end');
    expect(escapeForLog('')).toBe('');
  });

  it('leaves one line whatever the input', () => {
    const all = Array.from({ length: 0x2030 }, (_, i) => String.fromCharCode(i)).join('');
    const out = escapeForLog(all);
    expect(out.split(/\r\n|[\n\r\u2028\u2029\u0085]/)).toHaveLength(1);
    expect([...out].some((c) => isDangerous(c.charCodeAt(0)))).toBe(false);
  });
});

describe('capText', () => {
  it('keeps text of up to the limit as it is', () => {
    expect(capText('abc', 3)).toBe('abc');
    expect(capText('', 3)).toBe('');
    expect(capText('a'.repeat(MAX_PROBLEM_CHARS))).toBe('a'.repeat(MAX_PROBLEM_CHARS));
  });

  it('cuts longer text to the limit, its last character an ellipsis', () => {
    expect(capText('abcd', 3)).toBe('ab…');
    expect(capText('abcdefghij', 5)).toBe('abcd…');
    const long = 'x'.repeat(MAX_PROBLEM_CHARS) + 'tail';
    const capped = capText(long);
    expect(capped).toHaveLength(MAX_PROBLEM_CHARS);
    expect(capped).toBe(`${'x'.repeat(MAX_PROBLEM_CHARS - 1)}…`);
    expect(capText('y'.repeat(MAX_PROBLEM_CHARS + 1))).toBe(`${'y'.repeat(MAX_PROBLEM_CHARS - 1)}…`);
  });

  it('caps a problem by default at the length docs/configuration.md promises for /health', () => {
    const docs = readFileSync(new URL('../docs/configuration.md', import.meta.url), 'utf8');
    const health = docs.split('\n').find((line) => line.startsWith('| `GET /health`'));
    const promised = Number(/control characters escaped, at most (\d+) characters/.exec(health ?? '')?.[1]);
    expect(promised).toBeGreaterThan(0);
    expect(MAX_PROBLEM_CHARS).toBe(promised);
    expect(capText('z'.repeat(1000))).toHaveLength(promised);
  });

  it('keeps a capped problem within what the sync protocol carries (a Node problem synced to the Worker)', () => {
    expect(capText('z'.repeat(1000)).length).toBeLessThanOrEqual(SYNC_MAX_PROBLEM_CHARS);
  });
});
