import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import * as MetricBoundaries from "effect/MetricBoundaries"

/** Milliseconds, 1 ms … ~65 s. */
const boundaries = MetricBoundaries.exponential({ start: 1, factor: 2, count: 17 })

/** The metric names, also exported as `Lock.metricNames`. */
export const names = {
  acquisitions: "effect_lock_acquisitions_total",
  contention: "effect_lock_contention_total",
  lost: "effect_lock_lost_total",
  waitTime: "effect_lock_wait_ms",
  holdTime: "effect_lock_hold_ms"
} as const

/** Every metric carries a `backend` tag ("redis" | "memory"); never the key (unbounded cardinality). */
export const acquisitions = Metric.counter(names.acquisitions, {
  description: "Locks acquired",
  incremental: true
})
export const contention = Metric.counter(names.contention, {
  description: "Acquisition tries that found the lock held",
  incremental: true
})
export const lost = Metric.counter(names.lost, {
  description: "Held locks found taken, expired or unconfirmable",
  incremental: true
})
export const waitTime = Metric.histogram(
  names.waitTime,
  boundaries,
  "Time from the first try to acquisition, in milliseconds"
)
export const holdTime = Metric.histogram(
  names.holdTime,
  boundaries,
  "Time from acquisition to release, in milliseconds"
)

const forBackend = (backend: string) => ({
  acquisitions: Metric.tagged(acquisitions, "backend", backend),
  contention: Metric.tagged(contention, "backend", backend),
  lost: Metric.tagged(lost, "backend", backend),
  waitTime: Metric.tagged(waitTime, "backend", backend),
  holdTime: Metric.tagged(holdTime, "backend", backend)
})
const byBackend = { redis: forBackend("redis"), memory: forBackend("memory") }
type Backend = keyof typeof byBackend

// Synchronous updates: a lock cycle records two or three of them, and as
// effects they would cost more than the in-memory lock itself.
export const recordContention = (backend: Backend): void => byBackend[backend].contention.unsafeUpdate(1, [])
export const recordLost = (backend: Backend) => Effect.sync(() => byBackend[backend].lost.unsafeUpdate(1, []))
export const recordAcquired = (backend: Backend, waitedMillis: number): void => {
  byBackend[backend].acquisitions.unsafeUpdate(1, [])
  byBackend[backend].waitTime.unsafeUpdate(waitedMillis, [])
}
export const recordHoldTime = (backend: Backend, heldMillis: number): void =>
  byBackend[backend].holdTime.unsafeUpdate(heldMillis, [])
