/**
 * What `LockKv.layer` reads from `Config` (env names shown; any ConfigProvider
 * works, e.g. `ConfigProvider.fromMap(map, { pathDelim: "_" })` in tests):
 *
 * - `REDIS_URL`: `redis://[user:password@]host[:port][/db]`, `rediss://` for TLS.
 * - `REDIS_HOST`, `REDIS_PORT` (`Config.port`: 1..65535), `REDIS_USERNAME`,
 *   `REDIS_PASSWORD`, `REDIS_DB` (`Config.integer`, 0..2147483647),
 *   `REDIS_TLS` (`Config.boolean`: `true`/`false`, also `yes`/`no`, `on`/`off`, `1`/`0`).
 * - `REDIS_TLS_CA`, `REDIS_TLS_CERT`, `REDIS_TLS_KEY`: each either an inline PEM
 *   (a value starting with `-----BEGIN`) or the path of a PEM file, read when
 *   the config is loaded. A file that cannot be read fails with a `ConfigError`
 *   naming the variable. Any of them turns TLS on unless `REDIS_TLS=false`.
 * - `REDIS_CONNECT_TIMEOUT`: how long building the layer may wait for Redis, in
 *   the project's short form (`500ms`, `5s`, `1m`, `5 seconds`), a bare number
 *   being milliseconds; default 5s.
 * - `LOCK_NAMESPACE`: the key prefix, default `lock`.
 * - `REDIS_CLUSTER_NODES`: `host:port,host:port` (`[v6]:port`), some nodes of
 *   a Redis Cluster; selects Redis on that cluster. `REDIS_DB` must then be 0
 *   or unset.
 * - `REDIS_SENTINELS` (`host:port,…`) with `REDIS_SENTINEL_NAME` (required),
 *   `REDIS_SENTINEL_USERNAME`, `REDIS_SENTINEL_PASSWORD` (`Redacted`): the
 *   primary those sentinels name; selects Redis. The sentinel names are read
 *   only with `REDIS_SENTINELS`. `REDIS_USERNAME`/`REDIS_PASSWORD`/`REDIS_DB`/
 *   TLS apply to the primary (to every node of a cluster).
 *
 * `REDIS_CLUSTER_NODES` and `REDIS_SENTINELS` each exclude the other, and
 * `REDIS_URL` and `REDIS_HOST`: two of them set is a `ConfigError`.
 *
 * Redis is selected when `REDIS_URL` or `REDIS_HOST` is set; otherwise the
 * store is in memory and the other `REDIS_*` names are not read. An empty (or
 * blank) `REDIS_URL` or `REDIS_HOST` is a `ConfigError`, not "unset": a
 * deployment that meant Redis and lost its value must not quietly run each
 * process with a lock of its own. The other names count as unset when empty
 * or blank. `REDIS_URL` wins over the host/port/db parts, which are then not
 * read; `REDIS_PASSWORD`, when set, overrides a password in the URL.
 * `REDIS_URL`, `REDIS_PASSWORD` and `REDIS_TLS_KEY` are `Redacted`, and no
 * error message repeats their values.
 */
import * as Config from "effect/Config"
import * as ConfigError from "effect/ConfigError"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import { readFileSync } from "node:fs"
import type * as LockKv from "../LockKv.js"
import * as DurationParser from "./duration.js"
import { defaultNamespace } from "./keys.js"
import { parseRedisUrl } from "./redis/url.js"

// `Config` has no `flatMap`, so a variable cannot be read "only if another one
// is set" directly. Instead a gate fails with `MissingData` when its condition
// does not hold, and `optional` below turns any error that contains a
// `MissingData` into `None`: a value that is not read, or blank, never reports
// its parse error, and one that is read reports exactly Effect's own error.

const notRead = (): ConfigError.ConfigError => ConfigError.MissingData([], "not read")

/** Succeeds when `name` holds a non-blank value. */
const nonBlank = (name: string): Config.Config<void> =>
  Config.string(name).pipe(
    Config.mapOrFail((value) => value.trim() === "" ? Either.left(notRead()) : Either.right(undefined))
  )

