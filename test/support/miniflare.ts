/**
 * workerd's own R2 and KV (Miniflare) for the tests that check a binding or a double against them.
 * Miniflare keeps its storage under os.tmpdir(): each instance gets a directory of its own, removed
 * for certain by `dispose`. Imported lazily: only the describes that need it pay for loading it.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Miniflare } from 'miniflare';
import { COMPATIBILITY_DATE } from './wrangler-toml.js';

export interface OwnMiniflare {
  readonly mf: Miniflare;
  dispose(): Promise<void>;
}

export async function startMiniflare(prefix: string, bindings: { r2Buckets?: string[]; kvNamespaces?: string[] }): Promise<OwnMiniflare> {
  const own = await mkdtemp(join(tmpdir(), prefix));
  const previous = process.env.TMPDIR;
  process.env.TMPDIR = own;
  let mf: Miniflare;
  try {
    const { Miniflare } = await import('miniflare');
    mf = new Miniflare({ modules: true, script: 'export default { fetch: () => new Response("") }', compatibilityDate: COMPATIBILITY_DATE, ...bindings });
  } catch (error) {
    await rm(own, { recursive: true, force: true });
    throw error;
  } finally {
    if (previous === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = previous;
  }
  await mf.ready;
  return {
    mf,
    dispose: async () => {
      await mf.dispose();
      await rm(own, { recursive: true, force: true });
    },
  };
}
