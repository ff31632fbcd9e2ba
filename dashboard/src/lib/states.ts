// One colour per account state, everywhere (design brief): active green, rate-limited amber,
// quota-exceeded orange, paused grey, re-auth needed red, deactivated dark red.
export interface StateLook {
  label: string
  light: string
  dark: string
  hint: string
}

export const STATES: Record<string, StateLook> = {
  active: { label: 'Active', light: '#15803d', dark: '#4ade80', hint: 'Serving requests.' },
  rate_limited: { label: 'Rate-limited', light: '#b45309', dark: '#fbbf24', hint: 'Resting until its window resets.' },
  quota_exceeded: { label: 'Quota exceeded', light: '#c2410c', dark: '#fb923c', hint: 'Out of quota until the reset.' },
  paused: { label: 'Paused', light: '#6b7280', dark: '#9ca3af', hint: 'Paused by an operator; resume to use it.' },
  reauth_required: { label: 'Sign-in needed', light: '#dc2626', dark: '#f87171', hint: 'Its tokens stopped working: re-authenticate.' },
  deactivated: { label: 'Deactivated', light: '#7f1d1d', dark: '#e0897f', hint: 'ChatGPT deactivated it.' },
}

export function stateLook(status: string): StateLook {
  return STATES[status] ?? { label: status, light: '#6b7280', dark: '#9ca3af', hint: '' }
}

export function stateColor(status: string, dark: boolean): string {
  const look = stateLook(status)
  return dark ? look.dark : look.light
}
