/** The targets, each computed from the run that printed it. */
export type Verdict = "PASS" | "FAIL" | "N/A"

export interface Target {
  readonly scenario: string
  readonly name: string
  readonly value: number
  /** e.g. "≥ 0.9" */
  readonly target: string
  readonly verdict: Verdict
  readonly note?: string | undefined
  /**
   * Not effect-lock's figure: a reference row (not a library) held to the same
   * target, to show whether any lock of its kind can meet it on this machine.
   */
  readonly reference?: true | undefined
}

/** The same target, read for a reference row (see `Target.reference`). */
export const asReference = (target: Target): Target => ({ ...target, reference: true })

const verdict = (value: number, ok: (v: number) => boolean): Verdict =>
  Number.isFinite(value) ? (ok(value) ? "PASS" : "FAIL") : "N/A"

export const atLeast = (scenario: string, name: string, value: number, min: number, note?: string): Target => ({
  scenario,
  name,
  value,
  target: `≥ ${min}`,
  verdict: verdict(value, (v) => v >= min),
  note
})

export const atMost = (scenario: string, name: string, value: number, max: number, note?: string): Target => ({
  scenario,
  name,
  value,
  target: `≤ ${max}`,
  verdict: verdict(value, (v) => v <= max),
  note
})

/** The other lock libraries' contenders (not effect-lock, not the floor, PING or a reference). */
export const isLibrary = (id: string): boolean => /^(redlock|redis-semaphore|effect-distributed-lock)@/.test(id)

/** The row with the highest `measure`, or undefined without rows. */
export const bestOf = <R>(rows: ReadonlyArray<R>, measure: (row: R) => number): R | undefined =>
  rows.reduce<R | undefined>(
    (best, row) => (best === undefined || measure(row) > measure(best) ? row : best),
    undefined
  )
