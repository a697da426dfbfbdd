import * as Schema from "effect/Schema"

/** @internal */
export class LockKvError extends Schema.TaggedError<LockKvError>("effect-lock/LockKvError")("LockKvError", {
  operation: Schema.String,
  message: Schema.String,
  cause: Schema.optional(Schema.Defect)
}) {}

/** @internal */
export class InvalidArgument extends Schema.TaggedError<InvalidArgument>("effect-lock/InvalidArgument")(
  "InvalidArgument",
  {
    argument: Schema.String,
    message: Schema.String
  }
) {}
