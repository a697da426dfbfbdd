/** Monotonic milliseconds (sub-microsecond resolution). */
export const now = (): number => performance.now()

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** Resolves with `promise`, or with `undefined` once `ms` have passed. */
export const within = <A>(promise: Promise<A>, ms: number): Promise<A | undefined> => {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

/** Runs the collector, if node was started with --expose-gc. */
export const collectGarbage = (): void => {
  if (typeof globalThis.gc === "function") globalThis.gc()
}

/** CPU time (user + system) this process has used, microseconds. */
export const cpuMicros = (): number => {
  const { system, user } = process.cpuUsage()
  return user + system
}
