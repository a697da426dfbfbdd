/** Plain-text tables for stdout: first column left-aligned, the rest right-aligned. */
export const renderTable = (
  headers: ReadonlyArray<string>,
  rows: ReadonlyArray<ReadonlyArray<string>>
): string => {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)))
  const line = (cells: ReadonlyArray<string>) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ").trimEnd()
  return [line(headers), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)].join("\n")
}

const missing = "–"

/** Fixed decimals; a dash for NaN / undefined. */
export const num = (value: number | undefined, digits = 2): string =>
  value === undefined || !Number.isFinite(value) ? missing : value.toFixed(digits)

/** Whole number with thousands separators. */
export const int = (value: number | undefined): string =>
  value === undefined || !Number.isFinite(value) ? missing : Math.round(value).toLocaleString("en-US")

export const section = (title: string): string => `\n=== ${title} ${"=".repeat(Math.max(0, 96 - title.length))}`
