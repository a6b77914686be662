// @ts-check
/**
 * `npm run mutation`: Stryker over all of src/, static mutants included, against every test that
 * runs the code in-process (test/vitest.mutation.config.ts). Only pure message text is left out
 * (test/mutation/message-text.mjs says which). Incremental: results are kept in
 * test/mutation/incremental.json (committed), so a run re-tests only the mutants whose code or
 * tests changed; CI runs it that way and fails below `thresholds.break` (and test/mutation/scores.mjs
 * below 85 % for any module). Report: test/mutation/report.html (not committed).
 * @type {import('@stryker-mutator/api/core').PartialStrykerOptions}
 */
export default {
  testRunner: 'vitest',
  vitest: { configFile: 'test/vitest.mutation.config.ts' },
  plugins: ['@stryker-mutator/vitest-runner', './test/mutation/message-text.mjs'],
  ignorers: ['message-text'],
  mutate: ['src/**/*.ts'],
  // Other runs' sandboxes and reports (group runs write test/mutation/.tmp*) are not part of the project.
  ignorePatterns: ['/test/mutation/.tmp*', '/test/mutation/report.*'],
  coverageAnalysis: 'perTest',
  // A mutant of a module-level constant (a table, a schema, a name upstream writes) runs every test
  // file that imports its module (vitest's `related`): slower, and the only way to test a table.
  ignoreStatic: false,
  incremental: true,
  incrementalFile: 'test/mutation/incremental.json',
  tempDirName: 'test/mutation/.tmp',
  concurrency: 2,
  timeoutMS: 10_000,
  // The first run of every test, instrumented, with coverage: about 2 minutes on a quiet 2-core VM.
  dryRunTimeoutMinutes: 20,
  reporters: ['clear-text', 'html', 'json', 'progress'],
  htmlReporter: { fileName: 'test/mutation/report.html' },
  jsonReporter: { fileName: 'test/mutation/report.json' },
  thresholds: { high: 90, low: 85, break: null },
};
