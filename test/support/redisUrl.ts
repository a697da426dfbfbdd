/**
 * The URL of the Redis the tests share, handed over by `test/globalSetup.ts`:
 * `REDIS_URL` from the environment when set, else a server started for the run.
 */
import { inject } from "vitest"

declare module "vitest" {
  export interface ProvidedContext {
    /** `redis://127.0.0.1:<port>` of the Redis shared by the test run. */
    redisUrl: string
  }
}

/** The shared test Redis URL. Give each test its own keys or namespace: test files run concurrently. */
export const redisUrl = (): string => {
  const url = inject("redisUrl")
  if (typeof url !== "string" || url === "") {
    throw new Error(
      "no redisUrl was provided: run the tests through vitest.config.ts (globalSetup: test/globalSetup.ts)"
    )
  }
  return url
}
