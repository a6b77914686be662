/**
 * One sync request applied to format 3 storage (sync/ingest.ts), driven by the real client
 * (planUploads with LAYOUT3_LIMITS) over real trees where it can be: what a scrape then reads
 * equals the Node exporter's, each change writes only what it touches, a failed or lost commit
 * leaves nothing behind, and the limits hold.
 */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { SyncedStateStore } from '../../src/stores/synced.js';
import { ingestShards } from '../../src/sync/ingest.js';
import { LAYOUT3_LIMITS, planUploads, SyncMemory } from '../../src/sync/plan.js';
import { bytesToBase64, emptyDoc } from '../../src/sync/protocol.js';
import { applyIngest } from '../../src/sync/session-doc.js';
import { manifestHead, manifestPage, MANIFEST_PAGE_BUCKETS } from '../../src/sync/manifest.js';
import { beatKey, bucketKey, bucketOf, headKey, legacyKey, MAX_BUCKETS_PER_INGEST, usedBuckets, type Head } from '../../src/sync/shards.js';
import { foldUsage } from '../../src/usage-totals.js';
import { badFile, canonical, closeTrees, measure, openTree, comparable, effPayload, headIn, ingestOk, namesInBuckets, newClient, newCollector, nextNonce, options, payloadOf, record, remoteManifest, shipped, syncCycle, upserts } from '../support/format3.js';
import { MemoryObjectStore } from '../support/object-store.js';
import { readingOf } from '../support/readings.js';

afterEach(closeTrees);

const S = 's';
const headOf = (store: MemoryObjectStore): Head => headIn(store, S);

