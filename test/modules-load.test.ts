/**
 * Every module of src/ loads. A module that throws while it loads (a table or schema built at load
 * time) leaves each test file that imports it uncollected, with no failed test, and Stryker reads a
 * run with no failed test as a survived mutant. Imported here inside a test, by a literal dynamic
 * import (which keeps the module in vitest's graph for `related` runs), the same mutant fails a test.
 * The list is checked against the tree, so a new module is loaded here too.
 */
import { readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = join(import.meta.dirname, '../src');

/** Not imported here: node/cli.ts runs the CLI on process.argv as it loads (test/node/cli.test.ts runs it). */
const NOT_LOADED = ['node/cli.ts'];

const MODULES: Record<string, () => Promise<Record<string, unknown>>> = {
  'app.ts': () => import('../src/app.js'),
  'auth.ts': () => import('../src/auth.js'),
  'basic-auth.ts': () => import('../src/basic-auth.js'),
  'catalogue.ts': () => import('../src/catalogue.js'),
  'cli/report.ts': () => import('../src/cli/report.js'),
  'collect.ts': () => import('../src/collect.js'),
  'config.ts': () => import('../src/config.js'),
  'events.ts': () => import('../src/events.js'),
  'file-set-collector.ts': () => import('../src/file-set-collector.js'),
  'fleet.ts': () => import('../src/fleet.js'),
  'host-check.ts': () => import('../src/host-check.js'),
  'liveness.ts': () => import('../src/liveness.js'),
  'log.ts': () => import('../src/log.js'),
  'node/bcrypt-thread.ts': () => import('../src/node/bcrypt-thread.js'),
  'node/build-info.ts': () => import('../src/node/build-info.js'),
  'node/cli/assets.ts': () => import('../src/node/cli/assets.js'),
  'node/cli/common.ts': () => import('../src/node/cli/common.js'),
  'node/cli/main.ts': () => import('../src/node/cli/main.js'),
  'node/cli/scrape.ts': () => import('../src/node/cli/scrape.js'),
  'node/cli/serve.ts': () => import('../src/node/cli/serve.js'),
  'node/cli/usage.ts': () => import('../src/node/cli/usage.js'),
  'node/demo.ts': () => import('../src/node/demo.js'),
  'node/port-holder.ts': () => import('../src/node/port-holder.js'),
  'node/process-metrics.ts': () => import('../src/node/process-metrics.js'),
  'node/projects.ts': () => import('../src/node/projects.js'),
  'node/server.ts': () => import('../src/node/server.js'),
  'node/sync.ts': () => import('../src/node/sync.js'),
  'node/web-config.ts': () => import('../src/node/web-config.js'),
  'pricing.ts': () => import('../src/pricing.js'),
  'receipts.ts': () => import('../src/receipts.js'),
  'remote-app.ts': () => import('../src/remote-app.js'),
  'render.ts': () => import('../src/render.js'),
  'rules.ts': () => import('../src/rules.js'),
  'schemas/agents.ts': () => import('../src/schemas/agents.js'),
  'schemas/autonomy-state.ts': () => import('../src/schemas/autonomy-state.js'),
  'schemas/budget.ts': () => import('../src/schemas/budget.js'),
  'schemas/completion.ts': () => import('../src/schemas/completion.js'),
  'schemas/current-task.ts': () => import('../src/schemas/current-task.js'),
  'schemas/dashboard-state.ts': () => import('../src/schemas/dashboard-state.js'),
  'schemas/efficiency.ts': () => import('../src/schemas/efficiency.js'),
  'schemas/event-line.ts': () => import('../src/schemas/event-line.js'),
  'schemas/orchestrator.ts': () => import('../src/schemas/orchestrator.js'),
  'schemas/parse.ts': () => import('../src/schemas/parse.js'),
  'schemas/pid-entry.ts': () => import('../src/schemas/pid-entry.js'),
  'schemas/pid.ts': () => import('../src/schemas/pid.js'),
  'schemas/pricing.ts': () => import('../src/schemas/pricing.js'),
  'schemas/project-registry.ts': () => import('../src/schemas/project-registry.js'),
  'schemas/proof.ts': () => import('../src/schemas/proof.js'),
  'schemas/web-config.ts': () => import('../src/schemas/web-config.js'),
  'metrics-body.ts': () => import('../src/metrics-body.js'),
  'response-headers.ts': () => import('../src/response-headers.js'),
  'self-metrics.ts': () => import('../src/self-metrics.js'),
  'snapshot-cache.ts': () => import('../src/snapshot-cache.js'),
  'snapshot.ts': () => import('../src/snapshot.js'),
  'source-tracker.ts': () => import('../src/source-tracker.js'),
  'state-sources.ts': () => import('../src/state-sources.js'),
  'stores/fs.ts': () => import('../src/stores/fs.js'),
  'stores/fs/events.ts': () => import('../src/stores/fs/events.js'),
  'stores/fs/file-set.ts': () => import('../src/stores/fs/file-set.js'),
  'stores/fs/processes.ts': () => import('../src/stores/fs/processes.js'),
  'stores/fs/read-file.ts': () => import('../src/stores/fs/read-file.js'),
  'stores/fs/set-entry.ts': () => import('../src/stores/fs/set-entry.js'),
  'stores/kv.ts': () => import('../src/stores/kv.js'),
  'stores/memory.ts': () => import('../src/stores/memory.js'),
  'stores/object-store.ts': () => import('../src/stores/object-store.js'),
  'stores/r2.ts': () => import('../src/stores/r2.js'),
  'stores/session-catalog.ts': () => import('../src/stores/session-catalog.js'),
  'stores/store.ts': () => import('../src/stores/store.js'),
  'stores/synced.ts': () => import('../src/stores/synced.js'),
  'sync/admission.ts': () => import('../src/sync/admission.js'),
  'sync/cadence.ts': () => import('../src/sync/cadence.js'),
  'sync/ingest.ts': () => import('../src/sync/ingest.js'),
  'sync/manifest.ts': () => import('../src/sync/manifest.js'),
  'sync/plan.ts': () => import('../src/sync/plan.js'),
  'sync/protocol.ts': () => import('../src/sync/protocol.js'),
  'sync/session-doc.ts': () => import('../src/sync/session-doc.js'),
  'sync/shards.ts': () => import('../src/sync/shards.js'),
  'sync/tokens.ts': () => import('../src/sync/tokens.js'),
  'usage-totals.ts': () => import('../src/usage-totals.js'),
  'usage.ts': () => import('../src/usage.js'),
  'version.ts': () => import('../src/version.js'),
  'web-config-change.ts': () => import('../src/web-config-change.js'),
  'worker/index.ts': () => import('../src/worker/index.js'),
  'worker/warm-up.ts': () => import('../src/worker/warm-up.js'),
};

/** Only types: nothing to load at run time. */
const TYPES_ONLY = ['snapshot.ts', 'stores/object-store.ts'];

function tree(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? tree(join(dir, e.name)) : e.name.endsWith('.ts') ? [relative(SRC, join(dir, e.name))] : []));
}

describe('every module of src/ loads', () => {
  it('the list here is the tree, but for the modules that must not be imported', () => {
    expect(Object.keys(MODULES).sort()).toEqual(tree(SRC).filter((m) => !NOT_LOADED.includes(m)).sort());
  });

  it.each(Object.entries(MODULES))('%s', async (name, load) => {
    const exports = await load();
    if (TYPES_ONLY.includes(name)) expect(Object.keys(exports)).toEqual([]);
    else expect(Object.keys(exports).length).toBeGreaterThan(0);
  });
});
