import { Effect } from "effect"

/**
 * A resource that checks fences, as a storage service would: a write is
 * accepted only with a fence above every fence it accepted before.
 */
export const fencedResource = () => {
  let highest = 0
  const accepted: Array<number> = []
  const rejected: Array<{ readonly fence: number; readonly highest: number }> = []
  return {
    accepted,
    rejected,
    write: (fence: number) =>
      Effect.sync(() => {
        if (fence > highest) {
          highest = fence
          accepted.push(fence)
        } else {
          rejected.push({ fence, highest })
        }
      })
  }
}
