// Lists the mutants a Stryker JSON report marks Survived or NoCoverage, one line each:
//   node test/mutation/survivors.mjs [report.json] [path-substring ...]
// so a survivor can be found in the source, then killed by a test or listed as equivalent.
import { readFileSync } from 'node:fs';

const [reportPath = 'test/mutation/report.json', ...filters] = process.argv.slice(2);
const report = JSON.parse(readFileSync(reportPath, 'utf8'));
for (const [file, { source, mutants }] of Object.entries(report.files)) {
  if (filters.length > 0 && !filters.some((f) => file.includes(f))) continue;
  const lines = source.split('\n');
  for (const m of mutants) {
    if (m.status !== 'Survived' && m.status !== 'NoCoverage') continue;
    const { start, end } = m.location;
    const original = start.line === end.line
      ? lines[start.line - 1].slice(start.column - 1, end.column - 1)
      : `${lines[start.line - 1].slice(start.column - 1)}…`;
    const shorten = (s) => (s.length > 70 ? `${s.slice(0, 67)}...` : s).replace(/\s+/g, ' ');
    console.log(`${file}:${start.line}:${start.column} ${m.status} ${m.mutatorName}: ${shorten(original)} -> ${shorten(m.replacement ?? '')}`);
  }
}
