import { describe, expect, it } from 'vitest';
import { readPidFile } from '../src/schemas/pid.js';
import { SourceTracker } from '../src/source-tracker.js';
import { ABSENT, type FileRead } from '../src/stores/store.js';

const file = (text: string, version: string): FileRead => ({ present: true, bytes: new TextEncoder().encode(text), version, mtimeMs: 1 });

describe('SourceTracker', () => {
  it('parses only when the version changes', () => {
    let parses = 0;
    const tracker = new SourceTracker('loki.pid', (b) => (parses++, readPidFile(b)), () => undefined);
    tracker.update(file('12', 'v1'));
    tracker.update(file('12', 'v1'));
    expect(parses).toBe(1);
    expect(tracker.update(file('13', 'v2')).value).toBe(13);
    expect(parses).toBe(2);
  });

  it('serves the last good value while torn, logs once per change of state, and clears on deletion', () => {
    const logs: string[] = [];
    const tracker = new SourceTracker('loki.pid', readPidFile, (l) => logs.push(l));
    expect(tracker.update(file('12', 'v1'))).toMatchObject({ value: 12, status: { ok: true, present: true } });
    const torn = tracker.update(file('', 'v2'));
    expect(torn.value).toBe(12);
    expect(torn.status).toMatchObject({ ok: false, problem: expect.stringMatching(/empty file.*last good value/) });
    tracker.update(file('', 'v3'));
    expect(logs).toEqual(['loki-metrics: loki.pid: empty file (caught mid-write?)']);
    tracker.update(file('14', 'v4'));
    expect(logs[1]).toBe('loki-metrics: loki.pid: ok again');
    expect(tracker.update(ABSENT)).toEqual({ value: undefined, status: { source: 'loki.pid', ok: true, present: false } });
  });

  it('reports a read error from the store', () => {
    const tracker = new SourceTracker('loki.pid', readPidFile, () => undefined);
    expect(tracker.update({ present: true, error: 'permission denied', version: '' }).status).toMatchObject({ ok: false, problem: 'permission denied' });
  });
});
