/**
 * The push protocol's names and payload schema (sync/protocol.ts): what a session name, an entry
 * name, a hash and a file's base64 may be, and what the remote says of an unknown document.
 */
import * as v from 'valibot';
import { describe, expect, it } from 'vitest';
import { describeIssues } from '../../src/schemas/parse.js';
import { bytesToBase64, IngestPayloadSchema, MAX_SYNC_FILE_BYTES, SESSION_NAME, type IngestPayload } from '../../src/sync/protocol.js';

const HASH = 'a'.repeat(64);
function payload(changes: Partial<IngestPayload> = {}): IngestPayload {
  return { available: true, pid: null, pidAlive: false, documents: {}, events: { present: false, lines: 0 }, ...changes };
}
const ok = (p: unknown) => v.safeParse(IngestPayloadSchema, p).success;

describe('SESSION_NAME', () => {
  it('takes a whole name only: nothing after it, no path', () => {
    expect(SESSION_NAME.test('run-1.a_b')).toBe(true);
    expect(SESSION_NAME.test('a'.repeat(64))).toBe(true);
    expect(SESSION_NAME.test('a'.repeat(65))).toBe(false);
    expect(SESSION_NAME.test('run-1/../other')).toBe(false);
    expect(SESSION_NAME.test('run-1 ')).toBe(false);
  });
});

describe('IngestPayloadSchema', () => {
  it('takes a file-set entry named exactly `*.json`, nothing after the suffix', () => {
    const upserting = (name: string) => payload({ efficiency: { present: true, upsert: { [name]: { mtimeMs: 1, hash: HASH, problem: 'x' } }, remove: [] } });
    expect(ok(upserting('iteration-1.json'))).toBe(true);
    expect(ok(upserting('iteration-1.json.tmp'))).toBe(false);
    expect(ok(upserting('iteration-1.json/x'))).toBe(false);
    expect(ok(payload({ sets: { pids: { present: true, upsert: {}, remove: ['42.jsonl'] } } }))).toBe(false);
    expect(ok(payload({ sets: { pids: { present: true, upsert: {}, remove: ['42.json'] } } }))).toBe(true);
  });

  it('takes a hash of exactly 64 hex digits: nothing before or after them', () => {
    const hashed = (hash: string) => payload({ documents: { PAUSE: { mtimeMs: 1, hash, problem: 'x' } } });
    expect(ok(hashed(HASH))).toBe(true);
    expect(ok(hashed(`x${HASH}`))).toBe(false);
    expect(ok(hashed(`${HASH}x`))).toBe(false);
    expect(ok(hashed(`${HASH}0`))).toBe(false);
  });

  it('takes the base64 of a file of MAX_SYNC_FILE_BYTES, not that of a file two base64 groups larger', () => {
    const shipping = (bytes: number) => payload({ documents: { 'dashboard-state.json': { mtimeMs: 1, hash: HASH, b64: bytesToBase64(new Uint8Array(bytes)) } } });
    expect(ok(shipping(MAX_SYNC_FILE_BYTES))).toBe(true);
    expect(ok(shipping(MAX_SYNC_FILE_BYTES + 8))).toBe(false);
  });

  it('names the problem with an unknown document', () => {
    const result = v.safeParse(IngestPayloadSchema, payload({ documents: { 'other.json': null } as never }));
    expect(result.success).toBe(false);
    expect(describeIssues(result.issues!)).toMatch(/^documents\.other\.json: Expected a known \.loki file/);
  });
});
