/** The recorded A/Bs (bench/ab/) stay re-runnable: each patch applies to the code it measures. */
import { describe, expect, it } from "@effect/vitest"
import { spawnSync } from "node:child_process"
import { readdirSync } from "node:fs"
import { fileURLToPath } from "node:url"

const root = fileURLToPath(new URL("..", import.meta.url))
const patches = readdirSync(new URL("../bench/ab/", import.meta.url)).filter((name) => name.endsWith(".patch"))

describe("bench/ab", () => {
  it("holds the patches the code's recorded A/Bs name", () => {
    expect(patches.sort()).toEqual(["scripts-define-command.patch", "section-own-fiber.patch"])
  })

  for (const patch of patches) {
    it(`${patch} applies to the working tree (else re-make it with the code it measures)`, () => {
      // --check changes nothing in the tree.
      const result = spawnSync("git", ["apply", "--check", `bench/ab/${patch}`], { cwd: root, encoding: "utf8" })
      expect(result.stderr).toBe("")
      expect(result.status).toBe(0)
    })
  }
})
