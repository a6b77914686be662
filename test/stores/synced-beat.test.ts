/**
 * SyncedStateStore over format 3 (stores/synced.ts): what a scrape takes from the beat, the small
 * object every sync writes. The directory's availability, the runner's verdict (or, from clients
 * that send none, `loki.pid`'s liveness) and the process answers only the client could give.
 */
import { describe, expect, it } from 'vitest';
import { SyncedStateStore } from '../../src/stores/synced.js';
import type { IngestPayload } from '../../src/sync/protocol.js';
import { ingestOk, payloadOf } from '../support/format3.js';
import { MemoryObjectStore } from '../support/object-store.js';

const S = 's';

/** A reading of a session whose one sync sent `payload`. */
async function readingAfter(payload: Partial<IngestPayload>) {
  const store = new MemoryObjectStore();
  await ingestOk(store, S, payloadOf(payload), 1000);
  return new SyncedStateStore(store, S).read();
}

describe("a synced session's beat", () => {
  it('reports the state directory unavailable, and why, as the client saw it', async () => {
    const reading = await readingAfter({ available: false, problem: 'ENOENT: no such directory' });
    expect(reading.available).toBe(false);
    expect(reading.problem).toBe('ENOENT: no such directory');
  });

  it('leaves the problem out of an available directory, as the format 2 and local readers do', async () => {
    const reading = await readingAfter({ available: true });
    expect(reading.available).toBe(true);
    expect(reading).not.toHaveProperty('problem');
  });

  it("serves the client's runner verdict as it was sent, over loki.pid's liveness", async () => {
    const runner = { decided: true, alive: false };
    expect((await readingAfter({ pid: 4242, pidAlive: true, runner })).runner).toEqual(runner);
    const started = { decided: true, alive: true, pid: 77, startedMs: 5000 };
    expect((await readingAfter({ pid: null, pidAlive: false, runner: started })).runner).toEqual(started);
  });

  it('without a verdict (older clients), decides from loki.pid: alive when its pid was alive', async () => {
    expect((await readingAfter({ pid: 4242, pidAlive: true })).runner).toEqual({ decided: true, alive: true, pid: 4242 });
  });

  it.each([
    ['a dead loki.pid', { pid: 4242, pidAlive: false }],
    ['no loki.pid', { pid: null, pidAlive: false }],
    ['an alive flag without a pid', { pid: null, pidAlive: true }],
  ])('without a verdict, leaves the runner undecided for %s', async (_, payload) => {
    expect((await readingAfter(payload)).runner).toEqual({ decided: false, alive: false });
  });

  it("answers for loki.pid's process alone, alive only when the client found it alive", async () => {
    const alive = await readingAfter({ pid: 4242, pidAlive: true });
    expect(alive.isProcessAlive(4242)).toBe(true);
    expect(alive.isProcessAlive(4243)).toBe(false);
    const dead = await readingAfter({ pid: 4242, pidAlive: false });
    expect(dead.isProcessAlive(4242)).toBe(false);
    const none = await readingAfter({ pid: null, pidAlive: true });
    expect(none.isProcessAlive(4242)).toBe(false);
  });

  it("never claims the host's pid namespace: the processes are on another machine", async () => {
    expect((await readingAfter({ pid: 4242, pidAlive: true })).hostPidNamespace).toBe(false);
  });
});
