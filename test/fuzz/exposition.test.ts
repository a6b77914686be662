/**
 * No content can break the exposition:
 * - the formatter on random snapshots (any label value: quotes, backslashes, newlines, CR, braces,
 *   any Unicode; any double incl. NaN, ±Inf, -0, 5e-324): every line matches the grammar, and
 *   prometheus_client reads back exactly the label values that went in;
 * - the Worker's multi-session app (`createRemoteApp` over an in-memory `SessionBucket`) with random
 *   `?session=` names: invalid names get 400, valid ones 200 with the single-session output, and a
 *   session name never reaches the output (no label injection).
 */
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { FAMILIES, type FamilyName } from '../../src/catalogue.js';
import { parseConfig } from '../../src/config.js';
import { createRemoteApp } from '../../src/remote-app.js';
import { render } from '../../src/render.js';
import type { Sample, Snapshot } from '../../src/snapshot.js';
import { MemoryObjectStore } from '../support/object-store.js';
import { DURATION_BUCKETS_S } from '../../src/usage.js';
import { SESSION_NAME } from '../../src/sync/protocol.js';
import { ACCEPT, CaseCounter, checkExposition, NOW, OutputSample, pythonParseAll, runs, scrape, value } from './support.js';

const counter = new CaseCounter();
const sample = new OutputSample(300);
/** For each sampled output from the formatter property, the label values that went in. */
const expectedLabels = new Map<string, string[]>();
afterAll(() => console.log(counter.report('exposition.test.ts')));

// ---- the formatter ----------------------------------------------------------------------------

const hostile = fc.constantFrom('\\', '"', '\n', '\r', '\t', '{', '}', '=', ',', '#', ' ', '\\n', '\\"', '\u2028', '\u0000', '\u007f', '\ufeff', '😀', 'é');
const labelValue = fc
  .array(fc.oneof(fc.string({ unit: 'grapheme', maxLength: 6 }), hostile), { maxLength: 8 })
  .map((parts) => parts.join(''));
const anyDouble = fc.oneof(fc.double(), fc.constantFrom(0, -0, 5e-324, 1e21, 1e-7, Number.MAX_VALUE, NaN, Infinity, -Infinity, 2 ** 53 + 1));

const snapshotArb: fc.Arbitrary<Snapshot> = fc
  .tuple(
    ...FAMILIES.map((family): fc.Arbitrary<Sample[]> => {
      // A histogram is well-formed or absent: cumulative buckets, +Inf equal to the count.
      if (family.type === 'histogram') {
        const bounds = [...DURATION_BUCKETS_S.map((b) => `${b}.0`), '+Inf'];
        const histogram = fc
          .tuple(fc.array(fc.nat(1e6), { minLength: bounds.length, maxLength: bounds.length }), fc.double({ min: 0, max: 1e12, noNaN: true }))
          .map(([counts, sum]): Sample[] => {
            const cumulative = counts.sort((a, b) => a - b);
            return [
              ...bounds.map((le, i): Sample => ({ suffix: '_bucket', labels: { le }, value: cumulative[i]! })),
              { suffix: '_sum', value: sum },
              { suffix: '_count', value: cumulative[cumulative.length - 1]! },
            ];
          });
        return fc.oneof(fc.constant<Sample[]>([]), histogram);
      }
      const label = family.labels[0];
      const valueArb =
        family.type === 'counter' ? fc.double({ min: 0, max: 1e300, noNaN: true }) : family.type === 'info' ? fc.constant(1) : anyDouble;
      if (label === undefined) return fc.array(valueArb.map((v): Sample => ({ value: v })), { maxLength: 1 });
      return fc
        .uniqueArray(labelValue, { maxLength: 4 })
        .chain((values) => fc.tuple(...values.map((l) => valueArb.map((v): Sample => ({ labels: { [label]: l }, value: v })))));
    }),
  )
  .map((perFamily) => ({
    samples: new Map(FAMILIES.map((f, i) => [f.name as FamilyName, perFamily[i] as Sample[]])),
    sources: [],
    up: true,
    takenAtMs: 0,
  }));

