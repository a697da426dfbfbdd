/**
 * Throwaway high-availability Redis set-ups for tests, built from
 * `startRedisServer` (free loopback ports, temp dirs, no persistence, stopped by
 * pid): a Redis Cluster (`--cluster-enabled yes`, created with
 * `redis-cli --cluster create`, masters + one replica each), and a Sentinel
 * group (a primary, a replica and three `redis-server --sentinel`).
 */
import { type ChildProcess, execFile, spawn } from "node:child_process"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { freePort, type RedisServerHandle, startRedisServer } from "./redisServer.js"

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** Runs `redis-cli` against `port`; resolves with its stdout (rejects on a non-zero exit or after `timeoutMs`). */
export const redisCli = (port: number, args: ReadonlyArray<string>, timeoutMs = 10_000): Promise<string> =>
  new Promise((resolve, reject) => {
    execFile(
      "redis-cli",
      ["-h", "127.0.0.1", "-p", String(port), ...args],
      { timeout: timeoutMs, encoding: "utf8" },
      (error, stdout, stderr) => error === null ? resolve(stdout) : reject(new Error(`${error.message}\n${stderr}`))
    )
  })

/** Polls `check` every 100 ms until it holds; throws `what` after `ms`. */
const until = async (what: string, ms: number, check: () => Promise<boolean>): Promise<void> => {
  const deadline = Date.now() + ms
  for (;;) {
    try {
      if (await check()) return
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
    await sleep(100)
  }
}

export interface ClusterNode {
  readonly server: RedisServerHandle
  readonly port: number
}

export interface RedisClusterHandle {
  readonly nodes: ReadonlyArray<ClusterNode>
  /** Where a client starts: every node's address. */
  readonly startupNodes: ReadonlyArray<{ readonly host: string; readonly port: number }>
  /** The slot of `key` (CLUSTER KEYSLOT). */
  readonly slotOf: (key: string) => Promise<number>
  /** The node serving `slot` as master now, per the node at `askPort` (default: the first live one). */
  readonly masterOf: (slot: number) => Promise<ClusterNode>
  /** The replicas of the master on `port`. */
  readonly replicasOf: (port: number) => Promise<ReadonlyArray<ClusterNode>>
  /** Waits until every live node says `cluster_state:ok` and agrees on who serves `slot` (optional). */
  readonly waitHealthy: (ms?: number) => Promise<void>
  /** Moves `slot` (and its keys) from its master to the master on `toPort`, as `redis-cli --cluster reshard` would. */
  readonly migrateSlot: (slot: number, toPort: number) => Promise<void>
  readonly stop: () => Promise<void>
}

const clusterNodesLines = async (port: number) =>
  (await redisCli(port, ["CLUSTER", "NODES"])).split("\n").filter((line) => line.trim() !== "")

/**
 * Starts `masters` × (1 + `replicasPerMaster`) cluster nodes and creates the
 * cluster; resolves once every node reports `cluster_state:ok` and every
 * replica is in sync. `nodeTimeoutMs` is the cluster's failure-detection time.
 */
export const startRedisCluster = async (
  options: {
    readonly masters?: number | undefined
    readonly replicasPerMaster?: number | undefined
    readonly nodeTimeoutMs?: number | undefined
  } = {}
): Promise<RedisClusterHandle> => {
  const masters = options.masters ?? 3
  const replicasPerMaster = options.replicasPerMaster ?? 1
  const nodeTimeout = options.nodeTimeoutMs ?? 1500
  const nodes: Array<ClusterNode> = []
  const stopAll = () => Promise.all(nodes.map((node) => node.server.stop().catch(() => {})))
  try {
    for (let i = 0; i < masters * (1 + replicasPerMaster); i++) {
      // The bus port would be port + 10000, possibly above 65535: give it a free one.
      const busPort = await freePort()
      const server = await startRedisServer({
        args: [
          "--cluster-enabled",
          "yes",
          "--cluster-config-file",
          "nodes.conf",
          "--cluster-node-timeout",
          String(nodeTimeout),
          "--cluster-port",
          String(busPort),
          // A lone node (1 master) does not know its own address otherwise: CLUSTER SLOTS would say "".
          "--cluster-announce-ip",
          "127.0.0.1",
          // A replica takes over however long it was cut off (the tests kill masters on purpose).
          "--cluster-replica-validity-factor",
          "0",
          "--cluster-allow-replica-migration",
          "no"
        ]
      })
      nodes.push({ server, port: server.port })
    }
    if (masters === 1 && replicasPerMaster === 0) {
      await redisCli(nodes[0]!.port, ["CLUSTER", "ADDSLOTSRANGE", "0", "16383"])
    } else {
      await redisCli(
        nodes[0]!.port,
        [
          "--cluster",
          "create",
          ...nodes.map((node) => `127.0.0.1:${node.port}`),
          "--cluster-replicas",
          String(replicasPerMaster),
          "--cluster-yes"
        ],
        60_000
      )
    }
    const handle = makeClusterHandle(nodes, stopAll)
    await handle.waitHealthy(30_000)
    return handle
  } catch (error) {
    await stopAll()
    throw error
  }
}

const makeClusterHandle = (nodes: Array<ClusterNode>, stopAll: () => Promise<unknown>): RedisClusterHandle => {
  const alive = async (): Promise<Array<ClusterNode>> => {
    const result: Array<ClusterNode> = []
    for (const node of nodes) {
      try {
        if ((await redisCli(node.port, ["PING"], 2_000)).trim() === "PONG") result.push(node)
      } catch {
        // down
      }
    }
    return result
  }
  const byPort = (port: number) => {
    const node = nodes.find((n) => n.port === port)
    if (node === undefined) throw new Error(`no node on port ${port}`)
    return node
  }
  /** `CLUSTER NODES` lines of the first live node: id, address, flags, master id, …, slots. */
  const table = async () => {
    const [first] = await alive()
    if (first === undefined) throw new Error("no cluster node is up")
    return (await clusterNodesLines(first.port)).map((line) => {
      const fields = line.split(" ")
      return {
        id: fields[0]!,
        port: Number(fields[1]!.split("@")[0]!.split(":")[1]),
        flags: fields[2]!.split(","),
        masterId: fields[3]!,
        slots: fields.slice(8)
      }
    })
  }
  const masterOf = async (slot: number): Promise<ClusterNode> => {
    for (const row of await table()) {
      if (!row.flags.includes("master") || row.flags.includes("fail")) continue
      for (const range of row.slots) {
        if (range.startsWith("[")) continue
        const [from, to] = range.split("-").map(Number)
        if (slot >= from! && slot <= (to ?? from)!) return byPort(row.port)
      }
    }
    throw new Error(`no master serves slot ${slot}`)
  }
  const waitHealthy = async (ms = 30_000) => {
    await until("cluster_state:ok on every live node", ms, async () => {
      const live = await alive()
      for (const node of live) {
        if (!(await redisCli(node.port, ["CLUSTER", "INFO"])).includes("cluster_state:ok")) return false
      }
      // Every replica linked to its master.
      for (const node of live) {
        const info = await redisCli(node.port, ["INFO", "replication"])
        if (info.includes("role:slave") && !info.includes("master_link_status:up")) return false
      }
      return live.length > 0
    })
  }
  return {
    nodes,
    startupNodes: nodes.map((node) => ({ host: "127.0.0.1", port: node.port })),
    slotOf: async (key) => Number((await redisCli(nodes[0]!.port, ["CLUSTER", "KEYSLOT", key])).trim()),
    masterOf,
    replicasOf: async (port) => {
      const rows = await table()
      const master = rows.find((row) => row.port === port)
      if (master === undefined) return []
      return rows.filter((row) => row.masterId === master.id && !row.flags.includes("fail")).map((row) =>
        byPort(row.port)
      )
    },
    waitHealthy,
    migrateSlot: async (slot, toPort) => {
      const from = await masterOf(slot)
      const rows = await table()
      const sourceId = rows.find((row) => row.port === from.port)!.id
      const targetId = rows.find((row) => row.port === toPort)!.id
      await redisCli(toPort, ["CLUSTER", "SETSLOT", String(slot), "IMPORTING", sourceId])
      await redisCli(from.port, ["CLUSTER", "SETSLOT", String(slot), "MIGRATING", targetId])
      for (;;) {
        const keys = (await redisCli(from.port, ["CLUSTER", "GETKEYSINSLOT", String(slot), "100"]))
          .split("\n").filter((k) => k !== "")
        if (keys.length === 0) break
        await redisCli(from.port, ["MIGRATE", "127.0.0.1", String(toPort), "", "0", "5000", "KEYS", ...keys])
      }
      for (const node of await alive()) {
        await redisCli(node.port, ["CLUSTER", "SETSLOT", String(slot), "NODE", targetId]).catch(() => "")
      }
    },
    stop: async () => {
      await stopAll()
    }
  }
}

export interface SentinelGroupHandle {
  readonly name: string
  readonly primary: RedisServerHandle
  readonly replica: RedisServerHandle
  readonly sentinels: ReadonlyArray<{ readonly host: string; readonly port: number }>
  /** The port of the primary the sentinels name now. */
  readonly primaryPort: () => Promise<number>
  readonly stop: () => Promise<void>
}

/** redis-cli's arguments to authenticate to sentinels that have a password. */
const sentinelAuth = (password: string | undefined): ReadonlyArray<string> =>
  password === undefined ? [] : ["-a", password, "--no-auth-warning"]

/** A `redis-server --sentinel` on a free port, with a config file in a temp dir (sentinels rewrite it). */
const startSentinel = async (
  name: string,
  primaryPort: number,
  downAfterMs: number,
  password: string | undefined
): Promise<{ readonly port: number; readonly stop: () => Promise<void> }> => {
  const dir = mkdtempSync(join(tmpdir(), "effect-lock-sentinel-"))
  const port = await freePort()
  const conf = join(dir, "sentinel.conf")
  writeFileSync(
    conf,
    [
      `port ${port}`,
      "bind 127.0.0.1",
      `dir ${dir}`,
      `sentinel monitor ${name} 127.0.0.1 ${primaryPort} 2`,
      `sentinel down-after-milliseconds ${name} ${downAfterMs}`,
      `sentinel failover-timeout ${name} 5000`,
      `sentinel parallel-syncs ${name} 1`,
      // A password of the sentinels' own: clients and the other sentinels give it.
      ...(password === undefined ? [] : [`requirepass ${password}`, `sentinel sentinel-pass ${password}`]),
      ""
    ].join("\n")
  )
  const child: ChildProcess = spawn("redis-server", [conf, "--sentinel"], { stdio: "ignore" })
  child.on("error", () => {})
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGKILL")
      await new Promise<void>((resolve) => child.once("exit", () => resolve()))
    }
    rmSync(dir, { recursive: true, force: true })
  }
  process.once("exit", () => child.kill("SIGKILL"))
  try {
    await until(
      `sentinel on port ${port}`,
      10_000,
      async () => (await redisCli(port, [...sentinelAuth(password), "PING"], 1_000)).includes("PONG")
    )
  } catch (error) {
    await stop()
    throw error
  }
  return { port, stop }
}

