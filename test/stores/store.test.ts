/**
 * The storage adapter interface's shared definitions (stores/store.ts): where a file set's entries
 * live, and the readings of what is absent or unreadable.
 */
import { describe, expect, it } from 'vitest';
import { ABSENT, ABSENT_SET, absentDocuments, absentFileSets, DOCUMENTS, FILE_SET_NAMES, fileSetPath, unreadableReading } from '../../src/stores/store.js';

describe('fileSetPath', () => {
  it('puts an entry of a flat set directly in its directory', () => {
    expect(fileSetPath('efficiency', 'iteration-3.json')).toBe('metrics/efficiency/iteration-3.json');
    expect(fileSetPath('pids', '4242.json')).toBe('pids/4242.json');
  });

  it('puts an entry of a nested set at the leaf inside its sub-directory', () => {
    expect(fileSetPath('proofs', 'run-7')).toBe('proofs/run-7/proof.json');
    expect(fileSetPath('sessions', 'abc')).toBe('sessions/abc/loki.pid');
  });
});

describe('readings of nothing', () => {
  it('an unreadable state directory: every document and set absent, no process alive', () => {
    const reading = unreadableReading('no such directory');
    expect(reading).toMatchObject({ available: false, problem: 'no such directory', hostPidNamespace: false, events: { present: false, lines: 0 } });
    expect(Object.keys(reading.documents)).toEqual([...DOCUMENTS]);
    for (const name of DOCUMENTS) expect(reading.documents[name]).toBe(ABSENT);
    for (const name of FILE_SET_NAMES) expect(reading[name]).toBe(ABSENT_SET);
    expect(reading.isProcessAlive(process.pid)).toBe(false);
  });

  it('hands out fresh records of shared, frozen absences', () => {
    expect(absentDocuments()).not.toBe(absentDocuments());
    expect(Object.keys(absentFileSets())).toEqual(FILE_SET_NAMES);
    expect(Object.isFrozen(ABSENT) && Object.isFrozen(ABSENT_SET) && Object.isFrozen(ABSENT_SET.files)).toBe(true);
  });
});
