import { defineConfig } from 'vitest/config';
import full, { NOT_FOR_MUTATION } from '../vitest.mutation.config.js';

/**
 * The tests the modules below the servers (collect, rules, the schemas, sync/*, the fs store, …)
 * are measured against (test/stryker.unit.mjs): every in-process test but the suites that start
 * servers, threads or child processes. A mutant there must be killed by the tests of what its
 * module computes, not by a server test that happens to pass through it; and those suites cost
 * 5–15 s a mutant, which made measuring these modules against them take hours on the 2-core VM.
 */
export const SERVER_SUITES = ['test/node/**', 'test/worker/**', 'test/security.test.ts', 'test/fleet.test.ts'];

// The full set's options, with its exclusions replaced (not added to: test/modules-load.test.ts is in this set).
export default defineConfig({
  ...full,
  test: { ...full.test, exclude: [...NOT_FOR_MUTATION, ...SERVER_SUITES, 'test/mutation/**', '**/node_modules/**'] },
});
