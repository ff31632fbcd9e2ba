// Amounts on the history pages: money and durations that stay short in a card.
const compactMoney = new Intl.NumberFormat(undefined, { style: 'currency', currency: 'USD', notation: 'compact', maximumFractionDigits: 1 })
const money = new Intl.NumberFormat(undefined, { style: 'currency', currency: 'USD', maximumFractionDigits: 2 })

/** "$0.0042", "$61.20", "$6,542", "$58.2K": exact while small, compact once it would crowd a card. */
export function dollars(value: number): string {
  if (value > 0 && value < 1) return `$${value.toFixed(4)}`
  if (value >= 10000) return compactMoney.format(value)
  if (value >= 1000) return money.format(Math.round(value))
  return money.format(value)
}

/** "850 ms", "7.9 s", "1.1 min". */
export function millis(value: number | null | undefined): string {
  if (value === null || value === undefined) return '—'
  if (value < 1000) return `${Math.round(value)} ms`
  if (value < 60000) return `${(value / 1000).toFixed(1)} s`
  return `${(value / 60000).toFixed(1)} min`
}
