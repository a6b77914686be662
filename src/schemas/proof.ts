import * as v from 'valibot';
import { jsonObject, parseJsonFile } from './parse.js';

/**
 * `proofs/<run_id>/proof.json` (9.20+): a run's receipt, schema "1.0" (no `honesty` block) or
 * "1.1". Only what the receipt families read is checked: the headline verdict and the two kinds of
 * provenance. A value of the wrong type makes the receipt bad (reported, not counted).
 */
export const ProofSchema = jsonObject(
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
);
export type Proof = v.InferOutput<typeof ProofSchema>;

export const readProof = (bytes: Uint8Array) => parseJsonFile(ProofSchema, bytes);
