import type { ProjectCatalog, ProjectInfo } from '../fleet.js';
import { PROJECT_NAME } from '../fleet.js';
import { listSessions } from '../sync/shards.js';
import type { ObjectStore } from './object-store.js';
import { SyncedStateStore } from './synced.js';
import type { StateStore } from './store.js';

/**
 * The Worker's projects: the sessions synced into its bucket. Any valid name has a store (a session
 * not synced yet reads as `loki_up 0`, as before); discovery lists the bucket at most once per
 * `listTtlMs` per isolate (a storage list is the costly operation), one list in flight at a time.
 * It lists every stored session, never cut at the cap: a session /metrics serves is never hidden
 * (KV's cap can be passed by concurrent creates, and a lowered cap keeps the sessions it finds).
 */
export class SessionCatalog implements ProjectCatalog {
  readonly #stores = new Map<string, StateStore>();
  #listed: { atMs: number; projects: readonly ProjectInfo[] } | undefined;
  #listing: Promise<readonly ProjectInfo[]> | undefined;

  constructor(
    private readonly bucket: ObjectStore | undefined,
    private readonly options: { readonly listTtlMs?: number; readonly clock?: () => number },
  ) {}

  list(): Promise<readonly ProjectInfo[]> {
    const now = (this.options.clock ?? Date.now)();
    if (this.#listed && now - this.#listed.atMs < (this.options.listTtlMs ?? 60_000)) return Promise.resolve(this.#listed.projects);
    this.#listing ??= this.#list(now).finally(() => (this.#listing = undefined));
    return this.#listing;
  }

  async #list(now: number): Promise<readonly ProjectInfo[]> {
    const names = this.bucket ? await listSessions(this.bucket, Infinity) : [];
    const projects = names
      .filter((name) => PROJECT_NAME.test(name))
      .sort()
      .map((name) => ({ name, labels: { session: name } }));
    this.#listed = { atMs: now, projects };
    return projects;
  }

  forget(name: string): void {
    this.#stores.delete(name);
  }

  store(name: string): StateStore {
    let store = this.#stores.get(name);
    if (!store) {
      store = this.bucket
        ? new SyncedStateStore(this.bucket, name)
        : { read: () => Promise.reject(new Error('no R2 bucket or KV namespace is bound (see wrangler.toml)')) };
      // Bounded like the apps over them: the oldest store goes first.
      if (this.#stores.size >= 1024) this.#stores.delete(this.#stores.keys().next().value as string);
      this.#stores.set(name, store);
    }
    return store;
  }
}
