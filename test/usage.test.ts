/**
 * Per-model usage from the efficiency files: token sums and cost per bounded (family, model) label
 * set, outcomes, and the duration histogram. Expectations are worked out from the documented rules
 * (the pricing rule in pricing.ts, the label cap and iteration order in usage.ts), not copied.
 */
import { describe, expect, it } from 'vitest';
import { BUILT_IN_PRICES, type Price, type PriceTable } from '../src/pricing.js';
import type { EfficiencyRecord } from '../src/schemas/efficiency.js';
import {
  DURATION_BUCKETS_S,
  iterationOutcome,
  MAX_MODEL_IDS,
  ModelLabeler,
  modelFamily,
  summariseUsage,
  TOKEN_TYPES,
  type ModelUsage,
  type Usage,
} from '../src/usage.js';

type Entry = { name: string; value: EfficiencyRecord };
const iteration = (n: number, value: EfficiencyRecord): Entry => ({ name: `iteration-${n}.json`, value });
/** As the store hands them over: sorted by file name (so iteration-10 before iteration-2). */
const byName = (entries: Entry[]) => [...entries].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));

const ZERO_TOKENS = { input: 0, output: 0, cache_read: 0, cache_creation: 0 };

function model(usage: Usage, family: string, id: string): ModelUsage | undefined {
  return usage.models.find((m) => m.family === family && m.model === id);
}

/** USD per million tokens, cache prices written out (not derived) so the table alone decides. */
const TABLE: PriceTable = new Map<string, Price>([
  ['opus', { input: 4, output: 20, cacheRead: 0.5, cacheWrite: 6 }],
  ['sonnet', { input: 2, output: 10, cacheRead: 0.2, cacheWrite: 3 }],
]);

describe('modelFamily', () => {
  it.each([
    ['claude-opus-4-6', 'opus'],
    ['opus', 'opus'],
    ['claude-3-5-sonnet-20241022', 'sonnet'],
    ['claude-haiku-4-5', 'haiku'],
    ['fable-1', 'fable'],
    ['gemini-3-pro', 'gemini'],
    ['gemini-3-flash', 'gemini'],
    ['gpt-5.3-codex', 'gpt'],
    ['gpt-4o', 'gpt'],
    ['codex-mini', 'gpt'],
    ['o3', 'gpt'],
    ['o4-mini', 'gpt'],
    ['openai/o1', 'gpt'],
    ['llama-3.1-70b', 'other'],
    ['mistral-large', 'other'],
    ['', 'unknown'],
  ])('%j is in family %s', (id, family) => {
    expect(modelFamily(id)).toBe(family);
  });
});

describe('iterationOutcome', () => {
  it.each(['failed', 'FAILED', 'error', 'crashed', 'timeout', 'Timed_Out', 'timed out', 'timedout', ' fail ', 'killed', 'aborted'])('status %j is failed', (status) => {
    expect(iterationOutcome({ status })).toBe('failed');
  });

  it.each(['completed', 'success', 'ok', 'done', '', 'no_errors'])('status %j is completed', (status) => {
    expect(iterationOutcome({ status })).toBe('completed');
  });

  it('a record without a status (5.4x) is a completed iteration', () => {
    expect(iterationOutcome({})).toBe('completed');
    expect(iterationOutcome({ status: null })).toBe('completed');
  });
});

