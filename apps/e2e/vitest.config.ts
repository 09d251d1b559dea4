import { defineConfig } from 'vitest/config';

// Containers share the machine: run files one at a time so leftovers checks are exact.
export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    fileParallelism: false,
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
