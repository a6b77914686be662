/**
 * Receipt counting: the headline verdict of a 1.1 receipt (exact upstream strings), provenance by
 * Python truthiness, and every bucket always present so each series exists from the first scrape.
 */
import { describe, expect, it } from 'vitest';
import { applyReceipt, countReceipts, emptyReceiptCounts, PROVENANCE_KINDS, RECEIPT_VERDICTS, receiptVerdict, truthy } from '../src/receipts.js';
import { readProof, type Proof } from '../src/schemas/proof.js';

const headline = (text: string | null | undefined): Proof => ({ honesty: { headline: text } });

/** Parses receipt JSON the way the collector does, so the tests use shapes the schema accepts. */
function proof(json: unknown): Proof {
  const parsed = readProof(new TextEncoder().encode(JSON.stringify(json)));
  if (!parsed.ok) throw new Error(`fixture rejected: ${parsed.problem}`);
  return parsed.value;
}

describe('receiptVerdict', () => {
  it.each([
    ['VERIFIED', 'verified'],
    ['VERIFIED WITH GAPS', 'with_gaps'],
    ['NOT VERIFIED', 'not_verified'],
  ] as const)('maps the headline %j to %s', (text, verdict) => {
    expect(receiptVerdict(headline(text))).toBe(verdict);
  });

  it.each([
    'verified', // exact strings only: not case-folded
    ' VERIFIED',
    'VERIFIED ',
    'VERIFIED_WITH_GAPS',
    'PARTIALLY VERIFIED',
    '',
  ])('maps any other headline (%j) to unknown', (text) => {
    expect(receiptVerdict(headline(text))).toBe('unknown');
  });

  it('maps a missing or null headline, a null honesty block and a 1.0 receipt (no honesty block) to unknown', () => {
    expect(receiptVerdict(headline(null))).toBe('unknown');
    expect(receiptVerdict(headline(undefined))).toBe('unknown');
    expect(receiptVerdict(proof({ honesty: {} }))).toBe('unknown');
    expect(receiptVerdict(proof({ honesty: null }))).toBe('unknown');
    expect(receiptVerdict(proof({ schema_version: '1.0', run_id: 'r1', verification: { attestation: { ok: true } } }))).toBe('unknown');
    expect(receiptVerdict(proof({}))).toBe('unknown');
  });

  // A headline that happens to name a property every object inherits is still "anything else".
  it.each(['constructor', 'toString', '__proto__', 'hasOwnProperty'])('maps the headline %j to unknown', (text) => {
    const verdict = receiptVerdict(headline(text));
    expect(RECEIPT_VERDICTS).toContain(verdict);
    expect(verdict).toBe('unknown');
  });
});

describe('truthy (Python truthiness)', () => {
  it.each([null, undefined, false, 0, -0, '', [], {}])('%j is false', (value) => {
    expect(truthy(value)).toBe(false);
  });

  it.each([true, 1, -1, 0.5, 'x', '0', 'false', ' ', [0], [null], { a: null }, { sig: '' }])('%j is true', (value) => {
    expect(truthy(value)).toBe(true);
  });
});

