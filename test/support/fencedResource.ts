import { Effect, Either } from "effect"
import { Lock } from "../../src/index.js"

/**
 * A resource that checks fences, as a storage service would: a write is
 * accepted only with a fence above every fence it accepted before.
 */
export const fencedResource = () => {
  let highest = 0
  const accepted: Array<number> = []
  const rejected: Array<{ readonly fence: number; readonly highest: number }> = []
  return {
    accepted,
    rejected,
    write: (fence: number) =>
      Effect.sync(() => {
        if (fence > highest) {
          highest = fence
          accepted.push(fence)
        } else {
          rejected.push({ fence, highest })
        }
      })
  }
}

/**
 * Takes `key` in turns forever (with `replicas: 1`, a 1.5 s ttl) and writes the
 * fence to `resource` in each 50 ms section, which a loss of the lock ends;
 * `outcomes` gets "ok" or the failure's tag for every turn. A failing store
 * fails fast, so every turn ends with 10 ms of rest rather than a spin.
 */
export const takeTurnsFenced = (
  key: string,
  resource: ReturnType<typeof fencedResource>,
  outcomes: Array<string>
) =>
  Effect.forever(
    Effect.scoped(
      Effect.flatMap(
        Lock.acquire(key, { ttl: "1500 millis", wait: "1 second", replicas: 1, replicasTimeout: "300 millis" }),
        (handle) =>
          Effect.raceFirst(
            Effect.zipRight(resource.write(handle.fence), Effect.sleep("50 millis")),
            Effect.flatMap(handle.lost, Effect.fail)
          )
      )
    ).pipe(
      Effect.either,
      Effect.flatMap((result) => Effect.sync(() => outcomes.push(Either.isLeft(result) ? result.left._tag : "ok"))),
      Effect.zipRight(Effect.sleep("10 millis"))
    )
  )