/** Succeeds when `name` is not set at all. */
const unset = (name: string): Config.Config<void> =>
  Config.string(name).pipe(
    Config.option,
    Config.mapOrFail((value) => Option.isSome(value) ? Either.left(notRead()) : Either.right(undefined))
  )

/** Redis is configured: by URL, by host, as a cluster or through sentinels. */
const redisSelected: Config.Config<void> = Config.orElse(
  nonBlank("REDIS_URL"),
  () =>
    Config.orElse(
      nonBlank("REDIS_HOST"),
      () => Config.orElse(nonBlank("REDIS_CLUSTER_NODES"), () => nonBlank("REDIS_SENTINELS"))
    )
)

/** Sentinels are configured: the sentinel names (and the database) are read only then. */
const sentinelSelected: Config.Config<void> = nonBlank("REDIS_SENTINELS")

/** Redis is configured by its parts: the host/port/db names are read only then. */
const redisByParts: Config.Config<void> = Config.all([unset("REDIS_URL"), nonBlank("REDIS_HOST")])

const hasMissingData = (error: ConfigError.ConfigError): boolean =>
  ConfigError.isAnd(error) || ConfigError.isOr(error)
    ? hasMissingData(error.left) || hasMissingData(error.right)
    : ConfigError.isMissingData(error)

/**
 * `config` (which reads `name`) when `gate` holds and `name` is set and not
 * blank; `None` otherwise, whatever `name` holds.
 */
const optional = <A>(
  name: string,
  gate: Config.Config<void>,
  config: Config.Config<A>,
  description: string
): Config.Config<Option.Option<A>> =>
  Config.all([gate, nonBlank(name), config.pipe(Config.withDescription(description))]).pipe(
    Config.map(([, , value]) => Option.some(value)),
    Config.orElseIf({ if: hasMissingData, orElse: () => Config.succeed(Option.none()) })
  )

/**
 * An inline PEM, or the contents of the file the value names. When `secret`,
 * the value is never repeated (it might be a key pasted without its header).
 */
const pem = (name: string, secret: boolean): Config.Config<string> =>
  Config.string(name).pipe(Config.mapOrFail((value) => {
    if (value.trim().startsWith("-----BEGIN")) return Either.right(value)
    try {
      return Either.right(readFileSync(value.trim(), "utf8"))
    } catch (error) {
      const code = typeof error === "object" && error !== null && "code" in error ? String(error.code) : "unreadable"
      const file = secret ? "the file it names" : `the file ${JSON.stringify(value.trim())}`
      return Either.left(
        ConfigError.InvalidData([], `${name} must be a PEM or the path of a PEM file: cannot read ${file} (${code})`)
      )
    }
  }))

const invalid = (name: string, message: string): ConfigError.ConfigError =>
  ConfigError.InvalidData([name], `${name} ${message}`)

/** Set but blank selects neither backend: say so rather than fall back to memory. */
const emptySelector = (name: string, what: string): ConfigError.ConfigError =>
  invalid(name, `is set but empty: unset it to use the in-memory store, or give a ${what}`)

/** `host:port,host:port` (`[v6]:port` for IPv6): a non-empty list, every port 1..65535. */
const addresses = (name: string): Config.Config<ReadonlyArray<LockKv.LockKv.Address>> =>
  Config.string(name).pipe(Config.mapOrFail((value) => {
    const parsed: Array<LockKv.LockKv.Address> = []
    for (const entry of value.split(",").map((part) => part.trim())) {
      const match = /^(?:\[([^\]]+)\]|([^:\s]+)):(\d{1,5})$/.exec(entry)
      const port = match === null ? Number.NaN : Number(match[3])
      if (match === null || !(port >= 1 && port <= 65535)) {
        return Either.left(
          invalid(name, `must be a comma-separated list of host:port (port 1..65535), got ${JSON.stringify(entry)}`)
        )
      }
      parsed.push({ host: match[1] ?? match[2]!, port })
    }
    return Either.right(parsed)
  }))

