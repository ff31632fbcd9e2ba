// How numbers and times read everywhere: relative times with units, absolute time on hover.

const units: [number, string][] = [
  [86400, 'd'],
  [3600, 'h'],
  [60, 'min'],
  [1, 's'],
]

/** "2 h 14 min", "45 s", "3 d 2 h": the two largest units of a duration in seconds. */
export function duration(seconds: number): string {
  let rest = Math.max(0, Math.round(seconds))
  if (rest < 1) return '0 s'
  const parts: string[] = []
  for (const [size, name] of units) {
    if (rest >= size) {
      parts.push(`${Math.floor(rest / size)} ${name}`)
      rest %= size
      if (parts.length === 2) break
    } else if (parts.length) break
  }
  return parts.join(' ')
}

/** "in 2 h 14 min" / "5 min ago" relative to now (both epoch seconds). */
export function relative(at: number | null | undefined, now: number): string {
  if (!at) return 'never'
  const delta = at - now
  if (Math.abs(delta) < 5) return 'just now'
  return delta > 0 ? `in ${duration(delta)}` : `${duration(-delta)} ago`
}

/** "resets in 2 h 14 min" or "reset" when the time has passed. */
export function resetsIn(at: number | null | undefined, now: number): string {
  if (!at) return 'no reset time'
  if (at <= now) return 'reset due'
  return `resets in ${duration(at - now)}`
}

export function absolute(at: number | null | undefined): string {
  if (!at) return ''
  return new Date(at * 1000).toLocaleString(undefined, {
    year: 'numeric',
    month: 'short',
    day: 'numeric',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
  })
}

export function isoToEpoch(iso: string): number {
  return Date.parse(iso) / 1000
}

export function percent(value: number | null | undefined): string {
  if (value === null || value === undefined) return '—'
  return `${value.toFixed(value < 10 && value > 0 ? 1 : 0)} %`
}

const compact = new Intl.NumberFormat(undefined, { notation: 'compact', maximumFractionDigits: 1 })
export function count(value: number): string {
  return value >= 10000 ? compact.format(value) : Math.round(value).toLocaleString()
}

export function usd(value: number): string {
  return `$${value < 1 && value > 0 ? value.toFixed(4) : value.toFixed(2)}`
}

export function quantity(kind: string, value: number): string {
  if (kind === 'cost_usd') return usd(value)
  if (kind === 'tokens') return `${count(value)} tok`
  return `${count(value)} req`
}

/** Window minutes as a person says them: 300 → "5 h", 10080 → "7 d". */
export function windowName(minutes: number | null | undefined): string {
  if (!minutes) return ''
  if (minutes % 1440 === 0) return `${minutes / 1440} d`
  if (minutes % 60 === 0) return `${minutes / 60} h`
  return `${minutes} min`
}

/** Usage bars: amber from 80 %, red from 95 %. */
export function usageLevel(percentUsed: number): 'ok' | 'warn' | 'danger' {
  if (percentUsed >= 95) return 'danger'
  if (percentUsed >= 80) return 'warn'
  return 'ok'
}
