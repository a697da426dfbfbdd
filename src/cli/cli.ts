/**
 * The command-line interface: `exec`, `status` and `release`, and `run`, which
 * turns an argv into an exit code.
 *
 * Parsed with Node's own `util.parseArgs` in strict mode: an unknown option, a
 * missing value or a stray argument is a usage error (exit 2), never run as
 * the command. Everything after the first `--` belongs to the command of
 * `exec` and is handed over untouched (`--help` included). Help is plain text:
 * no colours, whatever the terminal.
 */
import * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import { readFileSync } from "node:fs"
import { parseArgs, type ParseArgsConfig } from "node:util"
import * as DurationParser from "../internal/duration.js"
import type { CliExit } from "./errors.js"
import { ExitCodes, redact, UsageError } from "./errors.js"
import { exec } from "./exec.js"
import * as Inspect from "./inspect.js"

/** The program's name, as users type it (the same whichever path started it). */
const program = "effect-lock"

/** The package version, shown by `--version` (from package.json: `../../` from src/cli and dist/cli alike). */
export const version = (): string => {
  const manifest: unknown = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8"))
  return typeof manifest === "object" && manifest !== null && "version" in manifest
    ? String(manifest.version)
    : "unknown"
}

// -----------------------------------------------------------------------------
// Reading a command line
// -----------------------------------------------------------------------------

type OptionSpecs = NonNullable<ParseArgsConfig["options"]>

type Values = Readonly<Record<string, string | boolean | undefined>>

interface Parsed {
  readonly values: Values
  readonly positionals: ReadonlyArray<string>
}

const help = { type: "boolean", short: "h" } as const

/** The distance between two words (insertions, deletions, substitutions, adjacent swaps). */
const distance = (a: string, b: string): number => {
  const d: Array<Array<number>> = Array.from({ length: a.length + 1 }, (_, i) => [i])
  for (let j = 1; j <= b.length; j++) d[0]![j] = j
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      let best = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, d[i - 2]![j - 2]! + 1)
      d[i]![j] = best
    }
  }
  return d[a.length]![b.length]!
}

/** The candidate closest to `word`, if it is close enough to be a likely typo (or `word` starts it). */
const closest = (word: string, candidates: ReadonlyArray<string>): string | undefined => {
  const typed = word.toLowerCase()
  if (typed.length < 3) return undefined
  let best: { readonly candidate: string; readonly distance: number } | undefined
  for (const candidate of candidates) {
    const d = candidate.startsWith(typed) ? 1 : distance(typed, candidate)
    if (d <= 2 && (best === undefined || d < best.distance)) best = { candidate, distance: d }
  }
  return best?.candidate
}

/**
 * Why strict parsing refused `words`, in one line naming the option, read from
 * a lenient parse of the same words (Node's own messages are multi-line).
 */
const explain = (options: OptionSpecs, words: ReadonlyArray<string>, error: unknown): string => {
  const { tokens } = parseArgs({ args: [...words], options, strict: false, allowPositionals: true, tokens: true })
  for (const token of tokens) {
    if (token.kind !== "option") continue
    const spec = options[token.name]
    const flag = token.rawName
    if (spec === undefined) {
      const suggestion = closest(token.name, Object.keys(options))
      return `unknown option ${flag}` + (suggestion === undefined ? "" : ` (did you mean --${suggestion}?)`)
    }
    if (spec.type === "boolean" && token.value !== undefined) {
      return `${flag} takes no value (got ${JSON.stringify(token.value)})`
    }
    if (spec.type === "string" && token.value === undefined) return `${flag} needs a value`
    if (spec.type === "string" && token.inlineValue === false && token.value?.startsWith("-") === true) {
      return `${flag} needs a value, and ${JSON.stringify(token.value)} looks like an option ` +
        `(if it is the value, write --${token.name}=${token.value})`
    }
  }
  const message = error instanceof Error ? error.message : String(error)
  return message.split("\n")[0]!
}

/**
 * Parses the options and positional arguments of `words` (which never include
 * the `--` or what follows it). `help` when `-h`/`--help` is among them.
 */