const raw = Config.all({
  // Read as given: an empty value is refused, not taken for "unset".
  url: Config.redacted("REDIS_URL").pipe(
    Config.withDescription("redis://[user:password@]host[:port][/db] (rediss:// for TLS); selects the Redis store"),
    Config.option,
    Config.mapOrFail((url): Either.Either<Option.Option<Redacted.Redacted<string>>, ConfigError.ConfigError> => {
      if (Option.isNone(url)) return Either.right(url)
      const value = Redacted.value(url.value)
      if (value.trim() === "") return Either.left(emptySelector("REDIS_URL", "URL"))
      // The reason never repeats the URL: it may carry a password.
      return Either.match(parseRedisUrl(value), {
        onLeft: (reason) => Either.left(invalid("REDIS_URL", reason)),
        onRight: () => Either.right(url)
      })
    })
  ),
  host: Config.string("REDIS_HOST").pipe(
    Config.withDescription("Redis host; selects the Redis store when REDIS_URL is not set"),
    Config.option,
    Config.mapOrFail((host) =>
      Option.isSome(host) && host.value.trim() === ""
        ? Either.left(emptySelector("REDIS_HOST", "host"))
        : Either.right(Option.map(host, (value) => value.trim()))
    )
  ),
  clusterNodes: optional(
    "REDIS_CLUSTER_NODES",
    Config.succeed(undefined),
    addresses("REDIS_CLUSTER_NODES"),
    "Redis Cluster nodes as host:port,host:port (some of them; the client finds the rest); selects the Redis store"
  ),
  sentinels: optional(
    "REDIS_SENTINELS",
    Config.succeed(undefined),
    addresses("REDIS_SENTINELS"),
    "Redis Sentinel addresses as host:port,host:port; selects the Redis store (with REDIS_SENTINEL_NAME)"
  ),
  sentinelName: optional(
    "REDIS_SENTINEL_NAME",
    sentinelSelected,
    Config.string("REDIS_SENTINEL_NAME").pipe(Config.map((name) => name.trim())),
    "the name the sentinels monitor the primary under"
  ),
  sentinelUsername: optional(
    "REDIS_SENTINEL_USERNAME",
    sentinelSelected,
    Config.string("REDIS_SENTINEL_USERNAME"),
    "the sentinels' ACL user name"
  ),
  sentinelPassword: optional(
    "REDIS_SENTINEL_PASSWORD",
    sentinelSelected,
    Config.redacted("REDIS_SENTINEL_PASSWORD"),
    "the sentinels' password (the primary's is REDIS_PASSWORD)"
  ),
  port: optional("REDIS_PORT", redisByParts, Config.port("REDIS_PORT"), "Redis port, 1..65535 (default 6379)"),
  db: optional(
    "REDIS_DB",
    // Read with a cluster too, only to refuse anything but 0.
    Config.orElse(redisByParts, () => Config.orElse(sentinelSelected, () => nonBlank("REDIS_CLUSTER_NODES"))),
    Config.integer("REDIS_DB").pipe(
      Config.validate({
        message: "REDIS_DB must be a database number from 0 to 2147483647",
        validation: (n) => n >= 0 && n <= 2_147_483_647
      })
    ),
    "Redis database number (default 0)"
  ),
  username: optional("REDIS_USERNAME", redisSelected, Config.string("REDIS_USERNAME"), "Redis ACL user name"),
  password: optional(
    "REDIS_PASSWORD",
    redisSelected,
    Config.redacted("REDIS_PASSWORD"),
    "Redis password; overrides a password in REDIS_URL"
  ),
  tls: optional("REDIS_TLS", redisSelected, Config.boolean("REDIS_TLS"), "true to connect with TLS"),
  tlsCa: optional(
    "REDIS_TLS_CA",
    redisSelected,
    pem("REDIS_TLS_CA", false),
    "PEM (inline or a file path) of the CA that signed the Redis certificate"
  ),
  tlsCert: optional(
    "REDIS_TLS_CERT",
    redisSelected,
    pem("REDIS_TLS_CERT", false),
    "PEM (inline or a file path) of the client certificate"
  ),
  tlsKey: optional(
    "REDIS_TLS_KEY",
    redisSelected,
    // Not `Config.redacted(config)`: that replaces every error message with "<redacted>".
    pem("REDIS_TLS_KEY", true).pipe(Config.map(Redacted.make)),
    "PEM (inline or a file path) of the client certificate's key"
  ),
  connectTimeout: optional(
    "REDIS_CONNECT_TIMEOUT",
    redisSelected,
    Config.string("REDIS_CONNECT_TIMEOUT").pipe(Config.mapOrFail((value) =>
      Either.mapLeft(
        DurationParser.parse(value, { positive: true, bareMillis: true }),
        (reason) => ConfigError.InvalidData([], `REDIS_CONNECT_TIMEOUT: ${reason}`)
      )
    )),
    "how long to wait for Redis when the store is built, e.g. 5s; a bare number is milliseconds (default 5s)"
  ),
  namespace: Config.string("LOCK_NAMESPACE").pipe(
    Config.withDescription("the prefix of every key the library stores"),
    Config.withDefault(defaultNamespace),
    Config.mapOrFail((namespace) =>
      namespace.trim() === "" ? Either.left(invalid("LOCK_NAMESPACE", "must not be empty")) : Either.right(namespace)
    )
  )
})

