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

  it('reports a read error from the store, even when some bytes came with it', () => {
    const tracker = new SourceTracker('loki.pid', readPidFile, () => undefined);
    expect(tracker.update({ present: true, error: 'permission denied', version: '' }).status).toMatchObject({ ok: false, problem: 'permission denied' });
    expect(tracker.next({ present: true, bytes: new TextEncoder().encode('12'), error: 'changed while read', version: 'v1' })).toEqual({
      value: undefined,
      problem: 'changed while read',
    });
  });

  it('re-parses every time when the store has no version, and again after a read error or a deletion', () => {
    let parses = 0;
    const tracker = new SourceTracker('loki.pid', (b) => (parses++, readPidFile(b)), () => undefined);
    tracker.update(file('12', ''));
    tracker.update(file('12', ''));
    expect(parses).toBe(2);
    tracker.update(file('12', 'v1'));
    expect(parses).toBe(3);
    tracker.update({ present: true, error: 'EIO', version: 'v1' });
    expect(tracker.update(file('12', 'v1')).value).toBe(12);
    expect(parses).toBe(4);
    tracker.update(ABSENT);
    tracker.update(file('12', 'v1'));
    expect(parses).toBe(5);
  });

  it('forgets the last good value on deletion, so a torn file afterwards serves nothing', () => {
    const tracker = new SourceTracker('loki.pid', readPidFile, () => undefined);
    tracker.update(file('12', 'v1'));
    expect(tracker.update(ABSENT).value).toBeUndefined();
    expect(tracker.update(file('', 'v2'))).toEqual({
      value: undefined,
      status: { source: 'loki.pid', ok: false, present: true, mtimeMs: 1, problem: 'empty file (caught mid-write?)' },
    });
  });

  it('reports a stale copy (the remote serving last good content) as bad, with its value', () => {
    const tracker = new SourceTracker('loki.pid', readPidFile, () => undefined);
    expect(tracker.next({ ...file('12', 'v1'), stale: 'not valid JSON' })).toEqual({ value: 12, problem: 'not valid JSON' });
    expect(tracker.next(file('12', 'v1'))).toStrictEqual({ value: 12 }); // no `problem` key when good
    expect(tracker.next(ABSENT)).toStrictEqual({ value: undefined });
  });

  it('calls a present file without bytes or error unreadable, and leaves mtime out when unknown', () => {
    const tracker = new SourceTracker('loki.pid', readPidFile, () => undefined);
    expect(tracker.update({ present: true, version: 'v1' }).status).toEqual({ source: 'loki.pid', ok: false, present: true, problem: 'unreadable' });
    const { mtimeMs: _mtime, ...noMtime } = file('7', 'v2');
    expect(tracker.update(noMtime).status).toStrictEqual({ source: 'loki.pid', ok: true, present: true });
  });

  it('escapes the source and the problem in log lines, and logs "ok again" when a bad file is deleted', () => {
    const logs: string[] = [];
    const tracker = new SourceTracker('pids/a\nb.json', () => ({ ok: false, problem: 'bad\nline' }), (l) => logs.push(l));
    tracker.update(file('x', 'v1'));
    tracker.update(ABSENT);
    tracker.update(ABSENT);
    expect(logs).toEqual(['loki-metrics: pids/a\\nb.json: bad\\nline', 'loki-metrics: pids/a\\nb.json: ok again']);
  });
});