describe('a scrape of synced format 3 state equals the Node exporter', () => {
  it.each([
    ['running', true],
    ['running', false],
    ['v9-running', true],
    ['v9-running', false],
  ] as const)('%s tree, strong store %s, through a sequence of changes', async (fixture, strong) => {
    const { dir, fs } = await openTree(fixture);
    const store = new MemoryObjectStore(strong);
    const client = newClient();
    const node = newCollector();
    const worker = newCollector();
    const synced = new SyncedStateStore(store, S);
    const eff = join(dir, 'metrics/efficiency');
    const step = async (label: string) => {
      const reading = await fs.read();
      const now = Date.now();
      await syncCycle(store, S, reading, client, now);
      expect(comparable(worker.collect(await synced.read(), now)), label).toEqual(comparable(node.collect(reading, now)));
    };
    await step('first sync');
    await writeFile(join(eff, 'iteration-6.json'), record(6, { status: 'failed', duration_ms: 65_000 }));
    await writeFile(join(eff, 'iteration-2.json'), record(2, { cost_usd: 0.25 }));
    await rm(join(eff, 'iteration-3.json'));
    await step('files added, changed, removed');
    await writeFile(join(eff, 'iteration-1.json'), '{"iteration": 1, "input_tok');
    await writeFile(join(dir, 'state/agents.json'), '[{"torn');
    await step('a file set entry and a large document turned invalid');
    await writeFile(join(eff, 'iteration-1.json'), record(1));
    await step('valid again');
    await rm(join(eff, 'iteration-6.json'));
    await writeFile(join(eff, 'iteration-7.json'), record(7, { model: 'haiku' }));
    await step('one more added and one more removed');
    await rm(join(dir, 'state/agents.json'));
    await rm(join(dir, 'dashboard-state.json'));
    await writeFile(join(dir, 'PAUSE'), '');
    await step('documents deleted, a marker added');
    if (fixture === 'v9-running') {
      await rm(join(dir, 'pids'), { recursive: true });
      await mkdir(join(dir, 'proofs/run-new'));
      await writeFile(join(dir, 'proofs/run-new/proof.json'), JSON.stringify({ schema_version: '1.1', honesty: { headline: 'NOT VERIFIED' } }));
      await step('the process registry gone, a receipt added');
    }
  });

  // Found by this test before its fix: src/sync/ingest.ts, the documents loop, branch for a bad or refused document:
  //   next.docs[name] = { h, m, p: why, ...(before?.g !== undefined ? { g: before.g } : {}) }
  // keeps the hash of the last good content (g) but drops `t`, the content itself when it was
  // inline (<= INLINE_DOC_BYTES). No object exists at docKey for an inline document, so a reader
  // without that content cached (a new isolate, a cold start) has no last good value: it reports
  // the document as unreadable, where Node (and a warm reader) serve the last good value.
  // Fix: `...(before?.g !== undefined ? { g: before.g, ...(before.t !== undefined ? { t: before.t } : {}) } : {})`.
  it('a small document turned invalid keeps its last good value for a reader that starts afresh', async () => {
    const { dir, fs } = await openTree('running');
    const store = new MemoryObjectStore();
    const client = newClient();
    const node = newCollector();
    await syncCycle(store, S, await fs.read(), client, Date.now());
    node.collect(await fs.read(), Date.now());
    await writeFile(join(dir, 'pricing.json'), '{"models": {"sonnet": {"inp'); // 734 bytes before: inline
    const reading = await fs.read();
    await syncCycle(store, S, reading, client, Date.now());
    const now = Date.now();
    expect(comparable(newCollector().collect(await new SyncedStateStore(store, S).read(), now)).sources).toEqual(comparable(node.collect(reading, now)).sources);
  });

  // Found by this test before its fix: src/sync/ingest.ts, file sets loop: a set emptied (`clear`, or reported absent) is reset
  // with `Object.assign(setHead, emptySetHead(setHead.epoch + 1))`, but emptySetHead() has no
  // `totals` key, so Object.assign leaves the old totals in place: count, bad and the buckets start
  // over while tokens, cost, outcomes and durations keep the emptied files (and the files sent
  // again are added on top). Every run start (Loki Mode empties metrics/efficiency) inflates the
  // Worker's loki_cost_usd and model counters, and receipts likewise for proofs/.
  // Fix: `next.sets[set] = emptySetHead(setHead.epoch + 1)` (with the later code using that object),
  // or `delete setHead.totals` next to the Object.assign.
  it.each([true, false])('the efficiency directory emptied at a run start (clear): equal to Node (strong %s)', async (strong) => {
    const { dir, fs } = await openTree('running');
    const store = new MemoryObjectStore(strong);
    const client = newClient();
    const [node, worker] = [newCollector(), newCollector()];
    const synced = new SyncedStateStore(store, S);
    const eff = join(dir, 'metrics/efficiency');
    const step = async (clear: boolean) => {
      const reading = await fs.read();
      const { uploads } = await syncCycle(store, S, reading, client, Date.now());
      expect(uploads[0]!.payload.sets!.efficiency!.clear === true).toBe(clear);
      const now = Date.now();
      expect(comparable(worker.collect(await synced.read(), now))).toEqual(comparable(node.collect(reading, now)));
    };
    await step(false);
    await rm(eff, { recursive: true });
    await mkdir(eff);
    await writeFile(join(eff, 'iteration-1.json'), record(1));
    await step(true);
  });

  // Found by this test before its fix: the same (ingest.ts, `change.clear || !change.present`): a set reported absent keeps its totals.
  it('a set reported absent forgets its totals', async () => {
    const store = new MemoryObjectStore();
    await ingestOk(store, S, effPayload({ upsert: await upserts(['iteration-1.json', 'iteration-2.json']) }));
    await ingestOk(store, S, effPayload({ present: false }));
    expect(headOf(store).sets.efficiency).toMatchObject({ present: false, count: 0 });
    expect(headOf(store).sets.efficiency!.totals).toBeUndefined();
  });
});

