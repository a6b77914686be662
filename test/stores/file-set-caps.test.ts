/**
 * What a file set may cost, through the real fs store: the caps per set (`FILE_SET_CAPS`: per
 * entry, entries, bytes; past one the set is reported bad, not grown), and what an entry keeps
 * between refreshes (its parsed value downstream, never its bytes in the store). Measured with the
 * store's counters and its retained-bytes accounting, never with timings or RSS.
 */
import { appendFileSync, existsSync, writeFileSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createCollector } from '../../src/collect.js';
import { FileSetCollector } from '../../src/file-set-collector.js';
import { readPidEntry } from '../../src/schemas/pid-entry.js';
import { FILE_SET_CAPS } from '../../src/stores/fs.js';
import { openHooks } from '../../src/stores/fs/read-file.js';
import { tempDir } from '../support/loki-tree.js';
import { emptyLokiDir, storesClosedAfterEach } from '../support/fs-stores.js';
import { sourceOf, valueOf } from '../support/samples.js';

const open = storesClosedAfterEach();

const lokiDir = () => emptyLokiDir('pids');

const text = (bytes: Uint8Array | undefined) => (bytes ? new TextDecoder().decode(bytes) : undefined);

describe('caps per set (FILE_SET_CAPS): past one, the set is reported bad and not grown', () => {
  const MIB = 1024 * 1024;
  // Trees of thousands of files or tens of MiB are made in memory where there is one.
  const base = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
  async function effDir(): Promise<{ dir: string; eff: string }> {
    const dir = join(await tempDir('loki-caps-', base), '.loki');
    const eff = join(dir, 'metrics/efficiency');
    await mkdir(eff, { recursive: true });
    return { dir, eff };
  }
  /** A valid efficiency file of exactly `size` bytes: `cost_usd`, padded by a field the metrics never read. */
  const effFile = (size: number, cost = 1) => {
    const head = `{"cost_usd":${cost},"transcript":"`;
    return `${head}${'x'.repeat(size - head.length - 2)}"}`;
  };
  const collector = () =>
    createCollector({ maxIterations: 1000, heartbeatWindowMs: 30_000, agentsHoldMs: 0, version: 'test', log: () => undefined });

  it('are 1 MiB per entry, 20,000 entries and 32 MiB of files per set', () => {
    expect(FILE_SET_CAPS).toEqual({ entryBytes: MIB, entries: 20_000, bytes: 32 * MIB });
  });

  it('an efficiency file over 1 MiB is a bad entry, never read; one of exactly 1 MiB is read; the others still count', async () => {
    const { dir, eff } = await effDir();
    await writeFile(join(eff, 'iteration-1.json'), effFile(MIB, 1));
    await writeFile(join(eff, 'iteration-2.json'), effFile(MIB + 1, 100));
    await writeFile(join(eff, 'iteration-3.json'), '{"cost_usd": 2}');
    const store = open(dir, { watch: false });
    const reading = await store.read();
    expect(reading.efficiency.error).toBeUndefined();
    expect(reading.efficiency.files.find((f) => f.name === 'iteration-2.json')).toMatchObject({ present: true, error: `too large (${MIB + 1} bytes)` });
    expect(store.counters.fileSets.efficiency.reads).toBe(2); // never the oversized one
    const s = collector().collect(reading, Date.now());
    expect(valueOf(s, 'loki_cost_usd')).toBe(3);
    expect(valueOf(s, 'loki_source_ok', { source: 'metrics/efficiency' })).toBe(0);
    expect(sourceOf(s, 'metrics/efficiency')?.problem).toBe(`1 bad file(s): iteration-2.json: too large (${MIB + 1} bytes)`);
  });

  it('a file that grows past 1 MiB after it was listed is refused by the size seen once it is open', async () => {
    const { dir, eff } = await effDir();
    const path = join(eff, 'iteration-1.json');
    await writeFile(path, '{"cost_usd": 1}');
    openHooks.beforeOpen = (opened) => {
      if (opened === path) appendFileSync(path, ' '.repeat(2 * MIB));
    };
    try {
      const store = open(dir, { watch: false });
      const r = (await store.read()).efficiency;
      expect(r.files[0]).toMatchObject({ name: 'iteration-1.json', present: true, error: `too large (${2 * MIB + 15} bytes)` });
      expect(store.counters.fileSets.efficiency.reads).toBe(0);
    } finally {
      openHooks.beforeOpen = undefined;
    }
  });

  it('more than 20,000 entries: the set is bad and holds 20,000; at the cap again, it is ok', async () => {
    const { dir, eff } = await effDir();
    for (let i = 1; i <= 20_001; i++) writeFileSync(join(eff, `iteration-${i}.json`), '{"cost_usd": 1}');
    const store = open(dir, { watch: false });
    const over = (await store.read()).efficiency;
    expect(over.files).toHaveLength(20_000);
    expect(over.error).toBe('more than 20000 entries (the cap per set): the rest are left out, unread');
    expect(store.counters.fileSets.efficiency.reads).toBe(20_000);
    await rm(join(eff, 'iteration-1.json'));
    const back = (await store.read()).efficiency;
    expect(back.files).toHaveLength(20_000);
    expect(back.error).toBeUndefined();
  }, 30_000);

  it('more than 32 MiB of files in a set: it is bad, the file past the cap is left out unread; with room again, it is read', async () => {
    const { dir, eff } = await effDir();
    for (let i = 1; i <= 33; i++) await writeFile(join(eff, `iteration-${i}.json`), effFile(MIB, 1));
    const store = open(dir, { watch: false });
    const over = await store.read();
    expect(over.efficiency.files).toHaveLength(32);
    expect(over.efficiency.files.every((f) => f.error === undefined)).toBe(true);
    expect(over.efficiency.error).toBe('more than 32 MiB of files (the cap per set): the rest are left out, unread');
    expect(store.counters.fileSets.efficiency.reads).toBe(32);
    const c = collector();
    const s = c.collect(over, Date.now());
    expect(valueOf(s, 'loki_cost_usd')).toBe(32);
    expect(sourceOf(s, 'metrics/efficiency')).toMatchObject({ ok: false, problem: over.efficiency.error });
    // Unchanged, the file left out is not read again.
    await store.read();
    expect(store.counters.fileSets.efficiency.reads).toBe(32);

    const held = over.efficiency.files.map((f) => f.name);
    await rm(join(eff, held[0]!));
    const back = await store.read();
    expect(back.efficiency.files).toHaveLength(32);
    expect(back.efficiency.error).toBeUndefined();
    expect(store.counters.fileSets.efficiency.reads).toBe(33);
    expect(sourceOf(c.collect(back, Date.now()), 'metrics/efficiency')).toMatchObject({ ok: true });
  });

  it('hold for two-level sets too, and can be set lower per store (fileSetCaps)', async () => {
    const dir = join(await tempDir(), '.loki');
    const receipt = '{"honesty": {"headline": "VERIFIED"}}';
    for (const run of ['run-a', 'run-b', 'run-c']) {
      await mkdir(join(dir, 'proofs', run), { recursive: true });
      await writeFile(join(dir, 'proofs', run, 'proof.json'), receipt);
    }
    const counted = (await open(dir, { watch: false, fileSetCaps: { entries: 2 } }).read()).proofs;
    expect(counted.files).toHaveLength(2);
    expect(counted.error).toBe('more than 2 entries (the cap per set): the rest are left out, unread');
    const sized = open(dir, { watch: false, fileSetCaps: { bytes: 2 * receipt.length } });
    const bytes = (await sized.read()).proofs;
    expect(bytes.files).toHaveLength(2);
    expect(bytes.error).toBe(`more than ${2 * receipt.length} bytes of files (the cap per set): the rest are left out, unread`);
    expect(sized.counters.fileSets.proofs.reads).toBe(2);
  });
});

