import { defineConfig } from 'vitest/config';

/**
 * The integration suite (`npm run test:integration`): the SDK against a deployed stack named by
 * `CHAT_ENDPOINTS_FILE`. Files run one after another (they share one emulator on a small machine); every wait
 * inside a test is bounded, and so is every test.
 */
export default defineConfig({
  test: {
    include: ['integration/**/*.test.ts'],
    setupFiles: ['integration/setup.ts'],
    environment: 'node',
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 60_000,
    teardownTimeout: 10_000,
    restoreMocks: true,
    // The AWS SDK (used to close connections like API Gateway does) warns on every run that Node 20 is old.
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
  },
});
