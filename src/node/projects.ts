import { createHash } from 'node:crypto';
import { closeSync, fstatSync, lstatSync, openSync, readSync, statSync } from 'node:fs';
import { basename, isAbsolute, join, resolve } from 'node:path';
import type { NamedDir } from '../config.js';
import { DEFAULT_PROJECT, PROJECT_NAME, type ProjectCatalog, type ProjectInfo } from '../fleet.js';
import { capText, escapeForLog } from '../log.js';
import { readProjectRegistry, type RegistryEntry } from '../schemas/project-registry.js';
import { NOT_REGULAR, OPEN_FLAGS, SYMLINK } from '../stores/fs/read-file.js';
import type { Log } from '../source-tracker.js';
import { FsStateStore, type FsStateStoreOptions, type WatchStatus } from '../stores/fs.js';

/**
 * The Node fleet: named state directories (`--dir NAME=PATH`, `LOKI_PROJECTS`), an optional
 * default one (the plain `--dir PATH`), and, when asked, the projects in Loki Mode's own registry
 * (`~/.loki/dashboard/projects.json`), followed without a restart: the registry file is stat'ed at
 * most once per `checkEveryMs` when a request needs the list, and re-read when it changed. One
 * FsStateStore per project, made on first use and closed when its project goes away.
 *
 * A registry that is torn or not JSON keeps the last good list; a bad entry (a missing path, a
 * file, a symlink, a name that collides) is left out or renamed with one log line per registry
 * version; more projects than `maxProjects` are cut to that many, running ones first.
 */
export interface NodeCatalogOptions {
  /** The project a request without `?project=` gets (`default`), when there is one. */
  readonly defaultDir?: string;
  readonly named: readonly NamedDir[];
  /** Follow this registry file (absolute path), when set. */
  readonly registryFile?: string;
  readonly maxProjects: number;
  readonly log: Log;
  readonly storeOptions?: FsStateStoreOptions;
  /** Registry file checks at most this often. Default 1 s. */
  readonly checkEveryMs?: number;
}

/** The registry is a few KB per hundred projects; anything this large is not one. */
const MAX_REGISTRY_BYTES = 8 * 1024 * 1024;
/** Registry statuses of projects that are under way: kept first when the list is cut. */
const LIVE_STATUSES = new Set(['running', 'active']);

export class NodeProjectCatalog implements ProjectCatalog {
  readonly #options: NodeCatalogOptions;
  readonly #fixed: readonly NamedDir[];
  #fromRegistry: readonly NamedDir[] = [];
  #signature: string | undefined;
  #lastCheck = -Infinity;
  /** Log lines already written for the current registry version. */
  #said = new Set<string>();
  readonly #stores = new Map<string, { readonly dir: string; readonly store: FsStateStore }>();

  constructor(options: NodeCatalogOptions) {
    this.#options = options;
    this.#fixed = [...(options.defaultDir !== undefined ? [{ name: DEFAULT_PROJECT, dir: options.defaultDir }] : []), ...options.named];
    this.#refresh();
  }

  get defaultProject(): string | undefined {
    return this.#options.defaultDir !== undefined ? DEFAULT_PROJECT : undefined;
  }