describe('ModelLabeler', () => {
  it('lower-cases and trims ids, so the spellings of one id share a label set', () => {
    const labeler = new ModelLabeler();
    const a = labeler.label('claude-opus-4-6');
    expect(a).toEqual({ family: 'opus', model: 'claude-opus-4-6' });
    expect(labeler.label('  Claude-OPUS-4-6\n')).toEqual(a);
    expect(labeler.all()).toEqual([a]);
  });

  it('writes control characters in an id as escapes, so no label value carries one raw (issue 19, item 16)', () => {
    const labeler = new ModelLabeler();
    const controls = ['\u001b[31m', '\u0007', 'a\rb', '\u0085', '\u2028', '\u0000', '\u007f'];
    for (const c of controls) {
      const { model } = labeler.label(`claude-opus-${c}x`);
      expect(model).not.toMatch(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/);
    }
    expect(labeler.label('claude-opus-\u001b[31mx').model).toBe('claude-opus-\\x1b[31mx');
    expect(labeler.label('gpt-5\u2028x').model).toBe('gpt-5\\u2028x');
    expect(labeler.label('sonnet\u0000').model).toBe('sonnet\\x00');
  });

  it('labels a missing or blank model as family unknown, model unknown', () => {
    const labeler = new ModelLabeler();
    for (const raw of [undefined, null, '', '   ']) expect(labeler.label(raw)).toEqual({ family: 'unknown', model: 'unknown' });
    expect(labeler.all()).toEqual([{ family: 'unknown', model: 'unknown' }]);
  });

  it('cuts ids longer than 64 characters, so ids differing only beyond that share a label set', () => {
    const labeler = new ModelLabeler();
    const long = `claude-opus-${'x'.repeat(200)}`;
    const labels = labeler.label(`${long}-a`);
    expect(labels).toEqual({ family: 'opus', model: long.slice(0, 64) });
    expect(labeler.label(`${long}-b`)).toEqual(labels);
    expect(labeler.label('claude-opus-4-6').model).toBe('claude-opus-4-6'); // short ids untouched
  });

  it(`keeps the first ${MAX_MODEL_IDS} distinct ids, then labels new ids "other" within their family`, () => {
    const labeler = new ModelLabeler();
    for (let i = 0; i < MAX_MODEL_IDS; i++) expect(labeler.label(`claude-sonnet-${i}`).model).toBe(`claude-sonnet-${i}`);
    expect(labeler.label('gpt-5.3-codex')).toEqual({ family: 'gpt', model: 'other' });
    expect(labeler.label('claude-opus-9')).toEqual({ family: 'opus', model: 'other' });
    // A kept id stays kept, however it is spelled.
    expect(labeler.label('claude-sonnet-3')).toEqual({ family: 'sonnet', model: 'claude-sonnet-3' });
    expect(labeler.label(' Claude-Sonnet-3 ')).toEqual({ family: 'sonnet', model: 'claude-sonnet-3' });
    expect(labeler.all()).toHaveLength(MAX_MODEL_IDS + 2);
  });

  it('gives every late id of one family the same "other" label set, so their sums are one series', () => {
    const labeler = new ModelLabeler();
    for (let i = 0; i < MAX_MODEL_IDS; i++) labeler.label(`gpt-filler-${i}`);
    const usage = summariseUsage(
      [iteration(1, { model: 'claude-opus-a', input_tokens: 1 }), iteration(2, { model: 'claude-opus-b', input_tokens: 2 })],
      TABLE,
      labeler,
    );
    expect(usage.models.filter((m) => m.family === 'opus')).toEqual([{ family: 'opus', model: 'other', tokens: { ...ZERO_TOKENS, input: 3 }, costUsd: 0.000012 }]);
  });

  it('an id spelled "other" and the late ids of its family share one series, never two with the same labels', () => {
    const labeler = new ModelLabeler();
    labeler.label('Other');
    for (let i = 0; i < MAX_MODEL_IDS - 1; i++) labeler.label(`gpt-filler-${i}`);
    expect(labeler.label('mistral-large')).toBe(labeler.label('other'));
    const usage = summariseUsage(
      [iteration(1, { model: 'other', input_tokens: 1 }), iteration(2, { model: 'llama-3.1-70b', input_tokens: 2 })],
      TABLE,
      labeler,
    );
    expect(usage.models.filter((m) => m.family === 'other')).toEqual([{ family: 'other', model: 'other', tokens: { ...ZERO_TOKENS, input: 3 }, costUsd: 0.000006 }]);
  });

  it('lists every label set handed out, by family then model', () => {
    const labeler = new ModelLabeler();
    for (const id of ['gpt-4o', 'claude-sonnet-4', 'claude-opus-4-6', 'claude-opus-4-1', null]) labeler.label(id);
    expect(labeler.all()).toEqual([
      { family: 'gpt', model: 'gpt-4o' },
      { family: 'opus', model: 'claude-opus-4-1' },
      { family: 'opus', model: 'claude-opus-4-6' },
      { family: 'sonnet', model: 'claude-sonnet-4' },
      { family: 'unknown', model: 'unknown' },
    ]);
  });
});

