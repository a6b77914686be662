// `npm run mutation:ci` (CI, after the tests): test/stryker.ci.mjs from a copy of the committed
// incremental file, then every module's score checked against the 85 % floor.
import { spawnSync } from 'node:child_process';
import { copyFileSync } from 'node:fs';

const started = Date.now();
// Some tests in the run also start the built CLI (dist/), as `npm test` does.
const build = spawnSync('npx', ['tsc', '-p', 'tsconfig.json'], { stdio: 'inherit' });
if (build.status !== 0) process.exit(build.status ?? 1);
copyFileSync('test/mutation/incremental.json', 'test/mutation/.tmp-ci-incremental.json');
const run = spawnSync('npx', ['stryker', 'run', 'test/stryker.ci.mjs'], { stdio: 'inherit' });
let status = run.status ?? 1;
if (status === 0) {
  status = spawnSync(process.execPath, ['test/mutation/scores.mjs', '--min', '85', '--floors', 'test/mutation/floors.json', '--pending', 'test/mutation/report.json'], { stdio: 'inherit' }).status ?? 1;
}
console.log(`mutation check: ${status === 0 ? 'passed' : 'FAILED'} in ${Math.round((Date.now() - started) / 1000)} s`);
process.exit(status);