describe('what one sync writes', () => {
  it.each([true, false])('a cycle with nothing changed writes the beat alone, under 1 KiB (strong %s)', async (strong) => {
    const { fs } = await openTree('v9-running');
    const store = new MemoryObjectStore(strong);
    const client = newClient();
    await syncCycle(store, S, await fs.read(), client, 1000);
    const head = store.text(headKey(S));
    const from = store.calls.length;
    const { uploads } = await syncCycle(store, S, await fs.read(), client, 2000);
    expect(uploads).toHaveLength(1);
    const puts = store.calls.slice(from).filter((c) => c.op === 'put');
    expect(puts.map((c) => c.key)).toEqual([beatKey(S)]);
    expect(puts[0]!.bytes).toBeLessThan(1024);
    expect(store.count('delete', from)).toBe(0);
    expect(store.text(headKey(S))).toBe(head);
  });

  it('adding one efficiency file writes its bucket, the head and the beat', async () => {
    const { dir, fs } = await openTree('running');
    const store = new MemoryObjectStore();
    const client = newClient();
    await syncCycle(store, S, await fs.read(), client, 1000);
    await writeFile(join(dir, 'metrics/efficiency/iteration-9.json'), record(9));
    const from = store.calls.length;
    await syncCycle(store, S, await fs.read(), client, 2000);
    const epoch = headOf(store).sets.efficiency!.epoch;
    const puts = store.calls.slice(from).filter((c) => c.op === 'put').map((c) => c.key);
    expect(puts).toEqual([bucketKey(S, 'efficiency', epoch, bucketOf('iteration-9.json')), headKey(S), beatKey(S)]);
    expect(store.count('delete', from)).toBe(0);
  });
});

