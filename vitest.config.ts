import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    globalSetup: ["test/globalSetup.ts"],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Two cores: two worker processes. Forks (not threads) so a test that
    // signals or kills a child process cannot disturb another worker's.
    pool: "forks",
    poolOptions: {
      forks: { minForks: 1, maxForks: 2 }
    },
    fileParallelism: true
  }
})
