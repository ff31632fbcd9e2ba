// Routing policies (server/balancer/policies.py) in an operator's words.
import type { Account, RoutingPolicy } from '@/api'

export const POLICIES: Record<RoutingPolicy, { label: string; effect: string }> = {
  normal: { label: 'Normal', effect: 'Routed by the strategy like any other account.' },
  burn_first: {
    label: 'Burn first',
    effect: 'Spent before the others while it has room: a window that resets soon, a plan that ends.',
  },
  preserve: {
    label: 'Preserve',
    effect: 'Serves normally until only the reserve is left; then only when no other account can serve.',
  },
}

/** "Burn first", "Preserve 20 %"; null for a normal account. */
export function policyBadge(a: Pick<Account, 'routing_policy' | 'reserve_percent'>): string | null {
  if (a.routing_policy === 'burn_first') return 'Burn first'
  if (a.routing_policy === 'preserve') return `Preserve ${a.reserve_percent} %`
  return null
}