/** A primary, one replica of it and three sentinels (quorum 2); resolves once the sentinels see the replica. */
export const startSentinelGroup = async (
  options: {
    readonly name?: string | undefined
    readonly downAfterMs?: number | undefined
    /** The sentinels' own password (`requirepass` and `sentinel sentinel-pass`); none by default. */
    readonly sentinelPassword?: string | undefined
  } = {}
): Promise<SentinelGroupHandle> => {
  const name = options.name ?? "effectlock"
  const auth = sentinelAuth(options.sentinelPassword)
  const downAfterMs = options.downAfterMs ?? 1000
  const primary = await startRedisServer()
  const stops: Array<() => Promise<void>> = [() => primary.stop()]
  const stopAll = () => Promise.all(stops.map((stop) => stop().catch(() => {}))).then(() => {})
  try {
    const replica = await startRedisServer({ args: ["--replicaof", "127.0.0.1", String(primary.port)] })
    stops.push(() => replica.stop())
    await until(
      "the replica in sync",
      20_000,
      async () => (await redisCli(replica.port, ["INFO", "replication"])).includes("master_link_status:up")
    )
    const sentinels: Array<{ host: string; port: number }> = []
    for (let i = 0; i < 3; i++) {
      const sentinel = await startSentinel(name, primary.port, downAfterMs, options.sentinelPassword)
      stops.push(sentinel.stop)
      sentinels.push({ host: "127.0.0.1", port: sentinel.port })
    }
    await until("the sentinels to see the replica and each other", 20_000, async () => {
      for (const sentinel of sentinels) {
        const info = await redisCli(sentinel.port, [...auth, "INFO", "sentinel"])
        if (!/slaves=1,sentinels=3/.test(info)) return false
      }
      return true
    })
    return {
      name,
      primary,
      replica,
      sentinels,
      primaryPort: async () => {
        const reply = await redisCli(sentinels[0]!.port, [...auth, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", name])
        return Number(reply.split("\n")[1])
      },
      stop: stopAll
    }
  } catch (error) {
    await stopAll()
    throw error
  }
}
