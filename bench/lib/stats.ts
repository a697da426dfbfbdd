/**
 * Sample storage and the numbers the tables print: percentiles over raw
 * samples (no histogram buckets, so p99 is exact), rates, ratios.
 */

/** A growable array of float samples (milliseconds unless said otherwise). */
export class Samples {
  private data = new Float64Array(4096)
  private n = 0
  private sorted: Float64Array | undefined

  add(value: number): void {
    if (this.n === this.data.length) {
      const next = new Float64Array(this.data.length * 2)
      next.set(this.data)
      this.data = next
    }
    this.data[this.n++] = value
    this.sorted = undefined
  }

  addAll(values: Iterable<number>): void {
    for (const value of values) this.add(value)
  }

  get count(): number {
    return this.n
  }

  values(): Float64Array {
    return this.data.subarray(0, this.n)
  }

  /** Nearest-rank percentile, `p` in [0, 100]; NaN when empty. */
  percentile(p: number): number {
    if (this.n === 0) return Number.NaN
    if (this.sorted === undefined) this.sorted = Float64Array.from(this.values()).sort()
    const rank = Math.min(this.n - 1, Math.max(0, Math.ceil((p / 100) * this.n) - 1))
    return this.sorted[rank]!
  }

  max(): number {
    return this.n === 0 ? Number.NaN : this.percentile(100)
  }

  mean(): number {
    if (this.n === 0) return Number.NaN
    let sum = 0
    for (const v of this.values()) sum += v
    return sum / this.n
  }
}

export interface Distribution {
  readonly count: number
  readonly mean: number
  readonly p50: number
  readonly p90: number
  readonly p99: number
  readonly max: number
}

export const distribution = (samples: Samples): Distribution => ({
  count: samples.count,
  mean: samples.mean(),
  p50: samples.percentile(50),
  p90: samples.percentile(90),
  p99: samples.percentile(99),
  max: samples.max()
})

/** a ÷ b, NaN when either is not a positive finite number. */
export const ratio = (a: number, b: number): number =>
  Number.isFinite(a) && Number.isFinite(b) && b !== 0 ? a / b : Number.NaN

export const round = (value: number, digits = 2): number => {
  if (!Number.isFinite(value)) return value
  const f = 10 ** digits
  return Math.round(value * f) / f
}
