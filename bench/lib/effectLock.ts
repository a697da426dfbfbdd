/**
 * effect-lock as users run it: the built package (`dist/`, compiled by tsc).
 * The bench itself runs under tsx, which would compile `src/` with esbuild's
 * `keepNames` and so wrap every closure the library creates per lock cycle in a
 * `__name` call — a cost no user pays. `npm run bench` builds first.
 */
import type * as EffectLock from "../../src/index.js"

/**
 * What the bench uses of the package. A baseline build of another git ref
 * (`lib/baseline.ts`) is loaded as one of these too: typed as the working
 * tree's API, checked at load time for the few members the bench calls.
 */
export type EffectLockModule = Pick<typeof EffectLock, "Lock" | "LockKv">

const dist = "../../dist/index.js"

/** The working tree's build. */
export const current: EffectLockModule = await import(dist)

export const { Lock, LockKv } = current
