/**
 * `effect-lock status` and `effect-lock release --force`: looking at a lock
 * and removing it by hand, through the `LockKv` primitives (`get`, `pttl`,
 * `fence`, `del`).
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { format } from "../internal/duration.js"
import { CliExit, ExitCodes } from "./errors.js"
import * as Store from "./store.js"

/** What `status --json` prints (one line). */
export interface Status {
  readonly key: string
  readonly namespace: string
  readonly held: boolean
  /** Remaining time to live in milliseconds; null when free (or held without a TTL). */
  readonly ttlMs: number | null
  /** The last fencing token handed out for the key (the holder's when held); null if never acquired. */
  readonly fence: number | null
}

const storeFailure = (error: { readonly message: string }) =>
  new CliExit({ code: ExitCodes.config, message: `cannot use Redis: ${error.message}` })

/** Reads the state of `key`. */
export const status = (key: string, namespace: Option.Option<string>): Effect.Effect<Status, CliExit> =>
  Effect.scoped(Effect.gen(function*() {
    const store = yield* Store.connect(namespace)
    const [value, ttl, fence] = yield* Effect.all([store.get(key), store.pttl(key), store.fence(key)]).pipe(
      Effect.catchTags({
        LockKvError: storeFailure,
        InvalidArgument: (error) => new CliExit({ code: ExitCodes.config, message: error.message })
      })
    )
    return {
      key,
      namespace: store.namespace,
      held: Option.isSome(value),
      ttlMs: Option.isSome(value) ? Option.getOrNull(Option.map(ttl, Duration.toMillis)) : null,
      fence: Option.getOrNull(fence)
    }
  }))

/** One human line for a status. */
export const describe = (s: Status): string => {
  const name = `lock "${s.key}" (namespace "${s.namespace}")`
  if (s.held) {
    const ttl = s.ttlMs === null ? "no expiry" : `expires in ${format(s.ttlMs)}`
    return `${name}: held, ${ttl}, fence ${s.fence ?? "unknown"}`
  }
  return `${name}: free${s.fence === null ? "" : `, last fence ${s.fence}`}`
}

/** Deletes `key` whoever holds it; `true` when a lock was removed. Refuses without `force`. */
export const release = (
  key: string,
  namespace: Option.Option<string>,
  force: boolean
): Effect.Effect<boolean, CliExit> =>
  Effect.scoped(Effect.gen(function*() {
    if (!force) {
      return yield* new CliExit({
        code: ExitCodes.config,
        message: `refusing to release "${key}" without --force: ` +
          "deleting a lock that a running process holds lets a second holder in while the first still works"
      })
    }
    const store = yield* Store.connect(namespace)
    return yield* store.del(key).pipe(
      Effect.catchTags({
        LockKvError: storeFailure,
        InvalidArgument: (error) => new CliExit({ code: ExitCodes.config, message: error.message })
      })
    )
  }))
