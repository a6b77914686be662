import * as v from 'valibot';
import { describe, expect, it } from 'vitest';
import { applyToManifest, planUploads, SyncMemory } from '../../src/sync/plan.js';
import {
  bytesToBase64,
  capProblem,
  emptyDoc,
  IngestPayloadSchema,
  manifestOf,
  MAX_DATE_MS,
  MAX_PROBLEM_CHARS,
  SessionDocSchema,
  sha256Hex,
  StoredDocSchema,
  type IngestPayload,
  type SessionDoc,
  type SyncedFile,
} from '../../src/sync/protocol.js';
import { applyIngest, readingFromDoc } from '../../src/sync/session-doc.js';
import { LIVE_RUNNER, readingOf } from '../support/readings.js';

const enc = new TextEncoder();
const dec = new TextDecoder();
async function file(text: string, mtimeMs = 1): Promise<SyncedFile> {
  const bytes = enc.encode(text);
  return { mtimeMs, hash: await sha256Hex(bytes), b64: bytesToBase64(bytes) };
}
const HASH = 'a'.repeat(64);
function payload(changes: Partial<IngestPayload> = {}): IngestPayload {
  return { available: true, pid: null, pidAlive: false, documents: {}, events: { present: false, lines: 0 }, ...changes };
}

describe('applyIngest', () => {
  it('merges a first upload into an empty document', async () => {
    const reading = readingOf({
      documents: { 'loki.pid': { content: '4242', mtimeMs: 10 } },
      efficiency: { 'iteration-1.json': { cost_usd: 1 } },
      events: { present: true, lines: 3, mtimeMs: 20 },
    });
    const [upload] = await planUploads(reading, manifestOf(undefined), new SyncMemory());
    const result = await applyIngest(emptyDoc(), upload!.payload, 99);
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.rejected).toEqual([]);
    expect(result.doc).toEqual({
      format: 2,
      syncedAtMs: 99,
      available: true,
      pid: 4242,
      pidAlive: true,
      runner: LIVE_RUNNER,
      documents: { 'loki.pid': await file('4242', 10) },
      sets: {
        efficiency: { present: true, files: { 'iteration-1.json': await file('{"cost_usd":1}', 0) } },
        proofs: { present: false, files: {} },
        pids: { present: false, files: {} },
        sessions: { present: false, files: {} },
      },
      events: { present: true, lines: 3, mtimeMs: 20 },
    });
    // The client's manifest after the upload is what the remote now holds (empty sets aside).
    const applied = applyToManifest(manifestOf(undefined), upload!);
    expect(manifestOf(result.doc)).toEqual({ ...applied, sets: { ...applied.sets, proofs: {}, pids: {}, sessions: {} } });
    // So the next cycle against the remote's manifest ships nothing.
    const [next] = await planUploads(reading, manifestOf(result.doc), new SyncMemory());
    expect(next!.applies).toEqual({ documents: {}, sets: {} });
    expect(v.safeParse(SessionDocSchema, result.doc).success).toBe(true);
  });

  it('merges into an existing document: upserts, removals and untouched entries kept', async () => {
    const doc: SessionDoc = {
      ...emptyDoc(),
      documents: { PAUSE: await file(''), STOP: await file('') },
      sets: { efficiency: { present: true, files: { 'a.json': await file('{}'), 'b.json': await file('{}') } }, pids: { present: true, files: { '1.json': await file('{}') } } },
    };
    const result = await applyIngest(
      doc,
      payload({
        problem: 'p',
        documents: { STOP: null, 'loki.pid': await file('7') },
        efficiency: { present: true, error: 'listing', upsert: { 'c.json': await file('{"cost_usd":2}') }, remove: ['a.json'] },
      }),
      5,
    );
    if (!result.ok) throw new Error(result.problem);
    expect(Object.keys(result.doc.documents).sort()).toEqual(['PAUSE', 'loki.pid']);
    expect(result.doc.sets.efficiency).toEqual({ present: true, error: 'listing', files: { 'b.json': await file('{}'), 'c.json': await file('{"cost_usd":2}') } });
    expect(result.doc.sets.pids).toEqual(doc.sets.pids); // a set left out is unchanged
    expect(result.doc.problem).toBe('p');
    expect(result.doc.pid).toBeNull();
    expect('runner' in result.doc).toBe(false);
    expect(doc.documents.STOP).toEqual(await file('')); // the stored document is not mutated
  });

  it('empties a set reported absent', async () => {
    const doc: SessionDoc = { ...emptyDoc(), sets: { proofs: { present: true, files: { r1: await file('{}') } } } };
    const result = await applyIngest(doc, payload({ sets: { proofs: { present: false, upsert: {}, remove: [] } } }), 1);
    if (!result.ok) throw new Error(result.problem);
    // Strictly: no `error` key, and no `problem` or `runner` keys on the document, when none were sent.
    expect(result.doc.sets.proofs).toStrictEqual({ present: false, files: {} });
    expect(Object.keys(result.doc).sort()).toEqual(['available', 'documents', 'events', 'format', 'pid', 'pidAlive', 'sets', 'syncedAtMs']);
  });

  it('keeps a bad file as bad, serving its last good content', async () => {
    const good = await file('4242');
    const doc: SessionDoc = { ...emptyDoc(), documents: { 'loki.pid': good } };
    const bad = { mtimeMs: 2, hash: HASH, problem: 'empty file (caught mid-write?)' };
    const result = await applyIngest(doc, payload({ documents: { 'loki.pid': bad, PAUSE: { mtimeMs: 3, hash: HASH, problem: 'gone' } } }), 1);
    if (!result.ok) throw new Error(result.problem);
    expect(result.rejected).toEqual([]);
    expect(result.doc.documents['loki.pid']).toEqual({ ...bad, b64: good.b64 });
    expect(result.doc.documents.PAUSE).toEqual({ mtimeMs: 3, hash: HASH, problem: 'gone' }); // no last good content
  });

  it('stores content the remote schemas refuse as a problem, keeping the last good content', async () => {
    const good = await file('4242');
    const doc: SessionDoc = { ...emptyDoc(), documents: { 'loki.pid': good } };
    const refused = await file('abc', 4);
    const result = await applyIngest(doc, payload({ documents: { 'loki.pid': refused }, efficiency: { present: true, upsert: { 'x.json': await file('nope') }, remove: [] } }), 1);
    if (!result.ok) throw new Error(result.problem);
    expect(result.rejected).toEqual(['loki.pid: not a pid (expected digits only)', expect.stringMatching(/^metrics\/efficiency\/x\.json: /)]);
    expect(result.doc.documents['loki.pid']).toEqual({ mtimeMs: 4, hash: refused.hash, problem: 'refused by the remote: not a pid (expected digits only)', b64: good.b64 });
    const x = result.doc.sets.efficiency!.files['x.json']!;
    expect(x.b64).toBeUndefined();
    expect(x.problem).toMatch(/^refused by the remote: /);
  });

  it('rejects the whole payload for a hash mismatch, content and problem both, or neither', async () => {
    const doc = emptyDoc();
    const partial = { ...(await file('4242')), hash: HASH };
    expect(await applyIngest(doc, payload({ documents: { PAUSE: await file(''), 'loki.pid': partial } }), 1)).toEqual({
      ok: false,
      problem: 'loki.pid: hash does not match the content (partial upload?)',
    });
    expect(await applyIngest(doc, payload({ documents: { PAUSE: { ...(await file('')), problem: 'x' } } }), 1)).toEqual({
      ok: false,
      problem: 'PAUSE: send either content or a problem, not both',
    });
    expect(await applyIngest(doc, payload({ sets: { pids: { present: true, upsert: { '1.json': { mtimeMs: 1, hash: HASH } }, remove: [] } } }), 1)).toEqual({
      ok: false,
      problem: 'pids/1.json: no content and no problem',
    });
    expect(doc).toEqual(emptyDoc());
  });
});

