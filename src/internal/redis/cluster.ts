/**
 * The Redis store on a Redis Cluster: ioredis' `Cluster` client, with the
 * options that keep every command bounded in time and never sent late, a
 * per-node stall watchdog, and the master node of a key's slot (for WAIT,
 * which must follow the write on the same connection).
 *
 * The scripts stay as they are: each touches only keys in its lock key's slot
 * (`lockKeys`), so ioredis routes it by its first key. Release notices go by
 * sharded pub/sub where the cluster has it (shardedChannel.ts), else by plain
 * PUBLISH/SUBSCRIBE, which Redis forwards over the cluster bus to every node.
 */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { Cluster, type ClusterOptions, Command, type Redis } from "ioredis"
import type * as LockKv from "../../LockKv.js"
import type { StallWatch } from "./call.js"
import { acquireConnection, commandTimeoutMillis, type Connection } from "./connection.js"
import { noReplyWithin } from "./errors.js"
import { clientOptions, type ResolvedOptions } from "./options.js"
import { makeScripts, type Scripts } from "./scripts.js"

const stallCheckMillis = 250

/**
 * ioredis' cluster options. No command may run after the Effect that sent it
 * gave up (a late acquire would leave a lock nobody owns), so nothing waits
 * inside ioredis for long:
 *
 * - `enableOfflineQueue: false`: while the cluster is not ready, a command
 *   fails at once instead of being queued.
 * - `retryDelayOnFailover: 0`, `retryDelayOnClusterDown: 0`: a command whose
 *   node connection closed, or that met CLUSTERDOWN, fails at once (its
 *   outcome is unknown: the lock engine confirms or undoes it by token, and
 *   retries in Effect, within its own deadline) rather than be re-sent by a
 *   timer that knows nothing of that deadline.
 * - MOVED and ASK are followed at once (`retryDelayOnMoved: 0`): the command
 *   did not run, and is re-sent in the same turn to the node that has the
 *   slot, still while its caller waits. TRYAGAIN (a multi-key command during
 *   a slot migration) is re-sent after 20 ms, at most `maxRedirections` (8)
 *   redirections in all: under 200 ms. Re-sends keep their order, so the
 *   release that undoes an acquisition never overtakes it.
 * - Node connections (made by ioredis) never re-send a command after a
 *   disconnect (`maxRetriesPerRequest: 0`, `autoResendUnfulfilledCommands:
 *   false`) and are not reconnected (ioredis drops a lost node and finds the
 *   new master from the slots). A new node connection queues commands only
 *   while it connects, within 3 s (its `connectTimeout`, capped).
 */
const clusterOptions = (
  resolved: ResolvedOptions,
  retryStrategy: (times: number) => number | null,
  connectionName: string,
  extra: Partial<Redis["options"]> = {}
): ClusterOptions => {
  const {
    db: _db,
    enableOfflineQueue: _offline,
    host: _host,
    lazyConnect: _lazy,
    port: _port,
    reconnectOnError: _reconnect,
    retryStrategy: _retry,
    ...redisOptions
  } = clientOptions(resolved, retryStrategy)
  return {
    lazyConnect: true,
    enableOfflineQueue: false,
    enableReadyCheck: true,
    clusterRetryStrategy: retryStrategy,
    scaleReads: "master",
    maxRedirections: 8,
    retryDelayOnMoved: 0,
    retryDelayOnFailover: 0,
    retryDelayOnClusterDown: 0,
    retryDelayOnTryAgain: 20,
    slotsRefreshTimeout: 1000,
    slotsRefreshInterval: 2000,
    redisOptions: {
      ...redisOptions,
      // A node connection queues commands while it connects (ioredis turns its
      // offline queue on): that wait is bounded like a reply, by the command timeout.
      connectTimeout: Math.min(redisOptions.connectTimeout ?? commandTimeoutMillis, commandTimeoutMillis),
      ...extra,
      connectionName
    }
  }
}

/**
 * The stall watchdog of a cluster client: every `stallCheckMillis` it looks at
 * the oldest command each node connection awaits a reply to; one that has
 * waited `commandTimeoutMillis` means a silent node (frozen, half-open TCP),
 * whose socket is then destroyed: its commands fail at once, and ioredis finds
 * the slot's master again. No timer per command.
 */
