import { describe, expect, it } from 'vitest';
import type { SessionBucket } from '../../src/stores/session-bucket.js';
import { SyncedStateStore } from '../../src/stores/synced.js';
import { emptyDoc } from '../../src/sync/protocol.js';

/** A bucket over a Map (the real R2/KV adapters are exercised in workerd by test/worker/). */
function bucket(withEtag: boolean) {
  const texts = new Map<string, string>();
  let loads = 0;
  const b: SessionBucket = {
    async load(session, etag) {
      loads++;
      const text = texts.get(session);
      if (text === undefined) return null;
      const current = `"${text}"`; // any value that changes with the content
      if (withEtag && etag === current) return 'unchanged';
      return withEtag ? { text, etag: current } : { text };
    },
    async save(session, text) {
      texts.set(session, text);
    },
  };
  return { b, texts, loads: () => loads };
}

describe('SyncedStateStore', () => {
  it.each([true, false])('reuses the decoded reading while the stored document is unchanged (etag: %s)', async (withEtag) => {
    const { b, texts, loads } = bucket(withEtag);
    texts.set('s', JSON.stringify({ ...emptyDoc(), syncedAtMs: 1, available: true }));
    const store = new SyncedStateStore(b, 's');
    const first = await store.read();
    expect(await store.read()).toBe(first); // same object: the collector's memos keep hitting
    texts.set('s', JSON.stringify({ ...emptyDoc(), syncedAtMs: 2, available: true }));
    const changed = await store.read();
    expect(changed).not.toBe(first);
    expect(changed.lastSyncMs).toBe(2);
    expect(loads()).toBe(3); // one storage read per refresh
  });

  it('reports a session nothing was synced to as unavailable, and an unreadable document as an error', async () => {
    const { b, texts } = bucket(true);
    const store = new SyncedStateStore(b, 's');
    expect((await store.read()).available).toBe(false);
    texts.set('s', '{"format": 2');
    await expect(store.read()).rejects.toThrow(/unreadable/);
  });
});