  /** Every project now: the fixed ones, then the registry's (#resolve cut those to the room maxProjects leaves). */
  projects(): readonly NamedDir[] {
    this.#refresh();
    return [...this.#fixed, ...this.#fromRegistry];
  }

  async list(): Promise<readonly ProjectInfo[]> {
    return this.projects().map(({ name }) => ({ name }));
  }

  store(name: string): FsStateStore | undefined {
    const project = this.projects().find((p) => p.name === name);
    if (!project) return undefined;
    const kept = this.#stores.get(name);
    if (kept?.dir === project.dir) return kept.store;
    kept?.store.close();
    const store = new FsStateStore(project.dir, this.#options.storeOptions);
    this.#stores.set(name, { dir: project.dir, store });
    return store;
  }

  /** How the open stores see changes: inotify watches held, directories polled because a watch failed. */
  watchStatus(): WatchStatus {
    let inotify = 0;
    let polling = 0;
    for (const { store } of this.#stores.values()) {
      const status = store.watchStatus();
      inotify += status.inotify;
      polling += status.polling;
    }
    return { inotify, polling };
  }

  health(): Readonly<Record<string, unknown>> {
    const watches = this.watchStatus();
    return {
      projects: this.projects().length,
      // `polling` when a watch could not be made (the system's inotify limit, fs.inotify.max_user_watches):
      // those directories are re-stat'ed on every refresh instead, which costs more but misses nothing.
      watch: { mode: watches.polling > 0 ? 'polling' : 'inotify', inotifyWatches: watches.inotify, pollingDirectories: watches.polling },
    };
  }

  close(): void {
    for (const { store } of this.#stores.values()) store.close();
    this.#stores.clear();
  }

  #say(line: string): void {
    if (this.#said.has(line)) return;
    this.#said.add(line);
    this.#options.log(`loki-metrics: ${line}`);
  }

  #refresh(): void {
    const file = this.#options.registryFile;
    if (file === undefined || performance.now() - this.#lastCheck < (this.#options.checkEveryMs ?? 1_000)) return;
    this.#lastCheck = performance.now();
    let signature: string;
    try {
      const st = statSync(file, { bigint: true });
      signature = `${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
    } catch (error) {
      signature = `missing:${(error as NodeJS.ErrnoException).code ?? 'error'}`;
    }
    if (signature === this.#signature) return;
    this.#signature = signature;
    this.#said = new Set();
    const where = `project registry ${escapeForLog(file)}`;
    const bytes = readBounded(file);
    if (typeof bytes === 'string') {
      // Not there yet (Loki Mode writes it at its first run): no registry projects, no alarm.
      if (bytes === 'ENOENT') {
        this.#fromRegistry = [];
        this.#say(`${where} does not exist (yet); serving the projects it lists once it does`);
      } else this.#say(`${where}: ${bytes}; keeping the ${this.#fromRegistry.length} projects read before`);
      this.#dropGone();
      return;
    }
    const reading = readProjectRegistry(bytes);
    if (!reading.ok) {
      this.#say(`${where}: ${reading.problem}; keeping the ${this.#fromRegistry.length} projects read before`);
      return;
    }
    for (const { key, problem } of reading.value.rejected) this.#say(`${where}: entry ${quote(key)} left out: ${problem}`);
    this.#fromRegistry = this.#resolve(reading.value.entries, where);
    this.#dropGone();
  }

  /** Registry entries → named state directories: checked, named uniquely, cut to the limit. */
  #resolve(entries: readonly RegistryEntry[], where: string): NamedDir[] {
    const taken = new Set(this.#fixed.map((p) => p.name));
    const out: NamedDir[] = [];
    // Running projects first when the list must be cut; otherwise the registry's order.
    const ordered = [...entries].sort((a, b) => Number(LIVE_STATUSES.has(b.status ?? '')) - Number(LIVE_STATUSES.has(a.status ?? '')));
    const room = Math.max(0, this.#options.maxProjects - this.#fixed.length);
    const left: string[] = [];
    for (const entry of ordered) {
      const problem = pathProblem(entry.path);
      if (problem) {
        this.#say(`${where}: project ${quote(entry.name ?? entry.key)} left out: ${problem}`);
        continue;
      }
      if (out.length >= room) {
        left.push(quote(entry.name ?? entry.key));
        continue;
      }
      const name = uniqueName(entry, taken);
      taken.add(name);
      out.push({ name, dir: join(resolve(entry.path), '.loki') });
    }
    if (left.length > 0) {
      // What the cap keeps: the named projects, then running ones, then the rest, in the registry's order.
      const more = left.length > 5 ? ` and ${left.length - 5} more` : '';
      this.#say(`${where} lists ${out.length + left.length} usable projects; serving ${out.length} (LOKI_MAX_PROJECTS=${this.#options.maxProjects}: the named ones, then running ones first); left out: ${left.slice(0, 5).join(', ')}${more}`);
    }
    return out;
  }

  /** Closes the stores of projects no longer listed (their watches go with them). */
  #dropGone(): void {
    const listed = new Map([...this.#fixed, ...this.#fromRegistry].map((p) => [p.name, p.dir]));
    for (const [name, { dir, store }] of this.#stores) {
      if (listed.get(name) !== dir) {
        store.close();
        this.#stores.delete(name);
      }
    }
  }
}

/** Why a registry entry's project directory cannot be served, or undefined. */
function pathProblem(path: string): string | undefined {
  if (!isAbsolute(path)) return 'its path is not absolute';
  try {
    // As written: `/x/link/` or `/x/link/.` would have lstat follow the link.
    const st = lstatSync(resolve(path));
    if (st.isSymbolicLink()) return 'its path is a symlink';
    if (!st.isDirectory()) return 'its path is not a directory';
    return undefined;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return code === 'ENOENT' || code === 'ENOTDIR' ? 'its directory does not exist' : `its directory cannot be read (${code ?? 'error'})`;
  }
}

/**
 * A project's label: its alias, else its name, else the directory's name, made a valid name; a
 * second project with the same name gets the registry id's first 6 digits appended.
 */
function uniqueName(entry: RegistryEntry, taken: ReadonlySet<string>): string {
  const raw = entry.alias ?? entry.name ?? basename(entry.path);
  let name = raw.replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^[^A-Za-z0-9]+/, '').slice(0, 64);
  if (!PROJECT_NAME.test(name)) name = 'project';
  if (!taken.has(name)) return name;
  const id = entry.id && /^[0-9a-f]{6,}$/i.test(entry.id) ? entry.id : createHash('sha256').update(entry.path).digest('hex');
  const base = `${name.slice(0, 57)}-${id.slice(0, 6)}`;
  let unique = base;
  for (let n = 2; taken.has(unique); n++) unique = `${base}-${n}`;
  return unique;
}

/** The file's bytes (at most MAX_REGISTRY_BYTES), or an error code / reason. */
function readBounded(file: string): Uint8Array | string {
  let fd: number | undefined;
  try {
    // As the state files are opened: a FIFO put there must not block the exporter (non-blocking),
    // nor a link lead elsewhere (no-follow); only a regular file is read.
    fd = openSync(file, OPEN_FLAGS);
    const st = fstatSync(fd);
    if (!st.isFile()) return NOT_REGULAR;
    // As ssh treats its files: a registry anyone else can write could point the exporter anywhere.
    if ((st.mode & 0o022) !== 0) return `writable by group or others (mode ${(st.mode & 0o777).toString(8)}; chmod go-w it)`;
    const me = process.getuid?.();
    if (me !== undefined && st.uid !== me && st.uid !== 0) return `owned by another user (uid ${st.uid})`;
    if (st.size > MAX_REGISTRY_BYTES) return `larger than ${MAX_REGISTRY_BYTES} bytes`;
    const bytes = new Uint8Array(st.size);
    let got = 0;
    // Up to the end, which can come before the size said (truncated meanwhile; sysfs-like files).
    while (got < bytes.length) {
      const n = readSync(fd, bytes, got, bytes.length - got, got);
      if (n === 0) break;
      got += n;
    }
    return bytes.subarray(0, got);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return code === 'ELOOP' ? SYMLINK : (code ?? 'cannot be read');
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

const quote = (text: string) => JSON.stringify(capText(escapeForLog(text), 60));
