import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as FiberId from "effect/FiberId"
import * as FiberRef from "effect/FiberRef"
import * as HashSet from "effect/HashSet"
import * as Runtime from "effect/Runtime"
import type { LockLost } from "./errors.js"
import type { Lease } from "./leases.js"

/**
 * Runs `effect`, the section of the lock held under `lease`, and gives its
 * exit: `LockLost` when the loss of the lock interrupted it. Never fails itself.
 *
 * What a caller sees is the same whichever way it runs (below):
 * - a lost lock interrupts the section, and only the section: the caller goes
 *   on with `LockLost`, and nested sections each lose only their own lock;
 * - fibers the section forks are supervised by it, as in the effect that
 *   `Effect.timeout` races: they end with the section (or when the lock is
 *   lost), so no work started under the lock outlives it; work meant to
 *   outlive it is forked with `forkDaemon`, `forkScoped` or `forkIn`;
 * - FiberRefs it sets stay set afterwards, whatever its exit;
 * - a caller interrupted while it runs interrupts it, and the lock is
 *   released only after its finalizers.
 *
 * Two ways, because interruption is per fiber:
 * - A caller without fibers of its own runs the section itself, like
 *   `Semaphore.withPermits`: no fiber per lock. A loss interrupts the caller's
 *   fiber with an interruptor of the section's own; once the section has
 *   ended, that interruption (and only it) is taken back out of the fiber's
 *   `FiberRef.interruptedCause`, and the fibers the section forked (the
 *   caller's only children) are interrupted.
 * - A caller with fibers of its own would lose them with the lock (a fiber
 *   interrupts its children when interrupted), so its section runs in a fiber
 *   of its own (the documented way, as `Effect.timeout` does it), started at
 *   once on the caller's stack, whose FiberRefs the caller inherits.
 *
 * The first way uses `FiberRuntime.getChildren`, which the public `Fiber`
 * type does not show, and the public `FiberRef.interruptedCause` as Effect's
 * own runtime does. It is kept for what it saves (issue 16's rule: internals
 * only with an interleaved A/B of 5 % or more, recorded here), against
 * every section in a fiber of its own (bench/ab/section-own-fiber.patch):
 * `npm run bench -- --baseline HEAD --baseline-patch
 * bench/ab/section-own-fiber.patch --only uncontended,memory --rounds 12`,
 * working tree ÷ baseline, ops/s (client CPU per op), median of 12 rounds,
 * 2026-12-03, two runs (the second at f4f8293, load average about 4):
 * - memory withLock, 1 fiber: 2.5×, 2.5× (0.37×, 0.42×); 8 fibers: 3.0×, 2.8× (0.30×, 0.34×);
 * - Redis withLock, uncontended: 1.15×, 1.23× (0.86×, 0.76×);
 * - control, scoped acquire (no section): 1.07×/1.04×, 1.11×/1.03×.
 */
export const guard = <A, E, R>(
  effect: Effect.Effect<A, E, R>,
  lease: Lease,
  restore: <AX, EX, RX>(effect: Effect.Effect<AX, EX, RX>) => Effect.Effect<AX, EX, RX>
): Effect.Effect<Exit.Exit<A, E | LockLost>, never, R> =>
  Effect.withFiberRuntime((fiber) => {
    if (lease.lostError !== undefined) return Effect.succeed(Exit.fail(lease.lostError))
    return childrenOf(fiber)?.size === 0
      ? inCallerFiber(fiber, effect, lease, restore)
      : inOwnFiber(effect, lease, restore)
  })

/** `FiberRuntime.getChildren`: the fibers it forked that still run. */
interface WithChildren {
  readonly getChildren?: () => ReadonlySet<Fiber.RuntimeFiber<unknown, unknown>>
}

/** The fibers `fiber` forked that still run; undefined if Effect stops offering them (then every section gets a fiber). */
const childrenOf = (
  fiber: Fiber.RuntimeFiber<unknown, unknown>
): ReadonlySet<Fiber.RuntimeFiber<unknown, unknown>> | undefined => {
  const getChildren = (fiber as unknown as WithChildren).getChildren
  return typeof getChildren === "function" ? getChildren.call(fiber) : undefined
}

