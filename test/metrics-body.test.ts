/**
 * `MetricsBody`: the exposition a scrape answers with is exactly what `render` makes of the snapshot
 * and the process reading together, in each format; it is made again only when one of them changes,
 * and the snapshot's families only when the snapshot does.
 */
import { describe, expect, it } from 'vitest';
import { PROCESS_FAMILIES, type FamilyName } from '../src/catalogue.js';
import { MetricsBody } from '../src/metrics-body.js';
import { render, type Format } from '../src/render.js';
import { processSamples, type ProcessMetrics } from '../src/self-metrics.js';
import type { Sample, Snapshot } from '../src/snapshot.js';
import { fullSnapshot } from './support/snapshots.js';

const FORMATS: readonly Format[] = ['prometheus', 'openmetrics'];
const PROCESS_NAMES = new Set<string>(PROCESS_FAMILIES.map((family) => family.name));
/** Every family of the catalogue with samples, but the process's own: those come from a reading. */
const stateSnapshot = (): Snapshot => {
  const full = fullSnapshot();
  return { ...full, samples: new Map([...full.samples].filter(([name]) => !PROCESS_NAMES.has(name))) };
};
const reading = (n: number): ProcessMetrics => ({ cpuSeconds: n, startTimeSeconds: 1767225600, residentMemoryBytes: 1000 + n, openFds: 7, eventLoopLagSeconds: n / 1000 });

/** `snapshot` whose samples count the lookups rendering makes. */
function counted(snapshot: Snapshot): { snapshot: Snapshot; lookups: () => number } {
  let lookups = 0;
  class CountingMap extends Map<FamilyName, readonly Sample[]> {
    override get(key: FamilyName) {
      lookups++;
      return super.get(key);
    }
  }
  return { snapshot: { ...snapshot, samples: new CountingMap(snapshot.samples) }, lookups: () => lookups };
}

/** What `render` makes of the snapshot with the reading's samples added: the oracle. */
const rendered = (snapshot: Snapshot, metrics: ProcessMetrics | undefined, format: Format) =>
  render({ ...snapshot, samples: new Map([...snapshot.samples, ...(metrics ? processSamples(metrics) : [])]) }, format);

const utf8 = new TextDecoder();
/** The body as text, checked to be the same array as the last time for the same arguments. */
function text(body: MetricsBody, snapshot: Snapshot, metrics: ProcessMetrics | undefined, format: Format): string {
  const bytes = body.bytes(snapshot, metrics, format);
  expect(body.bytes(snapshot, metrics, format)).toBe(bytes);
  return utf8.decode(bytes);
}

describe('MetricsBody', () => {
  it.each(FORMATS)('%s: is render\'s output for the snapshot and the reading together, or the snapshot alone', (format) => {
    const body = new MetricsBody();
    const snapshot = stateSnapshot();
    expect(text(body, snapshot, reading(1), format)).toBe(rendered(snapshot, reading(1), format));
    expect(text(body, snapshot, undefined, format)).toBe(rendered(snapshot, undefined, format));
    expect(text(body, snapshot, undefined, format)).toBe(render(snapshot, format));
  });

  it('makes nothing again for the same snapshot and reading; a new reading re-renders its own lines only', () => {
    const body = new MetricsBody();
    const { snapshot, lookups } = counted(stateSnapshot());
    const first = reading(1);
    const bytes = body.bytes(snapshot, first, 'openmetrics');
    const once = lookups();
    expect(once).toBeGreaterThan(10);
    expect(body.bytes(snapshot, first, 'openmetrics')).toBe(bytes); // the same array
    expect(lookups()).toBe(once);
    expect(lookups()).toBe(once);
    const second = reading(2);
    const next = text(body, snapshot, second, 'openmetrics');
    expect(lookups()).toBe(once); // the snapshot's families were kept
    expect(next).toBe(rendered(snapshot, second, 'openmetrics'));
    expect(next).not.toBe(utf8.decode(bytes));
  });

  it('renders a new snapshot, and each format for itself', () => {
    const body = new MetricsBody();
    const a = counted(stateSnapshot());
    const metrics = reading(1);
    text(body, a.snapshot, metrics, 'openmetrics');
    const perRender = a.lookups();
    expect(text(body, a.snapshot, metrics, 'prometheus')).toBe(rendered(a.snapshot, metrics, 'prometheus'));
    expect(a.lookups()).toBe(2 * perRender);
    expect(text(body, a.snapshot, metrics, 'openmetrics')).toBe(rendered(a.snapshot, metrics, 'openmetrics'));
    expect(a.lookups()).toBe(2 * perRender); // kept per format
    const b = counted(stateSnapshot()); // another snapshot with the same values
    text(body, b.snapshot, metrics, 'openmetrics');
    expect(b.lookups()).toBe(perRender);
  });
});
