// @ts-check
/**
 * CI's mutation check (`npm run mutation:ci`, run by .ci/run): `npm run mutation`, incremental from
 * the committed test/mutation/incremental.json, over the modules that file holds (a module enters it
 * when its first full run is merged in; test/mutation/scores.mjs --pending names the rest). A change
 * re-tests only the mutants whose code or covering tests changed; the run fails below
 * `thresholds.break` over all of them, and scores.mjs --min fails it below 85 % for any module.
 */
import { readFileSync } from 'node:fs';
import base from './stryker.config.mjs';

const measured = Object.keys(JSON.parse(readFileSync(new URL('mutation/incremental.json', import.meta.url), 'utf8')).files);

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  ...base,
  mutate: measured,
  reporters: ['clear-text', 'json', 'dots'],
  // Nothing is written back: CI checks the committed results, it does not replace them.
  incrementalFile: 'test/mutation/.tmp-ci-incremental.json',
  thresholds: { ...base.thresholds, break: 90 },
};
