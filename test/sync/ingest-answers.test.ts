/**
 * What one ingest (sync/ingest.ts) answers the client, and what it records beside the files: the
 * beat (the runner's verdict, the state directory's problem), a set's error, the content refused,
 * the head's memory of recent commits.
 */
import { describe, expect, it } from 'vitest';
import { ingestShards } from '../../src/sync/ingest.js';
import { BeatSchema, beatKey, headKey, MAX_BUCKETS_PER_INGEST, parseStored, RECENT_COMMITS, type Beat } from '../../src/sync/shards.js';
import { badFile, effPayload, headIn, ingestOk, namesInBuckets, nextNonce, options, payloadOf, upserts } from '../support/format3.js';
import { MemoryObjectStore } from '../support/object-store.js';

const S = 's';
const beatIn = (store: MemoryObjectStore): Beat => parseStored(BeatSchema, store.objects.get(beatKey(S)) ?? null)!;

describe('the answer', () => {
  it('says the time of this sync and of the one before, and nothing rejected when nothing was', async () => {
    const store = new MemoryObjectStore();
    expect(await ingestShards(store, S, effPayload({ upsert: await upserts(['iteration-1.json']) }), options(store, 1000, nextNonce()))).toEqual({
      status: 200,
      body: { ok: true, session: S, syncedAtMs: 1000, previousSyncedAtMs: null },
    });
    expect(await ingestShards(store, S, payloadOf(), options(store, 2500, nextNonce()))).toEqual({
      status: 200,
      body: { ok: true, session: S, syncedAtMs: 2500, previousSyncedAtMs: 1000 },
    });
  });

  it('rejects only what the remote refused, not what the client itself reported bad', async () => {
    const store = new MemoryObjectStore();
    const answer = await ingestOk(store, S, effPayload({ upsert: { 'iteration-1.json': badFile('empty file') } }, { documents: { 'loki.pid': badFile('unreadable', 4) } }));
    expect(answer.body).toEqual({ ok: true, session: S, syncedAtMs: 1000, previousSyncedAtMs: null });
    // a document bad from its first sync: no last good content to keep
    expect(headIn(store, S).docs['loki.pid']).toEqual({ h: 'b'.repeat(64), m: 4, p: 'unreadable' });
    expect(headIn(store, S).sets.efficiency).toMatchObject({ count: 1, bad: 1, badEntries: [{ name: 'iteration-1.json', problem: 'empty file', stale: false }] });
  });

  it(`an upload touching more than ${MAX_BUCKETS_PER_INGEST} buckets is told how many, and the limit`, async () => {
    const store = new MemoryObjectStore();
    const answer = await ingestShards(store, S, effPayload({ upsert: await upserts(namesInBuckets(MAX_BUCKETS_PER_INGEST + 2)) }), options(store, 1, nextNonce()));
    expect(answer).toEqual({
      status: 413,
      body: { error: `this upload touches ${MAX_BUCKETS_PER_INGEST + 2} buckets; at most ${MAX_BUCKETS_PER_INGEST} per request (upgrade loki-metrics sync, which batches by bucket)` },
    });
  });
});

describe('the beat', () => {
  it('records the runner\'s verdict, the pid and the state directory\'s problem, and forgets them when no longer sent', async () => {
    const store = new MemoryObjectStore();
    const runner = { decided: true, alive: true, pid: 4242, startedMs: 900 };
    const events = { present: true, lines: 12, mtimeMs: 950 };
    await ingestOk(store, S, payloadOf({ available: false, problem: 'permission denied', pid: 4242, pidAlive: true, runner, events }), 1000);
    expect(beatIn(store)).toEqual({ format: 3, syncedAtMs: 1000, rev: 1, available: false, problem: 'permission denied', pid: 4242, pidAlive: true, runner, events });
    await ingestOk(store, S, payloadOf(), 2000);
    expect(beatIn(store)).toEqual({ format: 3, syncedAtMs: 2000, rev: 1, available: true, pid: null, pidAlive: false, events: { present: false, lines: 0 } });
  });
});

describe('the head', () => {
  it('keeps a set\'s error while it is sent, and drops it after', async () => {
    const store = new MemoryObjectStore();
    await ingestOk(store, S, effPayload({ error: 'EACCES: permission denied' }));
    expect(headIn(store, S).sets.efficiency!.error).toBe('EACCES: permission denied');
    await ingestOk(store, S, effPayload({ upsert: await upserts(['iteration-1.json']) }));
    expect(headIn(store, S).sets.efficiency!.error).toBeUndefined();
    expect(headIn(store, S).sets.efficiency!.count).toBe(1);
  });

  it(`remembers the last ${RECENT_COMMITS} commits, the newest last`, async () => {
    const store = new MemoryObjectStore();
    const names = namesInBuckets(RECENT_COMMITS + 3);
    for (const [k, name] of names.entries()) {
      const answer = await ingestShards(store, S, effPayload({ upsert: await upserts([name]) }), options(store, 1000 + k, `nonce-${k + 1}`));
      expect(answer.status).toBe(200);
      if (k === 0) expect(headIn(store, S).recent).toEqual([[1, 'nonce-1']]);
    }
    const head = headIn(store, S);
    expect(head).toMatchObject({ rev: names.length, nonce: `nonce-${names.length}` });
    expect(head.recent).toEqual(Array.from({ length: RECENT_COMMITS }, (_, k) => [names.length - RECENT_COMMITS + k + 1, `nonce-${names.length - RECENT_COMMITS + k + 1}`]));
    expect(store.text(headKey(S))).toBeDefined();
  });
});

