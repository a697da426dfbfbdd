import type { Options } from "../../Semaphore.js"
import { InvalidArgument } from "../errors.js"
import { checkPermits } from "../keys.js"
import type { Check } from "./engine.js"
import { permitOps } from "./ops.js"
import { checkSettings } from "./settings.js"

/**
 * Checks a call for `permits` of a semaphore: its key and options as a lock's,
 * its limit and permits; its lease is then those permits (`permitOps`).
 */
export const checkPermitSettings = (permits: number): Check<Options> => (key, options) => {
  if (typeof options !== "object" || options === null) {
    return new InvalidArgument({ argument: "options", message: "options with a limit are required" })
  }
  const invalid = checkPermits(permits, options.limit)
  if (invalid !== undefined) return invalid
  const settings = checkSettings(key, options)
  if (settings instanceof InvalidArgument) return settings
  return { ...settings, ops: permitOps(permits, options.limit) }
}
