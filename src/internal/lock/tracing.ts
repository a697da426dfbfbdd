import * as Effect from "effect/Effect"
import type * as Tracer from "effect/Tracer"

/** The tracer a runtime has when none was installed: its spans go nowhere. */
const defaultTracer: Tracer.Tracer = Effect.runSync(Effect.tracer)

export const isDefaultTracer = (tracer: Tracer.Tracer): boolean => tracer === defaultTracer

/**
 * `Effect.withSpan`, but only when a real tracer is installed (OpenTelemetry,
 * a test recorder): with the default tracer a span costs about as much as a
 * whole in-memory lock cycle and reaches no one.
 */
export const withSpan =
  (name: string, attributes: Record<string, unknown>) =>
  <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    Effect.tracerWith((tracer) => spanIf(tracer !== defaultTracer, self, name, attributes))

/** `self` in a span when `traced` (the caller already knows its tracer), else `self` as is. */
export const spanIf = <A, E, R>(
  traced: boolean,
  self: Effect.Effect<A, E, R>,
  name: string,
  attributes: Record<string, unknown>
): Effect.Effect<A, E, R> => traced ? Effect.withSpan(self, name, { attributes, captureStackTrace: false }) : self
