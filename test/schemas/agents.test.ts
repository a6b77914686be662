import { describe, expect, it } from 'vitest';
import { countAgents, readAgents } from '../../src/schemas/agents.js';

const bytes = (value: unknown) => new TextEncoder().encode(typeof value === 'string' ? value : JSON.stringify(value));

describe('readAgents / countAgents', () => {
  it('keys agents by tool_id, so a repeated agent_id is not double counted, and matches status case-insensitively', () => {
    const result = readAgents(
      bytes([
        { agent_id: 'agent-toolu_01', tool_id: 'toolu_A', status: 'active' },
        { agent_id: 'agent-toolu_01', tool_id: 'toolu_B', status: 'Active' },
        { agent_id: 'agent-toolu_01', tool_id: 'toolu_B', status: 'Active' },
        { agent_id: 'x', status: 'idle' },
        'not an agent',
        42,
      ]),
    );
    expect(result.ok).toBe(true);
    if (result.ok) expect(countAgents(result.value)).toEqual({ active: 2, total: 3 });
  });

  it('falls back from an empty or non-text tool_id to id, then agent_id; agents without any key count once each', () => {
    const agents = [
      { tool_id: '', id: 'a', status: 'active' },
      { tool_id: 7, id: 'a', status: 'idle' }, // the same agent as above: the later entry wins
      { agent_id: 'b', status: 'busy' },
      { status: 'working' },
      { status: 'running' },
    ];
    expect(countAgents(agents)).toEqual({ active: 3, total: 4 });
  });

  it('accepts the {"agents": [...]} wrapping', () => {
    const result = readAgents(bytes({ agents: [{ id: 'a', status: 'running' }] }));
    expect(result.ok && countAgents(result.value)).toEqual({ active: 1, total: 1 });
  });

  it.each([
    ['', /empty file/],
    ['[{"agent_id": "a", "sta', /not valid JSON/],
    ['{"agents": 3}', /Expected a list of agents/],
    ['"agents"', /Expected a list of agents/],
  ])('rejects %j', (text, problem) => {
    const result = readAgents(bytes(text));
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.problem).toMatch(problem);
  });
});
