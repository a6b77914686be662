// `npm run mutation:ci` (CI, after the tests): the two parts of the mutation check, each incremental
// from a copy of its committed results — test/stryker.ci.mjs (the runtime modules, every in-process
// test; test/mutation/incremental.json) and test/stryker.unit.mjs (the runtime-free modules, their
// unit tests; test/mutation/incremental-unit.json) — then every module's score checked against the
// 85 % floor. `npm run mutation:update` (`--update`) is the same runs writing the committed files.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync } from 'node:fs';

const update = process.argv.includes('--update');
const parts = [
  { config: 'test/stryker.ci.mjs', committed: 'test/mutation/incremental.json', scratch: 'test/mutation/.tmp-ci-incremental.json', report: 'test/mutation/report.json' },
  {
    config: 'test/stryker.unit.mjs',
    committed: 'test/mutation/incremental-unit.json',
    scratch: 'test/mutation/.tmp-ci-incremental-unit.json',
    report: 'test/mutation/report-unit.json',
    // A first measurement not yet brought up to date with the tests (docs/mutation.md): the update
    // starts from it; the check leaves the part out until the update has been committed.
    pending: 'test/mutation/incremental-unit.pending.json',
  },
];

const started = Date.now();
// Some tests in the run also start the built CLI (dist/), as `npm test` does.
const build = spawnSync('npx', ['tsc', '-p', 'tsconfig.json'], { stdio: 'inherit' });
if (build.status !== 0) process.exit(build.status ?? 1);
let status = 0;
const checked = [];
for (const part of parts) {
  if (!existsSync(part.committed)) {
    if (update && part.pending && existsSync(part.pending)) {
      copyFileSync(part.pending, part.committed);
    } else {
      console.log(`mutation: ${part.config} left out: no committed results (${part.committed}); scores.mjs --pending names its modules`);
      continue;
    }
  }
  checked.push(part);
  if (!update) copyFileSync(part.committed, part.scratch);
  const args = ['stryker', 'run', part.config, ...(update ? ['--incrementalFile', part.committed] : [])];
  const run = spawnSync('npx', args, { stdio: 'inherit' });
  if ((run.status ?? 1) !== 0) status = run.status ?? 1;
}
if (status === 0) {
  const scores = ['test/mutation/scores.mjs', '--min', '85', '--floors', 'test/mutation/floors.json', '--pending', ...checked.map((p) => p.report)];
  status = spawnSync(process.execPath, scores, { stdio: 'inherit' }).status ?? 1;
}
console.log(`mutation ${update ? 'update' : 'check'}: ${status === 0 ? 'passed' : 'FAILED'} in ${Math.round((Date.now() - started) / 1000)} s`);
process.exit(status);
