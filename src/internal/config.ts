/**
 * What `LockKv.layer` reads from `Config` (env names shown; any ConfigProvider
 * works, e.g. `ConfigProvider.fromMap(map, { pathDelim: "_" })` in tests):
 *
 * - `REDIS_URL`: `redis://[user:password@]host[:port][/db]`, `rediss://` for TLS.
 * - `REDIS_HOST`, `REDIS_PORT` (1..65535), `REDIS_USERNAME`, `REDIS_PASSWORD`,
 *   `REDIS_DB` (0 or more), `REDIS_TLS` (`true`/`false`).
 * - `REDIS_TLS_CA`, `REDIS_TLS_CERT`, `REDIS_TLS_KEY`: each either an inline PEM
 *   (a value starting with `-----BEGIN`) or the path of a PEM file, read when
 *   the config is loaded. A file that cannot be read fails with a `ConfigError`
 *   naming the variable. Any of them turns TLS on unless `REDIS_TLS=false`.
 * - `REDIS_CONNECT_TIMEOUT`: how long building the layer may wait for Redis
 *   (`500ms`, `5s`, `1m`, `5 seconds`, or a number of milliseconds; default 5s).
 * - `LOCK_NAMESPACE`: the key prefix, default `lock`.
 *
 * Redis is selected when `REDIS_URL` or `REDIS_HOST` is set; otherwise the
 * store is in memory and the other `REDIS_*` names are not read. An empty (or
 * blank) `REDIS_URL` or `REDIS_HOST` is a `ConfigError`, not "unset": a
 * deployment that meant Redis and lost its value must not quietly run each
 * process with a lock of its own. The other names count as unset when empty. `REDIS_URL` wins over the host/port/db parts, which are
 * then ignored; `REDIS_PASSWORD`, when set, overrides a password in the URL.
 * `REDIS_URL`, `REDIS_PASSWORD` and `REDIS_TLS_KEY` are `Redacted`, and no
 * error message repeats their values.
 */
import * as Config from "effect/Config"
import * as ConfigError from "effect/ConfigError"
import * as Duration from "effect/Duration"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import { readFileSync } from "node:fs"
import type * as LockKv from "../LockKv.js"
import { defaultNamespace } from "./keys.js"
import { parseRedisUrl } from "./redis/url.js"

const optionalString = (name: string, description: string): Config.Config<Option.Option<string>> =>
  Config.string(name).pipe(
    Config.withDescription(description),
    Config.option,
    Config.map(Option.filter((value) => value.trim() !== ""))
  )

const optionalSecret = (
  name: string,
  description: string
): Config.Config<Option.Option<Redacted.Redacted<string>>> =>
  Config.redacted(name).pipe(
    Config.withDescription(description),
    Config.option,
    Config.map(Option.filter((value) => Redacted.value(value).trim() !== ""))
  )

const raw = Config.all({
  // Read as given: an empty value is refused below, not taken for "unset".
  url: Config.redacted("REDIS_URL").pipe(
    Config.withDescription("redis://[user:password@]host[:port][/db] (rediss:// for TLS); selects the Redis store"),
    Config.option
  ),
  host: Config.string("REDIS_HOST").pipe(
    Config.withDescription("Redis host; selects the Redis store when REDIS_URL is not set"),
    Config.option
  ),
  port: optionalString("REDIS_PORT", "Redis port, 1..65535 (default 6379)"),
  username: optionalString("REDIS_USERNAME", "Redis ACL user name"),
  password: optionalSecret("REDIS_PASSWORD", "Redis password; overrides a password in REDIS_URL"),
  db: optionalString("REDIS_DB", "Redis database number, 0 or more (default 0)"),
  tls: optionalString("REDIS_TLS", "true to connect with TLS"),
  tlsCa: optionalString("REDIS_TLS_CA", "PEM (inline or a file path) of the CA that signed the Redis certificate"),
  tlsCert: optionalString("REDIS_TLS_CERT", "PEM (inline or a file path) of the client certificate"),
  tlsKey: optionalSecret("REDIS_TLS_KEY", "PEM (inline or a file path) of the client certificate's key"),
  connectTimeout: optionalString(
    "REDIS_CONNECT_TIMEOUT",
    "how long to wait for Redis when the store is built, e.g. 5s (default 5s)"
  ),
  namespace: Config.string("LOCK_NAMESPACE").pipe(
    Config.withDescription("the prefix of every key the library stores"),
    Config.withDefault(defaultNamespace)
  )
})

type Parsed<A> = Either.Either<A, ConfigError.ConfigError>

const invalid = (name: string, message: string): ConfigError.ConfigError =>
  ConfigError.InvalidData([name], `${name} ${message}`)

/** Quotes a non-secret value for an error message, shortened. */
const shown = (value: string): string => JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)

const parseInteger = (name: string, value: string, min: number, max: number, what: string): Parsed<number> => {
  const trimmed = value.trim()
  const n = /^\d{1,10}$/.test(trimmed) ? Number(trimmed) : Number.NaN
  return Number.isInteger(n) && n >= min && n <= max
    ? Either.right(n)
    : Either.left(invalid(name, `must be ${what} (got ${shown(value)})`))
}

