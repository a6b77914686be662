// @ts-check
/**
 * The mutation check's part for the modules below the servers (the collector and its rules, the
 * schemas, the formatter, the sync protocol, the fs store): the modules test/mutation/incremental-unit.json
 * holds, against the tests of test/mutation/vitest.unit.config.ts (every in-process test but the
 * server, thread and child-process suites). The modules that serve (the Node server, web config, CLI,
 * Worker, apps, R2/KV) are in test/mutation/incremental.json, against every in-process test
 * (test/stryker.ci.mjs). A module is in one file or the other, never both; CI runs both
 * (test/mutation/ci.mjs).
 */
import { existsSync, readFileSync } from 'node:fs';
import base from './stryker.config.mjs';

const committed = new URL('mutation/incremental-unit.json', import.meta.url);
const measured = existsSync(committed) ? Object.keys(JSON.parse(readFileSync(committed, 'utf8')).files) : [];

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  ...base,
  mutate: measured,
  vitest: { configFile: 'test/mutation/vitest.unit.config.ts' },
  reporters: ['clear-text', 'json', 'dots'],
  // CI checks the committed results and writes nothing back; `npm run mutation:update` passes
  // --incrementalFile test/mutation/incremental-unit.json to write them.
  incrementalFile: 'test/mutation/.tmp-ci-incremental-unit.json',
  tempDirName: 'test/mutation/.tmp-unit',
  jsonReporter: { fileName: 'test/mutation/report-unit.json' },
  thresholds: { ...base.thresholds, break: 90 },
};
