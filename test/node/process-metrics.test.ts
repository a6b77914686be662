/**
 * The Node process sampler against the real process: plausible values that move when the process
 * does (memory, CPU, descriptors, a blocked event loop), and nothing left to keep the process alive.
 */
import { closeSync, existsSync, fstatSync, openSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createProcessMetrics, SERVER_READING_REUSE_MS } from '../../src/node/process-metrics.js';

/** Listing a directory fails while `fail` is set: a system without `/proc` (macOS). */
const listing = vi.hoisted(() => ({ fail: false }));
vi.mock('node:fs', async (importOriginal) => {
  const fs = await importOriginal<typeof import('node:fs')>();
  const readdir = ((...args: Parameters<typeof fs.readdirSync>) => {
    if (listing.fail) throw Object.assign(new Error(`ENOENT: no such file or directory, scandir '${String(args[0])}'`), { code: 'ENOENT' });
    return fs.readdirSync(...args);
  }) as typeof fs.readdirSync;
  return { ...fs, default: { ...fs, readdirSync: readdir }, readdirSync: readdir };
});

afterEach(() => {
  listing.fail = false;
  vi.restoreAllMocks();
});

/** `performance.now()` as the test sets it. */
function controlledClock(start = 1_000): { set: (ms: number) => void } {
  let now = start;
  vi.spyOn(performance, 'now').mockImplementation(() => now);
  return { set: (ms) => void (now = ms) };
}

/** Keeps the CPU busy (and the event loop blocked) for `ms`. */
function busy(ms: number): number {
  const until = performance.now() + ms;
  let x = 0;
  while (performance.now() < until) x += Math.sqrt(x + 1);
  return x;
}

const turn = () => new Promise<void>((resolve) => setImmediate(resolve));
const pause = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const linux = existsSync('/proc/self/fd');

