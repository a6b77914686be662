import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

/**
 * The tests `npm run mutation` runs against each mutant: every test that runs the code in its own
 * process (Stryker activates a mutant there, never in a child process). Left out, because no
 * mutant can reach them or a run could not repeat them:
 */
export const NOT_FOR_MUTATION = [
  // Prometheus, promtool, nginx and the monitoring assets: they scrape a server in a child process.
  'test/monitoring/**',
  // The npm package: packed, installed with npm from the registry and run in child processes.
  'test/package/**',
  // The CLI and the Worker bundle run in child processes (node, workerd, wrangler); their modules
  // are tested in-process by test/node/cli/ and test/worker/entry.test.ts.
  'test/node/cli.test.ts',
  'test/worker/index.test.ts',
  'test/worker/wrangler.test.ts',
  // The Worker in workerd: its code runs there; the rules these pin are tested in-process by
  // test/worker/entry.test.ts, test/sync/admission.test.ts and test/self-metrics.test.ts.
  'test/worker/security.test.ts',
  'test/worker/session-cap.test.ts',
  'test/self-metrics.worker.test.ts',
  // Faults against the clock (a read that never answers, 1 GB without a newline, a cut upload):
  // what they pin is a bound in time, which a loaded mutation run (and instrumented code) misses
  // at random.
  'test/faults.test.ts',
  // Random inputs: a mutant must be killed, or not, the same way every run. The fixed regressions
  // the fuzzers found are in test/fuzz/regressions.test.ts, which stays.
  'test/fuzz/sources.test.ts',
  'test/fuzz/special-files.test.ts',
  'test/fuzz/exposition.test.ts',
  'test/fuzz/events-scanner.test.ts',
];

/**
 * Left out of the serving modules' set (test/stryker.ci.mjs) only. test/modules-load.test.ts loads
 * every module inside a test, so that a mutant making a module throw while it loads fails a test;
 * the modules that serve build nothing at load time that a mutant could make throw (none of their
 * survivors ran zero tests), and as a new test covering every module it would send each of their
 * static survivors through every server suite again. scores.mjs fails any survivor that ran no
 * test, so a module that starts to throw at load in either set is caught.
 */
export const NOT_FOR_SERVING_SET = ['test/modules-load.test.ts'];

export default defineConfig({
  test: {
    root: fileURLToPath(new URL('..', import.meta.url)),
    include: ['test/**/*.test.ts'],
    exclude: [...NOT_FOR_MUTATION, ...NOT_FOR_SERVING_SET, 'test/mutation/**', '**/node_modules/**'],
    // A test that fails once under the load of a mutation run (sockets, timers) is tried again: a
    // mutant is killed only by a test that fails every time.
    retry: 1,
    testTimeout: 20_000,
    hookTimeout: 20_000,
  },
});
