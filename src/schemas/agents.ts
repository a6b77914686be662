import * as v from 'valibot';
import { jsonObject, parseJsonFile } from './parse.js';

/**
 * `state/agents.json`: a list written in place by two writers (the status monitor resets it to
 * `[]` every ~2 s; the Claude stream parser rewrites it on every tool call). Some writers wrap it as
 * `{"agents": [...]}`. Entries are free-form; non-object entries (arrays too) are not agents and are dropped.
 */
const AgentSchema = jsonObject(
  v.looseObject({
    tool_id: v.optional(v.unknown()),
    id: v.optional(v.unknown()),
    agent_id: v.optional(v.unknown()),
    status: v.optional(v.unknown()),
  }),
);
export type Agent = v.InferOutput<typeof AgentSchema>;

const entries = v.pipe(
  v.array(v.unknown()),
  v.transform((list) => list.filter((item): item is Agent => v.is(AgentSchema, item))),
);

export const AgentsSchema = v.union(
  [entries, v.pipe(jsonObject(v.looseObject({ agents: entries })), v.transform((o) => o.agents))],
  'Expected a list of agents or {"agents": [...]}',
);

export const readAgents = (bytes: Uint8Array) => parseJsonFile(AgentsSchema, bytes);

/** Statuses that mean "working now", compared case-insensitively ("Active" is active). */
const ACTIVE = new Set(['active', 'running', 'busy', 'working']);

/** Active and total agents; agents are keyed by `tool_id` (agent_id repeats), then id/agent_id. */
export function countAgents(list: readonly Agent[]): { active: number; total: number } {
  const byKey = new Map<string, boolean>();
  list.forEach((agent, index) => {
    const key = [agent.tool_id, agent.id, agent.agent_id].find((k) => typeof k === 'string' && k !== '');
    const isActive = typeof agent.status === 'string' && ACTIVE.has(agent.status.trim().toLowerCase());
    byKey.set(typeof key === 'string' ? `k:${key}` : `i:${index}`, isActive);
  });
  let active = 0;
  for (const isActive of byKey.values()) if (isActive) active += 1;
  return { active, total: byKey.size };
}