describe('a commit that fails', () => {
  async function seeded(strong = true) {
    const store = new MemoryObjectStore(strong);
    const names = namesInBuckets(3);
    await ingestOk(store, S, effPayload({ upsert: await upserts(names) }));
    return { store, names, epoch: headOf(store).sets.efficiency!.epoch };
  }

  it('answers 503 when another sync committed first, and puts the buckets back', async () => {
    const { store, names, epoch } = await seeded();
    const [fresh] = namesInBuckets(1, names.map(bucketOf));
    const keys = [...names.slice(0, 2), fresh!].map((name) => bucketKey(S, 'efficiency', epoch, bucketOf(name)));
    const before = keys.map((key) => store.text(key));
    const put = store.put.bind(store);
    store.put = async (key, text, ifMatch) => {
      if (key === headKey(S)) store.set(key, store.text(key)!); // another writer, same moment
      return put(key, text, ifMatch);
    };
    const beat = store.text(beatKey(S));
    const change = effPayload({ upsert: { [names[0]!]: await shipped(record(77)), [fresh!]: await shipped(record(78)) }, remove: [names[1]!] });
    const answer = await ingestShards(store, S, change, options(store, 5000, nextNonce()));
    expect(answer.status).toBe(503);
    expect(keys.map((key) => store.text(key))).toEqual(before);
    expect(before[2]).toBeUndefined();
    expect(store.text(beatKey(S))).toBe(beat);
  });

  // Found by this test before its fix: src/sync/ingest.ts writes large documents (docWrites) and deletes replaced ones
  // (docDeletes) before the head's conditional put, and on a 503 puts back only the buckets. The
  // object at docKey then holds the losing write's content while the head still names the old hash,
  // so a reader without the old bytes cached (a cold isolate) finds no last good content: the
  // document reads as 'content not stored'. The same after a crash between those writes and the head.
  // Fix: put back (or delete) the documents too on 503; better, key large documents by hash
  // (data/S/docs/<path>/<hash>) so a write never replaces what the committed head points at, and
  // delete the old one only after the head committed.
  it('answers 503 without losing a large document the committed head points at', async () => {
    const store = new MemoryObjectStore();
    const dashboard = (mode: string) => shipped(JSON.stringify({ mode, pad: 'z'.repeat(2000) }), 3);
    const old = await dashboard('autonomous');
    await ingestOk(store, S, payloadOf({ documents: { 'dashboard-state.json': old } }));
    const put = store.put.bind(store);
    store.put = async (key, text, ifMatch) => {
      if (key === headKey(S)) store.set(key, store.text(key)!);
      return put(key, text, ifMatch);
    };
    const answer = await ingestShards(store, S, payloadOf({ documents: { 'dashboard-state.json': await dashboard('paused') } }), options(store, 5000, nextNonce()));
    expect(answer.status).toBe(503);
    const read = (await new SyncedStateStore(store, S).read()).documents['dashboard-state.json'];
    expect(read.error).toBeUndefined();
    expect(read.bytes && bytesToBase64(read.bytes)).toBe(old.b64);
  });

  it('a commit lost between the bucket writes and the head (a crash) is undone by the next ingest', async () => {
    const { store, names } = await seeded();
    const put = store.put.bind(store);
    store.put = async (key, text, ifMatch) => {
      if (key === headKey(S)) throw new Error('worker killed');
      return put(key, text, ifMatch);
    };
    const change = effPayload({ upsert: { [names[0]!]: await shipped(record(50, { cost_usd: 3 })), 'iteration-51.json': await shipped(record(51)) }, remove: [names[1]!] });
    await expect(ingestShards(store, S, change, options(store, 5000, nextNonce()))).rejects.toThrow('worker killed');
    store.put = put;
    // The manifest still says what was committed: the client sends the same change again.
    expect(Object.keys((await remoteManifest(store, S)).manifest.sets.efficiency!).sort()).toEqual([...names].sort());
    await ingestOk(store, S, change, 6000);
    const files = [
      { name: names[0]!, value: JSON.parse(record(50, { cost_usd: 3 })) },
      { name: names[2]!, value: JSON.parse(record(Number(/\d+/.exec(names[2]!)![0]))) },
      { name: 'iteration-51.json', value: JSON.parse(record(51)) },
    ];
    expect(canonical(headOf(store).sets.efficiency!.totals)).toEqual(canonical(foldUsage(files)));
    expect(headOf(store).sets.efficiency!.count).toBe(3);
  });

  // Found by this test before its fix: shards.ts settleBucket treats a bucket whose rev is older than the head's RECENT_COMMITS
  // window as committed. A bucket written by an ingest that never committed (crash, or on KV a
  // racing sync that lost) and not touched again within 32 commits therefore becomes live: the
  // manifest reports its files (the client stops sending them) though the head's summary never
  // counted them, and a later removal subtracts a contribution that was never added.
  // Fix: never leave such a bucket behind (ingest undoes its bucket writes when the head put
  // throws, and the head remembers the revs of failed writes), or key uncommitted writes by
  // something the head can check beyond the window (e.g. per bucket, the rev of its last commit).
  it('an uncommitted bucket write stays uncommitted after more than RECENT_COMMITS later commits', async () => {
    const { store, names } = await seeded();
    const orphan = Array.from({ length: 5000 }, (_, k) => `iteration-${k + 1}.json`).find((name) => bucketOf(name) === bucketOf(names[0]!) && !names.includes(name))!;
    const put = store.put.bind(store);
    store.put = async (key, text, ifMatch) => {
      if (key === headKey(S)) throw new Error('worker killed');
      return put(key, text, ifMatch);
    };
    await expect(ingestShards(store, S, effPayload({ upsert: await upserts([orphan]) }), options(store, 5000, nextNonce()))).rejects.toThrow();
    store.put = put;
    // The client never sends that file again (gone locally); other files keep arriving.
    for (const name of namesInBuckets(33, names.map(bucketOf), 9000)) await ingestOk(store, S, effPayload({ upsert: await upserts([name]) }));
    const listed = Object.keys((await remoteManifest(store, S)).manifest.sets.efficiency!);
    expect(listed.length).toBe(headOf(store).sets.efficiency!.count);
  });
});

