/**
 * The exposition formatter: a Snapshot in, Prometheus text 0.0.4 or OpenMetrics 1.0 out.
 *
 * Pure and runtime-free (no I/O, no clock), so the same bytes come out of every runtime and every
 * scrape of the same snapshot. The reference served neither format correctly (blank lines between
 * families, no `# EOF`, `nan`/`inf`, Accept ignored); both are now served as the scraper asks.
 */
import { FAMILIES, type MetricFamily } from './catalogue.js';
import type { Sample, Snapshot } from './snapshot.js';

export type Format = 'prometheus' | 'openmetrics';

const CONTENT_TYPES: Readonly<Record<Format, string>> = {
  prometheus: 'text/plain; version=0.0.4; charset=utf-8',
  openmetrics: 'application/openmetrics-text; version=1.0.0; charset=utf-8',
};

export function contentType(format: Format): string {
  return CONTENT_TYPES[format];
}

// ---------------------------------------------------------------------------------------------
// Rendering

/**
 * Both formats spell non-finite values the same way (String() already spells NaN `NaN`, but the
 * infinities need `+Inf`/`-Inf`); finite ones use JS shortest round-trip.
 */
function formatValue(value: number): string {
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  // String() prints integers below 1e21 without a fraction and -0 as "0"; beyond that it uses
  // exponent form (`1e+21`), which both parsers accept and which avoids 300-digit expansions.
  return String(value);
}

function escapeLabelValue(value: string): string {
  return value.replace(/[\\"\n]/g, (c) => (c === '\n' ? '\\n' : `\\${c}`));
}

/** 0.0.4 HELP escapes only backslash and newline: an escaped quote would print as `\"`. */
function escapeHelp(help: string, format: Format): string {
  const pattern = format === 'openmetrics' ? /[\\"\n]/g : /[\\\n]/g;
  return help.replace(pattern, (c) => (c === '\n' ? '\\n' : `\\${c}`));
}

/**
 * Labels in the family's order. Labels a sample lacks are left out (an empty value means the
 * same to Prometheus) and names the family does not declare are ignored: the catalogue is the
 * contract, and a scrape must never fail over one odd sample.
 */
function formatLabels(family: MetricFamily, sample: Sample): string {
  const parts: string[] = [];
  for (const name of family.labels) {
    const value = sample.labels?.[name];
    if (value !== undefined) parts.push(`${name}="${escapeLabelValue(value)}"`);
  }
  const le = family.type === 'histogram' && sample.suffix === '_bucket' ? sample.labels?.le : undefined;
  if (le !== undefined) parts.push(`le="${escapeLabelValue(le)}"`);
  return parts.length === 0 ? '' : `{${parts.join(',')}}`;
}

/** The family name in the `# HELP`/`# TYPE` lines, and the name each sample carries. */
function names(family: MetricFamily, format: Format): { meta: string; sample: string; type: string } {
  const { name, type } = family;
  if (format === 'prometheus') {
    // 0.0.4 has no info type; the conventional spelling is a gauge of value 1.
    return { meta: name, sample: name, type: type === 'info' ? 'gauge' : type };
  }
  // OpenMetrics names the family without the sample suffix (`_total`, `_info`). Gauges keep
  // their name even when it ends in `_total` (loki_tasks_total is a gauge by contract).
  const suffix = type === 'counter' ? '_total' : type === 'info' ? '_info' : '';
  if (suffix === '') return { meta: name, sample: name, type };
  const base = name.endsWith(suffix) ? name.slice(0, -suffix.length) : name;
  return { meta: base, sample: base + suffix, type };
}

/**
 * Renders every family of `families`, in order, and ends the exposition (`# EOF` for OpenMetrics).
 * A family with no samples still gets its HELP and TYPE lines: promtool and both reference parsers
 * accept an empty family (checked in tests). A process family (`scope: 'process'`) is left out
 * altogether when the snapshot does not hold it: a runtime without a process has no such family.
 */
export function render(
  snapshot: Snapshot,
  format: Format,
  families: readonly MetricFamily[] = FAMILIES,
): string {
  return renderFamilies(snapshot.samples, format, families) + renderEnd(format);
}

/**
 * The families' lines, each ending in a newline, without the end of the exposition: parts rendered
 * separately (a snapshot's families, memoised; the process families, per scrape) are joined and
 * then ended with `renderEnd`. Same rules as `render`.
 */
export function renderFamilies(
  samples: ReadonlyMap<string, readonly Sample[]>,
  format: Format,
  families: readonly MetricFamily[] = FAMILIES,
): string {
  // Keyed by string: families outside the catalogue cannot be keys of a typed snapshot, but a
  // caller may pass them.
  const lines: string[] = [];
  for (const family of families) {
    const familySamples = samples.get(family.name);
    if (familySamples === undefined && family.scope === 'process') continue;
    const n = names(family, format);
    lines.push(`# HELP ${n.meta} ${escapeHelp(family.help, format)}`);
    lines.push(`# TYPE ${n.meta} ${n.type}`);
    for (const sample of familySamples ?? []) {
      const suffix = family.type === 'histogram' ? (sample.suffix ?? '') : '';
      lines.push(`${n.sample}${suffix}${formatLabels(family, sample)} ${formatValue(sample.value)}`);
    }
  }
  return lines.length === 0 ? '' : lines.join('\n') + '\n';
}

/** What ends an exposition: `# EOF` (exactly once, last) in OpenMetrics, nothing in text 0.0.4. */
export function renderEnd(format: Format): string {
  return format === 'openmetrics' ? '# EOF\n' : '';
}

// ---------------------------------------------------------------------------------------------
// Content negotiation

interface MediaRange {
  readonly type: string;
  readonly subtype: string;
  readonly params: ReadonlyMap<string, string>;
  /** 0..1; a range with q=0 refuses what it matches. */
  readonly q: number;
}

/** Splits on `sep` outside double-quoted strings (a quoted parameter may contain `,` or `;`). */
function splitUnquoted(text: string, sep: string): string[] {
  const parts: string[] = [];
  let current = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i] as string;
    if (quoted && c === '\\' && i + 1 < text.length) {
      current += c + (text[i + 1] as string);
      i++;
      continue;
    }
    if (c === '"') quoted = !quoted;
    if (c === sep && !quoted) {
      parts.push(current);
      current = '';
    } else {
      current += c;
    }
  }
  parts.push(current);
  return parts;
}

function unquote(value: string): string {
  if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) {
    return value.slice(1, -1).replace(/\\(.)/g, '$1');
  }
  return value;
}

