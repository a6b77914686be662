import * as v from 'valibot';
import { jsonObject, parseJsonFile } from './parse.js';

/**
 * `proofs/<run_id>/proof.json` (9.20+): a run's receipt, schema "1.0" (no `honesty` block) or
 * "1.1". Only what the receipt families read is checked: the headline verdict and the two kinds of
 * provenance. A value of the wrong type makes the receipt bad (reported, not counted).
 */
export const ProofSchema = v.pipe(
  jsonObject(
    v.looseObject({
      honesty: v.optional(v.nullable(jsonObject(v.looseObject({ headline: v.optional(v.nullable(v.string())) })))),
      verification: v.optional(
        v.nullable(
          jsonObject(
            v.looseObject({
              attestation: v.optional(v.unknown()),
              gpg_signature: v.optional(v.unknown()),
            }),
          ),
        ),
      ),
    }),
  ),
  // Kept per receipt for as long as it exists: only what the counts read. An attestation or a
  // signature can be kilobytes, and other fields anything; whether each is there is one boolean.
  v.transform((proof) => ({
    ...(proof.honesty !== undefined ? { honesty: proof.honesty === null ? null : { headline: proof.honesty.headline } } : {}),
    ...(proof.verification !== undefined
      ? {
          verification:
            proof.verification === null ? null : { attestation: truthy(proof.verification.attestation), gpg_signature: truthy(proof.verification.gpg_signature) },
        }
      : {}),
  })),
);
export type Proof = v.InferOutput<typeof ProofSchema>;

export const readProof = (bytes: Uint8Array) => parseJsonFile(ProofSchema, bytes);

/** Python's truthiness (upstream's rule for provenance): null, false, 0, "", [] and {} are false. */
export function truthy(value: unknown): boolean {
  if (value === null || value === undefined || value === false || value === 0 || value === '') return false;
  // Arrays too: a JSON array's keys are its indices.
  if (typeof value === 'object') return Object.keys(value).length > 0;
  return !Number.isNaN(value);
}
