import * as Schema from "effect/Schema"

/** @internal */
export class LockNotAcquired extends Schema.TaggedError<LockNotAcquired>("effect-lock/LockNotAcquired")(
  "LockNotAcquired",
  {
    key: Schema.String,
    message: Schema.String
  }
) {}

/** @internal */
export class LockLost extends Schema.TaggedError<LockLost>("effect-lock/LockLost")("LockLost", {
  key: Schema.String,
  message: Schema.String,
  cause: Schema.optional(Schema.Defect)
}) {}

/** A try found the lock held, or waiting for it ran out. */
export const notAcquired = (key: string): LockNotAcquired =>
  new LockNotAcquired({ key, message: `lock "${key}" is held elsewhere` })

/** The lock was taken, but had expired or been taken over by the time its reply arrived. */
export const notAcquiredAfterLoss = (key: string): LockNotAcquired =>
  new LockNotAcquired({ key, message: `lock "${key}" expired before its acquisition could be confirmed` })

/** @internal */
export class ReplicationNotConfirmed
  extends Schema.TaggedError<ReplicationNotConfirmed>("effect-lock/ReplicationNotConfirmed")(
    "ReplicationNotConfirmed",
    {
      key: Schema.String,
      /** How many replicas acknowledged the acquisition within `replicasTimeout`. */
      acked: Schema.Number,
      /** How many were asked for (`replicas`). */
      asked: Schema.Number,
      message: Schema.String
    }
  )
{}

/** The acquisition reached fewer replicas than asked: it has been undone. */
export const replicationNotConfirmed = (key: string, acked: number, asked: number): ReplicationNotConfirmed =>
  new ReplicationNotConfirmed({
    key,
    acked,
    asked,
    message: `lock "${key}" was acknowledged by ${acked} of ${asked} replicas in time; the acquisition was undone`
  })
