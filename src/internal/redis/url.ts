import * as Either from "effect/Either"

/** The parts of a `redis://` or `rediss://` URL. */
export interface ParsedRedisUrl {
  readonly host: string
  readonly port: number
  readonly username: string | undefined
  readonly password: string | undefined
  readonly db: number | undefined
  readonly tls: boolean
}

/**
 * Parses `redis://[user:pass@]host[:port][/db]` (`rediss://` for TLS). The
 * message of a `Left` never repeats the URL: it may carry a password.
 */
export const parseRedisUrl = (raw: string): Either.Either<ParsedRedisUrl, string> => {
  let url: URL
  try {
    url = new URL(raw.trim())
  } catch {
    return Either.left("is not a valid URL (expected redis://[user:password@]host[:port][/db])")
  }
  if (url.protocol !== "redis:" && url.protocol !== "rediss:") {
    const scheme = url.protocol.slice(0, -1).replace(/[^a-z0-9+.-]/gi, "").slice(0, 16)
    return Either.left(`must start with redis:// or rediss:// (got ${scheme}://)`)
  }
  const host = url.hostname.replace(/^\[(.*)\]$/, "$1")
  if (host === "") return Either.left("has no host")
  const port = url.port === "" ? 6379 : Number(url.port)
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    return Either.left("has a port outside 1..65535")
  }
  let username: string | undefined
  let password: string | undefined
  try {
    username = url.username === "" ? undefined : decodeURIComponent(url.username)
    password = url.password === "" ? undefined : decodeURIComponent(url.password)
  } catch {
    return Either.left("has a badly escaped user name or password")
  }
  const path = url.pathname.replace(/^\//, "")
  let db: number | undefined
  if (path !== "") {
    if (!/^\d{1,9}$/.test(path)) {
      return Either.left("has a path that is not a database number (expected redis://host:port/0)")
    }
    db = Number(path)
  }
  return Either.right({ host, port, username, password, db, tls: url.protocol === "rediss:" })
}