describe('the formatter on random snapshots', () => {
  it('every line matches the grammar and the label values survive escaping', () => {
    fc.assert(
      fc.property(snapshotArb, (snapshot) => {
        counter.hit('render-random-snapshot');
        const labels = [...snapshot.samples.values()].flatMap((ss) => ss.flatMap((s) => Object.values(s.labels ?? {})));
        for (const format of ['prometheus', 'openmetrics'] as const) {
          const text = render(snapshot, format);
          const parsed = checkExposition(text, format, { allowedLabelValues: null });
          expect([...parsed.labelValues].sort()).toEqual([...new Set(labels)].sort());
          const before = sample.items.length;
          sample.add(format, text);
          if (sample.items.length > before) expectedLabels.set(text, labels);
        }
      }),
      runs(1000),
    );
  });
});

// ---- the Worker app and session names ---------------------------------------------------------

const SYNC_TOKEN = 'sync-write-token-0123456789';
const LINES = 4242;
const payload = JSON.stringify({
  available: true,
  pidAlive: false,
  documents: {},
  efficiency: { present: false, upsert: {}, remove: [] },
  events: { present: true, lines: LINES },
});

/**
 * The oracle: the documented rule ("1-64 characters of A-Z a-z 0-9 . _ - starting with a letter or
 * digit") spelled out independently of SESSION_NAME, which generates names but must not decide
 * them: a wrong SESSION_NAME would otherwise move the expectation along with the code.
 */
const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
function isValidName(name: string): boolean {
  return name.length >= 1 && name.length <= 64 && ALNUM.includes(name[0]!) && [...name].every((c) => c.length === 1 && (ALNUM + '._-').includes(c));
}

