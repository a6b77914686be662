/**
 * Hostile file-system shapes, a few cases each (not property-generated): symbolic links pointing
 * outside the state directory, a directory or a FIFO where a file should be, unreadable files
 * (real EACCES, by dropping the effective uid to `nobody` around the read), a 10 MB single line,
 * files over the size limit, and 1,000,000 levels of nesting. Every case: 200s, well-formed outputs
 * in both formats, the affected source reported (`loki_source_ok 0`, a log line, /health).
 */
import { execFileSync } from 'node:child_process';
import { chmod, mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { createApp } from '../../src/app.js';
import { parseConfig } from '../../src/config.js';
import { FsStateStore } from '../../src/stores/fs.js';
import { cleanTrees, treeDigest } from '../support/loki-tree.js';
import { CaseCounter, measuresExporter, NOW, OutputSample, pythonParseAll, scrape, seedTree, sourceOk, SOURCES, utf8, value, type Scrape, type Target } from './support.js';

const CONFIG = parseConfig({ LOKI_METRICS_CACHE_SECONDS: '0' });
const counter = new CaseCounter();
const sample = new OutputSample(200);
afterAll(async () => {
  await cleanTrees();
  console.log(counter.report('special-files.test.ts'));
});

let dir: string;
let targets: Target[];
beforeEach(async () => {
  ({ dir, targets } = await seedTree('running'));
});

async function scrapeTree(name: string): Promise<{ s: Scrape; logs: string[] }> {
  counter.hit(name);
  const logs: string[] = [];
  const store = new FsStateStore(dir, { watch: false });
  try {
    const s = await scrape(createApp({ store, config: CONFIG, log: (l) => logs.push(l), clock: () => NOW }));
    sample.addScrape(s);
    return { s, logs };
  } finally {
    store.close();
  }
}

/** `bad` sources are 0, every other source 1, each bad one logged and in /health with `problem`. */
function expectBad(s: Scrape, logs: readonly string[], bad: readonly string[], problem: RegExp): void {
  for (const source of SOURCES) expect(sourceOk(s, source), source).toBe(bad.includes(source) ? 0 : 1);
  for (const source of bad) {
    const health = s.health.sources.find((h) => h.source === source);
    expect(health?.ok, source).toBe(false);
    expect(health?.problem, source).toMatch(problem);
    expect(logs.some((l) => l.startsWith(`loki-metrics: ${source}`) && problem.test(l)), `${source} logged: ${JSON.stringify(logs)}`).toBe(true);
  }
  expect(s.health.status).toBe(bad.length ? 'degraded' : 'ok');
}

/** Samples equal except the given sources' ok/mtime samples. */
function expectSameExcept(a: Scrape, b: Scrape, sources: readonly string[]): void {
  for (const [key, v] of a.prom.samples) {
    if (measuresExporter(key) || sources.some((src) => key === `loki_source_ok{source="${src}"}` || key === `loki_source_mtime_seconds{source="${src}"}`)) continue;
    expect(b.prom.samples.get(key), key).toBe(v);
  }
}

/** Valid content for each source that differs visibly from the seed's. */
const DISTINCT: Record<string, string> = {
  'dashboard-state.json': JSON.stringify({ mode: 'autonomous', tasks: { pending: Array(77).fill({}), completed: [], failed: [], inProgress: [] } }),
  'loki.pid': `${process.pid}\n`,
  'state/agents.json': JSON.stringify(Array.from({ length: 77 }, (_, i) => ({ tool_id: `t${i}`, status: 'active' }))),
  'state/orchestrator.json': JSON.stringify({ currentIteration: 777 }),
  'queue/current-task.json': JSON.stringify({ id: 'iteration-777' }),
  'pricing.json': JSON.stringify({ models: { opus: { input: 777, output: 777 }, sonnet: { input: 777, output: 777 } } }),
  'metrics/budget.json': JSON.stringify({ limit: 777, exceeded: true }),
  'signals/BUDGET_EXCEEDED': JSON.stringify({ timestamp: '2026-02-14T11:00:00Z' }),
  'events.jsonl': `${'{"timestamp":"2026-02-14T11:00:00Z","type":"session_start"}\n'.repeat(777)}`,
  'metrics/efficiency/iteration-1.json': JSON.stringify({ iteration: 777, cost_usd: 777777 }),
};
const sourceOf = (path: string) => (path.startsWith('metrics/efficiency/') ? 'metrics/efficiency' : path);

describe('symbolic links inside the state directory are not followed', () => {
  const paths = Object.keys(DISTINCT);
  it.each(paths)('%s as a symlink to a valid file outside: reported, and the target changes nothing', async (path) => {
    const outside = join(dirname(dir), `outside-${path.replaceAll('/', '_')}`);
    await writeFile(outside, DISTINCT[path]!);
    await rm(join(dir, path), { force: true });
    await mkdir(dirname(join(dir, path)), { recursive: true });
    // Baseline: the same link, dangling. Only the link itself may count (e.g. the presence of
    // signals/BUDGET_EXCEEDED trips the guard whatever it is), never what it points to.
    await symlink(`${outside}.missing`, join(dir, path));
    const { s: dangling } = await scrapeTree('symlink-baseline');
    await rm(join(dir, path));
    await symlink(outside, join(dir, path));
    const { s, logs } = await scrapeTree('symlink-file');
    expectBad(s, logs, [sourceOf(path)], /symbolic link/);
    expectSameExcept(dangling, s, [sourceOf(path)]);
    expect(s.prometheus).not.toMatch(/ 777(777)?$/m);
  });

  it('metrics/efficiency as a symlink to a directory outside', async () => {
    const outside = join(dirname(dir), 'outside-efficiency');
    await mkdir(outside);
    await writeFile(join(outside, 'iteration-1.json'), DISTINCT['metrics/efficiency/iteration-1.json']!);
    await rm(join(dir, 'metrics/efficiency'), { recursive: true });
    const { s: absent } = await scrapeTree('symlink-baseline');
    await symlink(outside, join(dir, 'metrics/efficiency'));
    const { s, logs } = await scrapeTree('symlink-dir');
    expectBad(s, logs, ['metrics/efficiency'], /symbolic link/);
    expectSameExcept(absent, s, ['metrics/efficiency']);
  });

  // lstat and O_NOFOLLOW only guard the last path component, so the store checks the parent
  // directories (`.loki/state`, `.loki/metrics`, `.loki/queue`, `.loki/signals`) itself.
  const parents: [string, string[]][] = [
    ['state', ['state/agents.json']],
    ['metrics', ['metrics/efficiency/iteration-1.json', 'metrics/budget.json']],
    ['queue', ['queue/current-task.json']],
    ['signals', ['signals/BUDGET_EXCEEDED']],
  ];
  it.each(parents)('a symlinked parent directory %s/ is not followed either', async (parent, files) => {
    const outside = join(dirname(dir), `outside-parent-${parent}`);
    for (const file of files) {
      await mkdir(dirname(join(outside, file.slice(parent.length + 1))), { recursive: true });
      await writeFile(join(outside, file.slice(parent.length + 1)), DISTINCT[file]!);
    }
    await rm(join(dir, parent), { recursive: true, force: true });
    const { s: absent } = await scrapeTree('symlink-parent-baseline');
    await symlink(outside, join(dir, parent));
    const { s } = await scrapeTree('symlink-parent');
    // Every source under the linked directory is reported (the store cannot see them), whether or
    // not the link's target holds that file; everything else is unaffected.
    const under = s.health.sources.map((h) => h.source).filter((source) => source.startsWith(`${parent}/`));
    expectSameExcept(absent, s, [...new Set([...files.map(sourceOf), ...under])]);
    for (const source of under) {
      const health = s.health.sources.find((h) => h.source === source);
      expect(health?.ok, source).toBe(false);
      expect(health?.problem, source).toMatch(/symbolic link/);
    }
    // Read through the link, a file shows up as present and valid; it must be absent or reported.
    for (const file of files) {
      const health = s.health.sources.find((h) => h.source === sourceOf(file));
      expect(health?.present === true && health.ok, `${file} read through ${parent}/ -> ${outside}`).toBe(false);
    }
  });
});

describe('a directory or a FIFO where a file should be', () => {
  const paths = [...Object.keys(DISTINCT)];
  it.each(paths)('%s as a directory', async (path) => {
    await rm(join(dir, path), { force: true });
    await mkdir(dirname(join(dir, path)), { recursive: true });
    await mkdir(join(dir, path));
    await writeFile(join(dir, path, 'inner'), '{}');
    const { s, logs } = await scrapeTree('directory');
    // A directory named *.json inside metrics/efficiency is simply no efficiency file.
    if (path.startsWith('metrics/efficiency/')) expectBad(s, logs, [], /./);
    else expectBad(s, logs, [path], /not a regular file/);
  });

  it('metrics/efficiency as a regular file', async () => {
    await rm(join(dir, 'metrics/efficiency'), { recursive: true });
    await writeFile(join(dir, 'metrics/efficiency'), '{}');
    const { s, logs } = await scrapeTree('directory');
    expectBad(s, logs, ['metrics/efficiency'], /not a directory/);
  });

  it.each(paths)('%s as a FIFO (never opened for a blocking read)', async (path) => {
    await rm(join(dir, path), { force: true });
    await mkdir(dirname(join(dir, path)), { recursive: true });
    execFileSync('mkfifo', [join(dir, path)]);
    const { s, logs } = await scrapeTree('fifo');
    expectBad(s, logs, [sourceOf(path)], /not a regular file/);
  });
});

// Root ignores file modes (CAP_DAC_OVERRIDE), so chmod 000 alone denies nothing. Dropping the
// effective uid to `nobody` around the reads clears the capabilities and gives a real EACCES; the
// real uid stays 0, so seteuid(0) restores it. Without seteuid (not root, or a worker thread) the
// chmod alone is enough, and that is what is tested.
const NOBODY = 65534;
const canSwitch = typeof process.seteuid === 'function' && process.geteuid?.() === 0;
/** Who this process was before any test here ran: each switch must end as it began. */
const STARTED_AS = { euid: process.geteuid?.(), egid: process.getegid?.(), uid: process.getuid?.(), gid: process.getgid?.() };
const identity = () => ({ euid: process.geteuid?.(), egid: process.getegid?.(), uid: process.getuid?.(), gid: process.getgid?.() });
/** Effective uid and gid during each scrape `unprivileged` ran: proves the reads ran as nobody. */
const scrapedAs: { euid: number | undefined; egid: number | undefined }[] = [];
async function unprivileged<T>(fn: () => Promise<T>): Promise<T> {
  if (!canSwitch) return fn();
  process.setegid!(NOBODY);
  process.seteuid!(NOBODY);
  try {
    scrapedAs.push({ euid: process.geteuid?.(), egid: process.getegid?.() });
    return await fn();
  } finally {
    process.seteuid!(0);
    process.setegid!(0);
  }
}

describe(`unreadable files: real EACCES (${canSwitch ? 'euid dropped to nobody' : 'not root: chmod alone'})`, () => {
  beforeEach(async () => {
    await chmod(dirname(dir), 0o755); // mkdtemp makes it 0700
  });
  const cases: [string, string, string[]][] = [
    ...Object.keys(DISTINCT).map((p): [string, string, string[]] => [p, p, [sourceOf(p)]]),
    ['metrics/efficiency (directory mode 000)', 'metrics/efficiency', ['metrics/efficiency']],
    ['state/ (directory mode 000)', 'state', ['state/agents.json', 'state/orchestrator.json', 'state/completion.json']],
    ['queue/ (directory mode 000)', 'queue', ['queue/current-task.json']],
  ];
  it.each(cases)('%s', async (_label, path, bad) => {
    await mkdir(dirname(join(dir, path)), { recursive: true });
    if (path === 'signals/BUDGET_EXCEEDED') await writeFile(join(dir, path), DISTINCT[path]!);
    await chmod(join(dir, path), 0o000);
    const { s, logs } = await unprivileged(() => scrapeTree('eacces'));
    expectBad(s, logs, bad, /permission denied/);
    await chmod(join(dir, path), 0o755);
  });

  it('the whole state directory mode 000: every source reported (even absent ones: unknowable), still 200', async () => {
    await chmod(dir, 0o000);
    const { s, logs } = await unprivileged(() => scrapeTree('eacces'));
    expectBad(s, logs, canSwitch ? SOURCES : [], /permission denied/);
    await chmod(dir, 0o755);
  });

  it('reading as nobody, or as this user, writes nothing into the state directory', async () => {
    // Readable this time (0644 files, 0755 directories): every source is read in full, both ways,
    // and the tree (paths, modes, mtimes, bytes) is as it was.
    await chmod(dir, 0o755);
    const before = await treeDigest(dir);
    const mine = await scrapeTree('read-as-user');
    expect(await treeDigest(dir)).toBe(before);
    const switches = scrapedAs.length;
    const theirs = await unprivileged(() => scrapeTree('read-as-nobody'));
    expect(await treeDigest(dir)).toBe(before);
    expectBad(theirs.s, theirs.logs, [], /./);
    expectSameExcept(mine.s, theirs.s, []);
    // As root, that second scrape really ran as nobody (who may write nothing here: files 0644 of root).
    expect(scrapedAs.slice(switches)).toEqual(canSwitch ? [{ euid: NOBODY, egid: NOBODY }] : []);
  });

  it('every switch to nobody is undone: the process is who it was before this file ran', () => {
    expect(identity()).toEqual(STARTED_AS);
    if (canSwitch) expect(STARTED_AS.euid).toBe(0);
    expect(scrapedAs.every((ids) => ids.euid === NOBODY && ids.egid === NOBODY)).toBe(true);
  });
});

describe('huge inputs', () => {
  const seedEvents = () => targets.find((t) => t.path === 'events.jsonl')!.bytes;
  const TEN_MB = 10 * 1024 * 1024;

  it('a 10 MB single line in events.jsonl: counted once its newline arrives', async () => {
    const seed = seedEvents();
    const lines = value((await scrapeTree('10mb-line')).s, 'loki_events_total')!;
    await writeFile(join(dir, 'events.jsonl'), Buffer.concat([seed, Buffer.alloc(TEN_MB, 'x')]));
    const partial = await scrapeTree('10mb-line');
    expect(value(partial.s, 'loki_events_total')).toBe(lines);
    expectBad(partial.s, partial.logs, [], /./);
    await writeFile(join(dir, 'events.jsonl'), Buffer.concat([seed, Buffer.alloc(TEN_MB, 'x'), Buffer.from('\n')]));
    expect(value((await scrapeTree('10mb-line')).s, 'loki_events_total')).toBe(lines + 1);
    // A 10 MB session_start line (a huge field): counted; whether it is parsed is the carry limit's call.
    const huge = `{"timestamp":"2026-02-14T11:00:00Z","type":"session_start","pad":"${'y'.repeat(TEN_MB)}"}\n`;
    await writeFile(join(dir, 'events.jsonl'), Buffer.concat([seed, Buffer.from(huge)]));
    expect(value((await scrapeTree('10mb-line')).s, 'loki_events_total')).toBe(lines + 1);
  });

  it('a 10 MB single-line dashboard-state.json is read; one over 16 MiB is reported, not read', async () => {
    await writeFile(join(dir, 'dashboard-state.json'), JSON.stringify({ mode: 'autonomous', pad: 'z'.repeat(TEN_MB) }));
    const ok = await scrapeTree('10mb-document');
    expectBad(ok.s, ok.logs, [], /./);
    await writeFile(join(dir, 'dashboard-state.json'), Buffer.alloc(17 * 1024 * 1024, ' '));
    const big = await scrapeTree('too-large-document');
    expectBad(big.s, big.logs, ['dashboard-state.json'], /too large/);
  });

  it('1,000,000 levels of nesting in a document and in an events line', async () => {
    const deep = (n: number) => '['.repeat(n) + ']'.repeat(n);
    await writeFile(join(dir, 'state/agents.json'), `{"agents":${deep(1_000_000)}}`);
    await writeFile(join(dir, 'dashboard-state.json'), `{"mode":"autonomous","tasks":{"pending":${deep(1_000_000)}}}`);
    await writeFile(join(dir, 'events.jsonl'), `{"timestamp":"2026-02-14T11:00:00Z","type":"session_start","data":${deep(1_000_000)}}\n`);
    await writeFile(join(dir, 'pricing.json'), `{"models":{"opus":{"input":${'{"a":'.repeat(1_000_000)}1${'}'.repeat(1_000_000)}}}}`);
    const { s, logs } = await scrapeTree('deep-nesting');
    // Valid JSON every time, so what counts is where the depth sits. Where the schema takes any
    // value it is fine: a pending task (an entry of any shape: 1 pending), an agents entry (a list
    // is not an agent). An event's data must be an object, so that session_start is not one, but
    // the line still counts (1 line). Where it wants a number (a price) it is reported. So
    // pricing.json alone is 0, and every other source 1.
    expectBad(s, logs, ['pricing.json'], /models\.opus\.input: Invalid type/);
    expect(value(s, 'loki_tasks_total{status="pending"}')).toBe(1);
    expect(value(s, 'loki_events_total')).toBe(1);
    await writeFile(join(dir, 'dashboard-state.json'), utf8('['.repeat(1_000_000)));
    const torn = await scrapeTree('deep-nesting');
    expect(sourceOk(torn.s, 'dashboard-state.json')).toBe(0);
  });
});

describe('prometheus_client', () => {
  it('parses every distinct output of this file (one python process)', { timeout: 60_000 }, () => {
    const verdicts = pythonParseAll(sample.items);
    verdicts.forEach((v, i) => expect(v.error, sample.items[i]!.text).toBeUndefined());
    expect(verdicts.length).toBeGreaterThan(20);
  });
});