describe('summariseUsage: tokens and cost', () => {
  it('sums tokens by type per (family, model), absent counts as 0', () => {
    const usage = summariseUsage(
      [
        iteration(1, { model: 'claude-opus-4-6', input_tokens: 100, output_tokens: 10, cache_read_tokens: 1000, cache_creation_tokens: 7, cost_usd: 1 }),
        iteration(2, { model: 'Claude-Opus-4-6', input_tokens: 50, output_tokens: 5, cost_usd: 1 }),
        iteration(3, { model: 'claude-sonnet-4', input_tokens: 3, output_tokens: 4, cache_read_tokens: 5, cache_creation_tokens: 6, cost_usd: 1 }),
        iteration(4, { model: 'claude-sonnet-4', cost_usd: 1 }),
      ],
      TABLE,
      new ModelLabeler(),
    );
    expect(usage.models.map((m) => [m.family, m.model, m.tokens])).toEqual([
      ['opus', 'claude-opus-4-6', { input: 150, output: 15, cache_read: 1000, cache_creation: 7 }],
      ['sonnet', 'claude-sonnet-4', { input: 3, output: 4, cache_read: 5, cache_creation: 6 }],
    ]);
  });

  it('costs each file by the pricing rule and sums per model; the total is the sum over models', () => {
    const entries = [
      // cost_usd > 0: taken as is, whatever the tokens say
      iteration(1, { model: 'claude-opus-4-6', input_tokens: 1_000_000, cost_usd: 0.42 }),
      // no cost_usd: tokens × the opus price, cache tokens at the cache prices
      // 1M in × $4 + 0.1M out × $20 + 2M cache read × $0.5 + 0.5M cache write × $6 = 4 + 2 + 1 + 3
      iteration(2, {
        model: 'claude-opus-4-6',
        input_tokens: 1_000_000,
        output_tokens: 100_000,
        cache_read_tokens: 2_000_000,
        cache_creation_tokens: 500_000,
      }),
      // cost_usd 0 next to tokens (nothing measured): priced from the tokens, 0.5M in × $2 = 1
      iteration(3, { model: 'claude-sonnet-4', input_tokens: 500_000, cost_usd: 0 }),
      // cost_usd 0 and no tokens: 0
      iteration(4, { model: 'claude-sonnet-4', cost_usd: 0 }),
      // a model the table does not know: sonnet's price, 1M out × $10 = 10
      iteration(5, { model: 'llama-3.1-70b', output_tokens: 1_000_000 }),
    ];
    const usage = summariseUsage(entries, TABLE, new ModelLabeler());
    expect(model(usage, 'opus', 'claude-opus-4-6')?.costUsd).toBeCloseTo(0.42 + 10, 9);
    expect(model(usage, 'sonnet', 'claude-sonnet-4')?.costUsd).toBeCloseTo(1, 9);
    expect(model(usage, 'other', 'llama-3.1-70b')?.costUsd).toBeCloseTo(10, 9);
    expect(usage.costUsd).toBeCloseTo(0.42 + 10 + 1 + 10, 9);
    expect(usage.costUsd).toBeCloseTo(
      usage.models.reduce((sum, m) => sum + m.costUsd, 0),
      6,
    );
  });

  it('derives cache prices from the input price (0.1× read, 1.25× write) with the built-in table', () => {
    // Built-in opus: $5/M in, so a cache read costs $0.5/M and a cache write $6.25/M.
    const usage = summariseUsage(
      [iteration(1, { model: 'claude-opus-4-6', cache_read_tokens: 1_000_000, cache_creation_tokens: 1_000_000 })],
      BUILT_IN_PRICES,
      new ModelLabeler(),
    );
    expect(usage.costUsd).toBeCloseTo(5 * 0.1 + 5 * 1.25, 9);
  });

  it('keeps float noise out of the money', () => {
    const usage = summariseUsage(
      [iteration(1, { model: 'opus', cost_usd: 0.1 }), iteration(2, { model: 'opus', cost_usd: 0.2 })],
      TABLE,
      new ModelLabeler(),
    );
    expect(usage.costUsd).toBe(0.3);
    expect(model(usage, 'opus', 'opus')?.costUsd).toBe(0.3);
  });

  it('reports a file without a model under family unknown, model unknown', () => {
    const usage = summariseUsage(
      [iteration(1, { input_tokens: 10, cost_usd: 0.5 }), iteration(2, { model: null, input_tokens: 5, cost_usd: 0.25 })],
      TABLE,
      new ModelLabeler(),
    );
    expect(usage.models).toEqual([{ family: 'unknown', model: 'unknown', tokens: { ...ZERO_TOKENS, input: 15 }, costUsd: 0.75 }]);
  });
});