/** Names aimed at the edges of SESSION_NAME and at label injection. */
const crafted = fc.constantFrom(
  '', 'default', 'a', '0', '.', '-', '_', '.a', '-a', '_a', 'a.', 'a-b_c.d', 'A'.repeat(64), 'A'.repeat(65), 'a b', 'a+b', 'a/b',
  '../etc', 'a\\b', 'a"b', "a'b", 'a\nb', 'a\r', 'a\u0000', 'é', 'a%2Fb', 'a%00', 'a}', 'a"} 1\nloki_up{x="', 'x\n# EOF',
  'session', 'a?b', 'a&session=b', 'a#b', '\ufeffa', 'a\u2028',
);
const sessionName = fc.oneof(
  { weight: 3, arbitrary: fc.stringMatching(SESSION_NAME) },
  { weight: 2, arbitrary: fc.string({ unit: 'grapheme', maxLength: 70 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme-ascii', minLength: 60, maxLength: 70 }) },
  { weight: 2, arbitrary: crafted },
  { weight: 1, arbitrary: fc.tuple(fc.stringMatching(SESSION_NAME), crafted).map(([a, b]) => a + b) },
);

describe('the Worker app (createRemoteApp) with random session names', () => {
  it('invalid names get 400, valid ones 200 with well-formed output and no injected labels', { timeout: 120_000 }, async () => {
    const bucket = new MemoryObjectStore();
    const logs: string[] = [];
    const config = parseConfig({ LOKI_METRICS_CACHE_SECONDS: '0', LOKI_SYNC_TOKEN: SYNC_TOKEN, LOKI_MAX_SESSIONS: '100000' });
    const app = createRemoteApp({ bucket, config, clock: () => NOW, log: (l) => logs.push(l) });
    let valid = 0;
    let invalid = 0;
    await fc.assert(
      fc.asyncProperty(sessionName, fc.boolean(), async (name, ingest) => {
        counter.hit('remote-session-name');
        const query = `?session=${encodeURIComponent(name)}`;
        const ok = isValidName(name);
        if (ingest) {
          // Both stored formats: a sync client before format 3 (one document) and a current one.
          const layout = name.length % 2 === 0 ? '&layout=3' : '';
          const res = await app.request(`/ingest${query}${layout}`, {
            method: 'POST',
            headers: { Authorization: `Bearer ${SYNC_TOKEN}`, 'Content-Type': 'application/json' },
            body: payload,
          });
          const body = await res.text();
          expect(res.status, body).toBe(ok ? 200 : 400);
          const manifest = await app.request(`/ingest/manifest${query}${layout}`, { headers: { Authorization: `Bearer ${SYNC_TOKEN}` } });
          expect(manifest.status).toBe(ok ? 200 : 400);
        }
        if (!ok) {
          invalid++;
          for (const path of ['/metrics', '/health', '/']) {
            const res = await app.request(`${path}${query}`, { headers: { Accept: ACCEPT.openmetrics } });
            const body = await res.text();
            expect(res.status, path).toBe(400);
            expect(body).toMatch(/^invalid session name/);
            // Nothing of the name is echoed back.
            if (name.length > 2) expect(body.includes(name)).toBe(false);
          }
          return;
        }
        valid++;
        const s = await scrape(app, query);
        sample.addScrape(s);
        const synced = bucket.objects.has(`sessions/${name}/beat.json`) || bucket.objects.has(`sessions/${name}/state.json`);
        expect(value(s, 'loki_up')).toBe(synced ? 1 : 0);
        if (synced) expect(value(s, 'loki_events_total')).toBe(LINES);
        // No label injection: scrape() fails on any label value outside the fixed set.
      }),
      runs(2000),
    );
    expect(valid).toBeGreaterThan(200);
    expect(invalid).toBeGreaterThan(200);
    expect(logs.filter((l) => l.includes('internal error'))).toEqual([]);
  });

  it('raw, possibly malformed query strings never give a 5xx', { timeout: 60_000 }, async () => {
    const app = createRemoteApp({ bucket: new MemoryObjectStore(), config: parseConfig({ LOKI_METRICS_CACHE_SECONDS: '0' }), clock: () => NOW, log: () => {} });
    const raw = fc
      .array(fc.oneof(fc.constantFrom('session=', '%', '%2', '%zz', '%FF', '%C3%28', '%E2%82', '%00', '%0A', '&', '=', '+', ';', '#', 'session', 'a', '%22'), fc.string({ unit: 'grapheme-ascii', maxLength: 4 })), { maxLength: 12 })
      .map((parts) => parts.join('').replace(/[\s#]/g, ''));
    await fc.assert(
      fc.asyncProperty(raw, async (query) => {
        counter.hit('remote-raw-query');
        for (const path of ['/metrics', '/health']) {
          const res = await app.request(`${path}?${query}`);
          const body = await res.text();
          expect([200, 400], `${path}?${query}: ${body.slice(0, 100)}`).toContain(res.status);
          if (path === '/metrics' && res.status === 200) checkExposition(body, 'prometheus');
        }
      }),
      runs(1000),
    );
  });
});

describe('prometheus_client', () => {
  it('parses a sample of distinct outputs of both properties (one python process)', { timeout: 60_000 }, () => {
    expect(sample.items.length).toBeGreaterThan(100);
    const verdicts = pythonParseAll(sample.items);
    verdicts.forEach((v, i) => {
      const item = sample.items[i]!;
      expect(v.error, `${item.format} output #${i}:\n${item.text}`).toBeUndefined();
      const labels = expectedLabels.get(item.text);
      const values = (v.labels ?? []).map((l) => l.slice(l.indexOf('=') + 1));
      if (labels) expect([...new Set(values)].sort()).toEqual([...new Set(labels)].sort());
      else expect(v.families).toBe(16);
    });
    counter.hit(`python-parsed(${verdicts.length})`);
  });
});
