/**
 * effect-lock as users run it: the built package (`dist/`, compiled by tsc).
 * The bench itself runs under tsx, which would compile `src/` with esbuild's
 * `keepNames` and so wrap every closure the library creates per lock cycle in a
 * `__name` call — a cost no user pays. `npm run bench` builds first.
 */
import type * as EffectLock from "../../src/index.js"

const dist = "../../dist/index.js"

export const { Lock, LockKv }: Pick<typeof EffectLock, "Lock" | "LockKv"> = await import(dist)
