import type { Snapshot } from './snapshot.js';

/**
 * Serves one snapshot for `ttlMs` and lets concurrent scrapes share a single refresh
 * (single-flight), so N scrapers cost one read of the state directory per TTL.
 */
export class SnapshotCache {
  private current: Snapshot | undefined;
  private inFlight: Promise<Snapshot> | undefined;

  constructor(
    private readonly refresh: () => Promise<Snapshot>,
    private readonly ttlMs: number,
    private readonly clock: () => number,
    /**
     * Share one in-flight refresh between concurrent callers. Off in Workers: a promise whose I/O
     * belongs to one request must not be awaited by another (workerd cancels such requests as hung).
     */
    private readonly singleFlight = true,
  ) {}

  get(): Promise<Snapshot> {
    const snapshot = this.current;
    if (snapshot) {
      // A negative age means the clock jumped backwards: treat it as expired, or the snapshot
      // would be served until the clock caught up again (hours, after a big jump).
      const ageMs = this.clock() - snapshot.takenAtMs;
      if (ageMs >= 0 && ageMs < this.ttlMs) return Promise.resolve(snapshot);
    }
    if (!this.singleFlight) {
      return this.refresh().then((fresh) => {
        if (!this.current || fresh.takenAtMs >= this.current.takenAtMs) this.current = fresh;
        return fresh;
      });
    }
    this.inFlight ??= this.refresh().then(
      (fresh) => {
        this.current = fresh;
        this.inFlight = undefined;
        return fresh;
      },
      (error: unknown) => {
        this.inFlight = undefined;
        throw error;
      },
    );
    return this.inFlight;
  }

  /** The last snapshot taken, however old. */
  get last(): Snapshot | undefined {
    return this.current;
  }
}
