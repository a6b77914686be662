import { describe, expect, it } from 'vitest';
import { ANSI_PAINT, formatDuration, formatScrapeTable, formatUsd, parseExposition } from '../../src/cli/report.js';

describe('parseExposition', () => {
  it('reads samples with escaped labels and special values, skipping comments', () => {
    const text = '# HELP a x\n# TYPE a gauge\na 1\nb{x="q\\"\\\\\\n",y="2"} NaN\nc +Inf\n# EOF\n';
    expect(parseExposition(text)).toEqual([
      { name: 'a', labels: {}, value: 1 },
      { name: 'b', labels: { x: 'q"\\\n', y: '2' }, value: Number.NaN },
      { name: 'c', labels: {}, value: Infinity },
    ]);
  });
});

describe('formatting', () => {
  it('spells durations and money for people', () => {
    expect(formatDuration(0)).toBe('0s');
    expect(formatDuration(42.9)).toBe('42s');
    expect(formatDuration(125)).toBe('2m 5s');
    expect(formatDuration(3723.4)).toBe('1h 2m 3s');
    expect(formatUsd(3.5313)).toBe('$3.53');
    expect(formatUsd(1234.5)).toBe('$1,234.50');
    expect(formatUsd(0.0042)).toBe('$0.0042');
  });

  it('prints status words, and colours them only when given a paint', () => {
    const samples = parseExposition('loki_session_status 2\nloki_up 1\nloki_source_ok{source="loki.pid"} 0\n');
    const plain = formatScrapeTable(samples);
    expect(plain).toMatch(/Session\s+paused/);
    expect(plain).toMatch(/Sources\s+problems: loki\.pid/);
    expect(plain).not.toContain('\x1b[');
    expect(formatScrapeTable(samples, ANSI_PAINT)).toContain('\x1b[33mpaused\x1b[0m');
  });
});
