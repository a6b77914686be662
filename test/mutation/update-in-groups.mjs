// Brings one part's mutation results up to date a few modules at a time, keeping each group's
// results as soon as it ends: Stryker writes its incremental file only when a whole run ends, so an
// update of hours stopped half-way (a session that ends) would otherwise keep nothing.
//   node test/mutation/update-in-groups.mjs [--part unit|ci] [--size MUTANTS] [--concurrency N] [--retest-survivors]
// Works on the part's results file in place (for the unit part, while it has no committed results,
// on its pending first measurement): runs the part's config with --mutate over groups of modules of
// about MUTANTS mutants each (default 600) and merges each group back as it ends. A group already up
// to date costs only Stryker's first test run, so a second call goes on where the first stopped.
// When every group is in, the unit part's results are written as test/mutation/incremental-unit.json:
// check them with `npm run mutation:ci`, commit them, and delete the pending file.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';

const arg = (name, fallback) => {
  const at = process.argv.indexOf(name);
  return at === -1 ? fallback : process.argv[at + 1];
};
const PARTS = {
  unit: { config: 'test/stryker.unit.mjs', committed: 'test/mutation/incremental-unit.json', pending: 'test/mutation/incremental-unit.pending.json' },
  ci: { config: 'test/stryker.ci.mjs', committed: 'test/mutation/incremental.json' },
};
const part = PARTS[arg('--part', 'unit')];
if (!part) throw new Error('--part is unit or ci');
const size = Number(arg('--size', '600'));
const concurrency = arg('--concurrency', '2');
const results = existsSync(part.committed) ? part.committed : part.pending;
// Stryker reuses a survivor's result while the tests that covered it are unchanged, even when a new
// test would kill it (measured: a static mutant kept "Survived" after the test that kills it was
// added). With --retest-survivors, each group's survivors are dropped from the results first, so
// Stryker tests them again against today's tests.
const retestSurvivors = process.argv.includes('--retest-survivors');
const scratch = 'test/mutation/.tmp-group.json';
const read = (path) => JSON.parse(readFileSync(path, 'utf8'));

// Groups of about `size` mutants (a module is never split), the modules with the fewest static
// mutants first: a static mutant runs every test file that imports its module, so those groups are
// the slowest, and the quick ones are kept first if the run is stopped.
const groups = [];
const staticCount = ({ mutants }) => mutants.filter((m) => m.static).length;
const modules = Object.entries(read(results).files).sort(([, a], [, b]) => staticCount(a) - staticCount(b));
for (const [file, { mutants }] of modules) {
  const last = groups.at(-1);
  if (last && last.weight + mutants.length <= size) {
    last.files.push(file);
    last.weight += mutants.length;
  } else groups.push({ files: [file], weight: mutants.length });
}

const build = spawnSync('npx', ['tsc', '-p', 'tsconfig.json'], { stdio: 'inherit' });
if (build.status !== 0) process.exit(build.status ?? 1);
for (const [i, group] of groups.entries()) {
  const files = group.files.join(',');
  console.log(`mutation: group ${i + 1} of ${groups.length}: ${files} (${group.weight} mutants last time)`);
  copyFileSync(results, scratch);
  if (retestSurvivors) forgetSurvivors(scratch, group.files);
  // Its exit status is the break threshold over this group alone; the part is checked as a whole after.
  spawnSync('npx', ['stryker', 'run', part.config, '--mutate', files, '--incrementalFile', scratch, '--tempDirName', 'test/mutation/.tmp-group', '--concurrency', concurrency], { stdio: 'inherit' });
  const missing = group.files.filter((file) => !(file in read(scratch).files));
  if (missing.length > 0) {
    console.error(`mutation: group ${i + 1} wrote no results for ${missing.join(', ')}; stopping`);
    process.exit(1);
  }
  const merged = spawnSync(process.execPath, ['test/mutation/merge-incremental.mjs', `${scratch}.merged`, results, `${scratch}=${files}`], { stdio: 'inherit' });
  if (merged.status !== 0) process.exit(merged.status ?? 1);
  renameSync(`${scratch}.merged`, results);
}
if (results !== part.committed) copyFileSync(results, part.committed);
console.log(`mutation: every group is up to date in ${part.committed}; check it with npm run mutation:ci, then commit it.`);

function forgetSurvivors(path, files) {
  const report = read(path);
  for (const file of files) {
    const entry = report.files[file];
    if (entry) entry.mutants = entry.mutants.filter((m) => m.status !== 'Survived' && m.status !== 'NoCoverage');
  }
  writeFileSync(path, JSON.stringify(report));
}