describe('createProcessMetrics', () => {
  it('reports the resident memory: positive and close to process.memoryUsage().rss', () => {
    const sample = createProcessMetrics();
    const { residentMemoryBytes } = sample();
    const reference = process.memoryUsage().rss;
    expect(residentMemoryBytes).toBeGreaterThan(10 * 1024 * 1024);
    expect(Math.abs(residentMemoryBytes - reference)).toBeLessThan(Math.max(16 * 1024 * 1024, reference * 0.1));
  });

  it('reports CPU seconds that grow with busy work, by about the work done', () => {
    const sample = createProcessMetrics();
    const before = sample().cpuSeconds;
    const reference = process.cpuUsage();
    expect(before).toBeGreaterThan(0);
    const wallStart = performance.now();
    busy(200);
    const wall = (performance.now() - wallStart) / 1000;
    const after = sample().cpuSeconds;
    // the CPU the work took, by the process's own account (on a loaded machine less than the wall time)
    const used = process.cpuUsage(reference);
    const work = (used.user + used.system) / 1e6;
    expect(work).toBeGreaterThan(0.02);
    expect(Math.abs(after - before - work)).toBeLessThan(0.02);
    // user + system of the whole process can exceed wall time a little (GC and libuv threads), not by much
    expect(after - before).toBeLessThan(wall * 2 + 0.1);
  });

  it('reports the start time once, within a few seconds of now - uptime', () => {
    const sample = createProcessMetrics();
    const expected = (Date.now() - process.uptime() * 1000) / 1000;
    const first = sample().startTimeSeconds;
    expect(Math.abs(first - expected)).toBeLessThan(3);
    busy(20);
    expect(sample().startTimeSeconds).toBe(first);
    expect(first).toBeLessThan(Date.now() / 1000);
  });

  it.runIf(linux)('counts open descriptors: one more while a file is open, back after closing it', () => {
    const sample = createProcessMetrics({ fdCacheMs: 0 });
    const before = sample().openFds;
    expect(before).toBeGreaterThanOrEqual(3);
    const fd = openSync(join(tmpdir(), 'loki-metrics-fd-probe'), 'w');
    let during: number | undefined;
    try {
      during = sample().openFds;
    } finally {
      closeSync(fd);
    }
    const after = sample().openFds;
    expect(during).toBe(before! + 1);
    expect(after).toBe(before);
  });

  it.runIf(linux)('counts exactly the open descriptors (not the one the listing itself holds)', () => {
    const sample = createProcessMetrics({ fdCacheMs: 0 });
    // Independently: every descriptor number up to the highest listed that fstat accepts.
    const highest = Math.max(...readdirSync('/proc/self/fd').map(Number));
    let open = 0;
    for (let fd = 0; fd <= highest + 8; fd++) {
      try {
        fstatSync(fd);
        open++;
      } catch {
        // not open
      }
    }
    expect(sample().openFds).toBe(open);
  });

  it.runIf(linux)('reuses a descriptor count for a second by default (a directory listing per scrape is not free), then counts again', () => {
    const clock = controlledClock(5_000);
    const sample = createProcessMetrics();
    const before = sample().openFds; // counted at 5000
    const fd = openSync(join(tmpdir(), 'loki-metrics-fd-probe-cached'), 'w');
    try {
      clock.set(5_999);
      expect(sample().openFds).toBe(before);
      clock.set(6_000); // a second after the count
      expect(sample().openFds).toBe(before! + 1);
    } finally {
      closeSync(fd);
    }
    clock.set(6_999);
    expect(sample().openFds).toBe(before! + 1); // the count of 6000, kept
    clock.set(7_000);
    expect(sample().openFds).toBe(before);
  });

  it.runIf(linux)('reuses it for `fdCacheMs` when given', () => {
    const clock = controlledClock(0);
    const sample = createProcessMetrics({ fdCacheMs: 50 });
    const before = sample().openFds;
    const fd = openSync(join(tmpdir(), 'loki-metrics-fd-probe-cached-50'), 'w');
    try {
      clock.set(49);
      expect(sample().openFds).toBe(before);
      clock.set(50);
      expect(sample().openFds).toBe(before! + 1);
    } finally {
      closeSync(fd);
    }
  });

  it('leaves the count out (no openFds at all) where the descriptors cannot be listed, and asks again only after fdCacheMs', () => {
    const clock = controlledClock(0);
    listing.fail = true;
    const sample = createProcessMetrics({ fdCacheMs: 100 });
    const reading = sample();
    expect('openFds' in reading).toBe(false);
    expect(Object.keys(reading).sort()).toEqual(['cpuSeconds', 'eventLoopLagSeconds', 'residentMemoryBytes', 'startTimeSeconds']);
    listing.fail = false;
    clock.set(99);
    expect('openFds' in sample()).toBe(false); // the failed listing is remembered as long as a count
    clock.set(100);
    expect(sample().openFds).toBeGreaterThanOrEqual(linux ? 3 : 0);
  });

  it('reports exactly what the process says: user + system CPU in seconds, resident memory, start = now - uptime', () => {
    vi.spyOn(process, 'cpuUsage').mockReturnValue({ user: 1_500_000, system: 250_000 });
    vi.spyOn(process.memoryUsage, 'rss').mockReturnValue(123_456_789);
    vi.spyOn(Date, 'now').mockReturnValue(1_767_225_600_000);
    vi.spyOn(process, 'uptime').mockReturnValue(100.5);
    const reading = createProcessMetrics()();
    expect(reading.cpuSeconds).toBe(1.75);
    expect(reading.residentMemoryBytes).toBe(123_456_789);
    expect(reading.startTimeSeconds).toBe(1_767_225_499.5);
  });

  it('with `reuseMs`, hands out the same reading until it has passed, then takes a new one (and starts the next lag probe then)', async () => {
    const clock = controlledClock(1_000);
    const cpu = vi.spyOn(process, 'cpuUsage').mockReturnValue({ user: 1_000_000, system: 0 });
    const rss = vi.spyOn(process.memoryUsage, 'rss').mockReturnValue(1_000);
    const sample = createProcessMetrics({ reuseMs: 100 });
    const first = sample();
    expect(first).toMatchObject({ cpuSeconds: 1, residentMemoryBytes: 1_000 });
    cpu.mockReturnValue({ user: 2_000_000, system: 0 });
    rss.mockReturnValue(2_000);
    clock.set(1_099);
    expect(sample()).toBe(first); // the same object: a caller may render it once
    expect(cpu).toHaveBeenCalledTimes(1);
    clock.set(1_100);
    const second = sample();
    expect(second).not.toBe(first);
    expect(second).toMatchObject({ cpuSeconds: 2, residentMemoryBytes: 2_000 });
    expect(cpu).toHaveBeenCalledTimes(2);
  });

  it('without `reuseMs`, takes a new reading on every call', () => {
    controlledClock(1_000);
    const sample = createProcessMetrics();
    expect(sample()).not.toBe(sample());
  });

  it('reuses a reading for 100 ms in the server: values at most that old, a tenth of a second a scrape interval never shows', () => {
    expect(SERVER_READING_REUSE_MS).toBe(100);
  });

  it('event-loop lag on a controlled clock: the previous probe\'s measure, or the time since it started while it has not run', async () => {
    const clock = controlledClock(1_000);
    const sample = createProcessMetrics(); // a probe starts at 1000
    clock.set(1_250);
    expect(sample().eventLoopLagSeconds).toBe(0.25); // not run yet: at least 250 ms
    clock.set(1_300);
    await turn(); // it runs at 1300
    clock.set(1_900);
    expect(sample().eventLoopLagSeconds).toBe(0.3); // what it measured; a new probe starts at 1900
    clock.set(1_905);
    await turn();
    clock.set(5_000);
    expect(sample().eventLoopLagSeconds).toBe(0.005);
    // the probe started at 5000 has not run: the bound grows with the wait
    clock.set(5_040);
    expect(sample().eventLoopLagSeconds).toBe(0.04);
    clock.set(5_100);
    expect(sample().eventLoopLagSeconds).toBe(0.1);
  });

  it.runIf(!linux)('leaves the descriptor count out where /proc is missing', () => {
    expect(createProcessMetrics()().openFds).toBeUndefined();
  });

  it('reports the event-loop lag of a blocked loop (≥ 50 ms after 100 ms blocked) and a small one otherwise', async () => {
    const sample = createProcessMetrics();
    await pause(20); // the probe started at creation has run
    sample(); // starts a probe
    busy(100);
    await turn(); // the probe runs, late
    const blocked = sample().eventLoopLagSeconds;
    expect(blocked).toBeGreaterThanOrEqual(0.05);
    expect(blocked).toBeLessThan(1);
    await pause(20);
    sample(); // reports the blocked probe's lag, starts a new one, which runs promptly
    await pause(20);
    // a probe the loop got round to at once (the exact values: the controlled-clock test above)
    expect(sample().eventLoopLagSeconds).toBeLessThan(blocked);
  });

  it('reports a lower bound while the previous probe has not run yet (the loop never turned)', () => {
    const sample = createProcessMetrics();
    sample();
    busy(100);
    expect(sample().eventLoopLagSeconds).toBeGreaterThanOrEqual(0.09);
  });

  it('keeps nothing alive: the probe is unref\'d, no timer or ref\'d immediate is left behind', async () => {
    await pause(10);
    const immediates = () => process.getActiveResourcesInfo().filter((r) => r === 'Immediate' || r === 'Timeout').length;
    const before = immediates();
    const sample = createProcessMetrics();
    sample();
    sample();
    expect(immediates()).toBe(before);
  });

  it('is cheap: well under 0.1 ms a reading', () => {
    const sample = createProcessMetrics();
    for (let i = 0; i < 200; i++) sample(); // warm up
    const runs = 2_000;
    const start = performance.now();
    for (let i = 0; i < runs; i++) sample();
    const perReadingMs = (performance.now() - start) / runs;
    expect(perReadingMs).toBeLessThan(0.1);
  });
});
