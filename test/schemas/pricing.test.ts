import { describe, expect, it } from 'vitest';
import { readPricing } from '../../src/schemas/pricing.js';

const bytes = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));
const modelsOf = (models: unknown) => {
  const result = readPricing(bytes({ models }));
  if (!result.ok) throw new Error(result.problem);
  return result.value.models;
};

describe('readPricing', () => {
  it('reads `cache_creation` as `cache_write`, only when `cache_write` is not given', () => {
    expect(modelsOf({ opus: { input: 15, output: 75, cache_creation: 18.75 } })).toStrictEqual({ opus: { input: 15, output: 75, cache_write: 18.75 } });
    expect(modelsOf({ opus: { cache_write: 20, cache_creation: 18.75 } })).toStrictEqual({ opus: { cache_write: 20 } });
    expect(modelsOf({ opus: { cache_write: 20 } })).toStrictEqual({ opus: { cache_write: 20 } });
    // Neither: no cache_write key at all (a model without cache prices).
    expect(modelsOf({ opus: { input: 3, cache_read: 0.3 } })).toStrictEqual({ opus: { input: 3, cache_read: 0.3 } });
  });

  it('takes prices as numbers or numeric strings, and no models at all', () => {
    expect(modelsOf({ sonnet: { input: '3', output: '15.0' } })).toStrictEqual({ sonnet: { input: 3, output: 15 } });
    expect(modelsOf(null)).toBeNull();
    expect(readPricing(bytes({}))).toEqual({ ok: true, value: {} });
    expect(readPricing(bytes({ models: { m: { input: -1 } } }))).toEqual({ ok: false, problem: 'models.m.input: Invalid value: Expected >=0' });
  });
});
