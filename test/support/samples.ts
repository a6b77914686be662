import type { FamilyName } from '../../src/catalogue.js';
import type { Snapshot } from '../../src/snapshot.js';

/** The value of one sample of a snapshot (undefined when there is no such sample). */
export function valueOf(snapshot: Snapshot, family: FamilyName, labels: Record<string, string> = {}): number | undefined {
  return snapshot.samples
    .get(family)
    ?.find((s) => Object.entries(labels).every(([k, v]) => s.labels?.[k] === v))?.value;
}

/** `loki_tasks_total` as a plain record. */
export function tasksOf(snapshot: Snapshot): Record<string, number | undefined> {
  const out: Record<string, number | undefined> = {};
  for (const status of ['pending', 'in_progress', 'completed', 'failed']) out[status] = valueOf(snapshot, 'loki_tasks_total', { status });
  return out;
}

/** The source status by source name. */
export function sourceOf(snapshot: Snapshot, source: string) {
  return snapshot.sources.find((s) => s.source === source);
}
