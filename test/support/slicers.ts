import type { Slicer } from '../../src/file-set-collector.js';

/** A slicer that never yields, counting how often it is consulted. */
export function countingSlicer(): Slicer & { steps: number } {
  return {
    steps: 0,
    step() {
      this.steps++;
      return undefined;
    },
  };
}
