/**
 * valibot's object and record schemas take arrays (`typeof [] === 'object'`). Every file that is
 * an object must refuse an array where the object is expected, at the top level and nested, instead
 * of reading it as an empty (valid) object or as a record keyed "0", "1", ….
 */
import { describe, expect, it } from 'vitest';
import { countAgents, readAgents } from '../../src/schemas/agents.js';
import { readAutonomyState } from '../../src/schemas/autonomy-state.js';
import { readBudget, readBudgetSignal } from '../../src/schemas/budget.js';
import { readCompletion } from '../../src/schemas/completion.js';
import { readCurrentTask } from '../../src/schemas/current-task.js';
import { readDashboardState } from '../../src/schemas/dashboard-state.js';
import { readEfficiencyFile } from '../../src/schemas/efficiency.js';
import { readEventLine } from '../../src/schemas/event-line.js';
import { readOrchestrator } from '../../src/schemas/orchestrator.js';
import type { ParseResult } from '../../src/schemas/parse.js';
import { readPidEntry } from '../../src/schemas/pid-entry.js';
import { readPricing } from '../../src/schemas/pricing.js';
import { readProof } from '../../src/schemas/proof.js';
import { parseWebConfig } from '../../src/schemas/web-config.js';

const bytes = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));
const NOT_AN_ARRAY = 'Invalid type: Expected Object, not an Array';
const problemOf = (result: ParseResult<unknown>) => (result.ok ? 'accepted' : result.problem);

const OBJECT_FILES: [string, (bytes: Uint8Array) => ParseResult<unknown>][] = [
  ['dashboard-state.json', readDashboardState],
  ['state/orchestrator.json', readOrchestrator],
  ['queue/current-task.json', readCurrentTask],
  ['pricing.json', readPricing],
  ['metrics/budget.json', readBudget],
  ['signals/BUDGET_EXCEEDED', readBudgetSignal],
  ['autonomy-state.json', readAutonomyState],
  ['state/completion.json', readCompletion],
  ['metrics/efficiency/iteration-N.json', readEfficiencyFile],
  ['proofs/<run>/proof.json', readProof],
  ['pids/<pid>.json', readPidEntry],
];

describe('object-shaped files refuse arrays', () => {
  it.each(OBJECT_FILES)('%s: a top-level array is invalid, named as such', (_name, read) => {
    expect(problemOf(read(bytes([])))).toBe(NOT_AN_ARRAY);
    // Even an array whose entries look like the object's fields.
    expect(problemOf(read(bytes([{ pid: 5, outcome: 'done', iteration: 1 }])))).toBe(NOT_AN_ARRAY);
    // An object is still read (the contrast that makes the above meaningful).
    expect(read(bytes({ pid: 5, outcome: 'done' })).ok).toBe(true);
  });

  it('names the nested field that is an array instead of an object', () => {
    expect(problemOf(readDashboardState(bytes({ tasks: [] })))).toBe(`tasks: ${NOT_AN_ARRAY}`);
    expect(problemOf(readProof(bytes({ honesty: ['PASS'] })))).toBe(`honesty: ${NOT_AN_ARRAY}`);
    expect(problemOf(readProof(bytes({ verification: [] })))).toBe(`verification: ${NOT_AN_ARRAY}`);
    expect(problemOf(readPricing(bytes({ models: [{ input: 3 }] })))).toBe(`models: ${NOT_AN_ARRAY}`);
    expect(problemOf(readPricing(bytes({ models: { m: [3, 15] } })))).toBe(`models.m: ${NOT_AN_ARRAY}`);
    expect(problemOf(readEventLine('{"type":"iteration_start","data":[4]}'))).toBe(`data: ${NOT_AN_ARRAY}`);
    expect(problemOf(readEventLine('[{"type":"iteration_start"}]'))).toBe(NOT_AN_ARRAY);
  });

  it('agents.json: array entries are not agents, neither in a list nor under "agents"', () => {
    const list = readAgents(bytes([[1], [2], ['tool_id', 'a'], { tool_id: 'b', status: 'active' }]));
    expect(list.ok && countAgents(list.value)).toEqual({ active: 1, total: 1 });
    const wrapped = readAgents(bytes({ agents: [[1], [2]] }));
    expect(wrapped.ok && countAgents(wrapped.value)).toEqual({ active: 0, total: 0 });
  });

  it('web config: a section or map given as a YAML list is refused, naming it', () => {
    const problem = (yaml: string) => {
      try {
        parseWebConfig(yaml);
        return 'accepted';
      } catch (error) {
        return (error as Error).message;
      }
    };
    expect(problem('tls_server_config: []\n')).toBe(`tls_server_config: ${NOT_AN_ARRAY}`);
    expect(problem('http_server_config: [1]\n')).toBe(`http_server_config: ${NOT_AN_ARRAY}`);
    expect(problem('http_server_config:\n  headers: []\n')).toBe(`http_server_config.headers: ${NOT_AN_ARRAY}`);
    expect(problem('basic_auth_users: []\n')).toBe(`basic_auth_users: ${NOT_AN_ARRAY}`);
  });
});
