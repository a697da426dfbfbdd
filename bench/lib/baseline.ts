/**
 * `--baseline <git-ref>`: effect-lock at another commit, measured beside the
 * working tree in the same interleaved rounds.
 *
 * The ref is built once into a cache directory outside the repository
 * (`os.tmpdir()/effect-lock-baseline-<sha>-<node_modules hash>`): `git archive`
 * of the commit, a `node_modules` symlink to this checkout's own, then the
 * ref's `npm run build`. Node resolves a package through the symlink to its
 * real path, so the baseline's `dist/` and the bench load the same `effect` and
 * `ioredis` module instances: one Effect runtime, one ioredis whose
 * `sendCommand` the sent-command counter wraps. `loadBaseline` checks that
 * identity and refuses to run otherwise.
 *
 * With `--baseline-patch <file>` the diff is applied (`git apply`) to the
 * archived commit before the build, and the cache directory is named after the
 * patch's content too: a recorded A/B (bench/ab/) is one command to re-run.
 */
import * as Effect from "effect/Effect"
import { Redis } from "ioredis"
import { spawnSync } from "node:child_process"
import { createHash } from "node:crypto"
import {
  existsSync,
  mkdtempSync,
  readFileSync,
  realpathSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync
} from "node:fs"
import { tmpdir } from "node:os"
import { basename, join, resolve } from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"
import type { EffectLockModule } from "./effectLock.js"

/** A bad ref, a failed build or a baseline that cannot share the bench's modules: exit code 2. */
export class BaselineError extends Error {
  override readonly name = "BaselineError"
}

/** Where a built baseline is, as passed to the (b') worker processes. */
export interface BaselineLocation {
  /** The ref as given on the command line (the tables' label). */
  readonly ref: string
  readonly sha: string
  readonly dir: string
}

export interface Baseline extends BaselineLocation {
  readonly module: EffectLockModule
  /** Built by this run (false: the cache directory was reused). */
  readonly built: boolean
  /** The build reported type errors but emitted its JavaScript (see `build`). */
  readonly buildWarning: string | undefined
}

/** Environment variable that hands a baseline's location to the (b') workers. */
export const baselineEnv = "EFFECT_LOCK_BENCH_BASELINE"

const repoRoot = fileURLToPath(new URL("../..", import.meta.url))

/** The probe that proves the identity check: it resolves packages exactly as the baseline's `dist/` does. */
const probeFile = "bench-identity.mjs"
/** A build's type errors, kept beside a cached build so that every run that reuses it says so. */
const warningFile = "bench-build-warning.txt"
const probeSource = `// Written by effect-lock's bench (bench/lib/baseline.ts): the module identity check.
export { succeed } from "effect/Effect"
export { Redis } from "ioredis"
export const urls = { effect: import.meta.resolve("effect/Effect"), ioredis: import.meta.resolve("ioredis") }
`

interface Probe {
  readonly succeed: unknown
  readonly Redis: unknown
  readonly urls: { readonly effect: string; readonly ioredis: string }
}

const run = (command: string, args: ReadonlyArray<string>, cwd: string, env: NodeJS.ProcessEnv = process.env) =>
  spawnSync(command, args, { cwd, env, encoding: "utf8", maxBuffer: 64 * 2 ** 20, timeout: 600_000 })

const tail = (text: string, lines = 25): string => text.trimEnd().split("\n").slice(-lines).join("\n")

/** The full sha of `ref`, or a BaselineError if it names no commit here. */
export const resolveRef = (ref: string): string => {
  const result = run("git", ["rev-parse", "--verify", "--quiet", "--end-of-options", `${ref}^{commit}`], repoRoot)
  const sha = result.stdout?.trim() ?? ""
  if (result.status !== 0 || !/^[0-9a-f]{40}$/.test(sha)) {
    throw new BaselineError("not a commit of this repository (git rev-parse --verify found none)")
  }
  return sha
}

/**
 * Builds `sha` into a fresh directory beside the cache's and moves it into
 * place once built, so that an interrupted or failed build never leaves a
 * directory that looks complete.
 */
