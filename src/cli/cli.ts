/**
 * The command-line interface: `exec`, `status` and `release`, parsed with
 * `@effect/cli`, and `run`, which turns an argv into an exit code.
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as HelpDoc from "@effect/cli/HelpDoc"
import * as Options from "@effect/cli/Options"
import * as ValidationError from "@effect/cli/ValidationError"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as NodePath from "@effect/platform-node/NodePath"
import * as NodeTerminal from "@effect/platform-node/NodeTerminal"
import * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as DurationParser from "./duration.js"
import { CliExit, ExitCodes, redact } from "./errors.js"
import { exec } from "./exec.js"
import * as Inspect from "./inspect.js"

/** The package version, shown by `--version`. */
export const version = "0.1.0"

// -----------------------------------------------------------------------------
// Everything after the first `--` belongs to the command being run.
//
// @effect/cli looks for its built-in flags (`--help`, `-h`, `--version`,
// `--wizard`, `--completions`) anywhere in argv, even after `--`, so
// `effect-lock exec k -- grep -h x` would print our help instead of running grep.
// So the words after `--` are hidden from it: it receives placeholders (which
// contain a NUL, so they cannot collide with a real argument) that the `exec`
// handler maps back. The usage line and "missing command" checks still work.
// -----------------------------------------------------------------------------

const placeholderPrefix = "\u0000effect-lock-arg-"

interface SplitArgv {
  /** What @effect/cli parses. */
  readonly parsed: ReadonlyArray<string>
  /** The words after the first `--`. */
  readonly forced: ReadonlyArray<string>
}

const splitArgv = (args: ReadonlyArray<string>): SplitArgv => {
  const separator = args.indexOf("--")
  if (separator === -1) return { parsed: args, forced: [] }
  const forced = args.slice(separator + 1)
  return {
    parsed: [...args.slice(0, separator), "--", ...forced.map((_, i) => `${placeholderPrefix}${i}`)],
    forced
  }
}

const isPlaceholder = (word: string): boolean => word.startsWith(placeholderPrefix)

const restore = (word: string, forced: ReadonlyArray<string>): string =>
  isPlaceholder(word) ? forced[Number(word.slice(placeholderPrefix.length))]! : word

// -----------------------------------------------------------------------------
// Options
// -----------------------------------------------------------------------------

const durationOption = (
  name: string,
  options: { readonly default: string; readonly positive: boolean; readonly description: string }
): Options.Options<Duration.Duration> =>
  Options.text(name).pipe(
    Options.withPseudoName("duration"),
    Options.withDescription(`${options.description}; default ${options.default} (${DurationParser.formats})`),
    Options.withDefault(options.default),
    Options.mapEffect((text) =>
      Either.match((options.positive ? DurationParser.parsePositive : DurationParser.parse)(text), {
        onLeft: (reason) => Effect.fail(ValidationError.invalidValue(HelpDoc.p(`--${name}: ${reason}`))),
        onRight: Effect.succeed
      })
    )
  )

const keyArg = Args.text({ name: "key" }).pipe(Args.withDescription("the lock's name (stored as <namespace>:<key>)"))

const namespaceOption = Options.text("namespace").pipe(
  Options.withPseudoName("ns"),
  Options.withDescription("key prefix; overrides LOCK_NAMESPACE (default \"lock\")"),
  Options.optional
)

const execOptions = {
  key: keyArg,
  command: Args.text({ name: "command" }).pipe(
    Args.withDescription("the command and its arguments, after --"),
    Args.atLeast(1)
  ),
  ttl: durationOption("ttl", {
    default: "30s",
    positive: true,
    description: "time to live of the lock; renewed every ttl/3 while the command runs"
  }),
  wait: Options.text("wait").pipe(
    Options.withPseudoName("duration"),
    Options.withDescription(
      `how long to wait for the lock when it is held elsewhere; default 10s, 0 = one try (${DurationParser.formats})`
    ),
    Options.optional
  ),
  noWait: Options.boolean("no-wait").pipe(Options.withDescription("do not wait: the same as --wait 0")),
  namespace: namespaceOption,
  conflictExitCode: Options.integer("conflict-exit-code").pipe(
    Options.withPseudoName("N"),
    Options.withDescription(
      "exit code when the lock is held elsewhere; default 1 (0..255; 0 makes a skipped run a success)"
    ),
    Options.withDefault(1),
    Options.mapEffect((code) =>
      Number.isInteger(code) && code >= 0 && code <= 255
        ? Effect.succeed(code)
        : Effect.fail(ValidationError.invalidValue(HelpDoc.p(`--conflict-exit-code must be 0..255 (got ${code})`)))
    )
  ),
  killGrace: durationOption("kill-grace", {
    default: "10s",
    positive: false,
    description: "after a lost lock, how long between SIGTERM and SIGKILL to the command's process group"
  })
}