const watchNodes = (cluster: Cluster): Effect.Effect<StallWatch, never, Scope.Scope> =>
  Effect.suspend(() => {
    let drops = 0
    const oldest = new WeakMap<Redis, { readonly command: unknown; readonly since: number }>()
    const noop = () => {}
    const watch: StallWatch = {
      sent: noop,
      settled: noop,
      get drops() {
        return drops
      }
    }
    const look = () => {
      const now = performance.now()
      for (const node of cluster.nodes("all")) {
        const head: unknown = node.commandQueue.peekFront()
        if (head === undefined) {
          oldest.delete(node)
          continue
        }
        const seen = oldest.get(node)
        if (seen === undefined || seen.command !== head) {
          oldest.set(node, { command: head, since: now })
        } else if (now - seen.since >= commandTimeoutMillis) {
          drops++
          oldest.set(node, { command: head, since: now })
          node.stream?.destroy(new Error(noReplyWithin(commandTimeoutMillis)))
        }
      }
    }
    return Effect.as(
      Effect.acquireRelease(
        Effect.sync(() => {
          const timer = setInterval(look, stallCheckMillis)
          timer.unref()
          return timer
        }),
        (timer) => Effect.sync(() => clearInterval(timer))
      ),
      watch
    )
  })

/** @internal */
export interface ClusterWiring {
  readonly main: Connection<Cluster>
  readonly subscriber: Connection<Cluster>
  readonly watch: Effect.Effect<StallWatch, never, Scope.Scope>
  /**
   * The connection to the master serving `key`'s slot now, and the scripts
   * sent on it: a command and a WAIT sent through it back to back are one
   * pipeline on one connection. Throws when no master is known for the slot.
   */
  readonly masterOf: (key: string) => { readonly node: Redis; readonly scripts: Scripts }
  /**
   * Where a MOVED or ASK met on a master's connection (outside ioredis'
   * routing) points: that node's connection and scripts, and whether ASKING
   * must precede the command. A MOVED also has ioredis read the slots again.
   */
  readonly redirect: (
    error: unknown
  ) => { readonly node: Redis; readonly scripts: Scripts; readonly asking: boolean } | undefined
}

/**
 * Two cluster clients (commands, release channel), not connected yet (see
 * `connection.connect`), held in the Scope.
 *
 * @internal
 */
export const acquireCluster = (
  resolved: ResolvedOptions,
  nodes: ReadonlyArray<LockKv.LockKv.Address>
): Effect.Effect<ClusterWiring, never, Scope.Scope> =>
  Effect.gen(function*() {
    const runtime = yield* Effect.runtime<never>()
    const startupNodes = nodes.map(({ host, port }) => ({ host, port }))
    const main = yield* acquireConnection(
      "command",
      0,
      resolved,
      runtime,
      (retryStrategy) => {
        const cluster = new Cluster(startupNodes, clusterOptions(resolved, retryStrategy, "effect-lock"))
        // ioredis makes node connections lazily, and without an offline queue a command
        // that finds its node still connecting fails ("Connection is closed"): after a
        // slot moves to a master not used yet, or a failover, a renewal would fail for
        // nothing. So once the cluster is ready, every node it knows of is connected at
        // once. (Not before: its ready check would meet such a node and fail.)
        const connectNode = (node: Redis) => {
          if (node.status === "wait") node.connect().catch(() => {})
        }
        cluster.on("+node", (node: Redis) => {
          if (cluster.status === "ready") connectNode(node)
        })
        cluster.on("ready", () => {
          for (const node of cluster.nodes("all")) connectNode(node)
        })
        return cluster
      }
    )
    const subscriber = yield* acquireConnection(
      "subscriber",
      0,
      resolved,
      runtime,
      (retryStrategy) =>
        new Cluster(startupNodes, {
          ...clusterOptions(resolved, retryStrategy, "effect-lock-sub", {
            commandTimeout: commandTimeoutMillis,
            socketTimeout: commandTimeoutMillis
          }),
          // A subscriber per shard for SSUBSCRIBE (shardedChannel.ts).
          shardedSubscribers: true
        })
    )
    const cluster = main.client
    const scriptsByNode = new WeakMap<Redis, Scripts>()
    const on = (node: Redis) => {
      let scripts = scriptsByNode.get(node)
      if (scripts === undefined) {
        scripts = makeScripts(node)
        scriptsByNode.set(node, scripts)
      }
      return { node, scripts }
    }
    const nodeAt = (address: string) =>
      cluster.nodes("all").find((n) => `${n.options.host}:${n.options.port}` === address)
    const masterOf = (key: string) => {
      // ioredis' own slot function (CRC16 of the hash tag), through a command naming the key.
      const slot = new Command("get", [key]).getSlot()
      const address = slot === null ? undefined : cluster.slots[slot]?.[0]
      const node = address === undefined ? undefined : nodeAt(address)
      if (node === undefined) throw new Error(`no master is known for the slot of ${JSON.stringify(key)}`)
      return on(node)
    }
    const redirect = (error: unknown) => {
      const match = error instanceof Error ? /^(MOVED|ASK) \d+ (\S+)$/.exec(error.message) : null
      if (match === null) return undefined
      if (match[1] === "MOVED") cluster.refreshSlotsCache()
      const node = nodeAt(match[2]!)
      return node === undefined ? undefined : { ...on(node), asking: match[1] === "ASK" }
    }
    return {
      main,
      subscriber,
      watch: watchNodes(cluster),
      masterOf,
      redirect
    }
  })