const build = (
  sha: string,
  patch: string | undefined,
  dir: string,
  nodeModules: string,
  log: (line: string) => void
): void => {
  const work = mkdtempSync(`${dir}.building-`)
  try {
    const archive = join(work, "source.tar")
    const archived = run("git", ["archive", "--format=tar", `--output=${archive}`, sha], repoRoot)
    if (archived.status !== 0) throw new BaselineError(`git archive ${sha} failed:\n${tail(archived.stderr ?? "")}`)
    const extracted = run("tar", ["-xf", archive, "-C", work], work)
    if (extracted.status !== 0) {
      throw new BaselineError(`extracting ${archive} failed:\n${tail(extracted.stderr ?? "")}`)
    }
    rmSync(archive)
    if (patch !== undefined) {
      // Outside any repository, git apply works on the plain files.
      const applied = run("git", ["apply", "--whitespace=nowarn", patch], work)
      if (applied.status !== 0) {
        throw new BaselineError(`git apply ${patch} on ${sha.slice(0, 12)} failed:\n${tail(applied.stderr ?? "")}`)
      }
    }
    symlinkSync(nodeModules, join(work, "node_modules"), "dir")
    // The outer `npm run bench` exports npm_config_local_prefix and friends,
    // which would point this npm at the working tree: leave them out.
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k) && k !== "INIT_CWD"))
    log(`bench: building baseline ${sha.slice(0, 12)} in ${work} (npm run build) …`)
    const built = run("npm", ["run", "build", "--silent"], work, env)
    const output = `${built.stdout ?? ""}\n${built.stderr ?? ""}`
    const typeErrors = output.split("\n").filter((line) => /error TS\d+:/.test(line))
    const emitted = existsSync(join(work, "dist", "index.js"))
    if (built.error === undefined && built.status !== 0 && emitted && typeErrors.length > 0) {
      // tsc emits JavaScript despite type errors. An old ref's may be in code the
      // bench never loads (2798040's CLI imports @effect/cli, no longer installed):
      // go on, say so, and let loading dist/index.js be the test.
      const files = [...new Set(typeErrors.map((line) => line.replace(/\(.*$/, "")))]
      writeFileSync(
        join(work, warningFile),
        `npm run build of ${sha.slice(0, 12)} reported ${typeErrors.length} type error(s), in ${files.join(", ")}; ` +
          "its JavaScript was emitted and only dist/index.js (Lock, LockKv) is loaded\n"
      )
    } else if (built.error !== undefined || built.status !== 0) {
      const why = built.error !== undefined ? built.error.message : `exit code ${built.status ?? built.signal}`
      throw new BaselineError(
        `npm run build of ${sha.slice(0, 12)} failed (${why}):\n${tail(output)}`
      )
    }
    if (!emitted) {
      throw new BaselineError(`npm run build of ${sha.slice(0, 12)} wrote no dist/index.js`)
    }
    writeFileSync(join(work, probeFile), probeSource)
    try {
      renameSync(work, dir)
    } catch (error) {
      // Another bench built the same baseline meanwhile: use theirs.
      if (!existsSync(join(dir, probeFile))) throw error
    }
  } finally {
    if (existsSync(work)) rmSync(work, { recursive: true, force: true })
  }
}

/** Loads a built baseline and checks that it shares the bench's `effect` and `ioredis`. */
export const loadBaseline = async (location: BaselineLocation): Promise<Omit<Baseline, "built" | "buildWarning">> => {
  const { dir, sha } = location
  const probe = (await import(pathToFileURL(join(dir, probeFile)).href)) as Probe
  const ours = { effect: import.meta.resolve("effect/Effect"), ioredis: import.meta.resolve("ioredis") }
  if (probe.succeed !== Effect.succeed || probe.Redis !== Redis) {
    throw new BaselineError(
      `the baseline in ${dir} loads other module instances than the bench ` +
        `(effect: ${probe.urls.effect} vs ${ours.effect}; ioredis: ${probe.urls.ioredis} vs ${ours.ioredis}); ` +
        `its node_modules must be a symlink to ${realpathSync(join(repoRoot, "node_modules"))}`
    )
  }
  const module = (await import(pathToFileURL(join(dir, "dist", "index.js")).href)) as Partial<EffectLockModule>
  const missing = [
    ["Lock.withLock", module.Lock?.withLock],
    ["Lock.acquire", module.Lock?.acquire],
    ["LockKv.LockKv", module.LockKv?.LockKv],
    ["LockKv.layerRedis", module.LockKv?.layerRedis],
    ["LockKv.layerMemory", module.LockKv?.layerMemory]
  ].filter(([, value]) => value === undefined).map(([name]) => name)
  if (module.Lock === undefined || module.LockKv === undefined || missing.length > 0) {
    throw new BaselineError(
      `the baseline ${sha.slice(0, 12)} exports no ${missing.join(", ")}: the bench cannot drive it`
    )
  }
  return { ...location, module: { Lock: module.Lock, LockKv: module.LockKv } }
}

/** Resolves `ref`, builds it unless cached, loads it. Every failure is a BaselineError. */
export const prepareBaseline = async (
  ref: string,
  patchFile: string | undefined,
  log: (line: string) => void
): Promise<Baseline> => {
  const sha = resolveRef(ref)
  const patch = patchFile === undefined ? undefined : resolve(patchFile)
  let patchHash = ""
  if (patch !== undefined) {
    try {
      patchHash = `-p${createHash("sha1").update(readFileSync(patch)).digest("hex").slice(0, 8)}`
    } catch (error) {
      throw new BaselineError(`cannot read ${patch}: ${error instanceof Error ? error.message : String(error)}`)
    }
  }
  const label = patch === undefined ? ref : `${ref}+${basename(patch)}`
  let nodeModules: string
  try {
    nodeModules = realpathSync(join(repoRoot, "node_modules"))
  } catch {
    throw new BaselineError(`no node_modules in ${repoRoot}: run npm install first`)
  }
  // One cache per commit and per node_modules: a baseline built against another
  // checkout's node_modules would load other module instances.
  const modulesHash = createHash("sha1").update(nodeModules).digest("hex").slice(0, 8)
  const dir = join(tmpdir(), `effect-lock-baseline-${sha.slice(0, 12)}-${modulesHash}${patchHash}`)
  const complete = existsSync(join(dir, probeFile)) && existsSync(join(dir, "dist", "index.js"))
  if (!complete) {
    if (existsSync(dir)) rmSync(dir, { recursive: true, force: true })
    build(sha, patch, dir, nodeModules, log)
  } else {
    log(`bench: baseline ${sha.slice(0, 12)} already built in ${dir}`)
  }
  try {
    const warning = existsSync(join(dir, warningFile)) ? readFileSync(join(dir, warningFile), "utf8").trim() : undefined
    return { ...(await loadBaseline({ ref: label, sha, dir })), built: !complete, buildWarning: warning }
  } catch (error) {
    if (error instanceof BaselineError) throw error
    throw new BaselineError(
      `loading the baseline from ${dir} failed: ${error instanceof Error ? error.message : String(error)}`
    )
  }
}
