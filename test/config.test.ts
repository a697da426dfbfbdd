import { describe, expect, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as ConfigError from "effect/ConfigError"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import { Redis } from "ioredis"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { inspect } from "node:util"
import * as LockKv from "../src/LockKv.js"
import { freePort, redisServerScoped } from "./support/redisServer.js"

const provider = (entries: Record<string, string>) =>
  ConfigProvider.fromMap(new Map(Object.entries(entries)), { pathDelim: "_" })

const load = (entries: Record<string, string>) =>
  Effect.withConfigProvider(
    Effect.gen(function*() {
      return yield* LockKv.settings
    }),
    provider(entries)
  )

const redisOptions = (settings: LockKv.LockKv.Settings): LockKv.LockKv.RedisOptions => {
  if (settings._tag !== "Redis") throw new Error(`expected Redis settings, got ${settings._tag}`)
  return settings.options
}

const reveal = (value: string | Redacted.Redacted<string> | undefined) =>
  value === undefined ? undefined : Redacted.isRedacted(value) ? Redacted.value(value) : value

/** Every way an error may end up printed. */
const printed = (error: unknown): string => {
  const parts = [String(error), JSON.stringify(error), inspect(error, { depth: 10 })]
  if (typeof error === "object" && error !== null && "cause" in error) {
    parts.push(String(error.cause), JSON.stringify(error.cause), inspect(error.cause, { depth: 10 }))
  }
  return parts.join("\n")
}

/** Builds `LockKv.layer` under `entries`; the exit, the time it took and the log lines. */
const buildLayer = (entries: Record<string, string>) =>
  Effect.gen(function*() {
    const logs: Array<string> = []
    const logger = Logger.make(({ message }) => logs.push(inspect(message, { depth: 5 })))
    const started = Date.now()
    const exit = yield* Effect.scoped(
      Effect.gen(function*() {
        const context = yield* Layer.build(LockKv.layer)
        const kv = Context.get(context, LockKv.LockKv)
        yield* kv.set("config-test", "ok", { PX: 10_000 })
        return yield* kv.get("config-test")
      })
    ).pipe(
      Effect.withConfigProvider(provider(entries)),
      Effect.provide(Logger.replace(Logger.defaultLogger, logger)),
      Logger.withMinimumLogLevel(LogLevel.All),
      Effect.exit
    )
    return { exit, elapsed: Date.now() - started, logs }
  })

const failureOf = <A, E>(exit: Exit.Exit<A, E>): E => {
  if (Exit.isSuccess(exit)) throw new Error("expected a failure")
  const failure = Cause.failureOption(exit.cause)
  if (Option.isNone(failure)) throw new Error(`expected a typed failure, got ${Cause.pretty(exit.cause)}`)
  return failure.value
}

const asLockKvError = (error: unknown): LockKv.LockKvError => {
  expect(error).toBeInstanceOf(LockKv.LockKvError)
  if (!(error instanceof LockKv.LockKvError)) throw new Error("expected a LockKvError")
  return error
}

describe("LockKv.settings", () => {
  it.effect("selects memory when neither REDIS_URL nor REDIS_HOST is set", () =>
    Effect.gen(function*() {
      expect(yield* load({})).toEqual({ _tag: "Memory", namespace: "lock" })
      expect(yield* load({ LOCK_NAMESPACE: "app" })).toEqual({ _tag: "Memory", namespace: "app" })
      // The parts are not read without a host: a stray REDIS_PORT does not matter.
      expect(yield* load({ REDIS_PORT: "abc", REDIS_PASSWORD: "x" })).toEqual({ _tag: "Memory", namespace: "lock" })
      // An empty part counts as unset.
      expect(yield* load({ REDIS_PORT: "", REDIS_PASSWORD: "" })).toEqual({ _tag: "Memory", namespace: "lock" })
    }))

  it.effect("an empty or blank REDIS_URL or REDIS_HOST is a ConfigError naming it, never memory", () =>
    Effect.gen(function*() {
      const cases: Array<[Record<string, string>, ReadonlyArray<string>]> = [
        [{ REDIS_URL: "" }, ["REDIS_URL"]],
        [{ REDIS_URL: "  " }, ["REDIS_URL"]],
        [{ REDIS_HOST: "" }, ["REDIS_HOST"]],
        [{ REDIS_HOST: "\t" }, ["REDIS_HOST"]],
        [{ REDIS_URL: "", REDIS_HOST: " " }, ["REDIS_URL", "REDIS_HOST"]],
        // Even with the other one set: the empty one is a mistake either way.
        [{ REDIS_URL: "", REDIS_HOST: "redis.internal" }, ["REDIS_URL"]]
      ]
      for (const [entries, names] of cases) {
        const error = yield* Effect.flip(load(entries))
        expect(ConfigError.isConfigError(error), JSON.stringify(entries)).toBe(true)
        for (const name of names) {
          expect(String(error), JSON.stringify(entries)).toContain(`${name} is set but empty`)
        }
        expect(String(error)).toContain("unset it to use the in-memory store")
      }
      // The layer refuses it too: no store is built.
      const exit = yield* Effect.exit(
        Effect.scoped(Layer.build(LockKv.layer)).pipe(
          Effect.withConfigProvider(provider({ REDIS_URL: "" }))
        )
      )
      expect(Exit.isFailure(exit) && ConfigError.isConfigError(failureOf(exit))).toBe(true)
    }))

  it.effect("reads every part", () =>
    Effect.gen(function*() {
      const options = redisOptions(
        yield* load({
          REDIS_HOST: "redis.internal",
          REDIS_PORT: "6380",
          REDIS_USERNAME: "locker",
          REDIS_PASSWORD: "pw-parts",
          REDIS_DB: "3",
          REDIS_TLS: "true",
          REDIS_TLS_CA: "-----BEGIN CERTIFICATE-----\nca\n-----END CERTIFICATE-----\n",
          REDIS_TLS_CERT: "-----BEGIN CERTIFICATE-----\ncert\n-----END CERTIFICATE-----\n",
          REDIS_TLS_KEY: "-----BEGIN PRIVATE KEY-----\nkey\n-----END PRIVATE KEY-----\n",
          REDIS_CONNECT_TIMEOUT: "2s",
          LOCK_NAMESPACE: "jobs"
        })
      )
      expect(options.host).toBe("redis.internal")
      expect(options.port).toBe(6380)
      expect(options.username).toBe("locker")
      expect(Redacted.isRedacted(options.password)).toBe(true)
      expect(reveal(options.password)).toBe("pw-parts")
      expect(options.db).toBe(3)
      expect(options.tls).toBe(true)
      expect(options.tlsCa).toContain("ca")
      expect(options.tlsCert).toContain("cert")
      expect(Redacted.isRedacted(options.tlsKey)).toBe(true)
      expect(reveal(options.tlsKey)).toContain("key")
      expect(options.namespace).toBe("jobs")
      expect(Duration.toMillis(Duration.decode(options.connectTimeout!))).toBe(2000)
      expect(options.url).toBeUndefined()
    }))

  it.effect("accepts several duration spellings and TLS false", () =>
    Effect.gen(function*() {
      const timeout = (value: string) =>
        load({ REDIS_HOST: "h", REDIS_CONNECT_TIMEOUT: value }).pipe(
          Effect.map((s) => Duration.toMillis(Duration.decode(redisOptions(s).connectTimeout!)))
        )
      expect(yield* timeout("500ms")).toBe(500)
      expect(yield* timeout("1500")).toBe(1500)
      expect(yield* timeout("2m")).toBe(120_000)
      expect(yield* timeout("3 seconds")).toBe(3000)
      expect(redisOptions(yield* load({ REDIS_HOST: "h", REDIS_TLS: "false" })).tls).toBe(false)
    }))

  it.effect("reads PEM files named by REDIS_TLS_*", () =>
    Effect.gen(function*() {
      const dir = mkdtempSync(join(tmpdir(), "effect-lock-config-"))
      try {
        const file = join(dir, "ca.pem")
        writeFileSync(file, "-----BEGIN CERTIFICATE-----\nfrom-file\n-----END CERTIFICATE-----\n")
        const options = redisOptions(yield* load({ REDIS_HOST: "h", REDIS_TLS_CA: file }))
        expect(options.tlsCa).toContain("from-file")
        const missing = yield* Effect.flip(load({ REDIS_HOST: "h", REDIS_TLS_CA: join(dir, "nope.pem") }))
        expect(String(missing)).toContain("REDIS_TLS_CA")
        const missingKey = yield* Effect.flip(load({ REDIS_HOST: "h", REDIS_TLS_KEY: "a-pasted-secret-key" }))
        expect(String(missingKey)).toContain("REDIS_TLS_KEY")
        expect(printed(missingKey)).not.toContain("a-pasted-secret-key")
      } finally {
        rmSync(dir, { recursive: true, force: true })
      }
    }))

  it.effect("REDIS_URL wins over the parts", () =>
    Effect.gen(function*() {
      const options = redisOptions(
        yield* load({
          REDIS_URL: "redis://url-host:7000/2",
          REDIS_HOST: "part-host",
          REDIS_PORT: "7001",
          REDIS_DB: "5"
        })
      )
      expect(Redacted.isRedacted(options.url)).toBe(true)
      expect(reveal(options.url)).toBe("redis://url-host:7000/2")
      expect(options.host).toBeUndefined()
      expect(options.port).toBeUndefined()
      expect(options.db).toBeUndefined()
      // Parts are ignored with a URL, malformed or not.
      const ignored = redisOptions(yield* load({ REDIS_URL: "redis://h:1", REDIS_PORT: "abc" }))
      expect(ignored.port).toBeUndefined()
    }))

  it.effect("REDIS_PASSWORD overrides the password in REDIS_URL", () =>
    Effect.gen(function*() {
      const options = redisOptions(
        yield* load({ REDIS_URL: "redis://user:url-secret@h:1", REDIS_PASSWORD: "env-secret" })
      )
      expect(reveal(options.password)).toBe("env-secret")
      // The settings print without either secret.
      const shown = printed(options) + inspect({ _tag: "Redis", options }, { depth: 10 })
      expect(shown).not.toContain("url-secret")
      expect(shown).not.toContain("env-secret")
    }))

  it.effect("malformed values fail with a ConfigError naming the variable", () =>
    Effect.gen(function*() {
      const cases: Array<[Record<string, string>, string]> = [
        [{ REDIS_HOST: "h", REDIS_PORT: "abc" }, "REDIS_PORT"],
        [{ REDIS_HOST: "h", REDIS_PORT: "0" }, "REDIS_PORT"],
        [{ REDIS_HOST: "h", REDIS_PORT: "70000" }, "REDIS_PORT"],
        [{ REDIS_HOST: "h", REDIS_PORT: "6379.5" }, "REDIS_PORT"],
        [{ REDIS_URL: "http://x" }, "REDIS_URL"],
        [{ REDIS_URL: "not a url" }, "REDIS_URL"],
        [{ REDIS_URL: "redis://h:1/notadb" }, "REDIS_URL"],
        [{ REDIS_HOST: "h", REDIS_DB: "-1" }, "REDIS_DB"],
        [{ REDIS_HOST: "h", REDIS_DB: "one" }, "REDIS_DB"],
        [{ REDIS_HOST: "h", REDIS_TLS: "maybe" }, "REDIS_TLS"],
        [{ REDIS_HOST: "h", REDIS_CONNECT_TIMEOUT: "soon" }, "REDIS_CONNECT_TIMEOUT"],
        [{ REDIS_HOST: "h", REDIS_CONNECT_TIMEOUT: "0s" }, "REDIS_CONNECT_TIMEOUT"],
        [{ LOCK_NAMESPACE: "" }, "LOCK_NAMESPACE"]
      ]
      for (const [entries, name] of cases) {
        const error = yield* Effect.flip(load(entries))
        expect(ConfigError.isConfigError(error), JSON.stringify(entries)).toBe(true)
        expect(String(error), JSON.stringify(entries)).toContain(name)
      }
      // Every malformed variable is reported, not only the first.
      const both = yield* Effect.flip(load({ REDIS_HOST: "h", REDIS_PORT: "abc", REDIS_DB: "x" }))
      expect(String(both)).toContain("REDIS_PORT")
      expect(String(both)).toContain("REDIS_DB")
    }))

  it.effect("with Redis selected, empty or blank parts count as unset; without it, parts are not read", () =>
    Effect.gen(function*() {
      const blank = {
        REDIS_PORT: "",
        REDIS_DB: " ",
        REDIS_TLS: "",
        REDIS_USERNAME: "",
        REDIS_PASSWORD: " ",
        REDIS_TLS_CA: "",
        REDIS_CONNECT_TIMEOUT: "\t"
      }
      expect(yield* load({ REDIS_HOST: "h", ...blank })).toEqual({
        _tag: "Redis",
        options: { host: "h", namespace: "lock" }
      })
      // Malformed parts do not matter while neither REDIS_URL nor REDIS_HOST is set.
      expect(yield* load({ REDIS_TLS: "maybe", REDIS_DB: "x", REDIS_CONNECT_TIMEOUT: "soon" })).toEqual({
        _tag: "Memory",
        namespace: "lock"
      })
    }))

  it.effect("ports, integers and booleans are read by Effect's Config.port, Config.integer and Config.boolean", () =>
    Effect.gen(function*() {
      const options = (entries: Record<string, string>) =>
        load({ REDIS_HOST: "h", ...entries }).pipe(Effect.map(redisOptions))
      const spellings = { true: true, yes: true, on: true, 1: true, false: false, no: false, off: false, 0: false }
      for (const [text, value] of Object.entries(spellings)) {
        expect((yield* options({ REDIS_TLS: text })).tls, text).toBe(value)
      }
      expect((yield* options({ REDIS_DB: "2147483647", REDIS_PORT: "65535" })).db).toBe(2_147_483_647)
      const message = (entries: Record<string, string>) => Effect.map(Effect.flip(options(entries)), String)
      // Effect's own messages, under the variable's name.
      expect(yield* message({ REDIS_PORT: "70000" })).toContain(
        "Invalid data at REDIS_PORT: \"Expected a network port value"
      )
      expect(yield* message({ REDIS_DB: "one" })).toContain("Invalid data at REDIS_DB: \"Expected an integer value")
      expect(yield* message({ REDIS_TLS: "maybe" })).toContain("Invalid data at REDIS_TLS: \"Expected a boolean value")
      expect(yield* message({ REDIS_DB: "2147483648" })).toContain(
        "REDIS_DB must be a database number from 0 to 2147483647"
      )
      expect(yield* message({ REDIS_CONNECT_TIMEOUT: "0" })).toContain(
        "REDIS_CONNECT_TIMEOUT: \"0\" must be greater than zero"
      )
      // Every malformed variable is reported, the namespace too.
      const all = yield* message({ REDIS_PORT: "abc", REDIS_TLS: "maybe", LOCK_NAMESPACE: " " })
      for (const name of ["REDIS_PORT", "REDIS_TLS", "LOCK_NAMESPACE"]) expect(all).toContain(name)
    }))

  it.effect("a password never appears in a printed config error", () =>
    Effect.gen(function*() {
      for (
        const url of [
          "http://user:hunter2-in-url@x",
          "redis://user:hunter2-in-url@h:1/notadb",
          "redis://user:hunter2-in-url@:1"
        ]
      ) {
        const exit = yield* Effect.exit(load({ REDIS_URL: url, REDIS_PASSWORD: "hunter2-env" }))
        expect(Exit.isFailure(exit)).toBe(true)
        if (Exit.isFailure(exit)) {
          const text = printed(failureOf(exit)) + Cause.pretty(exit.cause)
          expect(text).toContain("REDIS_URL")
          expect(text).not.toContain("hunter2")
        }
      }
    }))
})

describe("LockKv.layer connecting to Redis", () => {
  it.live("an unreachable Redis fails the layer with LockKvError within the bound", () =>
    Effect.gen(function*() {
      const port = yield* Effect.promise(() => freePort())
      const { elapsed, exit } = yield* buildLayer({ REDIS_URL: `redis://127.0.0.1:${port}` })
      const error = asLockKvError(failureOf(exit))
      expect(error.operation).toBe("connect")
      expect(elapsed).toBeLessThan(10_000)
    }))

  it.scopedLive("a wrong password fails with LockKvError and the password is never printed", () =>
    Effect.gen(function*() {
      const server = yield* redisServerScoped({ args: ["--requirepass", "right-Pa55word"] })
      const wrong = "wr0ng-Pa55word-xyz"
      const { elapsed, exit, logs } = yield* buildLayer({ REDIS_URL: server.url, REDIS_PASSWORD: wrong })
      const error = asLockKvError(failureOf(exit))
      expect(error.operation).toBe("connect")
      expect(error.message).toMatch(/refused the credentials/)
      expect(elapsed).toBeLessThan(10_000)
      const text = printed(error) + (Exit.isFailure(exit) ? Cause.pretty(exit.cause) : "") + logs.join("\n")
      expect(text).not.toContain(wrong)
      expect(text).not.toContain("right-Pa55word")

      // The same wrong password given in the URL.
      const inUrl = yield* buildLayer({ REDIS_URL: `redis://default:${wrong}@127.0.0.1:${server.port}` })
      const urlText = printed(failureOf(inUrl.exit)) +
        (Exit.isFailure(inUrl.exit) ? Cause.pretty(inUrl.exit.cause) : "") +
        inUrl.logs.join("\n")
      expect(urlText).not.toContain(wrong)

      // No password at all against a protected server.
      const none = yield* buildLayer({ REDIS_URL: server.url })
      expect(failureOf(none.exit)).toBeInstanceOf(LockKv.LockKvError)
    }))

  it.scopedLive("a correct password works, also overriding a wrong one in the URL", () =>
    Effect.gen(function*() {
      const server = yield* redisServerScoped({ args: ["--requirepass", "right-Pa55word"] })
      const direct = yield* buildLayer({
        REDIS_HOST: "127.0.0.1",
        REDIS_PORT: String(server.port),
        REDIS_PASSWORD: "right-Pa55word"
      })
      expect(direct.exit).toEqual(Exit.succeed(Option.some("ok")))
      const overridden = yield* buildLayer({
        REDIS_URL: `redis://default:stale@127.0.0.1:${server.port}`,
        REDIS_PASSWORD: "right-Pa55word"
      })
      expect(overridden.exit).toEqual(Exit.succeed(Option.some("ok")))
      const inUrl = yield* buildLayer({ REDIS_URL: `redis://:right-Pa55word@127.0.0.1:${server.port}` })
      expect(inUrl.exit).toEqual(Exit.succeed(Option.some("ok")))
      expect(direct.logs.join("\n")).not.toContain("right-Pa55word")
    }))

  it.scopedLive("an ACL user, from the URL or the parts, with a password needing escapes", () =>
    Effect.gen(function*() {
      const password = "p@ss:w/rd%ok#?"
      const server = yield* redisServerScoped({
        args: ["--user", "locker", "on", `>${password}`, "~*", "&*", "+@all"]
      })
      const inUrl = yield* buildLayer({
        REDIS_URL: `redis://locker:${encodeURIComponent(password)}@127.0.0.1:${server.port}/0`
      })
      expect(inUrl.exit).toEqual(Exit.succeed(Option.some("ok")))
      const inParts = yield* buildLayer({
        REDIS_HOST: "127.0.0.1",
        REDIS_PORT: String(server.port),
        REDIS_USERNAME: "locker",
        REDIS_PASSWORD: password
      })
      expect(inParts.exit).toEqual(Exit.succeed(Option.some("ok")))
      const wrongUser = yield* buildLayer({
        REDIS_HOST: "127.0.0.1",
        REDIS_PORT: String(server.port),
        REDIS_USERNAME: "nobody",
        REDIS_PASSWORD: password
      })
      const error = asLockKvError(failureOf(wrongUser.exit))
      expect(printed(error)).not.toContain(password)
      expect(printed(error)).not.toContain(encodeURIComponent(password))
    }))

  it.scopedLive("a REDIS_DB the server does not have fails with LockKvError naming it; an existing one is used", () =>
    Effect.gen(function*() {
      const password = "se-cret-pw"
      const server = yield* redisServerScoped({ args: ["--databases", "2", "--requirepass", password] })
      const raw = yield* Effect.acquireRelease(
        Effect.promise(async () => {
          const client = new Redis(server.url, { lazyConnect: true, maxRetriesPerRequest: 1, password })
          client.on("error", () => {})
          await client.connect()
          return client
        }),
        (client) => Effect.promise(() => client.quit().catch(() => client.disconnect()))
      )
      for (
        const entries of [
          { REDIS_HOST: "127.0.0.1", REDIS_PORT: String(server.port), REDIS_DB: "5", REDIS_PASSWORD: password },
          { REDIS_URL: `${server.url}/5`, REDIS_PASSWORD: password },
          { REDIS_URL: `redis://:${password}@127.0.0.1:${server.port}/5` }
        ]
      ) {
        const { exit, logs } = yield* buildLayer(entries)
        const error = asLockKvError(failureOf(exit))
        expect(error.operation, JSON.stringify(entries)).toBe("connect")
        expect(error.message).toMatch(/\bdatabase 5\b/)
        const text = printed(error) + (Exit.isFailure(exit) ? Cause.pretty(exit.cause) : "") + logs.join("\n")
        expect(text).not.toContain(password)
        // Nothing was written anywhere, least of all in database 0.
        expect(yield* Effect.promise(() => raw.dbsize())).toBe(0)
      }
      const works = yield* buildLayer({
        REDIS_HOST: "127.0.0.1",
        REDIS_PORT: String(server.port),
        REDIS_DB: "1",
        REDIS_PASSWORD: password
      })
      expect(works.exit).toEqual(Exit.succeed(Option.some("ok")))
      expect(works.logs.join("\n")).toContain("database 1")
      // The key really is in database 1, not in 0.
      expect(yield* Effect.promise(() => raw.get("lock:config-test"))).toBeNull()
      yield* Effect.promise(() => raw.select(1))
      expect(yield* Effect.promise(() => raw.get("lock:config-test"))).toBe("ok")
    }))

  it.scopedLive("TLS: a server without TLS fails the layer; a TLS server with its CA works", () =>
    Effect.gen(function*() {
      const plain = yield* redisServerScoped()
      const refused = yield* buildLayer({
        REDIS_HOST: "127.0.0.1",
        REDIS_PORT: String(plain.port),
        REDIS_TLS: "true",
        REDIS_CONNECT_TIMEOUT: "3s"
      })
      expect(failureOf(refused.exit)).toBeInstanceOf(LockKv.LockKvError)
      expect(refused.elapsed).toBeLessThan(10_000)

      const secure = yield* redisServerScoped({ tls: true })
      const ca = secure.tls!.ca
      const works = yield* buildLayer({ REDIS_URL: secure.url, REDIS_TLS_CA: ca })
      expect(works.exit).toEqual(Exit.succeed(Option.some("ok")))
      // Without the CA the certificate is not trusted.
      const untrusted = yield* buildLayer({ REDIS_URL: secure.url })
      expect(failureOf(untrusted.exit)).toBeInstanceOf(LockKv.LockKvError)
    }))
})
