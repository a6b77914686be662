/**
 * The session cap as ingest (sync/ingest.ts) asks it (sync/admission.ts): only for a session with
 * nothing stored, first only looking before any work, then taking the place just before the first
 * write. A refused create reads and writes nothing of the session; an existing session never pays
 * for the question (on KV a list is a billed operation, 1,000 a day on the free plan).
 */
import { describe, expect, it } from 'vitest';
import { REGISTRY_KEY, SessionAdmission } from '../../src/sync/admission.js';
import { ingestShards } from '../../src/sync/ingest.js';
import { headKey } from '../../src/sync/shards.js';
import { effPayload, ingestOk, nextNonce, options, shipped, upserts } from '../support/format3.js';
import { MemoryObjectStore } from '../support/object-store.js';

const sessionKeys = (store: MemoryObjectStore, session: string) => [...store.objects.keys()].filter((key) => key.includes(`/${session}/`));

describe('a session already stored', () => {
  it.each([true, false])('with a beat but a head that cannot be read is not asked about (strong %s)', async (strong) => {
    const store = new MemoryObjectStore(strong);
    await ingestOk(store, 'a', effPayload({ upsert: await upserts(['iteration-1.json']) }));
    store.set(headKey('a'), '{"format": 3');
    const from = store.calls.length;
    expect((await ingestShards(store, 'a', effPayload({ upsert: await upserts(['iteration-2.json']) }), options(store, 2000, nextNonce(), 1))).status).toBe(200);
    expect(store.count('list', from)).toBe(0);
    expect(store.calls.slice(from).filter((c) => c.key === REGISTRY_KEY)).toEqual([]);
  });
});

describe('a new session at the cap', () => {
  it.each([true, false])('is refused before its upload is read or checked (strong %s)', async (strong) => {
    const store = new MemoryObjectStore(strong);
    await ingestOk(store, 'a', effPayload({ upsert: await upserts(['iteration-1.json']) }));
    const from = store.calls.length;
    const answer = await ingestShards(store, 'b', effPayload({ upsert: await upserts(['iteration-1.json', 'iteration-2.json']) }), options(store, 2000, nextNonce(), 1));
    expect(answer).toEqual({ status: 409, body: { error: expect.stringContaining('session limit reached') } });
    expect(store.calls.slice(from).filter((c) => c.key.includes('/sets/'))).toEqual([]);
    expect(store.count('put', from)).toBe(0);
    // a malformed upload too: the cap is what it is told
    const partial = { ...(await shipped('{"iteration": 3}')), hash: 'f'.repeat(64) };
    expect((await ingestShards(store, 'b', effPayload({ upsert: { 'iteration-3.json': partial } }), options(store, 2000, nextNonce(), 1))).status).toBe(409);
  });

  it('a create that loses its place between looking and taking it (another create came first) writes nothing', async () => {
    const store = new MemoryObjectStore();
    const admission = new SessionAdmission(store, { maxSessions: 1, clock: () => 2000 });
    let looked = false;
    const answer = await ingestShards(store, 'b', effPayload({ upsert: await upserts(['iteration-1.json']) }), {
      nowMs: 2000,
      nonce: nextNonce(),
      admit: async (session, reserve) => {
        if (reserve === false) looked = true;
        // meanwhile, another session takes the last place
        else await ingestOk(store, 'a', effPayload({ upsert: await upserts(['iteration-9.json']) }));
        return admission.admit(session, reserve);
      },
    });
    expect(looked).toBe(true);
    expect(answer).toEqual({ status: 409, body: { error: expect.stringContaining('session limit reached') } });
    expect(sessionKeys(store, 'b')).toEqual([]);
    expect(sessionKeys(store, 'a').length).toBeGreaterThan(0);
  });
});