const parseWords = (
  command: string | undefined,
  options: OptionSpecs,
  words: ReadonlyArray<string>
): Either.Either<Parsed | "help", UsageError> => {
  const lenient = parseArgs({ args: [...words], options, strict: false, allowPositionals: true, tokens: true })
  if (lenient.tokens.some((token) => token.kind === "option" && token.name === "help")) return Either.right("help")
  try {
    const parsed = parseArgs({ args: [...words], options, strict: true, allowPositionals: true })
    const values: Record<string, string | boolean | undefined> = {}
    for (const [name, value] of Object.entries(parsed.values)) {
      if (!Array.isArray(value)) values[name] = value
    }
    return Either.right({ values, positionals: parsed.positionals })
  } catch (error) {
    return Either.left(new UsageError({ message: explain(options, words, error), command }))
  }
}

const stringValue = (values: Values, name: string): string | undefined => {
  const value = values[name]
  return typeof value === "string" ? value : undefined
}

const flagValue = (values: Values, name: string): boolean => values[name] === true

/** The one `<key>` of a command; the hint says where a stray word belongs. */
const oneKey = (
  command: string,
  positionals: ReadonlyArray<string>,
  strayHint: string
): Either.Either<string, UsageError> => {
  const [key, stray] = positionals
  if (key === undefined) return Either.left(new UsageError({ message: "missing <key>", command }))
  if (stray !== undefined) {
    return Either.left(new UsageError({ message: `unexpected argument ${JSON.stringify(stray)}${strayHint}`, command }))
  }
  return Either.right(key)
}

const durationFlag = (
  command: string,
  name: string,
  text: string | undefined,
  fallback: Duration.Duration,
  options: DurationParser.ParseOptions
): Either.Either<Duration.Duration, UsageError> =>
  text === undefined
    ? Either.right(fallback)
    : Either.mapLeft(
      DurationParser.parse(text, options),
      (reason) => new UsageError({ message: `--${name}: ${reason}`, command })
    )

// -----------------------------------------------------------------------------
// Help
// -----------------------------------------------------------------------------

/** A two-column block: names padded to one width, descriptions wrapped under each other. */
const table = (rows: ReadonlyArray<readonly [string, string]>): string => {
  const width = Math.max(...rows.map(([name]) => name.length)) + 2
  return rows.map(([name, text]) => {
    const lines = wrap(text, 80 - 2 - width)
    return lines.map((line, i) => `  ${(i === 0 ? name : "").padEnd(width)}${line}`.trimEnd()).join("\n")
  }).join("\n")
}

const wrap = (text: string, width: number): Array<string> => {
  const lines: Array<string> = []
  let line = ""
  for (const word of text.split(/\s+/)) {
    if (line !== "" && line.length + 1 + word.length > width) {
      lines.push(line)
      line = word
    } else {
      line = line === "" ? word : `${line} ${word}`
    }
  }
  lines.push(line)
  return lines
}

const paragraph = (text: string): string => wrap(text, 80).join("\n")

const examples = (lines: ReadonlyArray<readonly [string, string]>): string =>
  "Examples:\n" + lines.map(([comment, line]) => `  # ${comment}\n  ${line}`).join("\n\n")

interface CommandSpec {
  readonly name: string
  readonly usage: string
  readonly options: OptionSpecs
  readonly help: string
}

const execUsage = `${program} exec <key> [options] -- <command> [args...]`