describe('readingFromDoc', () => {
  it('reads nothing synced yet as an unavailable state directory', () => {
    const reading = readingFromDoc(undefined, 'dev');
    expect(reading.available).toBe(false);
    expect(reading.problem).toBe('nothing synced yet for session "dev"');
    expect(reading.documents['loki.pid'].present).toBe(false);
    expect(reading.efficiency).toEqual({ present: false, files: [] });
    expect(reading.isProcessAlive(1)).toBe(false);
  });

  it('reads a synced document back: present, ok, stale and unreadable sources', async () => {
    const pid = await file('4242', 10);
    const doc: SessionDoc = {
      ...emptyDoc(),
      syncedAtMs: 77,
      available: true,
      pid: 4242,
      pidAlive: true,
      runner: LIVE_RUNNER,
      documents: {
        'loki.pid': pid,
        'state/agents.json': { ...(await file('[]', 11)), problem: 'bad json' },
        PAUSE: { mtimeMs: 12, hash: HASH, problem: 'permission denied' },
      },
      sets: { efficiency: { present: true, error: 'e', files: { 'b.json': await file('{}', 30), 'a.json': await file('{}', 40) } } },
      events: { present: true, lines: 9, mtimeMs: 50, sessionStartMs: -5, iteration: 2, sessionPid: 4242 },
    };
    const reading = readingFromDoc(doc, 's');
    expect(reading.available).toBe(true);
    expect('problem' in reading).toBe(false);
    expect(reading.lastSyncMs).toBe(77);
    expect(reading.hostPidNamespace).toBe(false);
    expect(reading.runner).toEqual(LIVE_RUNNER);
    expect(reading.isProcessAlive(4242)).toBe(true);
    expect(reading.isProcessAlive(4243)).toBe(false);
    const { bytes, ...pidRead } = reading.documents['loki.pid'];
    expect(dec.decode(bytes)).toBe('4242');
    expect(pidRead).toEqual({ present: true, mtimeMs: 10, version: pid.hash });
    const agents = reading.documents['state/agents.json'];
    expect(dec.decode(agents.bytes)).toBe('[]');
    expect(agents.stale).toBe('bad json');
    expect(agents.version).toBe(`stale:${doc.documents['state/agents.json']!.hash}`);
    expect(reading.documents.PAUSE).toEqual({ present: true, mtimeMs: 12, error: 'permission denied', version: '' });
    expect({ ...agents, bytes: undefined }).toEqual({ present: true, mtimeMs: 11, stale: 'bad json', version: agents.version, bytes: undefined });
    expect(reading.documents.STOP).toEqual({ present: false, version: '' });
    expect(reading.efficiency.present).toBe(true);
    expect(reading.efficiency.error).toBe('e');
    expect(reading.efficiency.mtimeMs).toBe(40);
    expect(reading.efficiency.files.map((f) => [f.name, f.mtimeMs])).toEqual([['a.json', 40], ['b.json', 30]]);
    expect(reading.proofs).toEqual({ present: false, files: [] });
    expect(reading.events).toEqual({ present: true, lines: 9, mtimeMs: 50, sessionStartMs: -5, iteration: 2, sessionPid: 4242 });
  });

  it('reads a stored file with neither content nor problem as unreadable, and the newest entry as the set mtime', async () => {
    const doc: SessionDoc = {
      ...emptyDoc(),
      problem: 'state directory gone',
      documents: { PAUSE: { mtimeMs: 3, hash: HASH } },
      sets: { pids: { present: true, files: { '1.json': await file('{"pid":1}', 30), '2.json': await file('{"pid":2}', 50), '3.json': await file('{"pid":3}', 40) } } },
      events: { present: true, lines: 1, error: 'rotated' },
    };
    const reading = readingFromDoc(doc, 's');
    expect(reading.problem).toBe('state directory gone');
    expect(reading.documents.PAUSE).toEqual({ present: true, mtimeMs: 3, error: 'unreadable', version: '' });
    expect(reading.pids.mtimeMs).toBe(50);
    expect(reading.events).toStrictEqual({ present: true, lines: 1, error: 'rotated' });
  });

  it('reads a set without files or error, and events without optional fields, with no keys for them', () => {
    const reading = readingFromDoc({ ...emptyDoc(), sets: { proofs: { present: true, files: {} } } }, 's');
    expect(reading.proofs).toStrictEqual({ present: true, files: [] });
    expect(reading.events).toStrictEqual({ present: false, lines: 0 });
    expect('problem' in reading).toBe(false);
  });

  it('reads an empty document (a session created but never filled) as unavailable with no runner alive', () => {
    const reading = readingFromDoc(emptyDoc(), 's');
    expect(reading.available).toBe(false);
    expect(reading.isProcessAlive(0)).toBe(false);
    expect(reading.lastSyncMs).toBe(0);
  });

  it('trusts the pid verdict only when the client said alive', () => {
    const reading = readingFromDoc({ ...emptyDoc(), pid: 5, pidAlive: false }, 's');
    expect(reading.isProcessAlive(5)).toBe(false);
    expect('runner' in reading).toBe(false);
    expect(reading.events).toEqual({ present: false, lines: 0 });
    expect(reading.efficiency).toEqual({ present: false, files: [] });
  });
});

