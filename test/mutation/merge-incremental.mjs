// Merges Stryker JSON reports of group runs (each `--mutate` a few modules) into one incremental
// file, so a full `npm run mutation` afterwards re-tests only what changed since those runs:
//   node test/mutation/merge-incremental.mjs OUT.json IN1.json IN2.json=src/a.ts,src/b.ts ...
// Later inputs win for a module both name; `IN.json=modules` takes only those modules from IN (a
// group run started from a copy of another's file also holds that file's older results). Test and mutant ids are renumbered: each run numbers its
// own from 0, and a test file several runs saw keeps one id per test name.
import { readFileSync, writeFileSync } from 'node:fs';

const [out, ...inputs] = process.argv.slice(2);
if (!out || inputs.length === 0) {
  console.error('usage: merge-incremental.mjs OUT.json IN.json...');
  process.exit(2);
}
const reports = inputs.map((input) => {
  const [path, only] = input.split('=');
  const report = JSON.parse(readFileSync(path, 'utf8'));
  if (only !== undefined) {
    const keep = new Set(only.split(','));
    for (const file of Object.keys(report.files)) if (!keep.has(file)) delete report.files[file];
    const missing = [...keep].filter((file) => !(file in report.files));
    if (missing.length > 0) throw new Error(`${path} holds no results for ${missing.join(', ')}`);
  }
  return report;
});
const merged = { ...reports.at(-1), files: {}, testFiles: {} };
const idOf = new Map(); // `${file}\0${name}` -> merged test id
let nextTest = 0;
let nextMutant = 0;

for (const report of reports) {
  const local = new Map(); // this report's test id -> merged id
  for (const [file, { source, tests }] of Object.entries(report.testFiles ?? {})) {
    const entry = (merged.testFiles[file] ??= { source, tests: [] });
    entry.source = source; // the latest seen; a changed file makes Stryker re-test its mutants
    for (const test of tests) {
      const key = `${file}\0${test.name}`;
      if (!idOf.has(key)) {
        idOf.set(key, String(nextTest++));
        entry.tests.push({ ...test, id: idOf.get(key) });
      }
      local.set(test.id, idOf.get(key));
    }
  }
  const map = (ids) => ids?.map((id) => local.get(id)).filter((id) => id !== undefined);
  for (const [file, data] of Object.entries(report.files)) {
    merged.files[file] = {
      ...data,
      mutants: data.mutants.map((m) => ({ ...m, id: String(nextMutant++), coveredBy: map(m.coveredBy), killedBy: map(m.killedBy) })),
    };
  }
}
writeFileSync(out, JSON.stringify(merged));
console.log(`${out}: ${Object.keys(merged.files).length} modules, ${nextMutant} mutants, ${nextTest} tests`);
