/**
 * How a CLI command ends when it does not end with 0: an exit code and, when
 * there is something to say, one line for stderr.
 */
import * as Data from "effect/Data"

/** Exit codes the CLI uses itself (the command's own codes pass through). */
export const ExitCodes = {
  /** `status`: the lock is free. */
  free: 1,
  /** Configuration, usage or connection errors. */
  config: 2,
  /** The lock was lost while the command ran. */
  lost: 3,
  /** Not executable / cannot be started. */
  cannotExecute: 126,
  /** Command not found. */
  notFound: 127,
  /** A bug in the CLI (an unexpected defect). */
  internal: 70
} as const

/**
 * A command line the CLI cannot read (an unknown option, a missing value or
 * argument): exit 2, with the message, the usage line of `command` and a hint
 * to its `--help`.
 */
export class UsageError extends Data.TaggedError("UsageError")<{
  readonly message: string
  /** The subcommand whose usage applies; undefined for the top level. */
  readonly command?: string | undefined
}> {}

/** Ends the CLI with `code`, printing `message` (one line, prefixed `effect-lock: `) when given. */
export class CliExit extends Data.TaggedError("CliExit")<{
  readonly code: number
  readonly message?: string | undefined
}> {}

/**
 * Masks credentials in anything printed: the `user:password@` part of URLs.
 * The library already keeps secrets out of its errors; this is a second fence
 * for messages that quote configuration. (`[` and `]` cannot appear unescaped
 * in a URL's userinfo, so a usage hint like `redis://[user:password@]host` stays readable.)
 */
export const redact = (text: string): string => text.replace(/([a-z][a-z0-9+.-]*:\/\/)[^/\s@[\]]*@/gi, "$1***@")
