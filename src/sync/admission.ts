/**
 * The session cap (`LOKI_MAX_SESSIONS`): whether a sync may create a session nothing is stored for
 * yet. Asked only for such a session, so syncs of existing sessions never pay for it.
 *
 * - R2 (conditional writes): the names admitted are kept in one small object,
 *   `registry/sessions.json`, changed only by a conditional write (compare-and-swap on its etag;
 *   written only while absent the first time). Concurrent creates are thereby serialised: at most
 *   `maxSessions` names are ever admitted. A bucket without the registry (stored by an earlier
 *   version, or the registry deleted to free slots) gets it from one list of its sessions.
 * - KV (no conditional writes): counted by a list of the stored sessions plus the names this
 *   isolate admitted lately (a KV list can miss them for a minute). Creates in other isolates within
 *   that minute can each see room: the cap can be exceeded by that many (docs/worker.md).
 *
 * A refusal is remembered for a minute per isolate with the names then known (at most the cap's
 * worth), so a refused create repeated costs no list and no read of the registry.
 */
import * as v from 'valibot';
import type { ObjectStore } from '../stores/object-store.js';
import { listSessions } from './shards.js';

/** Outside `sessions/` (so never taken for a session) and `data/`. */
export const REGISTRY_KEY = 'registry/sessions.json';

const RegistrySchema = v.object({ sessions: v.array(v.string()) });

/** Undefined: admitted. Otherwise the answer for the sync client. */
export type Refusal = { readonly status: 409 | 503; readonly error: string } | undefined;

/** Compare-and-swap rounds one create may lose before it is told to retry (each lost round is another create admitted). */
const MAX_ROUNDS = 16;

export interface AdmissionOptions {
  readonly maxSessions: number;
  readonly clock?: () => number;
  /** How long a refusal (and on KV, a count) is kept. */
  readonly ttlMs?: number;
}

export class SessionAdmission {
  /** The names known at `atMs`: on R2 kept only while the registry is full; on KV the count. */
  #known: { atMs: number; names: Set<string> } | undefined;
  /** KV: names this isolate admitted, and when (a list may not show them yet). */
  readonly #recent = new Map<string, number>();

  constructor(
    private readonly store: ObjectStore,
    private readonly options: AdmissionOptions,
  ) {}

  /**
   * Admits `session` (a refusal otherwise). With `reserve` false it only looks: a request checks
   * early, before its work, and is admitted only once it is about to write, so a request refused for
   * another reason (413, 422) takes no place.
   */
  async admit(session: string, reserve = true): Promise<Refusal> {
    const now = (this.options.clock ?? Date.now)();
    const known = this.#known && now - this.#known.atMs < this.#ttl ? this.#known : undefined;
    if (known && known.names.size >= this.options.maxSessions && !known.names.has(session)) return this.#full(session);
    if (!this.store.strong) return this.#count(session, now, known, reserve);
    return reserve ? this.#register(session, now) : this.#look(session, now);
  }

  get #ttl(): number {
    return this.options.ttlMs ?? 60_000;
  }

  #full(session: string): Refusal {
    const max = this.options.maxSessions;
    return { status: 409, error: `session limit reached: this exporter keeps at most ${max} sessions (LOKI_MAX_SESSIONS); "${session}" is not one of them` };
  }

  /** R2: adds the name to the registry by a conditional write, unless it is full. */
  async #register(session: string, now: number): Promise<Refusal> {
    for (let round = 0; round < MAX_ROUNDS; round++) {
      const { names, etag, stored } = await this.#registry();
      if (names.includes(session)) return undefined;
      if (names.length >= this.options.maxSessions) {
        // Kept, so the next refusal reads nothing; a registry just built from the list is stored.
        if (!stored) await this.store.put(REGISTRY_KEY, registryText(names), etag);
        this.#known = { atMs: now, names: new Set(names) };
        return this.#full(session);
      }
      if (await this.store.put(REGISTRY_KEY, registryText([...names, session]), etag)) {
        this.#known = undefined;
        return undefined;
      }
      // Another create came first: read it again.
    }
    return { status: 503, error: 'many sessions are being created at once; retry' };
  }

  /** R2, looking only: refused when the stored registry is full (absent: the admission decides). */
  async #look(session: string, now: number): Promise<Refusal> {
    const object = await this.store.get(REGISTRY_KEY);
    const names = object !== null && object !== 'unchanged' ? parseRegistry(object.text) : undefined;
    if (!names || names.includes(session) || names.length < this.options.maxSessions) return undefined;
    this.#known = { atMs: now, names: new Set(names) };
    return this.#full(session);
  }

  /** The registry with its etag (null: absent), or the stored sessions when it is absent or unreadable. */
  async #registry(): Promise<{ names: string[]; etag: string | null; stored: boolean }> {
    const object = await this.store.get(REGISTRY_KEY);
    const etag = object !== null && object !== 'unchanged' ? (object.etag ?? null) : null;
    if (object !== null && object !== 'unchanged') {
      const parsed = parseRegistry(object.text);
      if (parsed) return { names: parsed, etag, stored: true };
    }
    return { names: await listSessions(this.store, Infinity), etag, stored: false };
  }

  /** KV: the stored sessions (listed at most once per ttl) and those admitted here lately. */
  async #count(session: string, now: number, known: { atMs: number; names: Set<string> } | undefined, reserve: boolean): Promise<Refusal> {
    let names = known?.names;
    if (!names) {
      const listed = await listSessions(this.store, Infinity);
      for (const [name, atMs] of this.#recent) if (now - atMs >= 2 * this.#ttl) this.#recent.delete(name);
      names = new Set([...listed, ...this.#recent.keys()]);
      this.#known = { atMs: now, names };
    }
    if (names.has(session)) return undefined;
    if (names.size >= this.options.maxSessions) return this.#full(session);
    if (!reserve) return undefined;
    names.add(session);
    this.#known?.names.add(session);
    this.#recent.set(session, now);
    return undefined;
  }
}

function registryText(names: readonly string[]): string {
  return JSON.stringify({ sessions: [...new Set(names)].sort() });
}

function parseRegistry(text: string): string[] | undefined {
  try {
    const parsed = v.safeParse(RegistrySchema, JSON.parse(text));
    return parsed.success ? parsed.output.sessions : undefined;
  } catch {
    return undefined;
  }
}
