/** One measured round of a Redis scenario: what it cost the client and the server. */
import {
  addCounts,
  addServerDeltas,
  type CommandCounts,
  sentSnapshot,
  type ServerDelta,
  type ServerStats,
  subtractCounts
} from "./commands.js"
import { collectGarbage, cpuMicros } from "./time.js"

export interface RoundTotals {
  cpuUs: number
  sent: CommandCounts
  server: ServerDelta
}

/**
 * Runs `run` after a GC, and adds its client CPU time, the commands the clients
 * sent and the server's deltas (commandstats, CPU) to `into`.
 */
export const measureRound = async <A>(server: ServerStats, into: RoundTotals, run: () => Promise<A>): Promise<A> => {
  collectGarbage()
  const before = await server.snapshot()
  const sentBefore = sentSnapshot()
  const cpuStart = cpuMicros()
  const result = await run()
  into.cpuUs += cpuMicros() - cpuStart
  const sentAfter = sentSnapshot()
  const after = await server.snapshot()
  into.sent = addCounts(into.sent, subtractCounts(sentAfter, sentBefore))
  into.server = addServerDeltas(into.server, server.delta(before, after))
  return result
}
