/**
 * No secret — a password, a URL with credentials, a TLS key — in any error, its
 * cause, Cause.pretty, toString/JSON/inspect, any log record at any level
 * (Debug included), or any span (attributes, events, exit), whatever goes
 * wrong: refused at connect, password rotated while connected, server killed.
 * test/config.test.ts checks errors and logs of a wrong password at connect;
 * this adds spans, every printed form, runtime failures and URL-escaped forms.
 * (TLS keys: test/redis/security/tls.test.ts.)
 */
import { describe, expect, it } from "@effect/vitest"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import type { Redis } from "ioredis"
import * as Lock from "../../../src/Lock.js"
import * as LockKv from "../../../src/LockKv.js"
import { observe } from "../../support/observe.js"
import { redisServerScoped } from "../../support/redisServer.js"
import { buildStore, rawClient, untilSucceeds } from "../faults/support.js"

const password = "S3cr3t-p@ss:w/rd%25#?&=-🔑"
const rotated = "r0tated-S3cr3t-Zq9"
const leaks = (secret: string): ReadonlyArray<string> => [
  secret,
  encodeURIComponent(secret),
  // A distinctive middle part, so that a truncated or partly escaped copy is caught too.
  secret.slice(2, 12)
]

const expectClean = (text: string, secrets: ReadonlyArray<string>, label: string) => {
  for (const secret of secrets) {
    for (const form of leaks(secret)) {
      expect(text.includes(form), `${label}: leaked ${JSON.stringify(form)}`).toBe(false)
    }
  }
  // No URL with credentials, whatever they are.
  expect(text, label).not.toMatch(/rediss?:\/\/[^\s/@"']+@/)
}

const withConfig = (entries: Record<string, string>) =>
  Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(entries)), { pathDelim: "_" }))

/** A withLock section on `LockKv.layer` under `entries`. */
const section = (entries: Record<string, string>) =>
  Lock.withLock(Effect.succeed("ran"), "job", { ttl: "2 seconds" }).pipe(
    Effect.provide(LockKv.layer),
    withConfig(entries)
  )

const userServer = Effect.gen(function*() {
  const server = yield* redisServerScoped({
    args: ["--user", "locker", "on", `>${password}`, "~*", "&*", "+@all"]
  })
  const admin: Redis = yield* rawClient(server.url)
  const url = `redis://locker:${encodeURIComponent(password)}@127.0.0.1:${server.port}`
  return { server, admin, url }
})

describe("security: secrets never leave", () => {
  it.scopedLive(
    "refused at connect: wrong password, wrong user, no password — in the URL or in REDIS_PASSWORD",
    () =>
      Effect.gen(function*() {
        const { server } = yield* userServer
        const wrong = "wr0ng-S3cr3t-Xy7"
        const where = `127.0.0.1:${server.port}`
        const cases: ReadonlyArray<readonly [string, Record<string, string>]> = [
          ["wrong password in the URL", { REDIS_URL: `redis://locker:${encodeURIComponent(wrong)}@${where}` }],
          ["wrong password in REDIS_PASSWORD", { REDIS_URL: `redis://locker@${where}`, REDIS_PASSWORD: wrong }],
          ["right password, wrong user", { REDIS_URL: `redis://nobody:${encodeURIComponent(password)}@${where}` }],
          ["right password, parts", {
            REDIS_HOST: "127.0.0.1",
            REDIS_PORT: String(server.port),
            REDIS_USERNAME: "nobody",
            REDIS_PASSWORD: password
          }],
          ["a stale password in the URL, overridden by a wrong one", {
            REDIS_URL: `redis://locker:${encodeURIComponent(password)}@${where}`,
            REDIS_PASSWORD: wrong
          }]
        ]
        for (const [label, entries] of cases) {
          const observed = yield* observe(section(entries))
          expect(Exit.isFailure(observed.exit), label).toBe(true)
          expectClean(observed.everything(), [password, wrong], label)
        }
      }),
    30_000
  )

  it.scopedLive(
    "while connected: the password rotated under a held lock (reconnects refused), then the server killed",
    () =>
      Effect.gen(function*() {
        const { admin, server, url } = yield* userServer
        const observed = yield* observe(Effect.gen(function*() {
          const kv = yield* buildStore(LockKv.layer).pipe(withConfig({ REDIS_URL: url, LOCK_NAMESPACE: "sec" }))
          const layer = Layer.succeed(LockKv.LockKv, kv)
          const held = yield* Lock.withLock(Effect.never, "job", { ttl: "1 second" }).pipe(
            Effect.provide(layer),
            Effect.either,
            Effect.fork
          )
          yield* Effect.sleep("200 millis")
          // Rotate the password and cut the connections: every reconnect now fails AUTH.
          yield* Effect.promise(() => admin.call("ACL", "SETUSER", "locker", "resetpass", `>${rotated}`))
          yield* Effect.promise(() => admin.call("CLIENT", "KILL", "USER", "locker"))
          const lost = yield* Fiber.join(held)
          expect(lost._tag === "Left" && lost.left._tag).toBe("LockLost")
          // Back to the old password: the store recovers by itself; then the server dies.
          yield* Effect.promise(() => admin.call("ACL", "SETUSER", "locker", "resetpass", `>${password}`))
          const recovered = yield* untilSucceeds(kv.set("probe", "y"), 10_000)
          expect(recovered.ok).toBe(true)
          server.kill("SIGKILL")
          yield* Effect.sleep("200 millis")
          return lost
        }))
        expect(Exit.isSuccess(observed.exit), observed.everything().slice(0, 2_000)).toBe(true)
        // The refused reconnects and the lost server were logged (Debug): there was something to leak.
        const logged = observed.logs.map((l) => l.text).join("\n")
        expect(logged).toMatch(/WRONGPASS/)
        expect(logged).toMatch(/ECONNREFUSED|connection lost/)
        expect(observed.spans.length).toBeGreaterThan(0)
        expectClean(observed.everything(), [password, rotated], "runtime")
      }),
    40_000
  )
})
