/**
 * The Node process sampler against the real process: plausible values that move when the process
 * does (memory, CPU, descriptors, a blocked event loop), and nothing left to keep the process alive.
 */
import { closeSync, existsSync, fstatSync, openSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createProcessMetrics } from '../../src/node/process-metrics.js';

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
    expect(before).toBeGreaterThan(0);
    const wallStart = performance.now();
    busy(200);
    const wall = (performance.now() - wallStart) / 1000;
    const after = sample().cpuSeconds;
    expect(after - before).toBeGreaterThan(0.1);
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

  it.runIf(linux)('reuses a descriptor count for up to a second by default (a directory listing per scrape is not free)', async () => {
    const sample = createProcessMetrics();
    const before = sample().openFds;
    const fd = openSync(join(tmpdir(), 'loki-metrics-fd-probe-cached'), 'w');
    try {
      expect(sample().openFds).toBe(before);
      await pause(1_100);
      expect(sample().openFds).toBe(before! + 1);
    } finally {
      closeSync(fd);
    }
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
    expect(sample().eventLoopLagSeconds).toBeLessThan(0.05);
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
