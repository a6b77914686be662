/** What the Node exporter serves for a tree, to compare another runtime's answer with. */
import { createApp } from '../../src/app.js';
import { parseConfig } from '../../src/config.js';
import { FsStateStore } from '../../src/stores/fs.js';

/** `/metrics` of a fresh Node app over `dir`, with the default configuration. */
export async function nodeMetrics(dir: string): Promise<string> {
  const store = new FsStateStore(dir, { watch: false });
  try {
    return await (await createApp({ store, config: parseConfig({}), log: () => undefined }).request('/metrics')).text();
  } finally {
    await store.close();
  }
}

/** Sample lines, without those that legitimately differ between the runtimes (or between any two refreshes). */
export function comparableSamples(body: string): string[] {
  return body
    .split('\n')
    .filter((l) => l !== '' && !l.startsWith('#') && !l.startsWith('loki_uptime_seconds') && !l.startsWith('loki_last_sync') && !l.startsWith('loki_exporter_scrape_duration_seconds'));
}
