/**
 * Counting Redis commands two ways:
 *
 * - executed, on the server: `INFO commandstats` deltas. Redis counts the
 *   commands a Lua script runs (`redis.call`) as well as the EVALSHA itself, so
 *   an acquire script that does SET + INCR counts 3.
 * - sent, by this process: every command an ioredis client writes, counted by
 *   wrapping `Redis.prototype.sendCommand` (one ioredis copy serves every
 *   contender and effect-lock itself). This is the number of round trips' worth
 *   of commands; a command re-sent from the offline queue is counted once.
 *
 * The bench's own connections (the INFO reader, the cross-process "holders"
 * probe) are excluded from the sent count, and the INFO reader's own call is
 * taken out of the executed delta.
 */
import { Redis } from "ioredis"

export interface CommandCounts {
  readonly total: number
  readonly byCommand: Readonly<Record<string, number>>
}

export const emptyCounts: CommandCounts = { total: 0, byCommand: {} }

export const addCounts = (a: CommandCounts, b: CommandCounts): CommandCounts => {
  const byCommand: Record<string, number> = { ...a.byCommand }
  for (const [name, n] of Object.entries(b.byCommand)) byCommand[name] = (byCommand[name] ?? 0) + n
  return { total: a.total + b.total, byCommand }
}

export const subtractCounts = (after: CommandCounts, before: CommandCounts): CommandCounts => {
  const byCommand: Record<string, number> = {}
  for (const [name, n] of Object.entries(after.byCommand)) {
    const d = n - (before.byCommand[name] ?? 0)
    if (d !== 0) byCommand[name] = d
  }
  return { total: after.total - before.total, byCommand }
}

/** Removes `n` calls of `name` (e.g. the bench's own probes) from a delta. */
export const withoutCalls = (counts: CommandCounts, name: string, n: number): CommandCounts => {
  if (n === 0) return counts
  const byCommand: Record<string, number> = { ...counts.byCommand }
  const left = (byCommand[name] ?? 0) - n
  if (left === 0) delete byCommand[name]
  else byCommand[name] = left
  return { total: counts.total - n, byCommand }
}

/** `"evalsha 1.00, set 1.00"`: per-unit calls, largest first, for the tables. */
export const perUnit = (counts: CommandCounts, units: number, limit = 6): string =>
  Object.entries(counts.byCommand)
    .filter(([, n]) => n !== 0)
    .sort((a, b) => b[1] - a[1])
    .slice(0, limit)
    .map(([name, n]) => `${name} ${(n / units).toFixed(2)}`)
    .join(", ")

// -----------------------------------------------------------------------------
// Sent (client side)
// -----------------------------------------------------------------------------

const excluded = new WeakSet<Redis>()
const seen = new WeakSet<object>()
const sentByCommand = new Map<string, number>()
let sentTotal = 0
let installed = false

/** Wraps `sendCommand` once per process. Cheap: a WeakSet check and a Map increment. */
export const installSentCounter = (): void => {
  if (installed) return
  installed = true
  const proto = Redis.prototype
  const original = proto.sendCommand
  proto.sendCommand = function(this: Redis, ...args: Parameters<typeof original>) {
    const command = args[0]
    if (!excluded.has(this) && !seen.has(command)) {
      seen.add(command)
      sentTotal++
      sentByCommand.set(command.name, (sentByCommand.get(command.name) ?? 0) + 1)
    }
    return original.apply(this, args)
  }
}

/** Leaves a connection of the bench itself out of the sent count. */
export const excludeFromSent = (client: Redis): Redis => {
  excluded.add(client)
  return client
}

export const sentSnapshot = (): CommandCounts => ({ total: sentTotal, byCommand: Object.fromEntries(sentByCommand) })

// -----------------------------------------------------------------------------
// Executed (server side)
// -----------------------------------------------------------------------------

export interface ServerSnapshot {
  readonly calls: CommandCounts
  /** used_cpu_sys + used_cpu_user of redis-server, seconds. */
  readonly cpuSeconds: number
}

export interface ServerDelta {
  readonly executed: CommandCounts
  readonly cpuSeconds: number
}

export const emptyServerDelta: ServerDelta = { executed: emptyCounts, cpuSeconds: 0 }

export const addServerDeltas = (a: ServerDelta, b: ServerDelta): ServerDelta => ({
  executed: addCounts(a.executed, b.executed),
  cpuSeconds: a.cpuSeconds + b.cpuSeconds
})

const parseInfo = (text: string): ServerSnapshot => {
  const byCommand: Record<string, number> = {}
  let total = 0
  let cpu = 0
  for (const line of text.split(/\r?\n/)) {
    const stat = /^cmdstat_([^:]+):calls=(\d+)/.exec(line)
    if (stat !== null) {
      const n = Number(stat[2])
      byCommand[stat[1]!] = n
      total += n
      continue
    }
    const used = /^used_cpu_(sys|user):([\d.]+)/.exec(line)
    if (used !== null) cpu += Number(used[2])
  }
  return { calls: { total, byCommand }, cpuSeconds: cpu }
}

/** A dedicated connection that reads `INFO commandstats cpu` around each measured window. */
export interface ServerStats {
  readonly snapshot: () => Promise<ServerSnapshot>
  /** after − before, without the INFO call that took `before`. */
  readonly delta: (before: ServerSnapshot, after: ServerSnapshot) => ServerDelta
  readonly version: () => Promise<string>
  readonly client: Redis
  readonly close: () => Promise<void>
}

export const connectServerStats = async (url: string): Promise<ServerStats> => {
  const client = excludeFromSent(new Redis(url, { lazyConnect: true, connectionName: "bench-info" }))
  await client.connect()
  const info = async (...sections: Array<string>): Promise<string> => {
    const reply: unknown = await client.call("INFO", ...sections)
    return typeof reply === "string" ? reply : String(reply)
  }
  return {
    client,
    snapshot: async () => parseInfo(await info("commandstats", "cpu")),
    delta: (before, after) => ({
      executed: withoutCalls(subtractCounts(after.calls, before.calls), "info", 1),
      cpuSeconds: after.cpuSeconds - before.cpuSeconds
    }),
    version: async () => /redis_version:(\S+)/.exec(await info("server"))?.[1] ?? "unknown",
    close: async () => {
      await client.quit().catch(() => client.disconnect())
    }
  }
}
