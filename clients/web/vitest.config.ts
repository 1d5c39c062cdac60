import { defineConfig } from 'vitest/config';

// Browser tests only (the app's logic is the SDK's, unit-tested in clients/typescript). One file, run in order
// against a live stack: see tests/browser.test.ts.
export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    environment: 'node',
    fileParallelism: false,
    testTimeout: 90_000,
    hookTimeout: 120_000,
    teardownTimeout: 60_000,
    reporters: ['verbose'],
  },
});
