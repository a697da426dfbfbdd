/**
 * Test PKI made with openssl in a temporary directory: a CA that signs the
 * server's certificate (127.0.0.1/localhost) and a client certificate, and a
 * second, unrelated CA with a client certificate of its own.
 */
import * as Effect from "effect/Effect"
import { spawnSync } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"

export interface Pem {
  /** Path of the PEM file. */
  readonly file: string
  /** Its contents. */
  readonly pem: string
}

export interface Pki {
  readonly dir: string
  readonly ca: Pem
  readonly serverCert: Pem
  readonly serverKey: Pem
  readonly clientCert: Pem
  readonly clientKey: Pem
  readonly otherCa: Pem
  readonly otherClientCert: Pem
  readonly otherClientKey: Pem
}

const make = (): Pki => {
  const dir = mkdtempSync(join(tmpdir(), "effect-lock-pki-"))
  const run = (args: ReadonlyArray<string>) => {
    const result = spawnSync("openssl", args, { cwd: dir, encoding: "utf8" })
    if (result.error !== undefined || result.status !== 0) {
      throw new Error(`openssl ${args.join(" ")} failed: ${result.stderr ?? String(result.error)}`)
    }
  }
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
  const ca = (name: string) =>
    run(["req", "-x509", ...ec, "-keyout", `${name}.key`, "-out", `${name}.crt`, "-days", "2", "-subj", `/CN=${name}`])
  const signed = (name: string, by: string, ext: string) => {
    writeFileSync(join(dir, `${name}.ext`), ext)
    run(["req", ...ec, "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", `/CN=${name}`])
    run([
      "x509",
      "-req",
      "-in",
      `${name}.csr`,
      "-CA",
      `${by}.crt`,
      "-CAkey",
      `${by}.key`,
      "-CAcreateserial",
      "-out",
      `${name}.crt`,
      "-days",
      "2",
      "-extfile",
      `${name}.ext`
    ])
  }
  ca("test-ca")
  ca("other-ca")
  signed("server", "test-ca", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n")
  signed("client", "test-ca", "extendedKeyUsage=clientAuth\n")
  signed("intruder", "other-ca", "extendedKeyUsage=clientAuth\n")
  const pem = (file: string): Pem => ({ file: join(dir, file), pem: readFileSync(join(dir, file), "utf8") })
  return {
    dir,
    ca: pem("test-ca.crt"),
    serverCert: pem("server.crt"),
    serverKey: pem("server.key"),
    clientCert: pem("client.crt"),
    clientKey: pem("client.key"),
    otherCa: pem("other-ca.crt"),
    otherClientCert: pem("intruder.crt"),
    otherClientKey: pem("intruder.key")
  }
}

/** The PKI, its directory removed when the scope closes. */
export const pkiScoped = Effect.acquireRelease(
  Effect.sync(make),
  (pki) => Effect.sync(() => rmSync(pki.dir, { recursive: true, force: true }))
)

/** The base64 body of a PEM (what would leak if it were printed), without the armour lines. */
export const pemBody = (pem: string): string =>
  pem.split("\n").filter((line) => line !== "" && !line.startsWith("-----")).join("")

/** The longest line of the PEM body: a string that appears if any part of the key is printed as is. */
export const pemLines = (pem: string): ReadonlyArray<string> =>
  pem.split("\n").filter((line) => line.length >= 16 && !line.startsWith("-----"))