const execSpec: CommandSpec = {
  name: "exec",
  usage: execUsage,
  options: {
    ttl: { type: "string" },
    wait: { type: "string" },
    "no-wait": { type: "boolean" },
    "conflict-exit-code": { type: "string" },
    quiet: { type: "boolean", short: "q" },
    "kill-grace": { type: "string" },
    namespace: { type: "string" },
    help
  },
  help: [
    `Usage: ${execUsage}`,
    paragraph(
      "Runs <command> while holding the lock <key> in Redis, like flock(1) across machines. The lock is renewed " +
        "while the command runs and released when it exits. The command runs in its own process group with the " +
        "CLI's stdin, stdout and stderr; SIGINT, SIGTERM and SIGHUP are forwarded to it. If the lock is lost, the " +
        "group gets SIGTERM, then SIGKILL after --kill-grace. The command sees EFFECT_LOCK_KEY and " +
        "EFFECT_LOCK_FENCE (the fencing token of this acquisition) in its environment. Everything after -- goes " +
        "to the command untouched."
    ),
    "Options:\n" + table([
      ["--ttl <duration>", "time to live of the lock, renewed every ttl/3 while the command runs (default 30s)"],
      [
        "--wait <duration>",
        "how long to wait when the lock is held elsewhere (default 10s; 0 = one try; infinity = until acquired)"
      ],
      ["--no-wait", "one try: the same as --wait 0"],
      [
        "--conflict-exit-code <N>",
        "exit code when the lock is held elsewhere (default 1; 0..255; 0 makes a skipped run a success)"
      ],
      [
        "-q, --quiet",
        "print nothing when the lock is held elsewhere, and no waiting line; errors are still printed"
      ],
      [
        "--kill-grace <duration>",
        "after a lost lock, the time between SIGTERM and SIGKILL to the command's process group (default 10s)"
      ],
      ["--namespace <ns>", "key prefix; overrides LOCK_NAMESPACE (default \"lock\")"],
      ["-h, --help", "show this help"]
    ]),
    paragraph(`Durations: ${DurationParser.formats}; a bare number is refused (except 0).`),
    "Exit codes:\n" + table([
      ["the command's", "the command ran and exited"],
      ["128+n", "the command died by signal n"],
      ["126, 127", "the command cannot be run, or was not found"],
      ["1", "the lock is held elsewhere (or --conflict-exit-code)"],
      ["2", "usage, configuration or connection error (nothing was run)"],
      ["3", "the lock was lost while the command ran (the command was terminated)"]
    ]),
    examples([
      [
        "wait up to 10s (the default) for the lock, then run the report",
        `${program} exec nightly-report -- ./report.sh`
      ],
      [
        "from cron: skip this run silently if the previous one still runs",
        `${program} exec nightly-report --no-wait --quiet --conflict-exit-code 0 -- ./report.sh`
      ],
      ["wait as long as it takes, as flock(1) does", `${program} exec deploy --wait infinity -- make deploy`],
      [
        "a long job: wait up to 5 minutes, renew a 1 minute TTL",
        `${program} exec deploy --wait 5m --ttl 1m -- make deploy`
      ],
      ["arguments that look like options go after --", `${program} exec cleanup -- find /tmp -name '*.tmp' -delete`]
    ])
  ].join("\n\n")
}

const statusUsage = `${program} status <key> [--json] [--namespace <ns>]`

const statusSpec: CommandSpec = {
  name: "status",
  usage: statusUsage,
  options: { json: { type: "boolean" }, namespace: { type: "string" }, help },
  help: [
    `Usage: ${statusUsage}`,
    paragraph(
      "Shows whether <key> is held, its remaining TTL and its fencing token. Like a `flock -n` probe, the exit " +
        "code tells: 0 when the lock is held, 1 when it is free (with --json too: the JSON is printed either " +
        "way), 2 when Redis is not configured or cannot be reached."
    ),
    "Options:\n" + table([
      ["--json", "print one JSON object: {\"key\",\"namespace\",\"held\",\"ttlMs\",\"fence\"}"],
      ["--namespace <ns>", "key prefix; overrides LOCK_NAMESPACE (default \"lock\")"],
      ["-h, --help", "show this help"]
    ]),
    examples([
      ["a sentence", `${program} status nightly-report`],
      ["in a script: is it running somewhere?", `if ${program} status nightly-report >/dev/null; then echo busy; fi`],
      ["the details as JSON", `${program} status nightly-report --json | jq .ttlMs`]
    ])
  ].join("\n\n")
}

const releaseUsage = `${program} release <key> --force [--namespace <ns>]`

const releaseSpec: CommandSpec = {
  name: "release",
  usage: releaseUsage,
  options: { force: { type: "boolean" }, namespace: { type: "string" }, help },
  help: [
    `Usage: ${releaseUsage}`,
    paragraph(
      "Operator override: deletes the lock <key> whoever holds it (for a holder that is gone and a TTL you " +
        "cannot wait out). The holder, if it still runs, loses the lock at its next renewal (its exec exits 3). " +
        "Refuses without --force (exit 2)."
    ),
    "Options:\n" + table([
      ["--force", "required: confirms that you are deleting a lock someone else may hold"],
      ["--namespace <ns>", "key prefix; overrides LOCK_NAMESPACE (default \"lock\")"],
      ["-h, --help", "show this help"]
    ]),
    examples([["remove a stuck lock", `${program} release nightly-report --force`]])
  ].join("\n\n")
}

