/**
 * Every schema module builds its schemas and tables while it is loaded. One that throws then must
 * fail a test, not only leave the test files that import it uncollected (a run with no test failed
 * reads as passing to Stryker): so each module is loaded here inside a test, by a dynamic import,
 * and used once.
 */
import { describe, expect, it } from 'vitest';

const utf8 = (text: string) => new TextEncoder().encode(text);

describe('the schema modules load', () => {
  it('parse.ts: decodes UTF-8 strictly', async () => {
    const { decodeText } = await import('../../src/schemas/parse.js');
    expect(decodeText(utf8('é'))).toEqual({ ok: true, value: 'é' });
    expect(decodeText(new Uint8Array([0xff]))).toEqual({ ok: false, problem: 'invalid UTF-8' });
  });

  it('web-config.ts: reads a web config with every kind of field', async () => {
    const { parseWebConfig } = await import('../../src/schemas/web-config.js');
    expect(parseWebConfig('tls_server_config:\n  cert_file: a.crt\n  key_file: a.key\n  curve_preferences: [X25519]\n').tls?.ecdhCurve).toBe('X25519');
  });

  const readers: [string, () => Promise<Record<string, unknown>>][] = [
    ['agents', () => import('../../src/schemas/agents.js')],
    ['autonomy-state', () => import('../../src/schemas/autonomy-state.js')],
    ['budget', () => import('../../src/schemas/budget.js')],
    ['completion', () => import('../../src/schemas/completion.js')],
    ['current-task', () => import('../../src/schemas/current-task.js')],
    ['dashboard-state', () => import('../../src/schemas/dashboard-state.js')],
    ['efficiency', () => import('../../src/schemas/efficiency.js')],
    ['event-line', () => import('../../src/schemas/event-line.js')],
    ['orchestrator', () => import('../../src/schemas/orchestrator.js')],
    ['pid-entry', () => import('../../src/schemas/pid-entry.js')],
    ['pid', () => import('../../src/schemas/pid.js')],
    ['pricing', () => import('../../src/schemas/pricing.js')],
    ['project-registry', () => import('../../src/schemas/project-registry.js')],
    ['proof', () => import('../../src/schemas/proof.js')],
  ];
  it.each(readers)('%s.ts', async (_name, load) => {
    const exports = await load();
    expect(Object.keys(exports).length).toBeGreaterThan(0);
  });
});
