/**
 * usageFromTotals (src/usage.ts): the order in which models get their bounded labels when the totals
 * were kept up to date as files came and went (the Worker's way, usage-totals.ts), where two model
 * entries can name the same first file.
 */
import { describe, expect, it } from 'vitest';
import { BUILT_IN_PRICES } from '../src/pricing.js';
import type { EfficiencyRecord } from '../src/schemas/efficiency.js';
import { MAX_MODEL_IDS, ModelLabeler, usageFromTotals, type Usage } from '../src/usage.js';
import { applyEfficiency, efficiencyContribution, emptyUsageTotals } from '../src/usage-totals.js';

const model = (usage: Usage, family: string, id: string) => usage.models.find((m) => m.family === family && m.model === id);

describe('usageFromTotals: a file rewritten with another model', () => {
  it('labels the model that was there first before the one that replaced it in the same file', () => {
    const totals = emptyUsageTotals();
    const add = (name: string, record: EfficiencyRecord, sign: 1 | -1 = 1) => applyEfficiency(totals, name, efficiencyContribution(name, record), sign);
    add('iteration-1.json', { model: 'claude-sonnet-4-5', input_tokens: 1 });
    add('iteration-2.json', { model: 'claude-opus-a', input_tokens: 2 });
    // iteration-2.json rewritten: its old contribution out, the new one in. claude-opus-a keeps its
    // entry (at 0), first seen in iteration-2.json; claude-opus-b's entry is first seen there too.
    add('iteration-2.json', { model: 'claude-opus-a', input_tokens: 2 }, -1);
    add('iteration-2.json', { model: 'claude-opus-b', input_tokens: 5 });
    expect(totals.models.map((m) => [m.key, m.first, m.firstName, m.n])).toEqual([
      ['claude-sonnet-4-5', 1, 'iteration-1.json', 1],
      ['claude-opus-a', 2, 'iteration-2.json', 0],
      ['claude-opus-b', 2, 'iteration-2.json', 1],
    ]);

    // All label slots but two taken earlier: sonnet gets one, and a and b compete for the last.
    const labeler = new ModelLabeler();
    for (let i = 0; i < MAX_MODEL_IDS - 2; i++) labeler.label(`gpt-filler-${i}`);
    const usage = usageFromTotals(totals, BUILT_IN_PRICES, labeler);
    expect(model(usage, 'sonnet', 'claude-sonnet-4-5')?.tokens.input).toBe(1);
    // The id seen first keeps the slot (at 0, as it would in an exporter that saw it come and go).
    expect(model(usage, 'opus', 'claude-opus-a')?.tokens.input).toBe(0);
    expect(model(usage, 'opus', 'claude-opus-b')).toBeUndefined();
    expect(model(usage, 'opus', 'other')?.tokens.input).toBe(5);
  });
});
