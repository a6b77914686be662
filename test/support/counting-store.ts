/** A real store that counts its refreshes (how often the app read the state). */
import type { StateReading, StateStore } from '../../src/stores/store.js';

export class CountingStore implements StateStore {
  reads = 0;
  constructor(private readonly inner: StateStore) {}
  async read(): Promise<StateReading> {
    this.reads++;
    return this.inner.read();
  }
  close() {
    return this.inner.close?.();
  }
}
