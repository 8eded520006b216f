import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 120_000,
    hookTimeout: 60_000,
    pool: "forks",
    // The command line the tests spawn runs the sources (tsx), never a dist/ built earlier.
    env: { HONUA_AGENT_FROM_SOURCE: "1" },
  },
});
