// Prints the per-module mutation scores of a Stryker JSON report as a markdown table:
//   node test/mutation/scores.mjs [--min PERCENT] [--floors FILE] [--pending] [report.json ...]
// Later reports win for a module several name. Score = (killed + timed out) / (those + survived +
// no coverage); mutants an ignorer left out (message text, test/mutation/message-text.mjs) are
// "Ignored" and do not count. --min exits 1 when a module scores below PERCENT, or below its own
// floor in FILE (test/mutation/floors.json: the modules not yet at PERCENT, each held at the score it
// has, so it can only rise); --pending lists the modules of src/ the reports do not hold.
import { readdirSync, readFileSync } from 'node:fs';

const args = process.argv.slice(2);
const minAt = args.indexOf('--min');
const min = minAt === -1 ? undefined : Number(args.splice(minAt, 2)[1]);
const floorsAt = args.indexOf('--floors');
const floors = floorsAt === -1 ? {} : JSON.parse(readFileSync(args.splice(floorsAt, 2)[1], 'utf8'));
const pendingAt = args.indexOf('--pending');
if (pendingAt !== -1) args.splice(pendingAt, 1);
const paths = args;
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
console.log('| Module | Score | Killed | Survived | No coverage | Ignored (message text) |');
console.log('|---|---:|---:|---:|---:|---:|');
for (const row of rows) console.log(row);
const below = [];
for (const [file, mutants] of modules) {
  const killed = count(mutants, 'Killed', 'Timeout');
  const valid = killed + count(mutants, 'Survived', 'NoCoverage');
  const floor = floors[file] ?? min;
  if (min !== undefined && valid > 0 && (100 * killed) / valid < floor) below.push(`${file}: ${((100 * killed) / valid).toFixed(1)} % < ${floor} %`);
}
console.log(`| **all** | **${((100 * total.killed) / valid).toFixed(1)} %** | ${total.killed} | ${total.survived} | ${total.noCoverage} | ${total.ignored} |`);
if (pendingAt !== -1) {
  const all = readdirSync('src', { recursive: true }).map((f) => `src/${f}`).filter((f) => f.endsWith('.ts'));
  const pending = all.filter((f) => !modules.has(f)).sort();
  console.log(pending.length === 0 ? 'Every module of src/ is measured.' : `Not measured yet (${pending.length}): ${pending.join(', ')}`);
}
// A survivor that ran no test did not survive a test: every test file that imports its module failed
// to load (the mutant makes the module throw while loading), and Stryker counts a run with no failed
// test as survived. test/modules-load.test.ts turns that into a failed test.
const unloaded = [];
for (const [file, mutants] of modules) {
  for (const m of mutants) if (m.status === 'Survived' && m.testsCompleted === 0) unloaded.push(`${file}:${m.location.start.line}:${m.location.start.column} ${m.mutatorName}`);
}
if (unloaded.length > 0) {
  console.error(`Survived without running a test (the module throws while loading; load it in test/modules-load.test.ts, in the set that measures it):\n${unloaded.join('\n')}`);
  process.exitCode = 1;
}
if (below.length > 0) {
  console.error(`Below the floor (${min} %, or the module's own in the floors file):\n${below.join("\n")}`);
  process.exit(1);
}
