/**
 * The package's install footprint: its runtime dependencies are exactly the
 * packages its code imports (effect as a peer), so installing the library
 * pulls nothing it does not use; and a git install builds dist/.
 */
import { readdirSync, readFileSync } from "node:fs"
import { builtinModules } from "node:module"
import { join, relative } from "node:path"
import { fileURLToPath } from "node:url"
import { describe, expect, it } from "vitest"

const root = fileURLToPath(new URL("..", import.meta.url))
const manifest = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as {
  readonly scripts: Record<string, string>
  readonly dependencies?: Record<string, string>
  readonly peerDependencies?: Record<string, string>
}

const sources = (dir: string): Array<string> =>
  readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? sources(join(dir, entry.name)) : entry.name.endsWith(".ts") ? [join(dir, entry.name)] : []
  )

/** The module specifiers a file imports (static `import … from`, `export … from`, and `import("…")`). */
const specifiers = (file: string): Array<string> => {
  const text = readFileSync(file, "utf8")
  const found: Array<string> = []
  for (const match of text.matchAll(/^\s*(?:import|export)\b[^"'`]*?\bfrom\s+["']([^"']+)["']/gm)) found.push(match[1]!)
  for (const match of text.matchAll(/^\s*import\s+["']([^"']+)["']/gm)) found.push(match[1]!)
  for (const match of text.matchAll(/\bimport\(\s*["']([^"']+)["']\s*\)/g)) found.push(match[1]!)
  return found
}

/** `effect/Duration` → `effect`, `@effect/cli/Args` → `@effect/cli`; undefined for relative and Node built-ins. */
const packageOf = (specifier: string): string | undefined => {
  if (specifier.startsWith(".")) return undefined
  if (specifier.startsWith("node:") || builtinModules.includes(specifier)) return undefined
  const parts = specifier.split("/")
  return specifier.startsWith("@") ? parts.slice(0, 2).join("/") : parts[0]
}

describe("package", () => {
  const files = sources(join(root, "src"))
  const imported = new Map<string, Set<string>>()
  for (const file of files) {
    for (const specifier of specifiers(file)) {
      const name = packageOf(specifier)
      if (name === undefined) continue
      const users = imported.get(name) ?? new Set<string>()
      users.add(relative(root, file))
      imported.set(name, users)
    }
  }

  it("finds the imports it checks", () => {
    expect(files.length).toBeGreaterThan(10)
    expect(imported.get("effect")?.size).toBeGreaterThan(10)
    expect([...(imported.get("ioredis") ?? [])]).toContain("src/internal/redis/store.ts")
  })

  it("has as runtime dependencies exactly the packages src/ imports, effect as a peer", () => {
    const runtime = Object.keys(manifest.dependencies ?? {}).sort()
    const peers = Object.keys(manifest.peerDependencies ?? {})
    const needed = [...imported.keys()].filter((name) => !peers.includes(name)).sort()
    expect(peers).toEqual(["effect"])
    // Nothing imported that an install would not bring, and nothing brought that nobody imports.
    expect(runtime).toEqual(needed)
    expect(runtime).toEqual(["ioredis"])
  })

  it("keeps the library free of CLI code", () => {
    for (const file of files) {
      const path = relative(root, file)
      if (path.startsWith("src/cli/")) continue
      for (const specifier of specifiers(file)) {
        expect(specifier.includes("/cli/") || specifier.startsWith("./cli"), `${path} imports ${specifier}`).toBe(false)
      }
    }
  })

  it("builds dist/ when installed from git (prepare)", () => {
    expect(manifest.scripts["prepare"]).toBe("npm run build")
    expect(manifest.scripts["build"]).toContain("tsconfig.build.json")
  })
})
