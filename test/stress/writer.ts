/**
 * A stand-in for Loki Mode's writers, run as its own process by `npm run stress`: rewrites
 * dashboard-state.json (temp+rename, and sometimes in place in two steps, as torn readers see it),
 * resets and rewrites agents.json in place, rewrites efficiency files in place, appends events
 * (sometimes a partial line finished later) and rotates events.jsonl. Prints `rotated` just before
 * each rotation so the scraper can tell a legitimate counter reset. Usage: writer.js DIR SECONDS
 */
import { appendFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const [dir, secondsText] = process.argv.slice(2) as [string, string];
const until = Date.now() + Number(secondsText) * 1000;
writeFileSync(join(dir, 'loki.pid'), `${process.pid}\n`);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const event = (type: string, data: Record<string, unknown>) => JSON.stringify({ timestamp: new Date().toISOString(), type, data }) + '\n';

let tick = 0;
let iteration = 1;
let lastRotation = Date.now();
appendFileSync(join(dir, 'events.jsonl'), event('session_start', { provider: 'claude' }));

while (Date.now() < until) {
  tick++;
  const state = JSON.stringify({ mode: 'autonomous', iteration: 0, startedAt: '2026-02-13T16:40:11Z', tasks: { pending: Array.from({ length: tick % 5 }, (_, i) => ({ id: `t${i}` })), inProgress: [{ id: `iteration-${iteration}` }], completed: [], failed: [] }, agents: [] });
  if (tick % 3 === 0) {
    // in place, in two steps: a reader can see it empty or half-written
    writeFileSync(join(dir, 'dashboard-state.json'), state.slice(0, state.length >> 1));
    await sleep(2);
    writeFileSync(join(dir, 'dashboard-state.json'), state);
  } else {
    writeFileSync(join(dir, 'dashboard-state.json.tmp'), state);
    renameSync(join(dir, 'dashboard-state.json.tmp'), join(dir, 'dashboard-state.json'));
  }
  // the monitor's reset, then the stream parser's rewrite
  writeFileSync(join(dir, 'state/agents.json'), '[]');
  writeFileSync(join(dir, 'state/agents.json'), JSON.stringify(Array.from({ length: 1 + (tick % 4) }, (_, i) => ({ tool_id: `toolu_${i}`, status: i % 2 ? 'completed' : 'active' }))));
  if (tick % 10 === 0) {
    iteration++;
    appendFileSync(join(dir, 'events.jsonl'), event('iteration_start', { iteration: String(iteration) }));
    const eff = JSON.stringify({ iteration, model: 'sonnet', input_tokens: 1000 * iteration, output_tokens: 100 * iteration });
    writeFileSync(join(dir, `metrics/efficiency/iteration-${iteration}.json`), eff.slice(0, 10)); // torn for a moment
    await sleep(1);
    writeFileSync(join(dir, `metrics/efficiency/iteration-${iteration}.json`), eff);
  }
  const line = event('tool_use', { tool: 'Edit', tick });
  if (tick % 7 === 0) {
    appendFileSync(join(dir, 'events.jsonl'), line.slice(0, 20)); // a partial line...
    await sleep(3);
    appendFileSync(join(dir, 'events.jsonl'), line.slice(20)); // ...finished later
  } else {
    appendFileSync(join(dir, 'events.jsonl'), line);
  }
  if (Date.now() - lastRotation > 10_000) {
    process.stdout.write('rotated\n');
    await sleep(50);
    renameSync(join(dir, 'events.jsonl'), join(dir, 'events.jsonl.1'));
    appendFileSync(join(dir, 'events.jsonl'), event('tool_use', { after: 'rotation' }));
    lastRotation = Date.now();
  }
  await sleep(15);
}
