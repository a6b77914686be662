import { describe, expect, it } from 'vitest';
import { BUILT_IN_PRICES, iterationCost, priceFor, priceTable } from '../src/pricing.js';

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
    expect(table.get('sonnet')).toEqual({ input: 6, output: 30 });
    expect(table.get('opus')).toEqual({ input: 10, output: 25 });
    expect(table.get('fable')).toEqual({ input: 3, output: 50 });
    expect(table.get('haiku')).toEqual({ input: 1, output: 5 });
    // overriding sonnet moves the unknown-model fallback too
    expect(priceFor(table, 'mystery')).toEqual({ input: 6, output: 30 });
  });

  it('is the built-in table when pricing.json has no models', () => {
    expect(priceTable(undefined)).toBe(BUILT_IN_PRICES);
    expect(priceTable({ models: null })).toBe(BUILT_IN_PRICES);
  });
});

describe('iterationCost', () => {
  it('uses cost_usd when present, tokens otherwise, and tokens when cost_usd is 0 next to real usage', () => {
    expect(iterationCost({ model: 'opus', cost_usd: 1.25, input_tokens: 1e6 }, BUILT_IN_PRICES)).toBe(1.25);
    expect(iterationCost({ model: 'opus', input_tokens: 1e6, output_tokens: 1e5 }, BUILT_IN_PRICES)).toBe(7.5);
    expect(iterationCost({ model: 'haiku', cost_usd: 0, input_tokens: 1e6 }, BUILT_IN_PRICES)).toBe(1);
    expect(iterationCost({ model: 'haiku', cost_usd: 0, input_tokens: 0, output_tokens: 0 }, BUILT_IN_PRICES)).toBe(0);
    expect(iterationCost({}, BUILT_IN_PRICES)).toBe(0);
  });
});
