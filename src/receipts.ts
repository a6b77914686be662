/**
 * Receipts (`proofs/<run_id>/proof.json`), counted name-for-name as upstream Loki Mode 9.22's own
 * `/metrics` counts them, so its dashboards and alerts work unchanged against this exporter.
 */
import { truthy, type Proof } from './schemas/proof.js';

export const RECEIPT_VERDICTS = ['verified', 'with_gaps', 'not_verified', 'unknown'] as const;
export type ReceiptVerdict = (typeof RECEIPT_VERDICTS)[number];
export const PROVENANCE_KINDS = ['attestation', 'gpg'] as const;
export type ProvenanceKind = (typeof PROVENANCE_KINDS)[number];

export interface ReceiptCounts {
  readonly total: number;
  readonly byVerdict: Readonly<Record<ReceiptVerdict, number>>;
  readonly withProvenance: Readonly<Record<ProvenanceKind, number>>;
}

// A Map, not an object: a headline such as "constructor" must not find an inherited property.
const HEADLINES: ReadonlyMap<string, ReceiptVerdict> = new Map([
  ['VERIFIED', 'verified'],
  ['VERIFIED WITH GAPS', 'with_gaps'],
  ['NOT VERIFIED', 'not_verified'],
]);

export function receiptVerdict(proof: Proof): ReceiptVerdict {
  const headline = proof.honesty?.headline;
  return (typeof headline === 'string' && HEADLINES.get(headline)) || 'unknown';
}

// The provenance rule lives with the schema, which keeps only its answer per receipt.
export { truthy };

export function countReceipts(proofs: Iterable<Proof>): ReceiptCounts {
  const counts = emptyReceiptCounts();
  for (const proof of proofs) applyReceipt(counts, receiptContribution(proof), 1);
  return counts;
}

/** One receipt's share of the counts (stored per receipt by the Worker: short keys). */
export interface ReceiptContribution {
  /** Index of its verdict in RECEIPT_VERDICTS. */
  readonly v: number;
  /** 1 when it carries that kind of provenance. */
  readonly a: 0 | 1;
  readonly g: 0 | 1;
}

export function receiptContribution(proof: Proof): ReceiptContribution {
  return {
    v: RECEIPT_VERDICTS.indexOf(receiptVerdict(proof)),
    a: truthy(proof.verification?.attestation) ? 1 : 0,
    g: truthy(proof.verification?.gpg_signature) ? 1 : 0,
  };
}

export function emptyReceiptCounts(): { total: number; byVerdict: Record<ReceiptVerdict, number>; withProvenance: Record<ProvenanceKind, number> } {
  return { total: 0, byVerdict: { verified: 0, with_gaps: 0, not_verified: 0, unknown: 0 }, withProvenance: { attestation: 0, gpg: 0 } };
}

/** Adds (`sign` 1) or takes out (-1) one receipt. */
export function applyReceipt(counts: ReturnType<typeof emptyReceiptCounts>, c: ReceiptContribution, sign: 1 | -1): void {
  counts.total += sign;
  counts.byVerdict[RECEIPT_VERDICTS[c.v] ?? 'unknown'] += sign;
  counts.withProvenance.attestation += sign * c.a;
  counts.withProvenance.gpg += sign * c.g;
}
