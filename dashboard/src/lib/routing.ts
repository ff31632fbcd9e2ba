// The request log's `routing` column in words: why the balancer chose that account (server/balancer).

const REASONS: Record<string, string> = {
  sticky: 'the conversation’s own account',
  headroom: 'a new conversation, placed where a long one fits',
  burn_first: 'a burn-first account, spent before the others',
  preserve_floor: 'a preserve account’s reserve: no other account could serve',
  earlier_reset: 'the account whose window resets first',
  usage_weighted: 'the account with the most headroom',
  round_robin: 'the next account in turn',
  least_inflight: 'the least busy account',
}

const MOVES: Record<string, string> = {
  exhausted: 'its account had used up a window',
  cooldown: 'its account was cooling down',
  excluded: 'its account failed this request',
  at_capacity: 'its account was at its in-flight cap',
  paused: 'its account was paused',
  reauth_required: 'its account needs a new sign-in',
  deactivated: 'its account was deactivated',
  plan_mismatch: 'its account’s plan does not serve the model',
  preserve_floor: 'its account reached its reserve floor',
  unavailable: 'its account left the pool',
}

/** `burn_first` → "burn_first: a burn-first account, spent before the others". */
export function routingText(routing: string | null | undefined): string {
  if (!routing) return '—'
  if (routing.startsWith('sticky_moved:')) {
    const why = routing.slice('sticky_moved:'.length)
    return `${routing}: moved off the conversation’s account, as ${MOVES[why] ?? why}`
  }
  const reason = REASONS[routing]
  return reason ? `${routing}: ${reason}` : routing
}