describe('emptying a set', () => {
  it.each([true, false])('starts a new epoch; the old epoch\'s buckets are deleted on R2 and left unread on KV (strong %s)', async (strong) => {
    const store = new MemoryObjectStore(strong);
    const names = namesInBuckets(4);
    await ingestOk(store, S, effPayload({ upsert: await upserts(names) }));
    const epoch = headOf(store).sets.efficiency!.epoch;
    const old = names.map((name) => bucketKey(S, 'efficiency', epoch, bucketOf(name)));
    expect(old.every((key) => store.text(key) !== undefined)).toBe(true);
    const from = store.calls.length;
    await ingestOk(store, S, effPayload({ clear: true, upsert: await upserts(['iteration-1.json']) }));
    const head = headOf(store).sets.efficiency!;
    expect(head).toMatchObject({ epoch: epoch + 1, count: 1 });
    expect(usedBuckets(head)).toEqual([bucketOf('iteration-1.json')]);
    // the new epoch's bucket is not read (nothing can be in it), the old ones are not read either
    expect(store.calls.slice(from).filter((c) => c.op === 'get' && c.key.includes('/sets/'))).toEqual([]);
    expect(old.map((key) => store.text(key) !== undefined)).toEqual(old.map(() => !strong));
    expect(store.count('delete', from)).toBe(strong ? old.length : 0);
  });
});

describe('refusals and limits', () => {
  it.each([true, false])('caps new sessions at maxSessions (409) and lets existing ones sync without listing (strong %s)', async (strong) => {
    const store = new MemoryObjectStore(strong);
    for (const session of ['a', 'b']) expect((await ingestShards(store, session, effPayload({}), options(store, 1, nextNonce(), 2))).status).toBe(200);
    const from = store.calls.length;
    const refused = await ingestShards(store, 'c', effPayload({}), options(store, 2, nextNonce(), 2));
    expect(refused.status).toBe(409);
    expect(refused.body).toEqual({ error: expect.stringContaining('session limit reached') });
    // R2 reads the registry of admitted sessions; KV counts by a list (a fresh isolate here).
    expect(store.count('list', from)).toBe(strong ? 0 : 1);
    expect(store.count('put', from)).toBe(0);
    const again = store.calls.length;
    expect((await ingestShards(store, 'a', effPayload({ upsert: await upserts(['iteration-1.json']) }), options(store, 3, nextNonce(), 2))).status).toBe(200);
    expect(store.count('list', again)).toBe(0);
    // at the cap, a session with a beat but an unreadable head, or a legacy document only, is not new
    store.set(headKey('a'), '{"format": 3');
    store.set(legacyKey('old'), '{}');
    for (const session of ['a', 'old']) expect((await ingestShards(store, session, effPayload({}), options(store, 4, nextNonce(), 2))).status, session).toBe(200);
  });

  it('refuses a malformed upload whole (422) and writes nothing', async () => {
    const store = new MemoryObjectStore();
    await ingestOk(store, S, effPayload({ upsert: await upserts(['iteration-1.json']) }));
    const from = store.calls.length;
    const partial = { ...(await shipped(record(2))), hash: 'f'.repeat(64) };
    const answer = await ingestShards(store, S, effPayload({ upsert: { ...(await upserts(['iteration-3.json'])), 'iteration-2.json': partial } }, { documents: { 'loki.pid': await shipped('42') } }), options(store, 9, nextNonce()));
    expect(answer).toEqual({ status: 422, body: { error: 'metrics/efficiency/iteration-2.json: hash does not match the content (partial upload?)' } });
    expect(store.count('put', from) + store.count('delete', from)).toBe(0);
    const doc = await ingestShards(store, S, payloadOf({ documents: { PAUSE: { ...(await shipped('')), problem: 'x' } } }), options(store, 9, nextNonce()));
    expect(doc.status).toBe(422);
    expect(store.count('put', from)).toBe(0);
  });

  it('stores content the schemas refuse as bad with its last good contribution, and names it', async () => {
    const store = new MemoryObjectStore();
    await ingestOk(store, S, effPayload({ upsert: await upserts(['iteration-1.json', 'iteration-2.json']) }, { documents: { 'loki.pid': await shipped('4242') } }));
    const totals = structuredClone(headOf(store).sets.efficiency!.totals);
    const answer = await ingestOk(store, S, effPayload({ upsert: { 'iteration-2.json': await shipped('[1]', 9) } }, { documents: { 'loki.pid': await shipped('abc', 9) } }));
    expect(answer.body.rejected).toEqual(['loki.pid: not a pid (expected digits only)', expect.stringMatching(/^metrics\/efficiency\/iteration-2\.json: /)]);
    const head = headOf(store);
    expect(head.docs['loki.pid']).toMatchObject({ m: 9, p: 'refused by the remote: not a pid (expected digits only)', g: (await shipped('4242')).hash });
    expect(head.sets.efficiency).toMatchObject({ count: 2, bad: 1, badEntries: [{ name: 'iteration-2.json', problem: expect.stringMatching(/^refused by the remote: /), stale: true }] });
    expect(head.sets.efficiency!.totals).toEqual(totals);
    // a file reported bad by the client with no good content before: counted bad, not stale
    await ingestOk(store, S, effPayload({ upsert: { 'iteration-3.json': badFile('empty file') } }));
    expect(headOf(store).sets.efficiency).toMatchObject({ count: 3, bad: 2, badEntries: [{ name: 'iteration-2.json' }, { name: 'iteration-3.json', problem: 'empty file', stale: false }] });
  });

  it(`refuses an upload touching more than ${MAX_BUCKETS_PER_INGEST} buckets (413) and writes nothing`, async () => {
    const store = new MemoryObjectStore();
    const names = namesInBuckets(MAX_BUCKETS_PER_INGEST + 1);
    const files = await upserts(names);
    const answer = await ingestShards(store, S, effPayload({ upsert: files }), options(store, 1, nextNonce()));
    expect(answer.status).toBe(413);
    expect(store.count('put')).toBe(0);
    delete files[names[0]!];
    expect((await ingestShards(store, S, effPayload({ upsert: files }), options(store, 1, nextNonce()))).status).toBe(200);
  });
});

