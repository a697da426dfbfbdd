/**
 * What ioredis' errors mean, and how to keep them safe to show. Never keep an
 * ioredis error as it is: its `command.args` carry the command's arguments,
 * for AUTH the password. Keep a fresh Error with its name and a scrubbed
 * message instead (`sanitize`).
 */
import { LockKvError } from "../errors.js"

const credentialsInUrl = /(rediss?:\/\/)[^@\s/]*@/gi

/** @internal */
export const scrub = (text: string, secrets: ReadonlyArray<string>): string => {
  let out = text.replace(credentialsInUrl, "$1<redacted>@")
  // Longest first, so a secret containing another is removed whole.
  for (const secret of [...secrets].sort((a, b) => b.length - a.length)) {
    out = out.split(secret).join("<redacted>")
  }
  return out
}

/** @internal */
export const sanitize = (error: unknown, secrets: ReadonlyArray<string>): Error => {
  const name = error instanceof Error && typeof error.name === "string" ? error.name : "Error"
  const message = error instanceof Error
    ? String(error.message)
    : typeof error === "string"
    ? error
    : "unknown error"
  const clean = new Error(scrub(message, secrets))
  clean.name = scrub(name, secrets)
  return clean
}

/** A command that got no reply within `millis` (the stall watchdog, the subscriber's `commandTimeout`). @internal */
export const noReplyWithin = (millis: number): string =>
  `Redis did not answer within ${millis / 1000}s (the command may or may not have run)`

/**
 * A short explanation of the well-known ioredis failures; `commandTimeoutMillis`
 * is the timeout behind ioredis' "Command timed out".
 *
 * @internal
 */
export const describe = (cause: Error, commandTimeoutMillis: number): string => {
  const message = cause.message
  if (cause.name === "MaxRetriesPerRequestError") {
    return "the connection to Redis was lost before the reply (the command may or may not have run)"
  }
  if (message.startsWith("Command timed out")) return noReplyWithin(commandTimeoutMillis)
  if (message.startsWith("Stream isn't writeable")) return "not connected to Redis"
  if (message.startsWith("Connection is closed")) return "the connection to Redis is closed"
  return message
}

/** @internal */
export const isAuthFailure = (error: Error | undefined): boolean =>
  error !== undefined && /WRONGPASS|NOAUTH|invalid password|invalid username-password/i.test(error.message)

/**
 * The reply to the SELECT ioredis sends on every new connection (ioredis
 * attaches the command to reply errors).
 *
 * @internal
 */
export const isSelectError = (error: unknown): boolean =>
  typeof error === "object" && error !== null && "command" in error &&
  typeof error.command === "object" && error.command !== null && "name" in error.command &&
  error.command.name === "select"

/** Redis does not have the script asked for by EVALSHA (it did not run). @internal */
export const isNoScript = (error: unknown): boolean =>
  error instanceof Error && typeof error.message === "string" && error.message.startsWith("NOSCRIPT")

/** A reply of a shape the store does not expect (a bug, or not a Redis server). @internal */
export const unexpected = (operation: string, reply: unknown): LockKvError =>
  new LockKvError({
    operation,
    message: `unexpected reply from Redis to ${operation}: ${JSON.stringify(reply)?.slice(0, 100)}`
  })
