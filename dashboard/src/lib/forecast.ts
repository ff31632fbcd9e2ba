// "Where the pool is heading": from the pace of use so far in each window, when it runs out, against
// when it resets. Pure functions of the accounts and keys the dashboard already loads.
import type { Account, ApiKey } from '@/api'

export interface WindowForecast {
  used: number // percent
  resetAt: number | null
  windowMinutes: number | null
  ratePerHour: number | null // percent per hour at the pace of this window so far
  runsOutAt: number | null // null: lasts until the reset at this pace (or no data)
  verdict: 'runs_out' | 'lasts' | 'spent' | 'unknown'
}

/** The pace of this window so far: what was used since it opened, per hour. */
export function forecastWindow(used: number, resetAt: number | null, windowMinutes: number | null, now: number): WindowForecast {
  const base = { used, resetAt, windowMinutes, ratePerHour: null, runsOutAt: null }
  if (used >= 100) return { ...base, verdict: 'spent' }
  if (!resetAt || !windowMinutes || resetAt <= now) return { ...base, verdict: 'unknown' }
  const opened = resetAt - windowMinutes * 60
  // A window that opened minutes ago says little about the pace: count at least a tenth of it as
  // elapsed, so one burst right after a reset does not read as "runs out in 2 minutes".
  const elapsed = Math.max(windowMinutes * 6, now - opened)
  const rate = used / elapsed // percent per second
  if (rate <= 0) return { ...base, ratePerHour: 0, verdict: 'lasts' }
  const runsOutAt = now + (100 - used) / rate
  return { ...base, ratePerHour: rate * 3600, runsOutAt: runsOutAt < resetAt ? runsOutAt : null, verdict: runsOutAt < resetAt ? 'runs_out' : 'lasts' }
}

export interface AccountForecast {
  account: Account
  primary: WindowForecast | null
  secondary: WindowForecast | null
}

export function forecastAccounts(accounts: Account[], now: number): AccountForecast[] {
  return accounts.map((account) => {
    const w = (x: { used_percent: number; window_minutes: number | null; reset_at: number | null } | null | undefined) =>
      x ? forecastWindow(x.used_percent, x.reset_at, x.window_minutes, now) : null
    return { account, primary: w(account.usage?.primary), secondary: w(account.usage?.secondary) }
  })
}

export interface PoolForecast {
  window: 'primary' | 'secondary'
  windowMinutes: number | null
  accounts: number
  leftPercent: number // of the pool's capacity in this window (each serving account = 100 %)
  ratePerHour: number
  runsOutAt: number | null
  soonestReset: number | null
  verdict: 'runs_out' | 'lasts' | 'unknown'
}

/** The serving accounts together: capacity left and the summed pace. Running out means every account
 *  of the pool is spent before the soonest of their resets gives capacity back. */
export function forecastPool(forecasts: AccountForecast[], window: 'primary' | 'secondary', now: number): PoolForecast {
  const serving = forecasts.filter((f) => f.account.status === 'active' || f.account.status === 'rate_limited' || f.account.status === 'quota_exceeded')
  const windows = serving.map((f) => f[window]).filter((w): w is WindowForecast => !!w)
  const left = windows.reduce((sum, w) => sum + Math.max(0, 100 - w.used), 0)
  const rate = windows.reduce((sum, w) => sum + (w.ratePerHour ?? 0), 0)
  const resets = windows.map((w) => w.resetAt).filter((r): r is number => !!r && r > now)
  const soonestReset = resets.length ? Math.min(...resets) : null
  const minutes = windows.find((w) => w.windowMinutes)?.windowMinutes ?? null
  if (!windows.length) return { window, windowMinutes: minutes, accounts: 0, leftPercent: 0, ratePerHour: 0, runsOutAt: null, soonestReset, verdict: 'unknown' }
  const runsOut = rate > 0 ? now + (left / rate) * 3600 : null
  const verdict = runsOut !== null && soonestReset !== null && runsOut < soonestReset ? 'runs_out' : rate > 0 || left > 0 ? 'lasts' : 'unknown'
  return {
    window,
    windowMinutes: minutes,
    accounts: windows.length,
    leftPercent: windows.length ? left / windows.length : 0,
    ratePerHour: rate,
    runsOutAt: runsOut,
    soonestReset,
    verdict,
  }
}

export interface KeyForecast {
  key: ApiKey
  rule: ApiKey['limits'][number]
  usedShare: number // 0..1
  runsOutAt: number | null
  resetsAt: number
  verdict: 'runs_out' | 'lasts' | 'spent'
}

export function forecastKeys(keys: ApiKey[], now: number): KeyForecast[] {
  const out: KeyForecast[] = []
  for (const key of keys) {
    for (const rule of key.limits) {
      const start = Date.parse(rule.window_start) / 1000
      const resetsAt = Date.parse(rule.resets_at) / 1000
      const used = rule.used + rule.reserved
      const share = rule.max > 0 ? used / rule.max : 1
      if (share >= 1) {
        out.push({ key, rule, usedShare: share, runsOutAt: null, resetsAt, verdict: 'spent' })
        continue
      }
      const rate = used / Math.max(60, now - start)
      const runsOutAt = rate > 0 ? now + (rule.max - used) / rate : null
      const soon = runsOutAt !== null && runsOutAt < resetsAt
      out.push({ key, rule, usedShare: share, runsOutAt: soon ? runsOutAt : null, resetsAt, verdict: soon ? 'runs_out' : 'lasts' })
    }
  }
  return out.sort((a, b) => (a.runsOutAt ?? Infinity) - (b.runsOutAt ?? Infinity) || b.usedShare - a.usedShare)
}

/** "Thursday 14:00" within a week, else the date. */
export function when(at: number, now: number): string {
  const d = new Date(at * 1000)
  const time = d.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' })
  if (at - now < 6 * 86400) {
    const today = new Date(now * 1000).toDateString() === d.toDateString()
    return `${today ? 'today' : d.toLocaleDateString(undefined, { weekday: 'long' })} ${time}`
  }
  return `${d.toLocaleDateString(undefined, { month: 'short', day: 'numeric' })} ${time}`
}
