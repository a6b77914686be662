/**
 * sync/protocol.ts builds its schemas when it loads. Imported inside the test (not at the top of the
 * file), so a schema that cannot be built fails this test rather than leaving the file with no tests.
 */
import * as v from 'valibot';
import { describe, expect, it } from 'vitest';

describe('sync/protocol.ts', () => {
  it('loads, with a payload schema for the efficiency set (where older clients send it) and every other set', async () => {
    const { IngestPayloadSchema } = await import('../../src/sync/protocol.js');
    const changes = (remove: string[]) => ({ present: true, upsert: {}, remove });
    const base = { available: true, pid: null, pidAlive: false, documents: {}, events: { present: false, lines: 0 } };
    expect(v.safeParse(IngestPayloadSchema, { ...base, efficiency: changes(['iteration-1.json']), sets: { proofs: changes(['run-1']) } }).success).toBe(true);
    expect(v.safeParse(IngestPayloadSchema, { ...base, efficiency: changes(['run-1']) }).success).toBe(false);
  });
});
