import bcrypt from 'bcryptjs';

/**
 * HTTP basic auth against bcrypt hashes (exporter-toolkit's `basic_auth_users`). Runtime-free:
 * bcryptjs is plain JavaScript and the cache key uses WebCrypto.
 *
 * bcrypt is slow on purpose (~100 ms at cost 10), so a successful check is remembered for a while,
 * as exporter-toolkit does: a scraper every 15 s then costs no bcrypt at all. The cache key is a
 * SHA-256 of user, hash and password, so the password is never kept, and a changed hash (a new web
 * config) never matches an old entry.
 *
 * Wrong credentials must not be able to take the process: checks waiting for bcrypt are bounded in
 * all (`maxChecks`) and per client (`maxChecksPerClient`), and a request beyond either bound is
 * refused at once, without bcrypt. A client that already passed is answered from the cache and
 * never waits behind them. A failure is remembered briefly (`failureTtlMs`), so a scraper stuck on a
 * stale password costs one check per that time, not one per request.
 */
export interface BasicAuthOptions {
  /** A remembered success lapses after this long without use. Default 60 s. */
  readonly ttlMs?: number;
  /** At most this many remembered successes (the least recently used goes first). Default 100. */
  readonly maxEntries?: number;
  /** Checks waiting for bcrypt at once, in all; beyond it a request is refused unchecked. Default 8. */
  readonly maxChecks?: number;
  /** Of those, at most this many for one client (its address). Default 2. */
  readonly maxChecksPerClient?: number;
  /** A failed check is remembered this long. Default 10 s. */
  readonly failureTtlMs?: number;
  /** At most this many remembered failures (the oldest go first). Default 1,000. */
  readonly maxFailures?: number;
  /**
   * A refusal is answered this long after it is decided. Default 0.5 s: a client looping on wrong
   * passwords then sends about two a second per connection, not thousands (refusals unchecked are
   * otherwise instant), so a flood cannot become a flood of cheap requests instead.
   */
  readonly failureDelayMs?: number;
  /** How the delay is waited (tests record it). */
  readonly delay?: (ms: number) => Promise<void>;
  /** Told when a request is refused unchecked because the bounds are full (to log a flood). */
  readonly onBusy?: (client: string) => void;
  /** Successes (and failures) carried over from the users of the config this one replaces. */
  readonly inheritFrom?: BasicAuthUsers;
  readonly clock?: () => number;
  /** The bcrypt comparison (on Node, off the event loop); injectable so tests can count calls. */
  readonly compare?: (password: string, hash: string) => Promise<boolean>;
}

/** A valid hash of a random password, for a configuration without users. */
const DUMMY_HASH = '$2b$10$lJWPp3mVeGWCXKvCPRUv2ucUI/7JUKVeivhJ.47OUJkuRQoAS4cSS';

/** A bcrypt hash's cost (its work factor, 2^cost rounds). */
export const bcryptCost = (hash: string) => Number(/^\$2[aby]\$(\d\d)\$/.exec(hash)?.[1] ?? 0);