describe('countReceipts', () => {
  it('reports all four verdicts and both provenance kinds at zero when there is nothing', () => {
    const counts = countReceipts([]);
    expect(counts.total).toBe(0);
    expect(Object.keys(counts.byVerdict).sort()).toEqual([...RECEIPT_VERDICTS].sort());
    expect(Object.keys(counts.withProvenance).sort()).toEqual([...PROVENANCE_KINDS].sort());
    for (const verdict of RECEIPT_VERDICTS) expect(counts.byVerdict[verdict]).toBe(0);
    for (const kind of PROVENANCE_KINDS) expect(counts.withProvenance[kind]).toBe(0);
  });

  it('keeps the buckets that received nothing at zero', () => {
    const counts = countReceipts([headline('VERIFIED'), headline('VERIFIED')]);
    expect(counts).toEqual({
      total: 2,
      byVerdict: { verified: 2, with_gaps: 0, not_verified: 0, unknown: 0 },
      withProvenance: { attestation: 0, gpg: 0 },
    });
  });

  it('counts every receipt once by verdict, and provenance independently of the verdict', () => {
    const receipts = [
      // 1.1, verified, both kinds of provenance
      proof({ honesty: { headline: 'VERIFIED' }, verification: { attestation: { digest: 'sha256:ab' }, gpg_signature: '-----BEGIN PGP' } }),
      // 1.1, with gaps, attestation only (gpg present but empty: falsy)
      proof({ honesty: { headline: 'VERIFIED WITH GAPS' }, verification: { attestation: ['stmt'], gpg_signature: '' } }),
      // 1.1, not verified, gpg only (attestation an empty object: falsy)
      proof({ honesty: { headline: 'NOT VERIFIED' }, verification: { attestation: {}, gpg_signature: 'sig' } }),
      // 1.0: no honesty block, but signed
      proof({ verification: { gpg_signature: 'sig' } }),
      // nothing at all
      proof({}),
      // an unknown headline, falsy provenance of every kind
      proof({ honesty: { headline: 'MAYBE' }, verification: { attestation: null, gpg_signature: false } }),
      proof({ honesty: { headline: 'VERIFIED' }, verification: null }),
      proof({ honesty: { headline: 'VERIFIED' }, verification: { attestation: 0, gpg_signature: [] } }),
    ];
    const counts = countReceipts(receipts);
    expect(counts.total).toBe(receipts.length);
    expect(counts.byVerdict).toEqual({ verified: 3, with_gaps: 1, not_verified: 1, unknown: 3 });
    expect(counts.withProvenance).toEqual({ attestation: 2, gpg: 3 });
    // Every receipt lands in exactly one verdict bucket.
    expect(RECEIPT_VERDICTS.reduce((sum, v) => sum + counts.byVerdict[v], 0)).toBe(counts.total);
  });

  // Same cause as the receiptVerdict case above: the receipt is counted in `total` but in no bucket.
  it('counts a receipt whose headline names an inherited property as unknown', () => {
    const counts = countReceipts([headline('constructor'), headline('VERIFIED')]);
    expect(counts.byVerdict).toEqual({ verified: 1, with_gaps: 0, not_verified: 0, unknown: 1 });
  });

  it('accepts any iterable, consumed once', () => {
    function* receipts() {
      yield headline('NOT VERIFIED');
      yield headline('NOT VERIFIED');
      yield headline(null);
    }
    const counts = countReceipts(receipts());
    expect(counts.total).toBe(3);
    expect(counts.byVerdict).toEqual({ verified: 0, with_gaps: 0, not_verified: 2, unknown: 1 });
  });
});

describe('what a parsed receipt keeps (issue 19, item 7: parsed values, not bytes)', () => {
  it('only the headline and whether each kind of provenance is there; other fields and the provenance itself are dropped', () => {
    const big = 'x'.repeat(200_000);
    const parsed = proof({
      schema_version: '1.1',
      run_id: 'r1',
      transcript: big,
      honesty: { headline: 'VERIFIED', details: big },
      verification: { attestation: { statement: big }, gpg_signature: '', extra: big },
    });
    expect(parsed).toEqual({ honesty: { headline: 'VERIFIED' }, verification: { attestation: true, gpg_signature: false } });
    expect(JSON.stringify(parsed).length).toBeLessThan(200);
    expect(proof({})).toEqual({});
    expect(proof({ honesty: null, verification: null })).toEqual({ honesty: null, verification: null });
    // The counts are those of the whole receipt.
    expect(countReceipts([parsed]).withProvenance).toEqual({ attestation: 1, gpg: 0 });
  });
});

describe('applyReceipt: a stored contribution (the Worker keeps one per receipt)', () => {
  // Storage is read back as it is (sync/shards.ts checks a record's contribution no further): a
  // verdict index this version does not know still lands in a bucket, the unknown one.
  it('counts a verdict index it does not know as unknown, and takes it out of unknown again', () => {
    const counts = emptyReceiptCounts();
    applyReceipt(counts, { v: RECEIPT_VERDICTS.length, a: 1, g: 0 }, 1);
    applyReceipt(counts, { v: 0, a: 0, g: 1 }, 1);
    expect(counts).toStrictEqual({ total: 2, byVerdict: { verified: 1, with_gaps: 0, not_verified: 0, unknown: 1 }, withProvenance: { attestation: 1, gpg: 1 } });
    applyReceipt(counts, { v: 99, a: 1, g: 0 }, -1);
    expect(counts).toStrictEqual({ total: 1, byVerdict: { verified: 1, with_gaps: 0, not_verified: 0, unknown: 0 }, withProvenance: { attestation: 0, gpg: 1 } });
  });
});
