import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 120_000,
    hookTimeout: 60_000,
    pool: "forks",
    // The command line the tests spawn runs dist/, built first when older than the sources (test/global-setup.ts).
    globalSetup: ["test/global-setup.ts"],
  },
});
