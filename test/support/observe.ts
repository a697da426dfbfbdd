/**
 * Everything a program lets out, for the secret checks: every log record at
 * every level (message, annotations, cause, span names), every span (name,
 * attributes, events and their attributes, exit), and every printed form of an
 * exit (Cause.pretty, String, JSON, inspect, the stack of each error).
 */
import * as Cause from "effect/Cause"
import type * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as HashMap from "effect/HashMap"
import * as List from "effect/List"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import type * as Option from "effect/Option"
import * as Tracer from "effect/Tracer"
import { inspect } from "node:util"

export interface LogRecord {
  readonly level: LogLevel.LogLevel
  readonly text: string
}

class RecordingSpan implements Tracer.Span {
  readonly _tag = "Span"
  readonly spanId = Math.random().toString(16).slice(2)
  readonly traceId: string
  readonly sampled = true
  status: Tracer.SpanStatus
  readonly attributes = new Map<string, unknown>()
  readonly events: Array<readonly [string, Record<string, unknown>]> = []
  readonly links: Array<Tracer.SpanLink>
  constructor(
    readonly name: string,
    readonly parent: Option.Option<Tracer.AnySpan>,
    readonly context: Context.Context<never>,
    links: ReadonlyArray<Tracer.SpanLink>,
    startTime: bigint,
    readonly kind: Tracer.SpanKind
  ) {
    this.status = { _tag: "Started", startTime }
    this.traceId = parent._tag === "Some" ? parent.value.traceId : "trace"
    this.links = [...links]
  }
  end(endTime: bigint, exit: Exit.Exit<unknown, unknown>): void {
    this.status = { _tag: "Ended", startTime: this.status.startTime, endTime, exit }
  }
  attribute(key: string, value: unknown): void {
    this.attributes.set(key, value)
  }
  event(name: string, _startTime: bigint, attributes?: Record<string, unknown>): void {
    this.events.push([name, attributes ?? {}])
  }
  addLinks(links: ReadonlyArray<Tracer.SpanLink>): void {
    for (const link of links) this.links.push(link)
  }
}

const show = (value: unknown): string => inspect(value, { depth: 12, breakLength: Infinity })

/** Every printed form of an error, its cause chain included. */
export const printed = (error: unknown, depth = 0): string => {
  if (error === null || error === undefined || depth > 5) return String(error)
  const parts = [String(error), show(error)]
  try {
    parts.push(JSON.stringify(error) ?? "")
  } catch {
    // circular: inspect covers it
  }
  if (error instanceof Error) {
    parts.push(error.stack ?? "", error.message)
    if ("cause" in error) parts.push(printed(error.cause, depth + 1))
  }
  return parts.join("\n")
}

/** Every printed form of an exit. */
export const printedExit = (exit: Exit.Exit<unknown, unknown>): string =>
  Exit.isSuccess(exit)
    ? show(exit.value)
    : [
      Cause.pretty(exit.cause),
      show(exit.cause),
      ...[...Cause.failures(exit.cause), ...Cause.defects(exit.cause)].map((e) => printed(e))
    ]
      .join("\n")

export interface Observed<A, E> {
  readonly exit: Exit.Exit<A, E>
  readonly logs: ReadonlyArray<LogRecord>
  readonly spans: ReadonlyArray<RecordingSpan>
  /** Logs, spans and the exit, printed. */
  readonly everything: () => string
}

const spanText = (span: RecordingSpan): string =>
  [
    span.name,
    show([...span.attributes]),
    show(span.events),
    span.status._tag === "Ended" ? printedExit(span.status.exit) : ""
  ].join("\n")

/** Runs `effect` with a logger at every level and a recording tracer, and keeps what they saw. */
export const observe = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<Observed<A, E>, never, R> =>
  Effect.gen(function*() {
    const logs: Array<LogRecord> = []
    const spans: Array<RecordingSpan> = []
    const logger = Logger.make(({ annotations, cause, logLevel, message, spans: logSpans }) => {
      logs.push({
        level: logLevel,
        text: [
          show(message),
          show([...HashMap.toEntries(annotations)]),
          Cause.isEmpty(cause) ? "" : Cause.pretty(cause),
          show(List.toArray(logSpans).map((s) => s.label))
        ].join("\n")
      })
    })
    const tracer = Tracer.make({
      span: (name, parent, context, links, startTime, kind) => {
        const span = new RecordingSpan(name, parent, context, links, startTime, kind)
        spans.push(span)
        return span
      },
      context: (f) => f()
    })
    const exit = yield* effect.pipe(
      Effect.withTracer(tracer),
      Effect.provide(Logger.replace(Logger.defaultLogger, logger)),
      Logger.withMinimumLogLevel(LogLevel.All),
      Effect.exit
    )
    return {
      exit,
      logs,
      spans,
      everything: () => [printedExit(exit), ...logs.map((l) => l.text), ...spans.map(spanText)].join("\n")
    }
  })
