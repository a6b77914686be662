import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// Lives under test/ to keep the repository's top level to the files the layout names.
export default defineConfig({
  test: {
    root: fileURLToPath(new URL('..', import.meta.url)),
    include: ['test/**/*.test.ts'],
    // Stryker's sandboxes (npm run mutation) hold copies of the tests.
    exclude: ['test/mutation/**', '**/node_modules/**'],
    // Tests start real processes (promtool, python, the CLI); give them room on a 2-core machine.
    testTimeout: 20_000,
    hookTimeout: 20_000,
  },
});
