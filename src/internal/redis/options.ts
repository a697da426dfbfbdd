/**
 * The Redis store's options: `RedisOptions` (URL, host/port/db, credentials,
 * TLS material, connect timeout) checked and resolved once, and turned into
 * ioredis' options, the only place where the password and the TLS key are
 * unwrapped.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import type { RedisOptions as IORedisOptions } from "ioredis"
import type { ConnectionOptions as TlsOptions } from "node:tls"
import type * as LockKv from "../../LockKv.js"
import { LockKvError } from "../errors.js"
import { defaultNamespace } from "../keys.js"
import { type ParsedRedisUrl, parseRedisUrl } from "./url.js"

const defaultConnectTimeout = Duration.seconds(5)

interface TlsMaterial {
  readonly ca: string | undefined
  readonly cert: string | undefined
  readonly key: Redacted.Redacted<string> | undefined
}

/**
 * What the store connects to: one server, a Redis Cluster (through any of
 * `nodes`), or the primary the sentinels name.
 *
 * @internal
 */
export type Topology =
  | { readonly _tag: "Standalone" }
  | { readonly _tag: "Cluster"; readonly nodes: ReadonlyArray<LockKv.LockKv.Address> }
  | {
    readonly _tag: "Sentinel"
    readonly sentinels: ReadonlyArray<LockKv.LockKv.Address>
    readonly name: string
    readonly username: string | undefined
    readonly password: Redacted.Redacted<string> | undefined
  }

/** @internal */
export interface ResolvedOptions {
  readonly topology: Topology
  readonly host: string
  readonly port: number
  readonly username: string | undefined
  readonly password: Redacted.Redacted<string> | undefined
  readonly db: number
  readonly tls: TlsMaterial | undefined
  readonly namespace: string
  readonly connectTimeout: Duration.Duration
  /** `host:port` (`[host]:port` for IPv6), for messages: never the URL, which may carry a password. */
  readonly where: string
  /** Strings that must never appear in an error message or a log line. */
  readonly secrets: ReadonlyArray<string>
}

const optionsError = (message: string) => new LockKvError({ operation: "configure", message })

const formatAddress = ({ host, port }: LockKv.LockKv.Address) => `${host.includes(":") ? `[${host}]` : host}:${port}`

/** A non-empty list of host/port pairs, or why not. */
const checkAddresses = (
  addresses: unknown,
  what: string
): ReadonlyArray<LockKv.LockKv.Address> | LockKvError => {
  if (!Array.isArray(addresses) || addresses.length === 0) {
    return optionsError(`${what} must be a non-empty list of { host, port }`)
  }
  for (const address of addresses as ReadonlyArray<unknown>) {
    if (typeof address !== "object" || address === null) {
      return optionsError(`${what}: each entry must be { host, port }`)
    }
    const { host, port } = address as { readonly host?: unknown; readonly port?: unknown }
    if (typeof host !== "string" || host.trim() === "") {
      return optionsError(`${what}: a host must be a non-empty string`)
    }
    if (typeof port !== "number" || !Number.isInteger(port) || port < 1 || port > 65535) {
      return optionsError(`${what}: a port must be an integer from 1 to 65535`)
    }
  }
  return (addresses as ReadonlyArray<LockKv.LockKv.Address>).map(({ host, port }) => ({ host: host.trim(), port }))
}

/** The topology the options ask for, checked: cluster and sentinel exclude a URL, a host and each other. */
const resolveTopology = (options: LockKv.LockKv.RedisOptions): Topology | LockKvError => {
  const { cluster, sentinel } = options
  if (cluster === undefined && sentinel === undefined) return { _tag: "Standalone" }
  if (cluster !== undefined && sentinel !== undefined) {
    return optionsError("cluster and sentinel cannot be combined: choose one")
  }
  const which = cluster !== undefined ? "cluster" : "sentinel"
  const conflicting = (["url", "host", "port"] as const).filter((name) => options[name] !== undefined)
  if (cluster !== undefined && options.db !== undefined && options.db !== 0) conflicting.push("db" as never)
  if (conflicting.length > 0) {
    return optionsError(`${which} cannot be combined with ${conflicting.join(", ")}: the ${which} names the servers`)
  }
  if (cluster !== undefined) {
    const nodes = checkAddresses(cluster.nodes, "cluster.nodes")
    return nodes instanceof LockKvError ? nodes : { _tag: "Cluster", nodes }
  }
  const sentinels = checkAddresses(sentinel!.sentinels, "sentinel.sentinels")
  if (sentinels instanceof LockKvError) return sentinels
  if (typeof sentinel!.name !== "string" || sentinel!.name.trim() === "") {
    return optionsError("sentinel.name must be a non-empty string (the name the sentinels monitor)")
  }
  return {
    _tag: "Sentinel",
    sentinels,
    name: sentinel!.name.trim(),
    username: sentinel!.username,
    password: sentinel!.password
  }
}

