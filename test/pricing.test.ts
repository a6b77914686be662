import { describe, expect, it } from 'vitest';
import { BUILT_IN_PRICES, iterationCost, price, priceFor, priceTable, type PriceTable } from '../src/pricing.js';
import { readPricing } from '../src/schemas/pricing.js';

describe('priceFor', () => {
  it.each([
    ['opus', 'opus'],
    ['claude-opus-4-6', 'opus'],
    ['Claude-Haiku-4-5-20251001', 'haiku'],
    ['claude-sonnet-4-5', 'sonnet'],
    ['gemini-3-flash-preview', 'gemini-3-flash'],
    ['gemini-2.5-pro', 'gemini-3-pro'],
    ['gpt-5.3-codex', 'gpt-5.3-codex'],
    ['mystery', 'sonnet'],
    [null, 'sonnet'],
  ])('prices %j as %s', (model, family) => {
    expect(priceFor(BUILT_IN_PRICES, model)).toEqual(BUILT_IN_PRICES.get(family));
  });
});

describe('priceTable', () => {
  it('overrides per model, case-insensitively, keeping built-in fields the file leaves out', () => {
    const table = priceTable({ models: { SONNET: { input: 6, output: 30 }, opus: { input: 10 }, fable: { output: 50 } } });
    expect(table.get('sonnet')).toEqual(price(6, 30));
    expect(table.get('opus')).toEqual({ input: 10, output: 25, cacheRead: 1, cacheWrite: 12.5 });
    // fable is built in (10/50); a key the file names keeps the built-in fields it leaves out
    expect(table.get('fable')).toEqual(price(10, 50));
    expect(table.get('haiku')).toEqual(price(1, 5));
    // overriding sonnet moves the unknown-model fallback too
    expect(priceFor(table, 'mystery')).toEqual(price(6, 30));
    // a new key the file adds starts from sonnet's prices
    expect(priceTable({ models: { newmodel: { output: 1 } } }).get('newmodel')).toEqual(price(3, 1));
  });

  it('is the built-in table when pricing.json has no models', () => {
    expect(priceTable(undefined)).toBe(BUILT_IN_PRICES);
    expect(priceTable({ models: null })).toBe(BUILT_IN_PRICES);
  });
});

describe('9.x built-in prices and cache prices', () => {
  it('has the 9.x table: fable 10/50, gpt-5.3-codex 1.75/14, and keeps 5.4x Gemini', () => {
    expect(BUILT_IN_PRICES.get('fable')).toEqual(price(10, 50));
    expect(BUILT_IN_PRICES.get('gpt-5.3-codex')).toEqual(price(1.75, 14));
    expect(priceFor(BUILT_IN_PRICES, 'gemini-3-pro-preview')).toEqual(price(1.25, 10));
  });

  it.each([
    ['gpt-5.6-sol', 2.5, 20],
    ['openai/gpt-5.6-terra-2026-05', 1.5, 12],
    ['GPT-5.6-Luna', 0.5, 4],
    ['openai/gpt-5.6-luna-2026-05', 0.5, 4],
    ['openai/gpt-5.3-codex-high', 1.75, 14],
    ['gpt-5.2-codex', 1.75, 14],
    ['claude-fable-5', 10, 50],
  ])('prices %s as upstream 9.22 publishes it (%d/%d)', (model, input, output) => {
    expect(priceFor(BUILT_IN_PRICES, model)).toEqual(price(input, output));
  });

  it('derives cache prices from input (read 0.1×, write 1.25×) unless pricing.json names them', () => {
    expect(price(5, 25)).toEqual({ input: 5, output: 25, cacheRead: 0.5, cacheWrite: 6.25 });
    const parsed = readPricing(new TextEncoder().encode('{"models":{"opus":{"input":5,"output":25,"cache_read":0.4,"cache_creation":7}}}'));
    expect(parsed.ok).toBe(true);
    const table = priceTable(parsed.ok ? parsed.value : undefined);
    expect(table.get('opus')).toEqual({ input: 5, output: 25, cacheRead: 0.4, cacheWrite: 7 });
    // an input override moves the derived cache prices with it
    expect(priceTable({ models: { haiku: { input: 2 } } }).get('haiku')).toEqual({ input: 2, output: 5, cacheRead: 0.2, cacheWrite: 2.5 });
  });

  it('prices cache tokens at the cache rates when cost_usd is 0 or absent', () => {
    const record = { model: 'claude-opus-4-6', input_tokens: 1e6, output_tokens: 1e6, cache_read_tokens: 1e7, cache_creation_tokens: 2e6 };
    // 5 + 25 + 10 × 0.5 + 2 × 6.25
    expect(iterationCost(record, BUILT_IN_PRICES)).toBe(47.5);
    expect(iterationCost({ ...record, cost_usd: 0 }, BUILT_IN_PRICES)).toBe(47.5);
    // cache tokens alone are real usage: a 0 next to them is priced too
    expect(iterationCost({ model: 'haiku', cost_usd: 0, cache_read_tokens: 1e6 }, BUILT_IN_PRICES)).toBe(0.1);
    expect(iterationCost({ ...record, cost_usd: 1.5 }, BUILT_IN_PRICES)).toBe(1.5);
  });
});