/** Parses `--wait` / `--no-wait` into one duration. */
const resolveWait = (wait: Option.Option<string>, noWait: boolean): Either.Either<Duration.Duration, string> => {
  if (noWait) {
    return Option.isSome(wait) ? Either.left("--wait and --no-wait cannot be combined") : Either.right(Duration.zero)
  }
  return Option.match(wait, {
    onNone: () => Either.right(Duration.seconds(10)),
    onSome: (text) => Either.mapLeft(DurationParser.parse(text), (reason) => `--wait: ${reason}`)
  })
}

const examples = (lines: ReadonlyArray<readonly [string, string]>): HelpDoc.HelpDoc =>
  HelpDoc.blocks([
    HelpDoc.h2("EXAMPLES"),
    ...lines.map(([comment, line]) => HelpDoc.p(`# ${comment}\n  ${line}`))
  ])

const usageError = (message: string) => new CliExit({ code: ExitCodes.config, message })

// -----------------------------------------------------------------------------
// Commands
// -----------------------------------------------------------------------------

const makeCommands = (forced: ReadonlyArray<string>) => {
  const execCommand = Command.make("exec", execOptions, (o) =>
    Effect.gen(function*() {
      if (isPlaceholder(o.key)) {
        return yield* usageError("missing <key>: effect-lock exec <key> [options] -- <command> [args...]")
      }
      const wait = resolveWait(o.wait, o.noWait)
      if (Either.isLeft(wait)) return yield* usageError(wait.left)
      const [command, ...args] = o.command.map((word) => restore(word, forced))
      const code = yield* exec({
        key: o.key,
        command: command!,
        args,
        ttl: o.ttl,
        wait: wait.right,
        namespace: o.namespace,
        conflictExitCode: o.conflictExitCode,
        killGrace: o.killGrace
      })
      if (code !== 0) return yield* new CliExit({ code })
    })).pipe(
      Command.withDescription(HelpDoc.blocks([
        HelpDoc.p(
          "Runs <command> while holding the lock <key> in Redis, like flock(1) across machines. " +
            "The lock is renewed while the command runs and released when it exits. The command runs in its own " +
            "process group with the terminal's stdin/stdout/stderr; SIGINT, SIGTERM and SIGHUP are forwarded to it. " +
            "If the lock is lost, the group gets SIGTERM, then SIGKILL after --kill-grace. The command sees " +
            "EFFECT_LOCK_KEY and EFFECT_LOCK_FENCE (the fencing token of this acquisition) in its environment."
        ),
        HelpDoc.p(
          "Exit codes: the command's own; 128+n if it died by signal n; 126/127 if it cannot be started; " +
            "the conflict code (default 1) if the lock is held elsewhere; 2 for configuration or connection " +
            "errors; 3 if the lock was lost while the command ran."
        ),
        examples([
          ["wait up to 10s (the default) for the lock, then run the report", "effect-lock exec nightly-report -- ./report.sh"],
          ["from cron: skip this run quietly if the previous one still runs",
            "effect-lock exec nightly-report --no-wait --conflict-exit-code 0 -- ./report.sh"],
          ["a long job: wait up to 5 minutes, renew a 1 minute TTL", "effect-lock exec deploy --wait 5m --ttl 1m -- make deploy"],
          ["arguments that look like options go after --", "effect-lock exec cleanup -- find /tmp -name '*.tmp' -delete"]
        ])
      ]))
    )

  const statusCommand = Command.make("status", {
    key: keyArg,
    json: Options.boolean("json").pipe(Options.withDescription("print one JSON object instead of a sentence")),
    namespace: namespaceOption
  }, (o) =>
    Effect.gen(function*() {
      const status = yield* Inspect.status(o.key, o.namespace)
      const line = o.json ? JSON.stringify(status) : Inspect.describe(status)
      yield* Effect.sync(() => process.stdout.write(`${line}\n`))
    })).pipe(
      Command.withDescription(HelpDoc.blocks([
        HelpDoc.p(
          "Shows whether <key> is held, its remaining TTL and its fencing token. Exits 0 whether held or free " +
            "(read \"held\" from --json); 2 when Redis is not configured or cannot be reached."
        ),
        examples([
          ["a sentence", "effect-lock status nightly-report"],
          ["for scripts: {\"key\",\"namespace\",\"held\",\"ttlMs\",\"fence\"}",
            "effect-lock status nightly-report --json | jq .held"]
        ])
      ]))
    )

  const releaseCommand = Command.make("release", {
    key: keyArg,
    force: Options.boolean("force").pipe(
      Options.withDescription("required: confirms that you are deleting a lock someone else may hold")
    ),
    namespace: namespaceOption
  }, (o) =>
    Effect.gen(function*() {
      const removed = yield* Inspect.release(o.key, o.namespace, o.force)
      yield* Effect.sync(() =>
        process.stdout.write(removed ? `released lock "${o.key}"\n` : `lock "${o.key}" was not held\n`)
      )
    })).pipe(
      Command.withDescription(HelpDoc.blocks([
        HelpDoc.p(
          "Operator override: deletes the lock <key> whoever holds it (for a holder that is gone and a TTL you " +
            "cannot wait out). The holder, if it still runs, loses the lock at its next renewal (its exec exits 3). " +
            "Refuses without --force."
        ),
        examples([["remove a stuck lock", "effect-lock release nightly-report --force"]])
      ]))
    )

  return Command.make("effect-lock").pipe(
    Command.withDescription(HelpDoc.blocks([
      HelpDoc.p(
        "A distributed flock on Redis. Redis comes from the environment, as in the library: REDIS_URL " +
          "(redis://[user:password@]host:port[/db], rediss:// for TLS) or REDIS_HOST, REDIS_PORT, REDIS_USERNAME, " +
          "REDIS_PASSWORD, REDIS_DB, REDIS_TLS; LOCK_NAMESPACE sets the key prefix (default \"lock\"). " +
          "Run `effect-lock <command> --help` for each command."
      ),
      examples([
        ["run a job under a lock", "REDIS_URL=redis://localhost:6379 effect-lock exec nightly-report -- ./report.sh"],
        ["who holds it?", "effect-lock status nightly-report"],
        ["remove a stuck lock", "effect-lock release nightly-report --force"]
      ])
    ])),
    Command.withSubcommands([execCommand, statusCommand, releaseCommand])
  )
}

