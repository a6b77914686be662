import { decodeText, type ParseResult } from './parse.js';

/** Linux's PID_MAX_LIMIT (2^22); larger values, 0 and negatives are never real pids. */
export const MAX_PID = 4_194_304;

/** `loki.pid`: `<pid>\n`, written in place, so it can be read empty for an instant. */
export function readPidFile(bytes: Uint8Array): ParseResult<number> {
  const text = decodeText(bytes);
  if (!text.ok) return text;
  const trimmed = text.value.trim();
  if (trimmed === '') return { ok: false, problem: 'empty file (caught mid-write?)' };
  if (!/^\d{1,10}$/.test(trimmed)) return { ok: false, problem: 'not a pid (expected digits only)' };
  const pid = Number(trimmed);
  if (pid < 1 || pid > MAX_PID) return { ok: false, problem: `pid out of range 1..${MAX_PID}` };
  return { ok: true, value: pid };
}
