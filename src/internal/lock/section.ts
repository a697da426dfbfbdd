import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Runtime from "effect/Runtime"
import type { LockLost } from "./errors.js"
import type { Lease } from "./leases.js"

/**
 * Runs `effect`, the section of the lock held under `lease`, and gives its
 * exit: `LockLost` when the loss of the lock interrupted it. Never fails itself.
 *
 * The section runs in a fiber of its own, because interruption is per fiber: a
 * loss interrupts that fiber, and the caller goes on (with `LockLost`), as
 * `Effect.timeout` interrupts the fiber it races and not its caller. So that it
 * runs as if in the caller's fiber:
 * - it starts at once, on the caller's stack (`Runtime.runFork` starts its
 *   fiber immediately), with the caller's context, FiberRefs and runtime
 *   flags; a section that never suspends has ended when `runFork` returns;
 * - `Effect.transplant` puts the fibers it forks in the caller's fork scope:
 *   they are the caller's, and outlive the section as they would have;
 * - `Fiber.inheritAll` gives the caller the FiberRefs it set, whatever its exit;
 * - a caller interrupted while it waits interrupts the section and waits for
 *   its finalizers, so the lock is released only after them.
 */
export const guard = <A, E, R>(
  effect: Effect.Effect<A, E, R>,
  lease: Lease,
  restore: <AX, EX, RX>(effect: Effect.Effect<AX, EX, RX>) => Effect.Effect<AX, EX, RX>
): Effect.Effect<Exit.Exit<A, E | LockLost>, never, R> => {
  if (lease.lostError !== undefined) return Effect.succeed(Exit.fail(lease.lostError))
  return Effect.transplant((graft) =>
    Effect.flatMap(Effect.runtime<R>(), (runtime) => {
      const section = Runtime.runFork(runtime)(graft(restore(effect)))
      const ended = section.unsafePoll()
      if (ended !== null) return settle(section, ended, lease)
      let running = true
      const interrupt = () => {
        if (running) section.unsafeInterruptAsFork(section.id())
      }
      // Done before the release can only mean lost: interrupt it at once then.
      if (lease.done) interrupt()
      else lease.onLost.push(interrupt)
      return Effect.matchCauseEffect(restore(Fiber.await(section)), {
        onFailure: (interruption) =>
          Effect.flatMap(Fiber.interrupt(section), () => {
            running = false
            return Effect.as(Fiber.inheritAll(section), Exit.failCause(interruption))
          }),
        onSuccess: (exit) => {
          running = false
          return settle(section, exit, lease)
        }
      })
    })
  )
}

const settle = <A, E>(
  section: Fiber.Fiber<A, E>,
  exit: Exit.Exit<A, E>,
  lease: Lease
): Effect.Effect<Exit.Exit<A, E | LockLost>> =>
  Effect.as(
    Fiber.inheritAll(section),
    lease.lostError !== undefined && Exit.isInterrupted(exit) ? Exit.fail(lease.lostError) : exit
  )