/**
 * q per RFC 9110 is 0..1 with up to three decimals; we accept any plain decimal and clamp it to
 * 1. Anything else (`q=high`, `q=-1`, `q=`) makes the range count as q=0: a sender we cannot
 * understand gets no format on the strength of it, and the default text format remains.
 */
function parseQ(raw: string): number {
  if (!/^(\d+(\.\d*)?|\.\d+)$/.test(raw)) return 0;
  return Math.min(1, Number(raw));
}

function parseAccept(accept: string): MediaRange[] {
  const ranges: MediaRange[] = [];
  for (const entry of splitUnquoted(accept, ',')) {
    // splitUnquoted always returns at least one part.
    const [mediaType, ...rawParams] = splitUnquoted(entry, ';') as [string, ...string[]];
    const slash = mediaType.toLowerCase().split('/');
    if (slash.length !== 2) continue;
    const [type, subtype] = slash.map((s) => s.trim()) as [string, string];
    // No token grammar check is needed: only our own types and subtypes, `type/*` and `*/*` ever
    // match (see specificity), so a malformed range matches nothing. `*/x` is malformed but would
    // match as `*/*`, so it is dropped here.
    if (type === '*' && subtype !== '*') continue;
    const params = new Map<string, string>();
    let q = 1;
    let seenQ = false;
    for (const rawParam of rawParams) {
      const eq = rawParam.indexOf('=');
      if (eq < 0) continue; // a bare `;` or a flag: nothing to match on
      const name = rawParam.slice(0, eq).trim().toLowerCase();
      const value = unquote(rawParam.slice(eq + 1).trim());
      if (name === 'q') {
        // The first q is the weight; a parameter after it still counts (RFC 9110 §12.5.1).
        if (!seenQ) q = parseQ(value);
        seenQ = true;
      } else if (!params.has(name)) {
        params.set(name, value);
      }
    }
    ranges.push({ type, subtype, params, q });
  }
  return ranges;
}

/** What each format is served as, and the `version` values a client may ask for to get it. */
const OFFERS: readonly { format: Format; type: string; subtype: string; versions: readonly string[] }[] = [
  { format: 'prometheus', type: 'text', subtype: 'plain', versions: ['0.0.4', '1.0.0'] },
  { format: 'openmetrics', type: 'application', subtype: 'openmetrics-text', versions: ['1.0.0', '0.0.1'] },
];

// How specifically `range` names the offer: 3 with an accepted version, 2 the bare type, 1 a
// `type/*`, 0 `*/*`, -1 no match (including a version we do not serve).
function specificity(range: MediaRange, offer: (typeof OFFERS)[number]): number {
  if (range.type === '*') return 0;
  if (range.type !== offer.type) return -1;
  if (range.subtype === '*') return 1;
  if (range.subtype !== offer.subtype) return -1;
  const version = range.params.get('version');
  if (version === undefined) return 2;
  return offer.versions.includes(version) ? 3 : -1;
}

// Picks the format for an `Accept` header. Each format takes its weight from the most specific
// ranges that match it (RFC 9110 §12.5.1, so `text/plain;q=0, */*` refuses 0.0.4); the highest
// weight wins, a tie goes to the format whose deciding range comes first, and a tie on the same
// range (`*/*`) or no acceptable match at all gives the Prometheus text format.
export function negotiate(accept: string | null | undefined): Format {
  const ranges = parseAccept(accept ?? '');
  let best: { format: Format; q: number; index: number } = { format: 'prometheus', q: 0, index: Infinity };
  for (const offer of OFFERS) {
    let top = -1;
    let q = 0;
    let index = Infinity;
    ranges.forEach((range, i) => {
      const s = specificity(range, offer);
      if (s < 0 || s < top) return;
      // Among equally specific ranges the best weight counts (e.g. two OpenMetrics versions).
      if (s > top || range.q > q) {
        q = range.q;
        index = i;
      }
      top = s;
    });
    if (q > best.q || (q === best.q && q > 0 && index < best.index)) best = { format: offer.format, q, index };
  }
  return best.format;
}
