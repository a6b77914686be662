/**
 * Hand-built `StateReading`s for the collector's rules: no files, no store, just the documents, the
 * efficiency files, the events summary and the runner verdict a test names. Everything else is absent.
 */
import {
  absentDocuments,
  absentFileSets,
  type DocumentName,
  type EventsSummary,
  type FileRead,
  type FileSetEntryRead,
  type RunnerVerdict,
  type StateReading,
} from '../../src/stores/store.js';

const encoder = new TextEncoder();

/** A present file: text as is, anything else as JSON. Version '' makes every read parse it afresh. */
export function fileOf(content: unknown, mtimeMs?: number): FileRead {
  const text = typeof content === 'string' ? content : JSON.stringify(content);
  return { present: true, bytes: encoder.encode(text), version: '', ...(mtimeMs !== undefined ? { mtimeMs } : {}) };
}

/** A live runner started long ago (the verdict made next to the processes, as a synced store ships it). */
export const LIVE_RUNNER: RunnerVerdict = { decided: true, alive: true, pid: 4242, startedMs: Date.parse('2026-01-01T00:00:00Z') };
export const DEAD_RUNNER: RunnerVerdict = { decided: true, alive: false };

export interface ReadingSpec {
  /** Documents present, by path: a FileRead, or content for `fileOf`. */
  readonly documents?: Partial<Record<DocumentName, FileRead | { readonly content: unknown; readonly mtimeMs?: number }>>;
  /** `metrics/efficiency/<name>` → record (JSON) or raw text. */
  readonly efficiency?: Readonly<Record<string, unknown>>;
  /** Default: no events.jsonl. */
  readonly events?: EventsSummary;
  /** The runner verdict, as a synced store ships it. Default `LIVE_RUNNER`, unless `processes` is given. */
  readonly runner?: RunnerVerdict;
  /** A local store instead: no verdict shipped, the pids are probed with these answers. */
  readonly processes?: { readonly isProcessAlive: (pid: number) => boolean; readonly hostPidNamespace: boolean };
  readonly lastSyncMs?: number;
}

/** A reading of a readable state directory holding exactly what `spec` names. */
export function readingOf(spec: ReadingSpec = {}): StateReading {
  const documents = absentDocuments();
  for (const [name, doc] of Object.entries(spec.documents ?? {}) as [DocumentName, FileRead | { content: unknown; mtimeMs?: number }][]) {
    documents[name] = 'content' in doc ? fileOf(doc.content, doc.mtimeMs) : doc;
  }
  const efficiencyFiles: FileSetEntryRead[] = Object.entries(spec.efficiency ?? {})
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([name, content]) => ({ name, ...fileOf(content) }));
  return {
    available: true,
    documents,
    ...absentFileSets(),
    efficiency: { present: efficiencyFiles.length > 0, files: efficiencyFiles },
    events: spec.events ?? { present: false, lines: 0 },
    ...(spec.processes
      ? { isProcessAlive: spec.processes.isProcessAlive, hostPidNamespace: spec.processes.hostPidNamespace }
      : { isProcessAlive: () => false, hostPidNamespace: false, runner: spec.runner ?? LIVE_RUNNER }),
    ...(spec.lastSyncMs !== undefined ? { lastSyncMs: spec.lastSyncMs } : {}),
  };
}