describe('priceKey precedence', () => {
  it.each([
    ['claude-sonnet-fable-distill', 'sonnet'],
    ['haiku-on-gemini', 'haiku'],
    ['opus-as-sonnet', 'opus'],
    ['fable-codex', 'fable'],
  ])('an id naming two families (%s) is priced by the first of opus, haiku, sonnet, fable, gemini, codex: %s', (model, key) => {
    expect(priceFor(BUILT_IN_PRICES, model)).toEqual(BUILT_IN_PRICES.get(key));
  });
});

describe('iterationCost', () => {
  it('prices each token type when cost_usd is 0: output alone, cache writes alone are usage', () => {
    expect(iterationCost({ model: 'opus', cost_usd: 0, output_tokens: 1e6 }, BUILT_IN_PRICES)).toBe(25);
    expect(iterationCost({ model: 'opus', cost_usd: 0, cache_creation_tokens: 1e6 }, BUILT_IN_PRICES)).toBe(6.25);
  });

  it('a null cost_usd is none: 0 without tokens, the tokens\' price with them', () => {
    expect(iterationCost({ model: 'opus', cost_usd: null }, BUILT_IN_PRICES)).toBe(0);
    expect(iterationCost({ model: 'opus', cost_usd: null, input_tokens: 1e6 }, BUILT_IN_PRICES)).toBe(5);
  });

  it('uses cost_usd when present, tokens otherwise, and tokens when cost_usd is 0 next to real usage', () => {
    expect(iterationCost({ model: 'opus', cost_usd: 1.25, input_tokens: 1e6 }, BUILT_IN_PRICES)).toBe(1.25);
    expect(iterationCost({ model: 'opus', input_tokens: 1e6, output_tokens: 1e5 }, BUILT_IN_PRICES)).toBe(7.5);
    expect(iterationCost({ model: 'haiku', cost_usd: 0, input_tokens: 1e6 }, BUILT_IN_PRICES)).toBe(1);
    expect(iterationCost({ model: 'haiku', cost_usd: 0, input_tokens: 0, output_tokens: 0 }, BUILT_IN_PRICES)).toBe(0);
    expect(iterationCost({}, BUILT_IN_PRICES)).toBe(0);
  });

  // A record without a model is looked up under the key '' (as `modelKey` keys it): a pricing.json
  // entry named "" (or blank: keys are trimmed) is its exact key, before the sonnet fallback.
  it('prices a record without a model by a pricing.json entry named "" when there is one, else as sonnet', () => {
    const file = readPricing(new TextEncoder().encode('{"models": {" ": {"input": 7, "output": 35}}}'));
    if (!file.ok) throw new Error(file.problem);
    const table = priceTable(file.value);
    expect(iterationCost({ input_tokens: 1e6 }, table)).toBe(7);
    expect(iterationCost({ model: null, output_tokens: 1e6 }, table)).toBe(35);
    expect(priceFor(table, undefined)).toEqual(price(7, 35));
    expect(priceFor(table, 'mystery')).toEqual(price(3, 15));
    expect(iterationCost({ input_tokens: 1e6 }, BUILT_IN_PRICES)).toBe(3);
  });
});

