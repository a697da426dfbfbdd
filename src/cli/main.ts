/**
 * The entry point of the `effect-lock` binary (see bin/effect-lock.js).
 *
 * The program runs with `Effect.runFork` and no signal handlers of its own
 * (unlike `NodeRuntime.runMain`, which interrupts the main fiber on
 * SIGINT/SIGTERM): `exec` must forward those signals to the command and keep
 * the lock until the command has exited, so it takes them over itself.
 */
import * as Effect from "effect/Effect"
import { run } from "./cli.js"

// Keeps the event loop alive while the program waits on something Node does not see.
const keepAlive = setInterval(() => {}, 2 ** 31 - 1)

Effect.runFork(run(process.argv)).addObserver((exit) => {
  clearInterval(keepAlive)
  const code = exit._tag === "Success" ? exit.value : 70
  process.exitCode = code
  // Normally the event loop is empty by now and the process ends by itself,
  // having flushed stdout/stderr; if a handle lingers, do not hang on it.
  setTimeout(() => process.exit(code), 1_000).unref()
})
