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
