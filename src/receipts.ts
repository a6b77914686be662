/**
 * Receipts (`proofs/<run_id>/proof.json`), counted name-for-name as upstream Loki Mode 9.22's own
 * `/metrics` counts them, so its dashboards and alerts work unchanged against this exporter.
 */
import type { Proof } from './schemas/proof.js';

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

/** Python's truthiness (upstream's rule): null, false, 0, "", [] and {} are false. */
export function truthy(value: unknown): boolean {
  if (value === null || value === undefined || value === false || value === 0 || value === '') return false;
  // Arrays too: a JSON array's keys are its indices.
  if (typeof value === 'object') return Object.keys(value).length > 0;
  return !Number.isNaN(value);
}

export function countReceipts(proofs: Iterable<Proof>): ReceiptCounts {
  const byVerdict: Record<ReceiptVerdict, number> = { verified: 0, with_gaps: 0, not_verified: 0, unknown: 0 };
  const withProvenance: Record<ProvenanceKind, number> = { attestation: 0, gpg: 0 };
  let total = 0;
  for (const proof of proofs) {
    total++;
    byVerdict[receiptVerdict(proof)]++;
    if (truthy(proof.verification?.attestation)) withProvenance.attestation++;
    if (truthy(proof.verification?.gpg_signature)) withProvenance.gpg++;
  }
  return { total, byVerdict, withProvenance };
}
