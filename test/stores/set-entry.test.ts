/**
 * src/stores/fs/set-entry.ts: a file-set entry keeps its bytes only until the next refresh, and
 * reads them again when asked for later (through its `EntrySource`); the caps' messages. And the
 * readings src/stores/store.ts gives for what cannot be read.
 */
import { describe, expect, it } from 'vitest';
import { capProblems, FILE_SET_CAPS, HeldEntry, type EntrySource } from '../../src/stores/fs/set-entry.js';
import { ABSENT, absentDocuments, DOCUMENTS, unreadableReading } from '../../src/stores/store.js';

/** A source that answers `load` with `next` and records who registered as holding. */
function source(next: () => Uint8Array | undefined) {
  const holding: HeldEntry[] = [];
  let loads = 0;
  const src: EntrySource = {
    load: () => (loads++, next()),
    holding: (entry) => void holding.push(entry),
  };
  return { src, holding, get loads() {
    return loads;
  } };
}

describe('HeldEntry', () => {
  it('holds the bytes it was made with until released, counting them; then holds none', () => {
    const s = source(() => new Uint8Array(3));
    const entry = new HeldEntry('a.json', 'v1', 1000, new Uint8Array(5), s.src);
    expect(entry).toMatchObject({ present: true, name: 'a.json', version: 'v1', mtimeMs: 1000, size: 5 });
    expect(s.holding).toEqual([entry]);
    expect(entry.heldBytes).toBe(5);
    entry.release();
    expect(entry.heldBytes).toBe(0);
    expect(s.loads).toBe(0);
  });

  it('asked for after its release, reads its bytes again and holds them (registered again)', () => {
    const s = source(() => new Uint8Array([1, 2, 3]));
    const entry = new HeldEntry('a.json', 'v1', undefined, new Uint8Array(5), s.src);
    entry.release();
    expect(entry.bytes).toEqual(new Uint8Array([1, 2, 3]));
    expect(entry.bytes).toEqual(new Uint8Array([1, 2, 3])); // held now: read once
    expect(s.loads).toBe(1);
    expect(s.holding).toHaveLength(2);
    expect(entry.heldBytes).toBe(3);
    expect(entry.size).toBe(5); // what it counts towards its set's cap: the bytes it had when read
  });

  it('bytes that cannot be read again: undefined, nothing held, not registered, asked again next time', () => {
    const s = source(() => undefined);
    const entry = new HeldEntry('a.json', 'v1', undefined, new Uint8Array(5), s.src);
    entry.release();
    expect(entry.bytes).toBeUndefined();
    expect(s.holding).toHaveLength(1); // only the first hold
    expect(entry.heldBytes).toBe(0);
    expect(entry.bytes).toBeUndefined();
    expect(s.loads).toBe(2);
  });
});

describe('capProblems', () => {
  it('names the entry cap first, then the byte cap (in MiB when whole, else bytes); none when under both', () => {
    expect(capProblems(FILE_SET_CAPS, false, false)).toBeUndefined();
    expect(capProblems(FILE_SET_CAPS, true, true)).toBe('more than 20000 entries (the cap per set): the rest are left out, unread');
    expect(capProblems(FILE_SET_CAPS, false, true)).toBe('more than 32 MiB of files (the cap per set): the rest are left out, unread');
    expect(capProblems({ ...FILE_SET_CAPS, bytes: 1000 }, false, true)).toBe('more than 1000 bytes of files (the cap per set): the rest are left out, unread');
  });
});

describe('readings of what cannot be read (store.ts)', () => {
  it('an unreadable state directory: unavailable, every document and set absent, no process alive, not the host namespace', () => {
    const r = unreadableReading('missing');
    expect(r).toMatchObject({ available: false, problem: 'missing', events: { present: false, lines: 0 }, hostPidNamespace: false });
    expect(r.isProcessAlive(process.pid)).toBe(false);
    for (const name of DOCUMENTS) expect(r.documents[name]).toBe(ABSENT);
    expect(r.efficiency).toEqual({ present: false, files: [] });
    expect(absentDocuments()).toEqual(r.documents);
    expect(Object.isFrozen(ABSENT)).toBe(true);
  });
});
