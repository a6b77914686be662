import { defineConfig, mergeConfig } from 'vitest/config';
import full, { NOT_FOR_MUTATION } from '../vitest.mutation.config.js';

/**
 * A faster test set for measuring the runtime-free modules (collect, rules, schemas, sync/*, …):
 * their own unit tests, without the suites that start servers, threads or child processes. Used
 * only to take a first measurement quickly; the results are then brought up to date with the full
 * set (`npm run mutation:update`), which reuses every kill and re-tests the survivors against
 * every test (a killed mutant stays killed when a test added to its coverage set is new).
 */
export const SERVER_SUITES = ['test/node/**', 'test/worker/**', 'test/security.test.ts', 'test/fleet.test.ts'];

export default mergeConfig(full, defineConfig({
  test: { exclude: [...NOT_FOR_MUTATION, ...SERVER_SUITES, 'test/mutation/**', '**/node_modules/**'] },
}));