const commands: ReadonlyArray<CommandSpec> = [execSpec, statusSpec, releaseSpec]

const globalUsage = `${program} <exec|status|release> <key> [options]`

const globalHelp = [
  `Usage: ${globalUsage}`,
  paragraph(
    "A distributed flock(1) on Redis: runs a command while holding a lock, so that the same job started on " +
      "several machines (or by overlapping cron runs) runs one at a time."
  ),
  "Commands:\n" + table([
    ["exec <key> -- <command>", "run a command while holding the lock"],
    ["status <key>", "is the lock held? (exit 0 held, 1 free)"],
    ["release <key> --force", "delete a stuck lock"]
  ]),
  "Options:\n" + table([
    ["-h, --help", `show this help; \`${program} <command> --help\` shows a command's`],
    ["--version", "print the version"]
  ]),
  "Environment:\n" + table([
    ["REDIS_URL", "redis://[user:password@]host:port[/db], rediss:// for TLS"],
    ["REDIS_HOST ...", "or in parts: REDIS_HOST, REDIS_PORT, REDIS_USERNAME, REDIS_PASSWORD, REDIS_DB, REDIS_TLS"],
    ["LOCK_NAMESPACE", "key prefix (default \"lock\")"]
  ]),
  paragraph(
    "Without REDIS_URL or REDIS_HOST the CLI refuses to run: an in-memory lock protects nothing across processes."
  ),
  examples([
    ["run a job under a lock", `REDIS_URL=redis://localhost:6379 ${program} exec nightly-report -- ./report.sh`],
    ["who holds it?", `${program} status nightly-report`],
    ["remove a stuck lock", `${program} release nightly-report --force`]
  ])
].join("\n\n")

// -----------------------------------------------------------------------------
// Commands
// -----------------------------------------------------------------------------

const namespaceOf = (values: Values): Option.Option<string> => Option.fromNullable(stringValue(values, "namespace"))

const print = (text: string) => Effect.sync(() => process.stdout.write(text.endsWith("\n") ? text : `${text}\n`))

const runExec = (parsed: Parsed, rest: ReadonlyArray<string> | undefined) =>
  Effect.gen(function*() {
    const { values } = parsed
    const key = yield* oneKey("exec", parsed.positionals, " (the command goes after --)")
    if (rest === undefined) {
      return yield* new UsageError({ message: "missing -- <command>: the command goes after --", command: "exec" })
    }
    const [command, ...args] = rest
    if (command === undefined) return yield* new UsageError({ message: "missing <command> after --", command: "exec" })

    const ttlText = stringValue(values, "ttl")
    if (ttlText?.trim().toLowerCase() === DurationParser.infinityWord) {
      return yield* new UsageError({
        message: "--ttl must be finite: the TTL is what frees the lock of a holder that dies " +
          "(renewal keeps a live holder's lock; to wait without end, use --wait infinity)",
        command: "exec"
      })
    }
    const ttl = yield* durationFlag("exec", "ttl", ttlText, Duration.seconds(30), { positive: true })
    const waitText = stringValue(values, "wait")
    if (flagValue(values, "no-wait") && waitText !== undefined) {
      return yield* new UsageError({ message: "--wait and --no-wait cannot be combined", command: "exec" })
    }
    const wait = flagValue(values, "no-wait")
      ? Duration.zero
      : yield* durationFlag("exec", "wait", waitText, Duration.seconds(10), { infinity: true })
    const killGrace = yield* durationFlag(
      "exec",
      "kill-grace",
      stringValue(values, "kill-grace"),
      Duration.seconds(10),
      {}
    )
    const codeText = stringValue(values, "conflict-exit-code")
    const conflictExitCode = codeText === undefined ? 1 : Number(codeText.trim())
    if (codeText !== undefined && !(/^\s*\d+\s*$/.test(codeText) && conflictExitCode <= 255)) {
      return yield* new UsageError({
        message: `--conflict-exit-code must be an integer 0..255 (got ${JSON.stringify(codeText)})`,
        command: "exec"
      })
    }
    return yield* exec({
      key,
      command,
      args,
      ttl,
      wait,
      namespace: namespaceOf(values),
      conflictExitCode,
      killGrace,
      quiet: flagValue(values, "quiet")
    })
  })