// -----------------------------------------------------------------------------
// Running
// -----------------------------------------------------------------------------

const platform = Layer.mergeAll(NodeFileSystem.layer, NodePath.layer, NodeTerminal.layer)

const printLine = (message: string) => Effect.sync(() => process.stderr.write(`effect-lock: ${redact(message)}\n`))

/**
 * Runs the CLI on `argv` (as `process.argv`: node, script, then arguments) and
 * succeeds with the exit code. Usage errors (already printed by @effect/cli)
 * give 2; a defect is printed and gives 70.
 */
export const run = (argv: ReadonlyArray<string>): Effect.Effect<number> => {
  const [node = "node", script = "effect-lock", ...args] = argv
  const { forced, parsed } = splitArgv(args)
  const cli = Command.run(makeCommands(forced), { name: "effect-lock", version })
  return cli([node, script, ...parsed]).pipe(
    Effect.as(0),
    Effect.provide(platform),
    Effect.catchAll((error) => {
      if (ValidationError.isValidationError(error)) return Effect.succeed(ExitCodes.config)
      return Effect.as(error.message ? printLine(error.message) : Effect.void, error.code)
    }),
    Effect.catchAllCause((cause) =>
      Cause.isInterruptedOnly(cause)
        ? Effect.succeed(130)
        : Effect.as(printLine(`unexpected error: ${Cause.pretty(cause)}`), ExitCodes.internal)
    )
  )
}
