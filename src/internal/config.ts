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

/** Redis is configured, by URL or by host. */
const redisSelected: Config.Config<void> = Config.orElse(nonBlank("REDIS_URL"), () => nonBlank("REDIS_HOST"))

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
  port: optional("REDIS_PORT", redisByParts, Config.port("REDIS_PORT"), "Redis port, 1..65535 (default 6379)"),
  db: optional(
    "REDIS_DB",
    redisByParts,
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

/** @internal */
export const settings: Config.Config<LockKv.LockKv.Settings> = Config.map(
  raw,
  (r): LockKv.LockKv.Settings => {
    const url = Option.getOrUndefined(r.url)
    const host = Option.getOrUndefined(r.host)
    if (url === undefined && host === undefined) return { _tag: "Memory", namespace: r.namespace }
    const options: LockKv.LockKv.RedisOptions = {
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