describe('summariseUsage: bounded labels in iteration order', () => {
  // Iteration N uses id `claude-sonnet-<100 - N>`: later iterations have ids that sort earlier, and
  // in file-name order iteration-10..17 come before iteration-2..9.
  const idOf = (n: number) => `claude-sonnet-${100 - n}`;
  const entries = byName(Array.from({ length: MAX_MODEL_IDS + 1 }, (_, i) => iteration(i + 1, { model: idOf(i + 1), input_tokens: i + 1 })));

  it(`gives the first ${MAX_MODEL_IDS} ids by iteration number a label of their own, the next one "other"`, () => {
    const usage = summariseUsage(entries, TABLE, new ModelLabeler());
    const last = MAX_MODEL_IDS + 1;
    for (let n = 1; n < last; n++) expect(model(usage, 'sonnet', idOf(n))?.tokens.input, `iteration ${n}`).toBe(n);
    expect(model(usage, 'sonnet', idOf(last))).toBeUndefined();
    expect(model(usage, 'sonnet', 'other')?.tokens.input).toBe(last);
    expect(usage.models).toHaveLength(MAX_MODEL_IDS + 1);
  });

  it('orders iteration-10 after iteration-2 (numbers, not names), whatever the ids', () => {
    const labeler = new ModelLabeler();
    // All slots but one taken earlier; iteration-2 and iteration-10 then compete for the last one.
    for (let i = 0; i < MAX_MODEL_IDS - 1; i++) labeler.label(`gpt-filler-${i}`);
    const usage = summariseUsage(
      byName([iteration(10, { model: 'claude-opus-a', input_tokens: 10 }), iteration(2, { model: 'claude-opus-b', input_tokens: 2 })]),
      TABLE,
      labeler,
    );
    expect(model(usage, 'opus', 'claude-opus-b')?.tokens.input).toBe(2);
    expect(model(usage, 'opus', 'claude-opus-a')).toBeUndefined();
    expect(model(usage, 'opus', 'other')?.tokens.input).toBe(10);
  });

  it('orders files without an iteration number in the name by their iteration field, then after the numbered ones', () => {
    const labeler = new ModelLabeler();
    for (let i = 0; i < MAX_MODEL_IDS - 1; i++) labeler.label(`gpt-filler-${i}`);
    const usage = summariseUsage(
      byName([
        { name: 'a-unnumbered.json', value: { model: 'claude-opus-late' } },
        { name: 'b-named.json', value: { model: 'claude-opus-field', iteration: 3 } },
        iteration(7, { model: 'claude-opus-seven' }),
      ]),
      TABLE,
      labeler,
    );
    // By key: b-named (3), iteration-7 (7), a-unnumbered (none): only b-named's id gets the last slot.
    expect(model(usage, 'opus', 'claude-opus-field')).toBeDefined();
    expect(model(usage, 'opus', 'claude-opus-seven')).toBeUndefined();
    expect(model(usage, 'opus', 'claude-opus-late')).toBeUndefined();
  });

  it('keeps the set stable across refreshes and run starts: a kept id stays, a late id stays "other"', () => {
    const labeler = new ModelLabeler();
    summariseUsage(entries, TABLE, labeler);
    summariseUsage([], TABLE, labeler); // run start
    const again = summariseUsage([iteration(1, { model: idOf(MAX_MODEL_IDS + 1), input_tokens: 9 })], TABLE, labeler);
    expect(model(again, 'sonnet', idOf(MAX_MODEL_IDS + 1))).toBeUndefined();
    expect(model(again, 'sonnet', 'other')?.tokens.input).toBe(9);
  });
});

