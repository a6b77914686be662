/**
 * FileSetCollector.prepare and timeSlicer: parsing a file set in slices, giving the event loop back
 * when the slicer says so. Measured by counting (parses, slicer steps, turns scheduled), never by time.
 */
import { describe, expect, it } from 'vitest';
import { FileSetCollector, SLICE_MS, timeSlicer } from '../src/file-set-collector.js';
import { readPidFile } from '../src/schemas/pid.js';
import type { FileSetEntryRead, FileSetRead } from '../src/stores/store.js';
import { countingSlicer } from './support/slicers.js';

const entry = (name: string, text: string, version = `v:${name}:${text}`, extra: Partial<FileSetEntryRead> = {}): FileSetEntryRead => ({
  name,
  present: true,
  bytes: new TextEncoder().encode(text),
  mtimeMs: 1000,
  version,
  ...extra,
});
const set = (files: FileSetEntryRead[], extra: Partial<FileSetRead> = {}): FileSetRead => ({ present: true, files, ...extra });

/** A collector over `sessions/<id>/loki.pid` (a pid per entry), counting parses. */
function collector() {
  let parses = 0;
  const c = new FileSetCollector<number>('sessions', (bytes) => (parses++, readPidFile(bytes)), () => undefined);
  return { c, parses: () => parses };
}

describe('FileSetCollector.prepare: parsing in slices (issue 19, item 5: one project never stalls another)', () => {
  const many = (n: number, round = 'a') => set(Array.from({ length: n }, (_, i) => entry(`e${i}`, `${i + 1}\n`, `${round}:${i}`)));
  const everyStep = { step: () => new Promise<void>((resolve) => setImmediate(resolve)) };

  it('parses the new entries, so that update then parses none and gives the same result as update alone', async () => {
    const { c, parses } = collector();
    const read = many(100);
    await c.prepare(read, everyStep);
    expect(parses()).toBe(100);
    const prepared = c.update(read);
    expect(parses()).toBe(100);
    const alone = collector();
    expect(prepared).toEqual(alone.c.update(read));
    // Unchanged entries are not parsed again; changed ones are.
    const next = set([...many(100).files.slice(0, 99), entry('e99', '7\n', 'b:99')]);
    await c.prepare(next, everyStep);
    expect(parses()).toBe(101);
    expect(c.update(next).values.at(-1)).toEqual({ name: 'e99', value: 7 });
  });

  it('gives the event loop back between entries when the slicer says so, and does nothing for a read it has collected or a summary', async () => {
    const { c, parses } = collector();
    let turns = 0;
    let stop = false;
    const count = () => {
      if (stop) return;
      turns++;
      setImmediate(count);
    };
    setImmediate(count);
    const read = many(50);
    await c.prepare(read, everyStep);
    stop = true;
    expect(turns).toBeGreaterThanOrEqual(40);
    c.update(read);
    let steps = 0;
    await c.prepare(read, { step: () => void steps++ });
    await c.prepare(set([], { summary: { count: 3, bad: 0, badEntries: [] } }), { step: () => void steps++ });
    expect(steps).toBe(0);
    expect(parses()).toBe(50);
  });

  it('consults the slicer once per entry it parses, and never for an entry whose version, error and staleness it has seen', async () => {
    const { c, parses } = collector();
    const slicer = countingSlicer();
    await c.prepare(many(20), slicer);
    expect(slicer.steps).toBe(20);
    // A new array, one entry changed: one parse, one step.
    const next = set([...many(20).files.slice(0, 19), entry('e19', '7\n', 'b:19')]);
    await c.prepare(next, slicer);
    expect([slicer.steps, parses()]).toEqual([21, 21]);
    // The same version served stale (a synced store), then fresh again, then unreadable: each is looked at again.
    const files = next.files.slice(0, 19);
    const e19 = (extra: Partial<FileSetEntryRead> = {}) => set([...files, entry('e19', '7\n', 'b:19', extra)]);
    await c.prepare(e19({ stale: 'not a pid' }), slicer);
    expect(slicer.steps).toBe(22);
    await c.prepare(e19({ stale: 'not a pid' }), slicer);
    expect(slicer.steps).toBe(22);
    await c.prepare(e19(), slicer);
    expect(slicer.steps).toBe(23);
    await c.prepare(e19({ error: 'permission denied' }), slicer);
    expect(slicer.steps).toBe(24);
  });

  it('parses entries of version \'\' (which promise nothing) at every prepare, but not again for a read it has collected', async () => {
    const { c, parses } = collector();
    const slicer = countingSlicer();
    const unversioned = () => set([entry('a', '11\n', ''), entry('b', '22\n', 'vb')]);
    await c.prepare(unversioned(), slicer);
    await c.prepare(unversioned(), slicer);
    expect([slicer.steps, parses()]).toEqual([3, 3]);
    const read = unversioned();
    expect(c.update(read).values).toEqual([
      { name: 'a', value: 11 },
      { name: 'b', value: 22 },
    ]);
    expect(parses()).toBe(4);
    // The same files array again: its entries are collected already.
    await c.prepare(read, slicer);
    await c.prepare({ ...read }, slicer);
    expect([slicer.steps, parses()]).toEqual([3, 4]);
  });

  it('gives the event loop back only when the slicer says so: with one that never yields, all is parsed before prepare returns', () => {
    const { c, parses } = collector();
    const slicer = countingSlicer();
    const done = c.prepare(many(30), slicer);
    expect([slicer.steps, parses()]).toEqual([30, 30]);
    return done;
  });
});