const parseBoolean = (name: string, value: string): Parsed<boolean> => {
  switch (value.trim().toLowerCase()) {
    case "true":
    case "1":
    case "yes":
    case "on":
      return Either.right(true)
    case "false":
    case "0":
    case "no":
    case "off":
      return Either.right(false)
    default:
      return Either.left(invalid(name, `must be true or false (got ${shown(value)})`))
  }
}

const durationUnits: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 }

/** `500ms`, `5s`, `2m`, `1h`, a bare number of milliseconds, or Effect's `5 seconds`. */
const parseDuration = (name: string, value: string): Parsed<Duration.Duration> => {
  const trimmed = value.trim()
  const short = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h)?$/.exec(trimmed)
  const decoded = short !== null
    ? Option.some(Duration.millis(Number(short[1]) * durationUnits[short[2] ?? "ms"]!))
    : Duration.decodeUnknown(trimmed)
  return Option.isSome(decoded) && Duration.isFinite(decoded.value) && Duration.toMillis(decoded.value) > 0
    ? Either.right(decoded.value)
    : Either.left(invalid(name, `must be a positive duration such as 5s or 500ms (got ${shown(value)})`))
}

/**
 * An inline PEM, or the contents of the file the value names. When `secret`,
 * the value is never repeated (it might be a key pasted without its header).
 */
const readPem = (name: string, value: string, secret: boolean): Parsed<string> => {
  if (value.trim().startsWith("-----BEGIN")) return Either.right(value)
  try {
    return Either.right(readFileSync(value.trim(), "utf8"))
  } catch (error) {
    const code = typeof error === "object" && error !== null && "code" in error ? String(error.code) : "unreadable"
    const file = secret ? "the file it names" : `the file ${shown(value.trim())}`
    return Either.left(invalid(name, `must be a PEM or the path of a PEM file: cannot read ${file} (${code})`))
  }
}

const optionalParse = <A>(
  value: Option.Option<string>,
  parse: (value: string) => Parsed<A>
): Parsed<A | undefined> => Option.isSome(value) ? parse(value.value) : Either.right(undefined)

/** @internal */
export const settings: Config.Config<LockKv.LockKv.Settings> = Config.mapOrFail(
  raw,
  (r): Parsed<LockKv.LockKv.Settings> => {
    const errors: Array<ConfigError.ConfigError> = []
    const check = <A>(parsed: Parsed<A>): A | undefined => {
      if (Either.isRight(parsed)) return parsed.right
      errors.push(parsed.left)
      return undefined
    }

    if (r.namespace.trim() === "") errors.push(invalid("LOCK_NAMESPACE", "must not be empty"))
    const namespace = r.namespace

    // Set but empty selects neither backend: say so rather than fall back to memory.
    const emptyUrl = Option.isSome(r.url) && Redacted.value(r.url.value).trim() === ""
    const emptyHost = Option.isSome(r.host) && r.host.value.trim() === ""
    if (emptyUrl) {
      errors.push(invalid("REDIS_URL", "is set but empty: unset it to use the in-memory store, or give a URL"))
    }
    if (emptyHost) {
      errors.push(invalid("REDIS_HOST", "is set but empty: unset it to use the in-memory store, or give a host"))
    }

    if (emptyUrl || emptyHost || (Option.isNone(r.url) && Option.isNone(r.host))) {
      return errors.length > 0 ? Either.left(errors.reduce(ConfigError.And)) : Either.right({ _tag: "Memory", namespace })
    }

    const url = Option.getOrUndefined(r.url)
    if (url !== undefined) {
      const parsed = parseRedisUrl(Redacted.value(url))
      if (Either.isLeft(parsed)) errors.push(invalid("REDIS_URL", parsed.left))
    }
    // REDIS_URL wins: the host/port/db parts are read only without it.
    const host = url === undefined ? Option.getOrUndefined(r.host)?.trim() : undefined
    const port = url === undefined
      ? check(optionalParse(r.port, (v) => parseInteger("REDIS_PORT", v, 1, 65535, "an integer from 1 to 65535")))
      : undefined
    const db = url === undefined
      ? check(optionalParse(r.db, (v) => parseInteger("REDIS_DB", v, 0, 2_147_483_647, "an integer, 0 or more")))
      : undefined
    const tls = check(optionalParse(r.tls, (v) => parseBoolean("REDIS_TLS", v)))
    const tlsCa = check(optionalParse(r.tlsCa, (v) => readPem("REDIS_TLS_CA", v, false)))
    const tlsCert = check(optionalParse(r.tlsCert, (v) => readPem("REDIS_TLS_CERT", v, false)))
    const tlsKey = check(
      optionalParse(Option.map(r.tlsKey, Redacted.value), (v) => readPem("REDIS_TLS_KEY", v, true))
    )
    const connectTimeout = check(optionalParse(r.connectTimeout, (v) => parseDuration("REDIS_CONNECT_TIMEOUT", v)))

    if (errors.length > 0) return Either.left(errors.reduce(ConfigError.And))

    const options: LockKv.LockKv.RedisOptions = {
      url,
      host,
      port,
      username: Option.getOrUndefined(r.username),
      password: Option.getOrUndefined(r.password),
      db,
      tls,
      tlsCa,
      tlsCert,
      tlsKey: tlsKey === undefined ? undefined : Redacted.make(tlsKey),
      namespace,
      connectTimeout
    }
    return Either.right({ _tag: "Redis", options })
  }
)