describe('summariseUsage: run start', () => {
  it('still reports every label set seen before, at zero, when the directory is emptied', () => {
    const labeler = new ModelLabeler();
    const before = summariseUsage(
      [
        iteration(1, { model: 'claude-opus-4-6', input_tokens: 10, output_tokens: 2, cost_usd: 1.5, duration_ms: 2000, status: 'completed' }),
        iteration(2, { model: 'gpt-5.3-codex', cache_read_tokens: 4, cost_usd: 0.5, duration_ms: 90_000, status: 'failed' }),
      ],
      TABLE,
      labeler,
    );
    expect(before.models).toHaveLength(2);

    const after = summariseUsage([], TABLE, labeler);
    expect(after.models).toEqual([
      { family: 'gpt', model: 'gpt-5.3-codex', tokens: ZERO_TOKENS, costUsd: 0 },
      { family: 'opus', model: 'claude-opus-4-6', tokens: ZERO_TOKENS, costUsd: 0 },
    ]);
    expect(after.costUsd).toBe(0);
    expect(after.iterations).toEqual({ completed: 0, failed: 0 });
    expect(after.durations).toEqual({ buckets: DURATION_BUCKETS_S.map(() => 0), sum: 0, count: 0 });

    // The new run's first file: its model counts again, the other stays at zero.
    const next = summariseUsage([iteration(1, { model: 'claude-opus-4-6', input_tokens: 3, cost_usd: 0.25 })], TABLE, labeler);
    expect(model(next, 'opus', 'claude-opus-4-6')).toMatchObject({ tokens: { ...ZERO_TOKENS, input: 3 }, costUsd: 0.25 });
    expect(model(next, 'gpt', 'gpt-5.3-codex')).toMatchObject({ tokens: ZERO_TOKENS, costUsd: 0 });
  });

  it('a fresh labeler reports nothing for nothing', () => {
    const usage = summariseUsage([], TABLE, new ModelLabeler());
    expect(usage.models).toEqual([]);
    expect(usage.costUsd).toBe(0);
  });

  it('reports every token type for every model', () => {
    const usage = summariseUsage([iteration(1, { model: 'opus' })], TABLE, new ModelLabeler());
    expect(Object.keys(usage.models[0]!.tokens).sort()).toEqual([...TOKEN_TYPES].sort());
  });
});