describe('an exact pricing.json key for a full model id (not a family name)', () => {
  const ID = 'claude-opus-4-5-20251101';
  const file = { models: { [ID]: { input: 7, output: 35 } } };

  it('prices that id by its exact key, over its family\'s price', () => {
    const table = priceTable(file);
    expect(priceFor(table, ID)).toEqual(price(7, 35));
    // compared lower-cased and trimmed, as every key
    expect(priceFor(table, ` Claude-Opus-4-5-20251101\n`)).toEqual(price(7, 35));
    expect(priceFor(priceTable({ models: { ' CLAUDE-OPUS-4-5-20251101 ': { input: 7, output: 35 } } }), ID)).toEqual(price(7, 35));
    // the rest of the family keeps the family's price: a key is matched whole, never as a prefix
    expect(priceFor(table, 'claude-opus-4-6')).toEqual(price(5, 25));
    expect(priceFor(table, 'claude-opus-4-5')).toEqual(price(5, 25));
    expect(priceFor(table, `${ID}-v2`)).toEqual(price(5, 25));
  });

  it('the same id is priced per table: the built-in table still gives it the family price', () => {
    expect(priceFor(BUILT_IN_PRICES, ID)).toEqual(price(5, 25));
    expect(priceFor(priceTable(file), ID)).toEqual(price(7, 35));
    expect(priceFor(BUILT_IN_PRICES, ID)).toEqual(price(5, 25));
  });

  it('precedence: the exact key, then the family (pricing.json over built in), then sonnet (pricing.json over built in)', () => {
    const table = priceTable({ models: { [ID]: { input: 7, output: 35 }, opus: { input: 6, output: 30 }, sonnet: { input: 2, output: 8 } } });
    expect(priceFor(table, ID)).toEqual(price(7, 35));
    expect(priceFor(table, 'claude-opus-4-6')).toEqual(price(6, 30));
    expect(priceFor(table, 'claude-haiku-4-5')).toEqual(price(1, 5));
    expect(priceFor(table, 'mystery')).toEqual(price(2, 8));
    expect(priceFor(BUILT_IN_PRICES, 'mystery')).toEqual(price(3, 15));
  });

  it('a table without sonnet falls back to the built-in sonnet price, never to nothing', () => {
    const table: PriceTable = new Map([['opus', price(4, 20)]]);
    expect(priceFor(table, 'claude-opus-4-6')).toEqual(price(4, 20));
    expect(priceFor(table, 'claude-haiku-4-5')).toEqual(price(3, 15));
    expect(priceFor(table, 'mystery')).toEqual(price(3, 15));
  });

  it('a field the entry leaves out keeps that model\'s own built-in price (its family\'s), not sonnet\'s', () => {
    expect(priceTable({ models: { [ID]: { input: 7 } } }).get(ID)).toEqual(price(7, 25));
    expect(priceTable({ models: { [ID]: { output: 35 } } }).get(ID)).toEqual(price(5, 35));
    expect(priceTable({ models: { 'gemini-2.5-flash': { output: 1 } } }).get('gemini-2.5-flash')).toEqual(price(0.1, 1));
    // a model no rule prices starts from sonnet's, as an unknown model is priced
    expect(priceTable({ models: { 'llama-3.1-70b': { input: 1 } } }).get('llama-3.1-70b')).toEqual(price(1, 15));
  });
});