describe('protocol', () => {
  it('manifestOf lists every file as hash@mtime', async () => {
    expect(manifestOf(undefined)).toEqual({ documents: {}, sets: {} });
    const doc: SessionDoc = { ...emptyDoc(), documents: { PAUSE: { mtimeMs: 3, hash: HASH, problem: 'x' } }, sets: { pids: { present: true, files: { '1.json': { mtimeMs: 4, hash: HASH, problem: 'y' } } } } };
    expect(manifestOf(doc)).toEqual({ documents: { PAUSE: `${HASH}@3` }, sets: { pids: { '1.json': `${HASH}@4` } } });
  });

  it('limits problem texts to MAX_PROBLEM_CHARS and times to what Date holds', () => {
    const ok = (p: IngestPayload) => v.safeParse(IngestPayloadSchema, p).success;
    expect(ok(payload({ problem: 'x'.repeat(MAX_PROBLEM_CHARS) }))).toBe(true);
    expect(ok(payload({ problem: 'x'.repeat(MAX_PROBLEM_CHARS + 1) }))).toBe(false);
    expect(ok(payload({ documents: { PAUSE: { mtimeMs: MAX_DATE_MS, hash: HASH, problem: 'x' } } }))).toBe(true);
    expect(ok(payload({ documents: { PAUSE: { mtimeMs: MAX_DATE_MS + 1, hash: HASH, problem: 'x' } } }))).toBe(false);
    expect(ok(payload({ documents: { PAUSE: { mtimeMs: -1, hash: HASH, problem: 'x' } } }))).toBe(false);
    expect(ok(payload({ events: { present: true, lines: 0, sessionStartMs: -MAX_DATE_MS } }))).toBe(true);
    expect(ok(payload({ events: { present: true, lines: 0, sessionStartMs: -MAX_DATE_MS - 1 } }))).toBe(false);
    expect(ok(payload({ documents: { PAUSE: { mtimeMs: 1, hash: 'A'.repeat(64), problem: 'x' } } }))).toBe(false);
    expect(ok(payload({ documents: { PAUSE: { mtimeMs: 1, hash: HASH, b64: 'abc' } } }))).toBe(false);
    expect(ok(payload({ documents: { PAUSE: { mtimeMs: 1, hash: HASH, b64: 'YWJj' } } }))).toBe(true);
    expect(ok(payload({ documents: { 'other.json': null } as never }))).toBe(false);
    expect(ok(payload({ efficiency: { present: true, upsert: {}, remove: ['../x.json'] } }))).toBe(false);
    expect(ok(payload({ efficiency: { present: true, upsert: {}, remove: ['iteration-1.json'] } }))).toBe(true);
    expect(ok(payload({ sets: { proofs: { present: true, upsert: {}, remove: ['run-1'] } } }))).toBe(true);
    expect(ok(payload({ sets: { proofs: { present: true, upsert: {}, remove: ['run-1.json/x'] } } }))).toBe(false);
  });

  it('caps problems at exactly MAX_PROBLEM_CHARS, and takes only whole base64', () => {
    expect(capProblem('x'.repeat(MAX_PROBLEM_CHARS))).toBe('x'.repeat(MAX_PROBLEM_CHARS));
    expect(capProblem('x'.repeat(MAX_PROBLEM_CHARS + 1))).toBe(`${'x'.repeat(MAX_PROBLEM_CHARS - 1)}…`);
    const ok = (b64: string) => v.safeParse(IngestPayloadSchema, payload({ documents: { PAUSE: { mtimeMs: 1, hash: HASH, b64 } } })).success;
    expect(ok('YWJjZA==')).toBe(true);
    expect(ok('YW==YWJj')).toBe(false);
    expect(ok('!!!!YWJj')).toBe(false);
  });

  it('refuses arrays where the payload or a stored document has an object or a map', () => {
    const problem = (schema: v.GenericSchema, input: unknown) => {
      const result = v.safeParse(schema, input);
      return result.success ? 'accepted' : `${result.issues[0].path?.map((p) => p.key).join('.') ?? ''}: ${result.issues[0].message}`;
    };
    const NOT_AN_ARRAY = 'Invalid type: Expected Object, not an Array';
    expect(problem(IngestPayloadSchema, [])).toBe(`: ${NOT_AN_ARRAY}`);
    expect(problem(IngestPayloadSchema, { ...payload(), documents: [] })).toBe(`documents: ${NOT_AN_ARRAY}`);
    expect(problem(IngestPayloadSchema, { ...payload(), sets: [] })).toBe(`sets: ${NOT_AN_ARRAY}`);
    expect(problem(IngestPayloadSchema, { ...payload(), efficiency: { present: true, upsert: [], remove: [] } })).toBe(`efficiency.upsert: ${NOT_AN_ARRAY}`);
    expect(problem(IngestPayloadSchema, payload())).toBe('accepted');
    expect(problem(SessionDocSchema, { ...emptyDoc(), documents: [] })).toBe(`documents: ${NOT_AN_ARRAY}`);
    expect(problem(SessionDocSchema, { ...emptyDoc(), sets: [] })).toBe(`sets: ${NOT_AN_ARRAY}`);
    expect(problem(SessionDocSchema, { ...emptyDoc(), sets: { pids: { present: true, files: [] } } })).toBe(`sets.pids.files: ${NOT_AN_ARRAY}`);
    expect(problem(SessionDocSchema, emptyDoc())).toBe('accepted');
    expect(v.safeParse(StoredDocSchema, { ...emptyDoc(), sets: [] }).success).toBe(false);
  });

  it('upgrades a format 1 document (efficiency only) to format 2', () => {
    const { sets: _sets, format: _format, ...rest } = emptyDoc();
    const v1 = { ...rest, format: 1, efficiency: { present: true, files: {} } };
    expect(v.parse(StoredDocSchema, v1)).toEqual({ ...emptyDoc(), sets: { efficiency: { present: true, files: {} } } });
  });
});