/** The result of a section: its loss, when the loss interrupted it. */
const settled = <A, E>(exit: Exit.Exit<A, E>, lease: Lease): Exit.Exit<A, E | LockLost> =>
  lease.lostError !== undefined && Exit.isInterrupted(exit) ? Exit.fail(lease.lostError) : exit

let lossInterrupts = 0
/** An interruptor of a section's own: sections nest, and each must take back only its own. */
const makeLossInterruptor = (): FiberId.FiberId => FiberId.make(-1, ++lossInterrupts)

const withoutInterruptor = (id: FiberId.FiberId) => (cause: Cause.Cause<never>): Cause.Cause<never> => {
  const all = Cause.interruptors(cause)
  const others = HashSet.remove(all, id)
  if (HashSet.size(others) === HashSet.size(all)) return cause
  // The cause holds interruptions only (that is all the runtime puts there).
  let rest: Cause.Cause<never> = Cause.empty
  for (const other of others) rest = Cause.sequential(rest, Cause.interrupt(other))
  return rest
}

const inCallerFiber = <A, E, R>(
  fiber: Fiber.RuntimeFiber<unknown, unknown>,
  effect: Effect.Effect<A, E, R>,
  lease: Lease,
  restore: <AX, EX, RX>(effect: Effect.Effect<AX, EX, RX>) => Effect.Effect<AX, EX, RX>
): Effect.Effect<Exit.Exit<A, E | LockLost>, never, R> => {
  let running = true
  let interruptor: FiberId.FiberId | undefined
  lease.onLost.push(() => {
    if (!running) return
    interruptor = makeLossInterruptor()
    fiber.unsafeInterruptAsFork(interruptor)
  })
  return Effect.flatMap(Effect.exit(restore(effect)), (exit) => {
    running = false
    const result = Effect.succeed(settled(exit, lease))
    // Every child of the caller now was forked by the section: they end with it.
    const forks = childrenOf(fiber)
    const ended = forks !== undefined && forks.size > 0
      ? Effect.zipRight(Fiber.interruptAll(Array.from(forks)), result)
      : result
    if (interruptor === undefined) return ended
    // The interruption reached the fiber before this step (a fiber reads its
    // messages before each step): take it out again.
    return Effect.zipRight(FiberRef.update(FiberRef.interruptedCause, withoutInterruptor(interruptor)), ended)
  })
}

const inOwnFiber = <A, E, R>(
  effect: Effect.Effect<A, E, R>,
  lease: Lease,
  restore: <AX, EX, RX>(effect: Effect.Effect<AX, EX, RX>) => Effect.Effect<AX, EX, RX>
): Effect.Effect<Exit.Exit<A, E | LockLost>, never, R> =>
  Effect.flatMap(Effect.runtime<R>(), (runtime) => {
    // `runFork` starts the fiber at once, on this stack: a section that never suspends has ended when it returns.
    const section = Runtime.runFork(runtime)(restore(effect))
    const ended = section.unsafePoll()
    if (ended !== null) return inherit(section, ended, lease)
    let running = true
    const interrupt = () => {
      if (running) section.unsafeInterruptAsFork(section.id())
    }
    // Done before the release can only mean lost: interrupt it at once then.
    if (lease.done) interrupt()
    else lease.onLost.push(interrupt)
    return Effect.matchCauseEffect(restore(Fiber.await(section)), {
      // The caller was interrupted: so is the section, and the lock waits for its finalizers.
      onFailure: (interruption) =>
        Effect.flatMap(Fiber.interrupt(section), () => {
          running = false
          return Effect.as(Fiber.inheritAll(section), Exit.failCause(interruption))
        }),
      onSuccess: (exit) => {
        running = false
        return inherit(section, exit, lease)
      }
    })
  })

/** The caller takes on the FiberRefs the section set. */
const inherit = <A, E>(
  section: Fiber.Fiber<A, E>,
  exit: Exit.Exit<A, E>,
  lease: Lease
): Effect.Effect<Exit.Exit<A, E | LockLost>> => Effect.as(Fiber.inheritAll(section), settled(exit, lease))