/** Two ways to name the servers at once: refuse rather than pick one. */
const conflict = (r: Config.Config.Success<typeof raw>): ConfigError.ConfigError | undefined => {
  const set = [
    Option.isSome(r.url) ? "REDIS_URL" : undefined,
    Option.isSome(r.host) ? "REDIS_HOST" : undefined,
    Option.isSome(r.clusterNodes) ? "REDIS_CLUSTER_NODES" : undefined,
    Option.isSome(r.sentinels) ? "REDIS_SENTINELS" : undefined
  ].filter((name): name is string => name !== undefined)
  const ha = set.filter((name) => name === "REDIS_CLUSTER_NODES" || name === "REDIS_SENTINELS")
  if (ha.length === 0 || set.length === 1) return undefined
  return invalid(ha[0]!, `cannot be combined with ${set.filter((name) => name !== ha[0]).join(", ")}: set only one`)
}

const checked = raw.pipe(Config.mapOrFail((r) => {
  const error = conflict(r)
  if (error !== undefined) return Either.left(error)
  if (Option.isSome(r.sentinels) && Option.isNone(r.sentinelName)) {
    return Either.left(
      invalid("REDIS_SENTINEL_NAME", "must be set with REDIS_SENTINELS (the name the sentinels monitor)")
    )
  }
  if (Option.isSome(r.clusterNodes) && Option.isSome(r.db) && r.db.value !== 0) {
    return Either.left(
      invalid("REDIS_DB", "must be 0 (or unset) with REDIS_CLUSTER_NODES: a cluster has database 0 only")
    )
  }
  return Either.right(r)
}))

/** @internal */
export const settings: Config.Config<LockKv.LockKv.Settings> = Config.map(
  checked,
  (r): LockKv.LockKv.Settings => {
    const url = Option.getOrUndefined(r.url)
    const host = Option.getOrUndefined(r.host)
    const clusterNodes = Option.getOrUndefined(r.clusterNodes)
    const sentinels = Option.getOrUndefined(r.sentinels)
    if (url === undefined && host === undefined && clusterNodes === undefined && sentinels === undefined) {
      return { _tag: "Memory", namespace: r.namespace }
    }
    const options: LockKv.LockKv.RedisOptions = {
      ...(clusterNodes !== undefined ? { cluster: { nodes: clusterNodes } } : {}),
      ...(sentinels !== undefined
        ? {
          sentinel: {
            sentinels,
            name: Option.getOrElse(r.sentinelName, () => ""),
            username: Option.getOrUndefined(r.sentinelUsername),
            password: Option.getOrUndefined(r.sentinelPassword)
          }
        }
        : {}),
      url,
      // REDIS_URL wins: the parts were not read with it.
      host: url === undefined ? host : undefined,
      port: Option.getOrUndefined(r.port),
      username: Option.getOrUndefined(r.username),
      password: Option.getOrUndefined(r.password),
      db: Option.getOrUndefined(r.db),
      tls: Option.getOrUndefined(r.tls),
      tlsCa: Option.getOrUndefined(r.tlsCa),
      tlsCert: Option.getOrUndefined(r.tlsCert),
      tlsKey: Option.getOrUndefined(r.tlsKey),
      namespace: r.namespace,
      connectTimeout: Option.getOrUndefined(r.connectTimeout)
    }
    return { _tag: "Redis", options }
  }
)
