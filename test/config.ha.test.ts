/** `Config` of Redis Cluster and Sentinel: REDIS_CLUSTER_NODES, REDIS_SENTINELS and the sentinel names. */
import { describe, expect, it } from "@effect/vitest"
import * as ConfigError from "effect/ConfigError"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Redacted from "effect/Redacted"
import { inspect } from "node:util"
import * as LockKv from "../src/LockKv.js"
import { freePort } from "./support/redisServer.js"

const load = (entries: Record<string, string>) =>
  Effect.withConfigProvider(
    Effect.gen(function*() {
      return yield* LockKv.settings
    }),
    ConfigProvider.fromMap(new Map(Object.entries(entries)), { pathDelim: "_" })
  )

const redisOptions = (settings: LockKv.LockKv.Settings): LockKv.LockKv.RedisOptions => {
  if (settings._tag !== "Redis") throw new Error(`expected Redis settings, got ${settings._tag}`)
  return settings.options
}

describe("Config: Redis Cluster and Sentinel", () => {
  it.effect("REDIS_CLUSTER_NODES selects Redis on a cluster, with the shared credentials", () =>
    Effect.gen(function*() {
      const options = redisOptions(
        yield* load({
          REDIS_CLUSTER_NODES: "10.0.0.1:7000, 10.0.0.2:7001,[::1]:7002",
          REDIS_PASSWORD: "pw",
          LOCK_NAMESPACE: "jobs"
        })
      )
      expect(options.cluster).toEqual({
        nodes: [{ host: "10.0.0.1", port: 7000 }, { host: "10.0.0.2", port: 7001 }, { host: "::1", port: 7002 }]
      })
      expect(options.url).toBeUndefined()
      expect(options.host).toBeUndefined()
      expect(options.sentinel).toBeUndefined()
      expect(options.namespace).toBe("jobs")
      expect(options.password !== undefined && Redacted.value(options.password)).toBe("pw")
    }))

  it.effect("REDIS_SENTINELS + REDIS_SENTINEL_NAME (+ the sentinels' credentials, redacted)", () =>
    Effect.gen(function*() {
      const options = redisOptions(
        yield* load({
          REDIS_SENTINELS: "s1:26379,s2:26380",
          REDIS_SENTINEL_NAME: " main ",
          REDIS_SENTINEL_USERNAME: "watcher",
          REDIS_SENTINEL_PASSWORD: "sentinel-secret",
          REDIS_PASSWORD: "primary-secret",
          REDIS_DB: "2"
        })
      )
      const sentinel = options.sentinel!
      expect(sentinel.sentinels).toEqual([{ host: "s1", port: 26379 }, { host: "s2", port: 26380 }])
      expect(sentinel.name).toBe("main")
      expect(sentinel.username).toBe("watcher")
      expect(Redacted.isRedacted(sentinel.password)).toBe(true)
      expect(Redacted.value(sentinel.password!)).toBe("sentinel-secret")
      expect(inspect(options, { depth: 10 })).not.toContain("sentinel-secret")
      expect(JSON.stringify(options)).not.toContain("sentinel-secret")
      expect(options.db).toBe(2)
      expect(options.cluster).toBeUndefined()
    }))

  it.effect("malformed address lists are a ConfigError naming the variable", () =>
    Effect.gen(function*() {
      const cases: ReadonlyArray<[string, string]> = [
        ["REDIS_CLUSTER_NODES", "10.0.0.1"],
        ["REDIS_CLUSTER_NODES", "10.0.0.1:0"],
        ["REDIS_CLUSTER_NODES", "10.0.0.1:70000"],
        ["REDIS_CLUSTER_NODES", "10.0.0.1:7000,"],
        ["REDIS_CLUSTER_NODES", "::1:7000"],
        ["REDIS_CLUSTER_NODES", "a:b"],
        ["REDIS_SENTINELS", "s1:26379;s2:26379"],
        ["REDIS_SENTINELS", ":26379"]
      ]
      for (const [name, value] of cases) {
        const entries: Record<string, string> = { [name]: value, REDIS_SENTINEL_NAME: "main" }
        const error = yield* Effect.flip(load(entries))
        expect(ConfigError.isConfigError(error), value).toBe(true)
        expect(String(error), value).toContain(`${name} must be a comma-separated list of host:port`)
      }
    }))

  it.effect("conflicting selections and a missing sentinel name are ConfigErrors, never a guess", () =>
    Effect.gen(function*() {
      const cases: ReadonlyArray<[Record<string, string>, string]> = [
        [{ REDIS_CLUSTER_NODES: "h:7000", REDIS_SENTINELS: "s:26379", REDIS_SENTINEL_NAME: "m" }, "REDIS_SENTINELS"],
        [{ REDIS_CLUSTER_NODES: "h:7000", REDIS_URL: "redis://h:6379" }, "REDIS_URL"],
        [{ REDIS_CLUSTER_NODES: "h:7000", REDIS_HOST: "h" }, "REDIS_HOST"],
        [{ REDIS_SENTINELS: "s:26379", REDIS_SENTINEL_NAME: "m", REDIS_HOST: "h" }, "REDIS_HOST"],
        [{ REDIS_SENTINELS: "s:26379" }, "REDIS_SENTINEL_NAME must be set with REDIS_SENTINELS"],
        [{ REDIS_CLUSTER_NODES: "h:7000", REDIS_DB: "1" }, "REDIS_DB must be 0"]
      ]
      for (const [entries, expected] of cases) {
        const result = yield* Effect.either(load(entries))
        expect(Either.isLeft(result), JSON.stringify(entries)).toBe(true)
        if (Either.isLeft(result)) {
          expect(ConfigError.isConfigError(result.left)).toBe(true)
          expect(String(result.left), JSON.stringify(entries)).toContain(expected)
        }
      }
      // The sentinel names are not read without REDIS_SENTINELS: memory, whatever they hold.
      const memory = yield* load({ REDIS_SENTINEL_NAME: "m", REDIS_SENTINEL_PASSWORD: "" })
      expect(memory._tag).toBe("Memory")
    }))

  it.effect("layerRedis options: cluster and sentinel exclude a URL, a host and each other", () =>
    Effect.gen(function*() {
      const nodes = [{ host: "127.0.0.1", port: 1 }]
      const sentinel = { sentinels: nodes, name: "m" }
      const cases: ReadonlyArray<[LockKv.LockKv.RedisOptions, string]> = [
        [{ cluster: { nodes }, sentinel }, "cluster and sentinel cannot be combined"],
        [{ cluster: { nodes }, url: "redis://h" }, "cluster cannot be combined with url"],
        [{ sentinel, host: "h", port: 1 }, "sentinel cannot be combined with host, port"],
        [{ cluster: { nodes }, db: 3 }, "cluster cannot be combined with db"],
        [{ cluster: { nodes: [] } }, "cluster.nodes must be a non-empty list"],
        [{ cluster: { nodes: [{ host: "h", port: 0 }] } }, "a port must be an integer from 1 to 65535"],
        [{ sentinel: { sentinels: nodes, name: " " } }, "sentinel.name must be a non-empty string"]
      ]
      for (const [options, expected] of cases) {
        const error = yield* Effect.flip(Effect.scoped(LockKv.makeRedis(options)))
        expect(error._tag).toBe("LockKvError")
        expect(error.message, expected).toContain(expected)
      }
    }))

  it.live("an unreachable cluster or set of sentinels fails the build with LockKvError, within the connect timeout", () =>
    Effect.gen(function*() {
      const port = yield* Effect.promise(() => freePort())
      for (
        const options of [
          { cluster: { nodes: [{ host: "127.0.0.1", port }] } },
          { sentinel: { sentinels: [{ host: "127.0.0.1", port }], name: "main" } }
        ] satisfies ReadonlyArray<LockKv.LockKv.RedisOptions>
      ) {
        const started = Date.now()
        const error = yield* Effect.flip(Effect.scoped(LockKv.makeRedis({ ...options, connectTimeout: "1 second" })))
        expect(error._tag).toBe("LockKvError")
        expect(error.operation).toBe("connect")
        expect(error.message).toContain(`127.0.0.1:${port}`)
        expect(Date.now() - started).toBeLessThan(2_500)
      }
    }))
})
