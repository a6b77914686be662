/**
 * `serve --demo`: a simulated Loki Mode session written into a fresh temporary directory (never the
 * user's `.loki`), shaped like run.sh's real files, so a newcomer sees live, changing numbers
 * without Loki Mode installed. The tree is removed on stop.
 */
import { appendFile, mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface DemoSession {
  /** The simulated `.loki` directory. */
  readonly dir: string;
  /** Advance the simulation by one step (done every `stepMs` by itself). */
  step(): Promise<void>;
  stop(): Promise<void>;
}

const MODELS = ['sonnet', 'opus', 'haiku'] as const;
const HEADLINES = ['VERIFIED', 'VERIFIED WITH GAPS', 'NOT VERIFIED'] as const;

export async function startDemo(options: { stepMs?: number } = {}): Promise<DemoSession> {
  const root = await mkdtemp(join(tmpdir(), 'loki-metrics-demo-'));
  const dir = join(root, '.loki');
  for (const sub of ['state', 'queue', 'metrics/efficiency', 'pids', 'proofs']) await mkdir(join(dir, sub), { recursive: true });

  const startedAt = new Date();
  let tick = 0;
  let iteration = 0;
  const done: string[] = [];
  const failed: string[] = [];

  const event = (type: string, data: Record<string, string | number>) =>
    appendFile(join(dir, 'events.jsonl'), JSON.stringify({ timestamp: new Date().toISOString(), type, data }) + '\n');

  // Whole-file writes go through a temp file + rename, as run.sh does for dashboard-state.json.
  const writeJson = async (path: string, value: unknown) => {
    const target = join(dir, path);
    await writeFile(`${target}.tmp`, JSON.stringify(value, null, 2));
    await rename(`${target}.tmp`, target);
  };

  await writeFile(join(dir, 'loki.pid'), `${process.pid}\n`);
  // 9.x's process registry: this process plays the runner wrapper.
  await writeJson(`pids/${process.pid}.json`, { pid: process.pid, label: 'loki-wrapper', started: startedAt.toISOString().replace(/\.\d+Z$/, 'Z'), ppid: process.ppid, kind: 'wrapper' });
  await event('session_start', { provider: 'claude', mode: 'autonomous', pid: process.pid });

  async function step(): Promise<void> {
    tick++;
    // A new iteration every fifth step; each finished one leaves an efficiency file.
    if (tick % 5 === 1) {
      if (iteration > 0) {
        const model = MODELS[iteration % MODELS.length] as string;
        const failedNow = iteration % 7 === 0;
        // 9.x's fields: cache tokens, status, duration_ms, cost_usd 0 when nothing was measured
        await writeJson(`metrics/efficiency/iteration-${iteration}.json`, {
          iteration,
          model,
          phase: 'DEVELOPMENT',
          duration_ms: (40 + iteration) * 1000,
          provider: 'claude',
          status: failedNow ? 'failed' : 'completed',
          input_tokens: 20_000 + 1_500 * iteration,
          output_tokens: 4_000 + 300 * iteration,
          cache_read_tokens: 60_000 + 5_000 * iteration,
          cache_creation_tokens: 8_000,
          cost_usd: 0,
        });
        (failedNow ? failed : done).push(`iteration-${iteration}`);
        // every third iteration, a receipt of an earlier run appears (9.20+)
        if (iteration % 3 === 0) {
          const run = `run-demo-${iteration}`;
          await mkdir(join(dir, 'proofs', run), { recursive: true });
          await writeJson(`proofs/${run}/proof.json`, {
            schema_version: '1.1',
            run_id: run,
            honesty: { headline: HEADLINES[(iteration / 3) % HEADLINES.length] },
            verification: { algo: 'sha256', scope: 'integrity', ...(iteration % 2 === 0 ? { attestation: { kid: 'demo' } } : {}) },
          });
        }
      }
      iteration++;
      await event('iteration_start', { iteration, provider: 'claude' });
    }
    await event('tool_use', { tool: ['Read', 'Edit', 'Bash'][tick % 3] as string, iteration });
    const agents = Array.from({ length: 1 + (tick % 4) }, (_, i) => ({
      agent_id: `agent-${i}`,
      tool_id: `toolu_${tick}_${i}`,
      status: i < 1 + (tick % 3) ? 'active' : 'idle',
    }));
    await writeJson('state/agents.json', agents);
    const pending = Array.from({ length: Math.max(0, 6 - (tick % 7)) }, (_, i) => ({ id: `task-${tick}-${i}` }));
    await writeJson('dashboard-state.json', {
      timestamp: new Date().toISOString(),
      startedAt: startedAt.toISOString(),
      mode: 'autonomous',
      phase: 'DEVELOPMENT',
      iteration: 0, // frozen at 0 by the real writer too; the exporter reads events instead
      tasks: {
        pending,
        inProgress: [{ id: `iteration-${iteration}` }],
        completed: done.map((id) => ({ id })),
        failed: failed.map((id) => ({ id })),
      },
      agents: [],
    });
  }

  await step();
  const timer = setInterval(() => void step().catch(() => undefined), options.stepMs ?? 2000);
  timer.unref();

  return {
    dir,
    step,
    async stop() {
      clearInterval(timer);
      await rm(root, { recursive: true, force: true });
    },
  };
}
