/**
 * `npm run bench` — the benchmark of issue 4. See bench/README.md.
 *
 * This file only makes sure the collector is exposed (memory figures call
 * `gc()`): without `--expose-gc` it re-runs itself as
 * `node --expose-gc --import tsx bench/run.ts …`, then hands over to `main.ts`.
 */
import { spawn } from "node:child_process"
import { fileURLToPath } from "node:url"

if (typeof globalThis.gc === "function" || process.env.EFFECT_LOCK_BENCH_CHILD === "1") {
  await import("./main.js")
} else {
  const child = spawn(
    process.execPath,
    ["--expose-gc", "--import", import.meta.resolve("tsx"), fileURLToPath(import.meta.url), ...process.argv.slice(2)],
    { stdio: "inherit", env: { ...process.env, EFFECT_LOCK_BENCH_CHILD: "1" } }
  )
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.on(signal, () => child.kill(signal))
  }
  child.on("exit", (code, signal) => process.exit(code ?? (signal === null ? 1 : 128)))
}
