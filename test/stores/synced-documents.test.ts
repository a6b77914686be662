/**
 * SyncedStateStore over format 3 (stores/synced.ts): a document whose content the reader does not
 * have. A live file that was never good, and a large document whose object this location cannot
 * see yet (KV propagates writes in up to ~60 s, so a head may name an object not visible yet).
 */
import { describe, expect, it } from 'vitest';
import { SyncedStateStore } from '../../src/stores/synced.js';
import { beatKey, docKey, headKey, INLINE_DOC_BYTES } from '../../src/sync/shards.js';
import { badFile, ingestOk, payloadOf, shipped } from '../support/format3.js';
import { MemoryObjectStore } from '../support/object-store.js';

const S = 's';
const dec = new TextDecoder();
const AGENTS = 'state/agents.json';
/** `state/agents.json` too large to ride in the head: a document object of its own. */
const agents = (n: number, status = 'active') => JSON.stringify(Array.from({ length: n }, (_, k) => ({ id: `agent-${k}`, status, padding: 'p'.repeat(60) })));
const gets = (store: MemoryObjectStore, from: number) => store.calls.slice(from).filter((c) => c.op === 'get').map((c) => c.key);

describe('a synced document without content', () => {
  it('a live file that was never good: present, with its problem and no bytes', async () => {
    const store = new MemoryObjectStore();
    await ingestOk(store, S, payloadOf({ documents: { [AGENTS]: badFile('not valid JSON (torn mid-write?)', 30) } }), 1000);
    const from = store.calls.length;
    const read = (await new SyncedStateStore(store, S).read()).documents[AGENTS];
    expect(read).toEqual({ present: true, mtimeMs: 30, error: 'not valid JSON (torn mid-write?)', version: '' });
    expect(gets(store, from)).toEqual([beatKey(S), headKey(S)]); // no content to look for
  });

  it('a document deleted and back bad between two scrapes: its old content is not looked for', async () => {
    const store = new MemoryObjectStore();
    await ingestOk(store, S, payloadOf({ documents: { [AGENTS]: await shipped(agents(20), 10) } }), 1000);
    const reader = new SyncedStateStore(store, S);
    expect(dec.decode((await reader.read()).documents[AGENTS].bytes)).toBe(agents(20));
    await ingestOk(store, S, payloadOf({ documents: { [AGENTS]: null } }), 2000);
    await ingestOk(store, S, payloadOf({ documents: { [AGENTS]: badFile('permission denied', 40) } }), 3000);
    const from = store.calls.length;
    const read = (await reader.read()).documents[AGENTS];
    expect(read).toEqual({ present: true, mtimeMs: 40, error: 'permission denied', version: '' });
    expect(gets(store, from)).toEqual([beatKey(S), headKey(S)]);
  });

  it('a large document whose object is not visible yet: present, "content not stored", until it is', async () => {
    const store = new MemoryObjectStore(false); // KV
    expect(new TextEncoder().encode(agents(20)).length).toBeGreaterThan(INLINE_DOC_BYTES);
    const idle = await shipped(agents(20, 'idle'), 20);
    await ingestOk(store, S, payloadOf({ documents: { [AGENTS]: idle } }), 1000);
    const object = store.text(docKey(S, idle.hash))!;
    store.objects.delete(docKey(S, idle.hash)); // this location does not see it yet
    const reader = new SyncedStateStore(store, S);
    expect((await reader.read()).documents[AGENTS]).toEqual({ present: true, mtimeMs: 20, error: 'content not stored', version: '' });
    store.set(docKey(S, idle.hash), object);
    await ingestOk(store, S, payloadOf({ events: { present: true, lines: 3 } }), 2000); // a heartbeat
    const read = (await reader.read()).documents[AGENTS];
    expect(read).toMatchObject({ present: true, mtimeMs: 20, version: idle.hash });
    expect(dec.decode(read.bytes)).toBe(agents(20, 'idle'));
  });

  it("a large document's new object not visible yet: the previous content is not served as the new version", async () => {
    const store = new MemoryObjectStore(false); // KV
    await ingestOk(store, S, payloadOf({ documents: { [AGENTS]: await shipped(agents(20), 10) } }), 1000);
    const reader = new SyncedStateStore(store, S);
    await reader.read();
    const idle = await shipped(agents(20, 'idle'), 20);
    await ingestOk(store, S, payloadOf({ documents: { [AGENTS]: idle } }), 2000);
    const object = store.text(docKey(S, idle.hash))!;
    store.objects.delete(docKey(S, idle.hash));
    expect((await reader.read()).documents[AGENTS]).toEqual({ present: true, mtimeMs: 20, error: 'content not stored', version: '' });
    // it arrives: the next scrape (a new beat) reads it
    store.set(docKey(S, idle.hash), object);
    await ingestOk(store, S, payloadOf({ events: { present: true, lines: 3 } }), 3000);
    const from = store.calls.length;
    const read = (await reader.read()).documents[AGENTS];
    expect(gets(store, from)).toEqual([beatKey(S), docKey(S, idle.hash)]);
    expect(read.version).toBe(idle.hash);
    expect(dec.decode(read.bytes)).toBe(agents(20, 'idle'));
  });
});