describe('moving a format 2 session over', () => {
  it.each([true, false])('serves the legacy document until the final request of the first full pass (strong %s)', async (strong) => {
    const store = new MemoryObjectStore(strong);
    const legacy = await applyIngest(emptyDoc(), effPayload({ upsert: await upserts(['iteration-1.json', 'iteration-2.json']) }, { available: true }), 111);
    if (!legacy.ok) throw new Error(legacy.problem);
    store.set(legacyKey(S), JSON.stringify(legacy.doc));
    const reader = new SyncedStateStore(store, S);
    await ingestOk(store, S, effPayload({ upsert: await upserts(['iteration-1.json']) }), 222);
    expect(headOf(store).filling).toBe(true);
    let reading = await reader.read();
    expect(reading.lastSyncMs).toBe(111);
    expect(reading.efficiency.files.map((f) => f.name)).toEqual(['iteration-1.json', 'iteration-2.json']);
    await ingestOk(store, S, effPayload({ upsert: await upserts(['iteration-2.json']) }), 333);
    expect((await reader.read()).lastSyncMs).toBe(111);
    await ingestOk(store, S, effPayload({ upsert: await upserts(['iteration-3.json']) }, { final: true }), 444);
    expect(headOf(store).filling).toBeUndefined();
    expect(store.text(legacyKey(S))).toBeUndefined();
    reading = await reader.read();
    expect(reading.lastSyncMs).toBe(444);
    expect(reading.efficiency.summary).toMatchObject({ count: 3, bad: 0 });
  });

  it('a session with no legacy document starts complete', async () => {
    const store = new MemoryObjectStore();
    await ingestOk(store, S, effPayload({ upsert: await upserts(['iteration-1.json']) }));
    expect(headOf(store).filling).toBeUndefined();
  });
});

