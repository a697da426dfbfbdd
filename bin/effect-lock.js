#!/usr/bin/env node
// The `effect-lock` command. No build step is needed to run it:
//
// - In the published package (and in a checkout after `npm run build`), it runs
//   the compiled `dist/cli/main.js`: plain Node, no transpiler, no tsx (which is
//   only a devDependency and is not installed for users).
// - In a checkout without `dist/`, or with EFFECT_LOCK_CLI_SOURCE=1 (what the
//   tests set, so that they never run a stale build), it registers tsx's ESM
//   loader in-process (`tsx/esm/api`, no second Node process) and runs
//   `src/cli/main.ts` directly. tsx transpiles each file with esbuild on first
//   use and caches the result, so this starts in about a second.
import { existsSync } from "node:fs"

const dist = new URL("../dist/cli/main.js", import.meta.url)
const source = new URL("../src/cli/main.ts", import.meta.url)
const fromSource = process.env.EFFECT_LOCK_CLI_SOURCE === "1" || !existsSync(dist)

if (fromSource) {
  let register
  try {
    ;({ register } = await import("tsx/esm/api"))
  } catch {
    process.stderr.write(
      "effect-lock: dist/cli/main.js is missing and tsx is not installed; run `npm run build` first\n"
    )
    process.exit(70)
  }
  register()
  await import(source.href)
} else {
  await import(dist.href)
}
