/**
 * Text that reaches a log line, /health or the Worker comes partly from the state directory (file
 * names, problems): it must not be able to forge lines or drive a terminal.
 */

/** Longest problem text kept (after escaping): a problem names a field and what was expected. */
export const MAX_PROBLEM_CHARS = 200;

// C0 controls, DEL, C1 controls, and the Unicode line/paragraph separators.
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g;

/** Escapes control characters (`\n` → `\\n`, ESC → `\\x1b`, …) so the text stays on one line. */
export function escapeForLog(text: string): string {
  return text.replace(CONTROL, (ch) => {
    if (ch === '\n') return '\\n';
    if (ch === '\r') return '\\r';
    if (ch === '\t') return '\\t';
    const code = ch.charCodeAt(0);
    return code > 0xff ? `\\u${code.toString(16).padStart(4, '0')}` : `\\x${code.toString(16).padStart(2, '0')}`;
  });
}

/** At most `max` characters, with an ellipsis when cut. */
export function capText(text: string, max = MAX_PROBLEM_CHARS): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}