describe('the paged manifest', () => {
  it('lists exactly what the client believes it sent, over many pages, and no uncommitted write', async () => {
    const store = new MemoryObjectStore();
    const client = newClient();
    const efficiency = Object.fromEntries(Array.from({ length: 300 }, (_, k) => [`iteration-${k + 1}.json`, JSON.parse(record(k + 1))]));
    const reading = readingOf({ efficiency, documents: { 'loki.pid': { content: '4242', mtimeMs: 7 } } });
    const { manifest, uploads } = await syncCycle(store, S, reading, client, 1000);
    expect(uploads.length).toBeGreaterThan(1);
    const remote = await remoteManifest(store, S);
    expect(remote.manifest.documents).toEqual(manifest.documents);
    expect(remote.manifest.sets.efficiency).toEqual(manifest.sets.efficiency);
    expect(remote.pages).toBeGreaterThanOrEqual(Math.ceil(new Set(Object.keys(efficiency).map(bucketOf)).size / 64));
    expect(remote.syncedAtMs).toBe(1000);
    // a page reads MANIFEST_PAGE_BUCKETS used buckets (and the head), and says where the next starts
    const used = usedBuckets(headOf(store).sets.efficiency!);
    expect(used.length).toBeGreaterThan(2 * MANIFEST_PAGE_BUCKETS);
    const from = store.calls.length;
    const page = await manifestPage(store, S, 'efficiency', used[3]! + 1);
    expect(store.count('get', from)).toBe(1 + MANIFEST_PAGE_BUCKETS);
    expect(page.next).toBe(used[4 + MANIFEST_PAGE_BUCKETS]);
    expect(Object.keys(page.files).every((name) => used.indexOf(bucketOf(name)) >= 4 && used.indexOf(bucketOf(name)) < 4 + MANIFEST_PAGE_BUCKETS)).toBe(true);
    expect((await manifestPage(store, S, 'efficiency', used.at(-1)!)).next).toBeNull();
    expect(await manifestPage(store, S, 'proofs', 0)).toEqual({ files: {}, next: null });
    expect(await manifestHead(store, 'nobody')).toEqual({ session: 'nobody', layout: 3, syncedAtMs: null, documents: {}, sets: {} });
    const put = store.put.bind(store);
    store.put = async (key, text, ifMatch) => {
      if (key === headKey(S)) throw new Error('lost');
      return put(key, text, ifMatch);
    };
    await expect(ingestShards(store, S, effPayload({ upsert: { 'iteration-5.json': await shipped(record(500)), 'iteration-999.json': await shipped(record(999)) }, remove: ['iteration-6.json'] }), options(store, 2000, nextNonce()))).rejects.toThrow();
    expect((await remoteManifest(store, S)).manifest).toEqual(remote.manifest);
  });
});