export class BasicAuthUsers {
  private readonly ttlMs: number;
  private readonly maxEntries: number;
  private readonly maxChecks: number;
  private readonly maxChecksPerClient: number;
  private readonly failureTtlMs: number;
  private readonly maxFailures: number;
  private readonly onBusy: ((client: string) => void) | undefined;
  private readonly failureDelayMs: number;
  private readonly delay: (ms: number) => Promise<void>;
  /** cache key → when a remembered failure lapses. */
  private readonly failures = new Map<string, number>();
  /** client → checks of its under way. */
  private readonly checksByClient = new Map<string, number>();
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
    this.maxChecks = options.maxChecks ?? 8;
    this.maxChecksPerClient = options.maxChecksPerClient ?? 2;
    this.failureTtlMs = options.failureTtlMs ?? 10_000;
    this.maxFailures = options.maxFailures ?? 1_000;
    this.onBusy = options.onBusy;
    this.failureDelayMs = options.failureDelayMs ?? 500;
    this.delay = options.delay ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
    this.clock = options.clock ?? Date.now;
    this.compare = options.compare ?? ((password, hash) => bcrypt.compare(password, hash));
    // Keys hold the hash, so an entry carried over can only match where the hash is unchanged.
    for (const [key, until] of options.inheritFrom?.remembered ?? []) this.remembered.set(key, until);
    for (const [key, until] of options.inheritFrom?.failures ?? []) this.failures.set(key, until);
    this.unknownUserHash = Object.values(users).reduce((costliest, hash) => (bcryptCost(hash) > bcryptCost(costliest) ? hash : costliest), Object.values(users)[0] ?? DUMMY_HASH);
  }

  /**
   * Whether `user` exists and `password` matches its hash. `client` (its address) is who asks, for
   * the per-client bound; requests without one share a single allowance.
   */
  async verify(user: string, password: string, client = ''): Promise<boolean> {
    const ok = await this.check(user, password, client);
    if (!ok && this.failureDelayMs > 0) await this.delay(this.failureDelayMs);
    return ok;
  }

  private async check(user: string, password: string, client: string): Promise<boolean> {
    const hash = Object.hasOwn(this.users, user) ? this.users[user] : undefined;
    const key = await cacheKey(user, hash ?? '', password);
    const now = this.clock();
    const until = this.remembered.get(key);
    // Only successes are remembered, and a success needs a known user's hash.
    if ((until ?? now) > now) {
      keep(this.remembered, key, now + this.ttlMs, this.maxEntries);
      return true;
    }
    this.remembered.delete(key);
    if ((this.failures.get(key) ?? now) > now) return false;
    this.failures.delete(key);
    const check = this.pending.get(key) ?? this.startCheck(key, password, hash, client);
    if (!check) return false;
    const ok = await check;
    if (ok) keep(this.remembered, key, this.clock() + this.ttlMs, this.maxEntries);
    else keep(this.failures, key, this.clock() + this.failureTtlMs, this.maxFailures);
    return ok;
  }

  /** A bcrypt check, or undefined when the bounds say no more may wait. */
  private startCheck(key: string, password: string, hash: string | undefined, client: string): Promise<boolean> | undefined {
    const mine = this.checksByClient.get(client) ?? 0;
    if (this.pending.size >= this.maxChecks || mine >= this.maxChecksPerClient) {
      this.onBusy?.(client);
      return undefined;
    }
    this.checksByClient.set(client, mine + 1);
    const check = this.compare(password, hash ?? this.unknownUserHash)
      .then((ok) => ok && hash !== undefined)
      .catch(() => false)
      .finally(() => {
        this.pending.delete(key);
        const left = (this.checksByClient.get(client) ?? 1) - 1;
        if (left > 0) this.checksByClient.set(client, left);
        else this.checksByClient.delete(client);
      });
    this.pending.set(key, check);
    return check;
  }

}

/**
 * Sets when `key` lapses and makes it the most recently used (Map keys iterate in insertion order:
 * least recently used first), then drops the least recently used beyond `max`.
 */
function keep(entries: Map<string, number>, key: string, until: number, max: number): void {
  entries.delete(key);
  entries.set(key, until);
  for (const oldest of entries.keys()) {
    if (entries.size <= max) break;
    entries.delete(oldest);
  }
}

const encoder = new TextEncoder();

async function cacheKey(user: string, hash: string, password: string): Promise<string> {
  // Lengths first, so no two different triples can concatenate to the same bytes.
  const text = `${user.length}:${hash.length}:${user}${hash}${password}`;
  // The digest's 32 bytes as a 32-character string: a Map key, never printed.
  return String.fromCharCode(...new Uint8Array(await crypto.subtle.digest('SHA-256', encoder.encode(text))));
}