describe('timeSlicer', () => {
  it(`yields once ${SLICE_MS} ms have passed since the last yield, looking at the clock every 16 steps`, async () => {
    let now = 0;
    let yields = 0;
    const slicer = timeSlicer(SLICE_MS, () => now, async () => void yields++);
    for (let i = 1; i <= 15; i++) expect(slicer.step()).toBeUndefined();
    now = SLICE_MS - 0.1;
    expect(slicer.step()).toBeUndefined(); // step 16: not yet
    now = SLICE_MS;
    for (let i = 17; i < 32; i++) expect(slicer.step()).toBeUndefined(); // between looks
    await slicer.step(); // step 32: time is up
    expect(yields).toBe(1);
    for (let i = 33; i <= 48; i++) await slicer.step(); // the slice starts again at the yield
    expect(yields).toBe(1);
    expect(SLICE_MS).toBe(5);
  });

  it('reads the real clock by default: a slice of 0 ms yields at every 16th step, an endless one never', async () => {
    let yields = 0;
    const yieldToLoop = async () => void yields++;
    const eager = timeSlicer(0, undefined, yieldToLoop);
    for (let i = 1; i <= 32; i++) await eager.step();
    expect(yields).toBe(2);
    yields = 0;
    const endless = timeSlicer(Infinity, undefined, yieldToLoop);
    for (let i = 1; i <= 64; i++) expect(endless.step()).toBeUndefined();
    expect(yields).toBe(0);
  });

  /** Steps a default timeSlicer(0) to its first yield with `globals` in place; what it scheduled, and the turn. */
  function yieldWith(globals: Record<'setImmediate' | 'setTimeout', unknown>) {
    const scheduled: (() => void)[] = [];
    const schedule = (f: () => void) => void scheduled.push(f);
    const g = globalThis as Record<string, unknown>;
    const saved = { setImmediate: g.setImmediate, setTimeout: g.setTimeout };
    let turn: Promise<void> | void = undefined;
    Object.assign(g, { setImmediate: globals.setImmediate === 'record' ? schedule : globals.setImmediate, setTimeout: globals.setTimeout === 'record' ? schedule : globals.setTimeout });
    try {
      const slicer = timeSlicer(0);
      for (let i = 1; i <= 16; i++) turn = slicer.step();
    } finally {
      Object.assign(g, saved);
    }
    return { scheduled, turn };
  }

  /** Resolves after one turn of the event loop. */
  const aTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

  it('yields a macrotask by default: setImmediate on Node, resolving when it runs', async () => {
    const { scheduled, turn } = yieldWith({ setImmediate: 'record', setTimeout: 'unused' });
    expect(scheduled).toHaveLength(1);
    expect(turn).toBeInstanceOf(Promise);
    let resumed = false;
    void (turn as Promise<void>).then(() => void (resumed = true));
    await aTurn();
    expect(resumed).toBe(false); // not before the macrotask runs
    scheduled[0]!();
    await aTurn();
    expect(resumed).toBe(true);
  });

  it('yields through a zero timeout where there is no setImmediate (a Worker)', async () => {
    const { scheduled, turn } = yieldWith({ setImmediate: undefined, setTimeout: 'record' });
    expect(scheduled).toHaveLength(1);
    scheduled[0]!();
    await turn;
  });
});