describe('planUploads with LAYOUT3_LIMITS', () => {
  it('keeps every upload within the files, buckets and bytes limits, a single oversize file alone, the last one final', async () => {
    const efficiency: Record<string, unknown> = {};
    // large files first (the byte limit binds), then small ones (the file limit binds)
    for (let k = 1; k <= 900; k++) efficiency[`iteration-${k}.json`] = { iteration: k, model: 'sonnet', note: 'x'.repeat(k <= 450 ? (k * 97) % 3000 : 0) };
    efficiency['iteration-5000.json'] = { iteration: 5000, note: 'y'.repeat(LAYOUT3_LIMITS.bytes) };
    const reading = readingOf({ efficiency, documents: { 'loki.pid': { content: '4242' }, 'dashboard-state.json': { content: { mode: 'x', pad: 'z'.repeat(9000) } } } });
    const uploads = await planUploads(reading, { documents: {}, sets: {} }, new SyncMemory(), LAYOUT3_LIMITS);
    expect(uploads.length).toBeGreaterThan(5);
    let sent = 0;
    uploads.forEach((upload, i) => {
      const m = measure(upload);
      sent += Object.keys(upload.payload.sets!.efficiency!.upsert).length;
      expect(m.files, `upload ${i}`).toBeLessThanOrEqual(LAYOUT3_LIMITS.files);
      expect(m.buckets, `upload ${i}`).toBeLessThanOrEqual(LAYOUT3_LIMITS.buckets);
      if (m.files > 1) expect(m.bytes, `upload ${i}`).toBeLessThanOrEqual(LAYOUT3_LIMITS.bytes);
      expect(upload.payload.final, `upload ${i}`).toBe(i === uploads.length - 1 ? true : undefined);
    });
    expect(sent).toBe(901);
    expect(uploads.some((u) => measure(u).files === LAYOUT3_LIMITS.files)).toBe(true);
    expect(uploads.some((u) => measure(u).files < LAYOUT3_LIMITS.files && measure(u).bytes > LAYOUT3_LIMITS.bytes - 5000)).toBe(true);
    expect(uploads.filter((u) => measure(u).bytes > LAYOUT3_LIMITS.bytes).map((u) => Object.keys(u.payload.sets!.efficiency!.upsert))).toEqual([['iteration-5000.json']]);
  });

  it('cuts by buckets when the bucket limit binds first (LAYOUT3_LIMITS itself reaches its file limit first)', async () => {
    expect(LAYOUT3_LIMITS.files).toBeLessThanOrEqual(LAYOUT3_LIMITS.buckets);
    expect(LAYOUT3_LIMITS.buckets).toBeLessThanOrEqual(MAX_BUCKETS_PER_INGEST);
    const efficiency = Object.fromEntries(Array.from({ length: 60 }, (_, k) => [`iteration-${k + 1}.json`, { iteration: k + 1 }]));
    const limits = { ...LAYOUT3_LIMITS, files: 1000, buckets: 5 };
    const uploads = await planUploads(readingOf({ efficiency }), { documents: {}, sets: {} }, new SyncMemory(), limits);
    const buckets = new Set(Object.keys(efficiency).map(bucketOf)).size;
    expect(uploads.length).toBeGreaterThanOrEqual(Math.ceil(buckets / 5));
    for (const upload of uploads) expect(measure(upload).buckets).toBeLessThanOrEqual(5);
    expect(uploads.flatMap((u) => Object.keys(u.payload.sets!.efficiency!.upsert)).sort()).toEqual(Object.keys(efficiency).sort());
  });

  it('sends a set mostly emptied as `clear` plus the files left, and few removals as removals', async () => {
    const store = new MemoryObjectStore();
    const client = newClient();
    const all = Object.fromEntries(Array.from({ length: 200 }, (_, k) => [`iteration-${k + 1}.json`, JSON.parse(record(k + 1))]));
    await syncCycle(store, S, readingOf({ efficiency: all }), client, 1000);
    const left = Object.fromEntries(Object.entries(all).slice(0, 60));
    left['iteration-1.json'] = JSON.parse(record(1, { cost_usd: 9 }));
    const { uploads } = await syncCycle(store, S, readingOf({ efficiency: left }), client, 2000);
    expect(uploads[0]!.payload.sets!.efficiency!.clear).toBe(true);
    expect(uploads.slice(1).every((u) => u.payload.sets!.efficiency!.clear === undefined)).toBe(true);
    expect(uploads.flatMap((u) => u.payload.sets!.efficiency!.remove)).toEqual([]);
    expect(uploads.flatMap((u) => Object.keys(u.payload.sets!.efficiency!.upsert)).sort()).toEqual(Object.keys(left).sort());
    expect(headOf(store).sets.efficiency!.count).toBe(60);
    expect((await remoteManifest(store, S)).manifest.sets.efficiency).toEqual((await syncCycle(store, S, readingOf({ efficiency: left }), client, 2500)).manifest.sets.efficiency);
    const fewer = Object.fromEntries(Object.entries(left).slice(0, 50));
    const second = await syncCycle(store, S, readingOf({ efficiency: fewer }), client, 3000);
    expect(second.uploads[0]!.payload.sets!.efficiency!.clear).toBeUndefined();
    expect(second.uploads.flatMap((u) => u.payload.sets!.efficiency!.remove).sort()).toEqual(Object.keys(left).slice(50).sort());
    expect((await remoteManifest(store, S)).manifest.sets.efficiency).toEqual(second.manifest.sets.efficiency);
    expect(headOf(store).sets.efficiency!.count).toBe(50);
  });
});
