/**
 * TLS with client certificates (mutual TLS), configured the way an application
 * does it: REDIS_URL=rediss://… and REDIS_TLS_CA / REDIS_TLS_CERT / REDIS_TLS_KEY
 * (file paths or inline PEMs) read by `LockKv.layer` through a ConfigProvider.
 * A server that requires client certificates, with a test PKI made by openssl.
 * test/config.test.ts already covers TLS without client certificates (CA given
 * or not, TLS against a plain server).
 */
import { describe, expect, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Lock from "../../../src/Lock.js"
import * as LockKv from "../../../src/LockKv.js"
import { observe } from "../../support/observe.js"
import { freePort, redisServerScoped } from "../../support/redisServer.js"
import { pemLines, type Pki, pkiScoped } from "./certs.js"

/** A TLS-only port (besides the plain loopback port the harness checks) that demands a client certificate. */
const mutualTlsServer = (pki: Pki) =>
  Effect.gen(function*() {
    const tlsPort = yield* Effect.promise(() => freePort())
    yield* redisServerScoped({
      args: [
        "--tls-port",
        String(tlsPort),
        "--tls-cert-file",
        pki.serverCert.file,
        "--tls-key-file",
        pki.serverKey.file,
        "--tls-ca-cert-file",
        pki.ca.file,
        "--tls-auth-clients",
        "yes"
      ]
    })
    return tlsPort
  })

/** A withLock section and a store round trip on `LockKv.layer` under `entries`, observed. */
const sectionOn = (entries: Record<string, string>) =>
  Effect.gen(function*() {
    const started = Date.now()
    const observed = yield* observe(
      Effect.gen(function*() {
        const kv = yield* LockKv.LockKv
        yield* kv.set("tls-probe", "ok", { PX: 10_000 })
        return yield* Lock.withLock(kv.get("tls-probe"), "tls-job", { ttl: "5 seconds" })
      }).pipe(
        Effect.provide(LockKv.layer),
        Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(entries)), { pathDelim: "_" }))
      )
    )
    return { ...observed, elapsed: Date.now() - started }
  })

const failureMessage = <A, E>(exit: Exit.Exit<A, E>): string => {
  if (Exit.isSuccess(exit)) throw new Error("expected a failure")
  const failure = Cause.failureOption(exit.cause)
  if (Option.isNone(failure)) throw new Error(`expected a typed failure, got ${Cause.pretty(exit.cause)}`)
  const error = failure.value as { readonly _tag?: unknown; readonly operation?: unknown; readonly message?: unknown }
  expect(error._tag).toBe("LockKvError")
  expect(error.operation).toBe("connect")
  return String(error.message)
}

describe("security: TLS with client certificates", () => {
  it.scopedLive(
    "CA, client certificate and key from REDIS_TLS_* (files or inline PEMs) through LockKv.layer",
    () =>
      Effect.gen(function*() {
        const pki = yield* pkiScoped
        const port = yield* mutualTlsServer(pki)
        const url = `rediss://127.0.0.1:${port}`

        const fromFiles = yield* sectionOn({
          REDIS_URL: url,
          REDIS_TLS_CA: pki.ca.file,
          REDIS_TLS_CERT: pki.clientCert.file,
          REDIS_TLS_KEY: pki.clientKey.file
        })
        expect(fromFiles.exit).toEqual(Exit.succeed(Option.some("ok")))

        const inline = yield* sectionOn({
          REDIS_HOST: "127.0.0.1",
          REDIS_PORT: String(port),
          REDIS_TLS_CA: pki.ca.pem,
          REDIS_TLS_CERT: pki.clientCert.pem,
          REDIS_TLS_KEY: pki.clientKey.pem
        })
        expect(inline.exit).toEqual(Exit.succeed(Option.some("ok")))
        for (const line of pemLines(pki.clientKey.pem)) {
          expect(inline.everything()).not.toContain(line)
          expect(fromFiles.everything()).not.toContain(line)
        }
      }),
    30_000
  )

  it.scopedLive(
    "refused clearly, within the bound, without printing the key: no client certificate, a client certificate of another CA, a server certificate from an untrusted CA",
    () =>
      Effect.gen(function*() {
        const pki = yield* pkiScoped
        const port = yield* mutualTlsServer(pki)
        const url = `rediss://127.0.0.1:${port}`
        const cases: ReadonlyArray<readonly [string, Record<string, string>, RegExp]> = [
          ["no client certificate", { REDIS_TLS_CA: pki.ca.file }, /cannot connect to Redis at 127\.0\.0\.1:\d+: .+/],
          [
            "a client certificate signed by another CA",
            {
              REDIS_TLS_CA: pki.ca.file,
              REDIS_TLS_CERT: pki.otherClientCert.pem,
              REDIS_TLS_KEY: pki.otherClientKey.pem
            },
            /cannot connect to Redis at 127\.0\.0\.1:\d+: .+/
          ],
          [
            "the wrong CA for the server's certificate",
            { REDIS_TLS_CA: pki.otherCa.file, REDIS_TLS_CERT: pki.clientCert.pem, REDIS_TLS_KEY: pki.clientKey.pem },
            /cannot connect to Redis at 127\.0\.0\.1:\d+: .*certificate/
          ],
          [
            "no CA at all (system roots)",
            { REDIS_TLS_CERT: pki.clientCert.pem, REDIS_TLS_KEY: pki.clientKey.pem },
            /cannot connect to Redis at 127\.0\.0\.1:\d+: .*certificate/
          ]
        ]
        for (const [label, entries, expected] of cases) {
          const { elapsed, everything, exit } = yield* sectionOn({
            REDIS_URL: url,
            REDIS_CONNECT_TIMEOUT: "3s",
            ...entries
          })
          expect(failureMessage(exit), label).toMatch(expected)
          expect(elapsed, label).toBeLessThan(10_000)
          const text = everything()
          for (const key of [pki.clientKey.pem, pki.otherClientKey.pem]) {
            for (const line of pemLines(key)) expect(text, label).not.toContain(line)
          }
        }
      }),
    60_000
  )
})
