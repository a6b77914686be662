import type { FamilyName } from './catalogue.js';

/** One sample of a family; label names must be the family's, in any order. */
export interface Sample {
  readonly labels?: Readonly<Record<string, string>>;
  readonly value: number;
  /** Histograms: which series of the family (`_bucket` samples carry an `le` label). */
  readonly suffix?: '_bucket' | '_sum' | '_count';
}

/** Where each state source stands after a refresh. Feeds `loki_source_*` and `/health`. */
export interface SourceStatus {
  /** Path relative to the state directory, e.g. `dashboard-state.json` or `metrics/efficiency`. */
  readonly source: string;
  /** Present and valid, or absent where absence is normal. */
  readonly ok: boolean;
  readonly present: boolean;
  /** Modification time in ms since the epoch, when present. */
  readonly mtimeMs?: number;
  /** A short human-readable reason when `ok` is false (or a note when a last good value is served). */
  readonly problem?: string;
}

/**
 * Everything one refresh reports, as plain data: produced by `collect` (the app adds the refresh's
 * duration), consumed by `render` and the `/health` route. Families absent from `samples` are
 * rendered with no samples, except the process families (`scope: 'process'`), which a snapshot
 * never holds: the app samples and renders them on each scrape (see self-metrics.ts).
 */
export interface Snapshot {
  readonly samples: ReadonlyMap<FamilyName, readonly Sample[]>;
  readonly sources: readonly SourceStatus[];
  /** Whether the state directory was readable. */
  readonly up: boolean;
  /** Why it was not (`missing`, `not a directory`, ...), for `/health`. */
  readonly problem?: string;
  /** When the snapshot was taken, ms since the epoch. */
  readonly takenAtMs: number;
}
