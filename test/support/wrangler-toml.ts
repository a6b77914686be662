/**
 * What the tests take from the shipped wrangler.toml, so a Worker in a test runs as the deployed one
 * would: its compatibility date is read from the file, never repeated.
 */
import { readFileSync } from 'node:fs';

// The repository's wrangler.toml, also when this helper runs compiled from dist/ (npm run stress).
export const WRANGLER_TOML = new URL('../../wrangler.toml', import.meta.url).pathname.replace('/dist/wrangler.toml', '/wrangler.toml');

function compatibilityDate(): string {
  const match = /^compatibility_date = "(\d{4}-\d{2}-\d{2})"$/m.exec(readFileSync(WRANGLER_TOML, 'utf8'));
  if (!match) throw new Error(`${WRANGLER_TOML} has no compatibility_date = "YYYY-MM-DD" line`);
  return match[1]!;
}

export const COMPATIBILITY_DATE = compatibilityDate();
