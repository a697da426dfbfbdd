/**
 * Vitest global setup: one Redis for the whole run. Uses `REDIS_URL` when set
 * (point it at a disposable server: tests write keys), otherwise starts a
 * `redis-server` on a free loopback port and stops it, by pid, at the end.
 */
import type { TestProject } from "vitest/node"
import { type RedisServerHandle, startRedisServer } from "./support/redisServer.js"
// The `redisUrl` key of `provide` is declared in ./support/redisUrl.ts.

let server: RedisServerHandle | undefined

export async function setup(project: TestProject): Promise<void> {
  const fromEnv = process.env["REDIS_URL"]
  if (fromEnv !== undefined && fromEnv !== "") {
    project.provide("redisUrl", fromEnv)
    return
  }
  server = await startRedisServer()
  project.provide("redisUrl", server.url)
}

export async function teardown(): Promise<void> {
  if (server !== undefined) {
    await server.stop()
    server = undefined
  }
}
