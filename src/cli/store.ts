/**
 * The store every CLI command talks to: Redis, from the same `Config` as the
 * library (`LockKv.settings`), with `--namespace` overriding `LOCK_NAMESPACE`.
 * Without Redis configured the CLI refuses: a process-local lock protects
 * nothing across processes, and each CLI run is its own process.
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import * as LockKv from "../LockKv.js"
import { CliExit, ExitCodes, redact } from "./errors.js"

/** The one-line refusal when no Redis is configured (REDIS_URL, REDIS_HOST, REDIS_CLUSTER_NODES, REDIS_SENTINELS). */
export const notConfiguredMessage = "Redis is not configured: set REDIS_URL (redis://host:port), REDIS_HOST, " +
  "REDIS_CLUSTER_NODES or REDIS_SENTINELS; " +
  "effect-lock will not fall back to an in-memory lock, which protects nothing across processes"

const oneLine = (text: string): string => redact(text.replace(/\s*\n\s*/g, "; ").trim())

/**
 * Reads the configuration and connects to Redis for the lifetime of the Scope.
 * Every failure is a `CliExit` with code 2 and a message without secrets.
 */
export const connect = (
  namespace: Option.Option<string>
): Effect.Effect<LockKv.LockKv.Service, CliExit, Scope.Scope> =>
  Effect.gen(function*() {
    const settings = yield* LockKv.settings.pipe(
      Effect.mapError((error) =>
        new CliExit({ code: ExitCodes.config, message: `invalid configuration: ${oneLine(String(error))}` })
      )
    )
    if (settings._tag === "Memory") {
      return yield* new CliExit({ code: ExitCodes.config, message: notConfiguredMessage })
    }
    if (Option.isSome(namespace) && namespace.value.trim() === "") {
      return yield* new CliExit({ code: ExitCodes.config, message: "--namespace must not be empty" })
    }
    const options: LockKv.LockKv.RedisOptions = Option.match(namespace, {
      onNone: () => settings.options,
      onSome: (ns) => ({ ...settings.options, namespace: ns })
    })
    return yield* LockKv.makeRedis(options).pipe(
      Effect.mapError((error) =>
        new CliExit({ code: ExitCodes.config, message: `cannot use Redis: ${oneLine(error.message)}` })
      )
    )
  })