describe('memory: an entry keeps its parsed value downstream, never its bytes in the store', () => {
  it('holds the bytes a refresh read until the next refresh only; asked for later, reads them again', async () => {
    const dir = await lokiDir();
    const eff = join(dir, 'metrics/efficiency');
    await mkdir(eff, { recursive: true });
    const bodies = ['{"cost_usd": 1}', '{"cost_usd": 2.5, "model": "opus"}', '{"iteration": 3}'];
    for (const [i, body] of bodies.entries()) await writeFile(join(eff, `iteration-${i + 1}.json`), body);
    const total = bodies.reduce((sum, body) => sum + body.length, 0);
    const store = open(dir, { watch: false });
    const first = await store.read();
    expect(first.efficiency.files.map((f) => text(f.bytes))).toEqual(bodies);
    expect(store.retainedBytes()).toBeGreaterThanOrEqual(total);
    expect(store.retainedBytes()).toBeLessThan(total + 3 * 64); // what was read, no more

    const second = await store.read(); // nothing changed: nothing read, nothing held
    expect(store.retainedBytes()).toBe(0);
    expect(store.counters.fileSets.efficiency).toMatchObject({ reads: 3, loads: 0 });
    // A consumer that needs the bytes of an unchanged file (sync resending it) still gets them.
    expect(text(second.efficiency.files[1]?.bytes)).toBe(bodies[1]);
    expect(store.counters.fileSets.efficiency).toMatchObject({ reads: 3, loads: 1 });
    expect(store.retainedBytes()).toBeGreaterThanOrEqual(bodies[1]!.length);
    await store.read();
    expect(store.retainedBytes()).toBe(0);
  });

  it('a refresh nobody consumed (a read that timed out) costs its consumer nothing: the next one gives the new value', async () => {
    const dir = await lokiDir();
    const pid = join(dir, 'pids', '11.json');
    await writeFile(pid, JSON.stringify({ pid: 11, label: 'x' }));
    const store = open(dir, { watch: false });
    const c = new FileSetCollector('pids', readPidEntry, () => undefined);
    expect(c.update((await store.read()).pids).values.map((v) => v.value.pid)).toEqual([11]);
    await writeFile(pid, JSON.stringify({ pid: 12, label: 'x' }));
    await store.read(); // read, and dropped on the floor
    await store.read();
    expect(c.update((await store.read()).pids).values.map((v) => v.value.pid)).toEqual([12]);
  });
});
