import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

/**
 * The fast unit tests of the runtime-free modules, for `npm run mutation` (Stryker runs them once
 * per mutant, so nothing here starts Prometheus, nginx, workerd or a CLI process).
 */
export const MUTATION_TESTS = [
  'test/collect.test.ts',
  'test/rules.test.ts',
  'test/liveness.test.ts',
  'test/pricing.test.ts',
  'test/usage.test.ts',
  'test/receipts.test.ts',
  'test/events.test.ts',
  'test/render.test.ts',
  'test/config.test.ts',
  'test/source-tracker.test.ts',
  'test/snapshot-cache.test.ts',
  'test/file-set-collector.test.ts',
  'test/fleet.test.ts',
  'test/basic-auth.test.ts',
  'test/auth.test.ts',
  'test/app.test.ts',
  'test/schemas/*.test.ts',
  'test/stores/synced.test.ts',
  'test/node/projects.test.ts',
  'test/sync/plan.test.ts',
  'test/sync/session-doc.test.ts',
  'test/usage-totals.test.ts',
  'test/sync/shards.test.ts',
  'test/sync/ingest.test.ts',
  'test/stores/synced-format3.test.ts',
  // Issue 19's runtime-free modules.
  'test/web-config-change.test.ts',
  'test/host-check.test.ts',
  'test/sync/admission.test.ts',
];

export default defineConfig({
  test: {
    root: fileURLToPath(new URL('..', import.meta.url)),
    include: MUTATION_TESTS,
    testTimeout: 20_000,
    hookTimeout: 20_000,
  },
});
