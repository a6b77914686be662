// Prints the per-module mutation scores of a Stryker JSON report as a markdown table:
//   node test/mutation/scores.mjs [report.json ...]
// Later reports win for a module several name. Score = (killed + timed out) / (those + survived +
// no coverage); static mutants left out by `ignoreStatic` ("Ignored") do not count.
import { readFileSync } from 'node:fs';

const paths = process.argv.slice(2);
const modules = new Map();
for (const path of paths.length > 0 ? paths : ['test/mutation/report.json']) {
  const report = JSON.parse(readFileSync(path, 'utf8'));
  for (const [file, { mutants }] of Object.entries(report.files)) modules.set(file, mutants);
}
const count = (mutants, ...statuses) => mutants.filter((m) => statuses.includes(m.status)).length;
const rows = [];
const total = { killed: 0, survived: 0, noCoverage: 0, ignored: 0 };
for (const [file, mutants] of [...modules].sort(([a], [b]) => a.localeCompare(b))) {
  const killed = count(mutants, 'Killed', 'Timeout');
  const survived = count(mutants, 'Survived');
  const noCoverage = count(mutants, 'NoCoverage');
  const ignored = count(mutants, 'Ignored');
  for (const [k, n] of Object.entries({ killed, survived, noCoverage, ignored })) total[k] += n;
  const valid = killed + survived + noCoverage;
  rows.push(`| \`${file.replace(/^src\//, '')}\` | ${valid === 0 ? 'n/a' : `${((100 * killed) / valid).toFixed(1)} %`} | ${killed} | ${survived} | ${noCoverage} | ${ignored} |`);
}
const valid = total.killed + total.survived + total.noCoverage;
console.log('| Module | Score | Killed | Survived | No coverage | Ignored (static) |');
console.log('|---|---:|---:|---:|---:|---:|');
for (const row of rows) console.log(row);
console.log(`| **all** | **${((100 * total.killed) / valid).toFixed(1)} %** | ${total.killed} | ${total.survived} | ${total.noCoverage} | ${total.ignored} |`);
