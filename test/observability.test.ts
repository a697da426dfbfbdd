/** Metrics and spans: recorded under the documented names, tagged by backend, the key as a span attribute. */
import { expect, layer } from "@effect/vitest"
import { Effect, Exit, Metric, Option } from "effect"
import { Lock, LockKv } from "../src/index.js"
import { observe } from "./support/observe.js"

const memory = { acquisitions: Lock.lockMetrics.acquisitions, contention: Lock.lockMetrics.contention }
const counter = (name: "acquisitions" | "contention") => Metric.tagged(memory[name], "backend", "memory")
const histogram = (name: "waitTime" | "holdTime") => Metric.tagged(Lock.lockMetrics[name], "backend", "memory")

// One memory store for the block: each test uses keys of its own.
layer(LockKv.layerMemory)("observability", (it) => {
  it("the documented names", () => {
    expect(Lock.metricNames).toEqual({
      acquisitions: "effect_lock_acquisitions_total",
      contention: "effect_lock_contention_total",
      lost: "effect_lock_lost_total",
      waitTime: "effect_lock_wait_ms",
      holdTime: "effect_lock_hold_ms"
    })
  })

  it.effect("metrics: acquisitions, contention, wait and hold times, tagged with the backend", () =>
    Effect.gen(function*() {
      const before = {
        acquisitions: (yield* Metric.value(counter("acquisitions"))).count,
        contention: (yield* Metric.value(counter("contention"))).count,
        holds: (yield* Metric.value(histogram("holdTime"))).count,
        waits: (yield* Metric.value(histogram("waitTime"))).count
      }
      yield* Lock.withLock(Effect.void, "m1")
      const busy = yield* Lock.withLock("m2")(Lock.tryWithLock("m2")(Effect.void))
      expect(busy).toEqual(Option.none())
      expect((yield* Metric.value(counter("acquisitions"))).count).toBe(before.acquisitions + 2)
      expect((yield* Metric.value(counter("contention"))).count).toBe(before.contention + 1)
      expect((yield* Metric.value(histogram("holdTime"))).count).toBe(before.holds + 2)
      expect((yield* Metric.value(histogram("waitTime"))).count).toBe(before.waits + 2)
    }))

  it.effect("spans: acquire and release carry the key, never the token, when a tracer is installed", () =>
    Effect.gen(function*() {
      let token = ""
      const observed = yield* observe(
        Effect.scoped(Effect.map(Lock.acquire("traced"), (handle) => {
          token = handle.token
        }))
      )
      expect(Exit.isSuccess(observed.exit)).toBe(true)
      const ours = observed.spans.filter((span) => span.name.startsWith("effect-lock."))
      expect(ours.map((span) => span.name).sort()).toEqual(["effect-lock.acquire", "effect-lock.release"])
      for (const span of ours) {
        expect(span.attributes.get("lock.key")).toBe("traced")
        expect([...span.attributes.values()]).not.toContain(token)
      }
    }))
})
