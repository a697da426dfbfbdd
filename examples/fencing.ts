// Fencing: a TTL lock cannot stop a holder that was paused (GC, VM freeze) past
// its TTL from writing after a new holder took over. The fence can: the
// resource remembers the highest fence it has seen and refuses older ones.
import { Console, Effect, Ref } from "effect"
import { Lock, LockKv } from "../src/index.js"

// A protected resource (a database row, a file, an API) that checks fences.
const makeStorage = Effect.map(Ref.make({ highestFence: 0, value: "" }), (state) => ({
  write: (fence: number, value: string) =>
    Ref.modify(state, (s) =>
      fence < s.highestFence
        ? [false, s] // a stale holder: refuse
        : [true, { highestFence: fence, value }])
}))

const program = Effect.gen(function*() {
  const storage = yield* makeStorage
  // Holder A takes the lock, then stalls (here: its fence is simply kept for later).
  const staleFence = yield* Effect.scoped(Effect.map(Lock.acquire("row:7"), (lock) => lock.fence))
  // Holder B takes the lock after A's ended and writes.
  const accepted = yield* Effect.scoped(
    Effect.flatMap(Lock.acquire("row:7"), (lock) => storage.write(lock.fence, "written by B"))
  )
  // A wakes up and tries to write with its old fence: refused.
  const stale = yield* storage.write(staleFence, "written by A")
  yield* Console.log(`B accepted: ${accepted}, stale A accepted: ${stale}`)
})

Effect.runPromise(program.pipe(Effect.provide(LockKv.layerMemory)))