/** The keys of `status` and `release` may also follow `--` (a key that starts with a dash). */
const keyOf = (command: string, parsed: Parsed, rest: ReadonlyArray<string> | undefined) =>
  oneKey(command, [...parsed.positionals, ...(rest ?? [])], "")

const runStatus = (parsed: Parsed, rest: ReadonlyArray<string> | undefined) =>
  Effect.gen(function*() {
    const key = yield* keyOf("status", parsed, rest)
    const status = yield* Inspect.status(key, namespaceOf(parsed.values))
    yield* print(flagValue(parsed.values, "json") ? JSON.stringify(status) : Inspect.describe(status))
    return status.held ? 0 : ExitCodes.free
  })

const runRelease = (parsed: Parsed, rest: ReadonlyArray<string> | undefined) =>
  Effect.gen(function*() {
    const key = yield* keyOf("release", parsed, rest)
    const removed = yield* Inspect.release(key, namespaceOf(parsed.values), flagValue(parsed.values, "force"))
    yield* print(removed ? `released lock "${key}"` : `lock "${key}" was not held`)
    return 0
  })

const handlers: Record<
  string,
  (parsed: Parsed, rest: ReadonlyArray<string> | undefined) => Effect.Effect<number, CliExit | UsageError>
> = { exec: runExec, status: runStatus, release: runRelease }

/** Reads the arguments (without node and the script) and runs the command they name. */
const dispatch = (args: ReadonlyArray<string>): Effect.Effect<number, CliExit | UsageError> =>
  Effect.gen(function*() {
    // Everything after the first `--` is kept away from option parsing.
    const separator = args.indexOf("--")
    const before = separator === -1 ? args : args.slice(0, separator)
    const rest = separator === -1 ? undefined : args.slice(separator + 1)

    // Options before the command name are the program's own (`--help`, `--version`).
    const at = before.findIndex((word) => word === "-" || !word.startsWith("-"))
    const global = yield* parseWords(
      undefined,
      { help, version: { type: "boolean" } },
      at === -1 ? before : before.slice(0, at)
    )
    if (global === "help") return yield* Effect.as(print(globalHelp), 0)
    if (flagValue(global.values, "version")) return yield* Effect.as(print(version()), 0)
    if (at === -1) {
      return yield* new UsageError({ message: "missing command: exec, status or release" })
    }

    const name = before[at]!
    const spec = commands.find((command) => command.name === name)
    if (spec === undefined) {
      const suggestion = closest(name, commands.map((command) => command.name))
      return yield* new UsageError({
        message: `unknown command ${JSON.stringify(name)}` +
          (suggestion === undefined ? "" : ` (did you mean ${suggestion}?)`)
      })
    }
    const parsed = yield* parseWords(spec.name, spec.options, before.slice(at + 1))
    if (parsed === "help") return yield* Effect.as(print(spec.help), 0)
    return yield* handlers[spec.name]!(parsed, rest)
  })

// -----------------------------------------------------------------------------
// Running
// -----------------------------------------------------------------------------

const printLine = (message: string) => Effect.sync(() => process.stderr.write(`${program}: ${redact(message)}\n`))

const printUsageError = (error: UsageError) => {
  const spec = commands.find((command) => command.name === error.command)
  const helpCommand = spec === undefined ? `${program} --help` : `${program} ${spec.name} --help`
  return printLine(`${error.message}\nUsage: ${spec?.usage ?? globalUsage}\nRun '${helpCommand}' for more.`)
}

/**
 * Runs the CLI on `argv` (as `process.argv`: node, script, then arguments) and
 * succeeds with the exit code: usage errors give 2; a defect is printed and gives 70.
 */
export const run = (argv: ReadonlyArray<string>): Effect.Effect<number> =>
  dispatch(argv.slice(2)).pipe(
    Effect.catchTags({
      UsageError: (error) => Effect.as(printUsageError(error), ExitCodes.config),
      CliExit: (error) => Effect.as(error.message ? printLine(error.message) : Effect.void, error.code)
    }),
    Effect.catchAllCause((cause) =>
      Cause.isInterruptedOnly(cause)
        ? Effect.succeed(130)
        : Effect.as(printLine(`unexpected error: ${Cause.pretty(cause)}`), ExitCodes.internal)
    )
  )