describe('summariseUsage: outcomes and durations', () => {
  it('counts iterations by outcome', () => {
    const usage = summariseUsage(
      [
        iteration(1, { status: 'completed' }),
        iteration(2, { status: 'failed' }),
        iteration(3, {}),
        iteration(4, { status: 'timeout' }),
        iteration(5, { status: 'ERROR' }),
        iteration(6, { status: 'success' }),
      ],
      TABLE,
      new ModelLabeler(),
    );
    expect(usage.iterations).toEqual({ completed: 3, failed: 3 });
  });

  it('builds a cumulative histogram in seconds from the files that have duration_ms', () => {
    expect(DURATION_BUCKETS_S).toEqual([1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400]);
    // Seconds: 0.5, 1 (on a bound: included), 1.001, 45, 3600 (on a bound), 20000 (beyond the last bound).
    const usage = summariseUsage(
      [
        iteration(1, { duration_ms: 500 }),
        iteration(2, { duration_ms: 1000 }),
        iteration(3, { duration_ms: 1001 }),
        iteration(4, { duration_ms: 45_000 }),
        iteration(5, { duration_ms: 3_600_000 }),
        iteration(6, { duration_ms: 20_000_000 }),
        iteration(7, {}), // no duration: not observed
        iteration(8, { duration_ms: null }),
      ],
      TABLE,
      new ModelLabeler(),
    );
    //                                  le: 1  5  15 30 60 120 300 600 1200 1800 3600 7200 14400
    expect(usage.durations.buckets).toEqual([2, 3, 3, 3, 4, 4, 4, 4, 4, 4, 5, 5, 5]);
    expect(usage.durations.count).toBe(6);
    expect(usage.durations.sum).toBeCloseTo(0.5 + 1 + 1.001 + 45 + 3600 + 20000, 6);
    expect(usage.iterations).toEqual({ completed: 8, failed: 0 });
  });

  it('observes a zero duration in every bucket', () => {
    const usage = summariseUsage([iteration(1, { duration_ms: 0 })], TABLE, new ModelLabeler());
    expect(usage.durations).toEqual({ buckets: DURATION_BUCKETS_S.map(() => 1), sum: 0, count: 1 });
  });
});

describe('summariseUsage: money rounded to the nearest micro-dollar (not floor, not ceil, not 4 decimals)', () => {
  const cost = (...records: EfficiencyRecord[]) => summariseUsage(records.map((r, i) => iteration(i + 1, r)), TABLE, new ModelLabeler());

  it('rounds a sub-micro-dollar cost to the nearest micro-dollar', () => {
    // 0.7 µ$: floor would say 0, no rounding 7e-7
    expect(cost({ model: 'opus', cost_usd: 0.0000007 }).costUsd).toBe(0.000001);
    // 1.2 µ$: ceil would say 0.000002
    expect(cost({ model: 'opus', cost_usd: 0.0000012 }).costUsd).toBe(0.000001);
    // 0.4 µ$: rounds down to nothing
    expect(cost({ model: 'opus', cost_usd: 0.0000004 }).costUsd).toBe(0);
  });

  it('keeps six decimals, where four would lose them', () => {
    expect(cost({ model: 'opus', cost_usd: 0.1234567 }).costUsd).toBe(0.123457);
    // priced from tokens: 3 input tokens at $2/M are 6 µ$
    expect(cost({ model: 'claude-sonnet-4', input_tokens: 3 }).costUsd).toBe(0.000006);
    // 7 cache reads at $0.2/M are 1.4 µ$
    expect(cost({ model: 'claude-sonnet-4', cache_read_tokens: 7 }).costUsd).toBe(0.000001);
  });

  it('rounds each model\'s sum and the total separately: the total is the rounded sum of the exact costs', () => {
    const usage = cost({ model: 'claude-opus-4-6', cost_usd: 0.0000004 }, { model: 'claude-sonnet-4', cost_usd: 0.0000004 });
    expect(usage.models.map((m) => m.costUsd)).toEqual([0, 0]);
    expect(usage.costUsd).toBe(0.000001);
    // one model over several files: its sum is rounded, not each file
    const same = cost({ model: 'opus', cost_usd: 0.0000004 }, { model: 'opus', cost_usd: 0.0000004 });
    expect(model(same, 'opus', 'opus')?.costUsd).toBe(0.000001);
  });
});

describe('summariseUsage: the duration sum', () => {
  it('is rounded to milliseconds', () => {
    const sum = (duration_ms: number) => summariseUsage([iteration(1, { duration_ms })], TABLE, new ModelLabeler()).durations.sum;
    expect(sum(1000.4)).toBe(1);
    expect(sum(1000.6)).toBe(1.001);
  });
});