/** @internal */
export const resolveOptions = (options: LockKv.LockKv.RedisOptions): Effect.Effect<ResolvedOptions, LockKvError> =>
  Effect.gen(function*() {
    const topology = resolveTopology(options)
    if (topology instanceof LockKvError) return yield* topology
    const rawUrl = options.url === undefined
      ? undefined
      : Redacted.isRedacted(options.url)
      ? Redacted.value(options.url)
      : options.url
    let url: ParsedRedisUrl | undefined
    if (rawUrl !== undefined && rawUrl.trim() !== "") {
      const parsed = parseRedisUrl(rawUrl)
      if (Either.isLeft(parsed)) return yield* optionsError(`the Redis URL ${parsed.left}`)
      url = parsed.right
    }

    const host = url?.host ?? options.host ?? "127.0.0.1"
    if (host.trim() === "") return yield* optionsError("the Redis host must not be empty")
    const port = url?.port ?? options.port ?? 6379
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      return yield* optionsError("the Redis port must be an integer from 1 to 65535")
    }
    const db = url?.db ?? options.db ?? 0
    if (!Number.isSafeInteger(db) || db < 0) {
      return yield* optionsError("the Redis database must be a whole number, 0 or more")
    }
    // An explicit password overrides one in the URL; the URL's user name wins over `username`.
    const password = options.password ?? (url?.password !== undefined ? Redacted.make(url.password) : undefined)
    const username = url?.username ?? options.username

    const namespace = options.namespace ?? defaultNamespace
    if (typeof namespace !== "string" || namespace === "") {
      return yield* optionsError("the namespace must be a non-empty string")
    }
    // Keys may not contain NUL either; a channel starting with one means "sharded" to the release script.
    if (namespace.includes("\u0000")) return yield* optionsError("the namespace must not contain a NUL character")

    let connectTimeout = defaultConnectTimeout
    if (options.connectTimeout !== undefined) {
      const decoded = Option.getOrUndefined(Duration.decodeUnknown(options.connectTimeout))
      if (
        decoded === undefined || !Duration.isFinite(decoded) || !(Duration.toMillis(decoded) > 0) ||
        (typeof options.connectTimeout === "number" && !(options.connectTimeout > 0))
      ) {
        return yield* optionsError("connectTimeout must be a positive finite duration")
      }
      connectTimeout = decoded
    }

    const hasTlsMaterial = options.tlsCa !== undefined || options.tlsCert !== undefined ||
      options.tlsKey !== undefined
    // `rediss://` always means TLS; otherwise `tls`, or the presence of TLS material when `tls` is unset.
    const useTls = url?.tls === true || options.tls === true || (options.tls === undefined && hasTlsMaterial)
    const tls: TlsMaterial | undefined = useTls
      ? { ca: options.tlsCa, cert: options.tlsCert, key: options.tlsKey }
      : undefined

    const secrets = [
      rawUrl,
      url?.password,
      password === undefined ? undefined : Redacted.value(password),
      options.tlsKey === undefined ? undefined : Redacted.value(options.tlsKey),
      topology._tag === "Sentinel" && topology.password !== undefined ? Redacted.value(topology.password) : undefined
    ].filter((s): s is string => s !== undefined && s !== "")

    const where = topology._tag === "Cluster"
      ? `the cluster at ${topology.nodes.map(formatAddress).join(",")}`
      : topology._tag === "Sentinel"
      ? `the primary "${topology.name}" of the sentinels at ${topology.sentinels.map(formatAddress).join(",")}`
      : formatAddress({ host, port })
    return { topology, host, port, username, password, db, tls, namespace, connectTimeout, where, secrets }
  })

/**
 * ioredis' options for the command connection. `enableOfflineQueue`,
 * `maxRetriesPerRequest` and `autoResendUnfulfilledCommands` are what bounds
 * every call (see `call.ts`); `retryStrategy` comes from the connection.
 *
 * @internal
 */
export const clientOptions = (
  resolved: ResolvedOptions,
  retryStrategy: (times: number) => number | null
): IORedisOptions => {
  const options: IORedisOptions = {
    host: resolved.host,
    port: resolved.port,
    db: resolved.db,
    lazyConnect: true,
    connectTimeout: Math.max(1, Math.ceil(Duration.toMillis(resolved.connectTimeout))),
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    enableReadyCheck: true,
    connectionName: "effect-lock",
    retryStrategy,
    // After a failover the old primary answers READONLY: reconnect to find the new one.
    reconnectOnError: (error) => error.message.startsWith("READONLY")
  }
  if (resolved.username !== undefined && resolved.password !== undefined) {
    options.username = resolved.username
  }
  // The only place the password and the TLS key are unwrapped for the client.
  if (resolved.password !== undefined) options.password = Redacted.value(resolved.password)
  if (resolved.tls !== undefined) {
    const tls: TlsOptions = {}
    if (resolved.tls.ca !== undefined) tls.ca = resolved.tls.ca
    if (resolved.tls.cert !== undefined) tls.cert = resolved.tls.cert
    if (resolved.tls.key !== undefined) tls.key = Redacted.value(resolved.tls.key)
    options.tls = tls
  }
  const topology = resolved.topology
  if (topology._tag === "Sentinel") {
    options.sentinels = topology.sentinels.map(({ host, port }) => ({ host, port }))
    options.name = topology.name
    options.role = "master"
    // Subscribes to the sentinels' +switch-master: a failover is followed at once,
    // not only when the old primary's connection breaks or answers READONLY.
    options.failoverDetector = true
    options.sentinelMaxConnections = 3
    if (topology.username !== undefined) options.sentinelUsername = topology.username
    // The only place the sentinels' password is unwrapped.
    if (topology.password !== undefined) options.sentinelPassword = Redacted.value(topology.password)
    if (resolved.tls !== undefined) options.enableTLSForSentinelMode = true
    // Asking the sentinels again and again while none answers: give up when connecting
    // (the connect timeout bounds that), otherwise retry with the usual backoff.
    options.sentinelRetryStrategy = retryStrategy
  }
  return options
}
