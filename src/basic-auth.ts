import bcrypt from 'bcryptjs';

/**
 * HTTP basic auth against bcrypt hashes (exporter-toolkit's `basic_auth_users`). Runtime-free:
 * bcryptjs is plain JavaScript and the cache key uses WebCrypto.
 *
 * bcrypt is slow on purpose (~100 ms at cost 10), so a successful check is remembered for a while,
 * as exporter-toolkit does: a scraper every 15 s then costs no bcrypt at all. The cache key is a
 * SHA-256 of user, hash and password, so the password is never kept, and a changed hash (a new web
 * config) never matches an old entry.
 */
export interface BasicAuthOptions {
  /** A remembered success lapses after this long without use. Default 60 s. */
  readonly ttlMs?: number;
  /** At most this many remembered successes (the least recently used goes first). Default 100. */
  readonly maxEntries?: number;
  readonly clock?: () => number;
  /** The bcrypt comparison; injectable so tests can count calls. */
  readonly compare?: (password: string, hash: string) => Promise<boolean>;
}

/** A valid hash of a random password, for a configuration without users. */
const DUMMY_HASH = '$2b$10$lJWPp3mVeGWCXKvCPRUv2ucUI/7JUKVeivhJ.47OUJkuRQoAS4cSS';

/** A bcrypt hash's cost (its work factor, 2^cost rounds). */
export const bcryptCost = (hash: string) => Number(/^\$2[aby]\$(\d\d)\$/.exec(hash)?.[1] ?? 0);

export class BasicAuthUsers {
  private readonly ttlMs: number;
  private readonly maxEntries: number;
  private readonly clock: () => number;
  private readonly compare: (password: string, hash: string) => Promise<boolean>;
  /** cache key → when the remembered success lapses. */
  private readonly remembered = new Map<string, number>();
  /** Checks under way, so a burst of scrapes with the same credentials runs bcrypt once. */
  private readonly pending = new Map<string, Promise<boolean>>();
  /**
   * What an unknown user is checked against: the costliest configured hash, so a wrong name takes as
   * long as a wrong password for the slowest user (with users of one cost, exactly as long).
   */
  private readonly unknownUserHash: string;

  constructor(
    private readonly users: Readonly<Record<string, string>>,
    options: BasicAuthOptions = {},
  ) {
    this.ttlMs = options.ttlMs ?? 60_000;
    this.maxEntries = options.maxEntries ?? 100;
    this.clock = options.clock ?? Date.now;
    this.compare = options.compare ?? ((password, hash) => bcrypt.compare(password, hash));
    this.unknownUserHash = Object.values(users).reduce((costliest, hash) => (bcryptCost(hash) > bcryptCost(costliest) ? hash : costliest), Object.values(users)[0] ?? DUMMY_HASH);
  }

  /** Whether `user` exists and `password` matches its hash. */
  async verify(user: string, password: string): Promise<boolean> {
    const hash = Object.hasOwn(this.users, user) ? this.users[user] : undefined;
    const key = await cacheKey(user, hash ?? '', password);
    const now = this.clock();
    const until = this.remembered.get(key);
    // Only successes are remembered, and a success needs a known user's hash.
    if ((until ?? now) > now) {
      // Least recently used goes first: move this entry to the end, with a fresh lease.
      this.remembered.delete(key);
      this.remembered.set(key, now + this.ttlMs);
      return true;
    }
    this.remembered.delete(key);
    let check = this.pending.get(key);
    if (!check) {
      check = this.compare(password, hash ?? this.unknownUserHash)
        .then((ok) => ok && hash !== undefined)
        .catch(() => false)
        .finally(() => this.pending.delete(key));
      this.pending.set(key, check);
    }
    const ok = await check;
    if (ok) this.remember(key);
    return ok;
  }

  private remember(key: string): void {
    this.remembered.delete(key);
    this.remembered.set(key, this.clock() + this.ttlMs);
    // Map keys iterate in insertion order: least recently used first.
    for (const oldest of this.remembered.keys()) {
      if (this.remembered.size <= this.maxEntries) break;
      this.remembered.delete(oldest);
    }
  }
}

const encoder = new TextEncoder();

async function cacheKey(user: string, hash: string, password: string): Promise<string> {
  // Lengths first, so no two different triples can concatenate to the same bytes.
  const text = `${user.length}:${hash.length}:${user}${hash}${password}`;
  // The digest's 32 bytes as a 32-character string: a Map key, never printed.
  return String.fromCharCode(...new Uint8Array(await crypto.subtle.digest('SHA-256', encoder.encode(text))));
}

