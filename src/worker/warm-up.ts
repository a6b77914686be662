/**
 * Startup warm-up: one scrape of a small synthetic session through a throwaway app over memory, run
 * when the Worker's module loads. V8 compiles a function the first time it runs; done here, that
 * work falls in the isolate's startup (Cloudflare's startup limit, 1 s) instead of the first real
 * request's CPU time (10 ms on the Free plan). Nothing here touches a binding.
 */
import { parseConfig } from '../config.js';
import { receiptContribution } from '../receipts.js';
import { createRemoteApp } from '../remote-app.js';
import { readEfficiencyFile } from '../schemas/efficiency.js';
import { readProof } from '../schemas/proof.js';
import { MemoryObjectStore } from '../stores/memory.js';
import { FILE_SET_NAMES } from '../stores/store.js';
import { applyRecord, beatKey, docKey, docObject, emptyHead, emptySetHead, FORMAT, headKey, type Beat } from '../sync/shards.js';
import { efficiencyContribution } from '../usage-totals.js';
import { bytesToBase64, sha256Hex } from '../sync/protocol.js';

const SESSION = 'warm-up';
const HASH = 'a'.repeat(64);
const encode = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));

/** A session as format 3 stores it: documents (one large), an efficiency file, a receipt. */
function syntheticSession(nowMs: number): MemoryObjectStore {
  const store = new MemoryObjectStore();
  const head = emptyHead(false);
  // Only what the rules read: the task lists (their lengths, and the ids for the iteration); over
  // INLINE_DOC_BYTES, so it is stored as a large document.
  const task = (id: string) => ({ id });
  const dashboard = encode({ iteration: 0, tasks: { pending: [task('task-2')], inProgress: [task('iteration-1')], completed: Array.from({ length: 64 }, (_, i) => task(`iteration-${i}`)), failed: [] } });
  head.docs['dashboard-state.json'] = { h: HASH, m: nowMs, g: HASH };
  store.set(docKey(SESSION, HASH), docObject(HASH, dashboard, ''));
  head.docs['loki.pid'] = { h: HASH, m: nowMs, g: HASH, t: '4242' };
  head.docs['state/agents.json'] = { h: HASH, m: nowMs, g: HASH, t: '[{"id":"a","status":"active","type":"worker"}]' };
  head.docs['pricing.json'] = { h: HASH, m: nowMs, g: HASH, t: '{"models":{"sonnet":{"input":3,"output":15}}}' };
  const record = readEfficiencyFile(encode({ iteration: 1, model: 'claude-sonnet-4', input_tokens: 1000, output_tokens: 200, cache_read_tokens: 10, status: 'completed', duration_ms: 61_000 }));
  const proof = readProof(encode({ honesty: { headline: 'VERIFIED' }, verification: { attestation: { sig: 'x' } } }));
  for (const set of FILE_SET_NAMES) head.sets[set] = { ...emptySetHead(nowMs), present: true, buckets: '1' };
  if (record.ok) applyRecord('efficiency', head.sets.efficiency!, 'iteration-1.json', { h: HASH, m: nowMs, c: efficiencyContribution('iteration-1.json', record.value) }, 1);
  if (proof.ok) applyRecord('proofs', head.sets.proofs!, 'run-1', { h: HASH, m: nowMs, c: receiptContribution(proof.value) }, 1);
  applyRecord('pids', head.sets.pids!, '4242.json', { h: HASH, m: nowMs, p: 'warm-up: a bad entry' }, 1);
  store.set(headKey(SESSION), JSON.stringify(head));
  const beat: Beat = {
    format: FORMAT,
    syncedAtMs: nowMs,
    rev: head.rev,
    available: true,
    pid: 4242,
    pidAlive: true,
    runner: { decided: true, alive: true, pid: 4242, startedMs: nowMs - 60_000 },
    events: { present: true, lines: 10, mtimeMs: nowMs, sessionStartMs: nowMs - 60_000, iteration: 1, sessionPid: 4242 },
  };
  store.set(beatKey(SESSION), JSON.stringify(beat));
  return store;
}

const SCRAPE = 'warm-up-scrape-token-0123456789';
const SYNC = 'warm-up-sync-token-0123456789';

/**
 * Scrapes the synthetic session in each format, then syncs a change to it and scrapes again, with
 * tokens as a deployment has them. Never throws: a warm-up only saves time.
 */
export async function warmUp(nowMs = Date.now()): Promise<void> {
  try {
    const config = parseConfig({ LOKI_BUDGET_LIMIT: '10', LOKI_METRICS_TOKEN: SCRAPE, LOKI_SYNC_TOKEN: SYNC, LOKI_METRICS_CACHE_SECONDS: '0' });
    const app = createRemoteApp({ bucket: syntheticSession(nowMs), config, clock: () => nowMs, log: () => undefined });
    // Without an Accept header, the text format; with this one, OpenMetrics.
    const scrape = async (accept?: string) =>
      (await app.request(`/metrics?session=${SESSION}`, { headers: { ...(accept ? { Accept: accept } : {}), Authorization: `Bearer ${SCRAPE}` } })).text();
    await scrape();
    await scrape('application/openmetrics-text; version=1.0.0');
    const sync = { Authorization: `Bearer ${SYNC}` };
    await (await app.request(`/ingest/manifest?session=${SESSION}&layout=3`, { headers: sync })).text();
    const bytes = encode({ iteration: 2, model: 'claude-sonnet-4', input_tokens: 10, status: 'failed', duration_ms: 5 });
    const file = { mtimeMs: nowMs, hash: await sha256Hex(bytes), b64: bytesToBase64(bytes) };
    const payload = {
      available: true,
      pid: 4242,
      pidAlive: true,
      runner: { decided: true, alive: true, pid: 4242 },
      documents: { 'metrics/budget.json': { ...file, b64: bytesToBase64(encode({ limit: 10 })), hash: await sha256Hex(encode({ limit: 10 })) } },
      sets: { efficiency: { present: true, upsert: { 'iteration-2.json': file }, remove: [] } },
      events: { present: true, lines: 11 },
    };
    await (await app.request(`/ingest?session=${SESSION}&layout=3`, { method: 'POST', headers: sync, body: JSON.stringify(payload) })).text();
    await scrape();
  } catch {
    // a platform that refuses something at startup: the first request simply does the compiling
  }
}
