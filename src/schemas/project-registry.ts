import * as v from 'valibot';
import { describeIssues, jsonObject, parseJsonFile, type ParseResult } from './parse.js';

/**
 * `~/.loki/dashboard/projects.json`: Loki Mode's machine-wide registry of projects (the dashboard's
 * project switcher; 9.x's run.sh registers each running project). Written atomically (temp file and
 * rename) as `{"version": "1.0", "projects": {"<id>": {"id", "path", "name", "alias", "status",
 * "pid", "port", ...}}}`, where `path` is the project directory (its state is `<path>/.loki`), `id`
 * the first 12 hex digits of the path's SHA-256, `name` its basename unless given, `status`
 * `active`, `running` or `stopped`.
 *
 * Entries are checked one by one: a bad entry is left out with a reason, the others stand.
 */
const RegistrySchema = jsonObject(
  v.looseObject({
    // Entries are checked one by one below, so a bad one leaves out only itself.
    projects: jsonObject(v.record(v.string(), v.unknown(), 'Expected an object of projects'), 'Expected an object of projects'),
  }),
);

const nullableText = v.optional(v.nullable(v.string()));
const EntrySchema = v.looseObject({
  id: nullableText,
  path: v.pipe(v.string('Expected the project directory'), v.nonEmpty('Expected the project directory')),
  name: nullableText,
  alias: nullableText,
  status: nullableText,
});

export interface RegistryEntry {
  /** The registry's key for it. */
  readonly key: string;
  readonly id?: string;
  readonly path: string;
  readonly name?: string;
  readonly alias?: string;
  readonly status?: string;
}

export interface RegistryReading {
  readonly entries: readonly RegistryEntry[];
  /** Entries left out, with why (the key as given, escaped by describeIssues' rules). */
  readonly rejected: readonly { readonly key: string; readonly problem: string }[];
}

/** The registry file's bytes → its entries (each validated), or why the whole file is unusable. */
export function readProjectRegistry(bytes: Uint8Array): ParseResult<RegistryReading> {
  const file = parseJsonFile(RegistrySchema, bytes);
  if (!file.ok) return file;
  const entries: RegistryEntry[] = [];
  const rejected: { key: string; problem: string }[] = [];
  for (const [key, raw] of Object.entries(file.value.projects)) {
    const entry = v.safeParse(EntrySchema, raw);
    if (!entry.success) {
      rejected.push({ key, problem: describeIssues(entry.issues) });
      continue;
    }
    const e = entry.output;
    entries.push({
      key,
      path: e.path,
      ...(e.id ? { id: e.id } : {}),
      ...(e.name ? { name: e.name } : {}),
      ...(e.alias ? { alias: e.alias } : {}),
      ...(e.status ? { status: e.status } : {}),
    });
  }
  return { ok: true, value: { entries, rejected } };
}
