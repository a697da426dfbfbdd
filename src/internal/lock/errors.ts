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
