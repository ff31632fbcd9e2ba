// What each run-time setting does to clients, in one line, and how to edit it. Settings the server
// answers but this list does not know are still shown, with a plain editor.

export interface SettingChoice {
  value: string
  label: string
  effect: string
}
export interface SettingInfo {
  label: string
  effect: string
  group: 'routing' | 'access' | 'data'
  choices?: SettingChoice[]
  /** Shown before turning a switch on. */
  confirmOn?: string
  unit?: string
  min?: number
  max?: number
  /** A dedicated editor instead of the one the value's type suggests. */
  editor?: 'prices'
}

export const SETTINGS: Record<string, SettingInfo> = {
  routing_strategy: {
    label: 'Routing strategy',
    group: 'routing',
    effect: 'How a request picks its account.',
    choices: [
      { value: 'usage_weighted', label: 'Most headroom', effect: 'The account with the most of its windows left.' },
      { value: 'round_robin', label: 'Round robin', effect: 'Each account in turn.' },
      { value: 'least_inflight', label: 'Least busy', effect: 'The account running the fewest requests.' },
    ],
  },
  sticky_sessions: {
    label: 'Sticky conversations',
    group: 'routing',
    effect:
      'Keep a conversation on one account, so the upstream prompt cache keeps working. Off: every turn follows the routing strategy.',
  },
  prefer_earlier_reset: {
    label: 'Spend the earlier reset first',
    group: 'routing',
    effect: 'Among accounts with room, use the one whose window resets first, so capacity about to expire is not wasted.',
    choices: [
      { value: 'off', label: 'Off', effect: 'The routing strategy alone decides.' },
      { value: '5h', label: '5-hour', effect: 'The account whose 5-hour window resets soonest.' },
      { value: 'weekly', label: 'Weekly', effect: 'The account whose weekly window resets soonest.' },
    ],
  },
  session_placement: {
    label: 'New conversations',
    group: 'routing',
    effect: 'Where a conversation’s first turn goes; its later turns stay there.',
    choices: [
      {
        value: 'headroom',
        label: 'Where a long one fits',
        effect: 'An account with room for a long conversation, so it is not moved mid-way (and loses its cache).',
      },
      { value: 'rendezvous', label: 'By hash', effect: 'A hash of the session key: every server agrees without memory.' },
    ],
  },
  upstream_stream_transport: {
    label: 'Upstream transport',
    group: 'routing',
    effect: 'How codex-lb talks to ChatGPT for streamed turns. Clients keep whatever they use.',
    choices: [
      { value: 'auto', label: 'Auto', effect: 'A WebSocket for conversations that benefit, HTTP otherwise.' },
      { value: 'http', label: 'HTTP', effect: 'One HTTP request per turn (most compatible).' },
      { value: 'websocket', label: 'WebSocket', effect: 'One upstream socket per conversation (fewer round trips).' },
    ],
  },
  api_key_auth_enabled: {
    label: 'Require API keys',
    group: 'access',
    effect: 'Every client, on this machine or not, must send an API key; clients from other machines are admitted with one.',
    confirmOn:
      'From now on every request without a valid sk-clb- key gets 401 — including the Codex CLI on this machine if it uses requires_openai_auth. Create keys first and give them to your clients.',
  },
  pricing_overrides: {
    label: 'Pricing overrides',
    group: 'data',
    effect:
      'Dollar prices per million tokens by model, replacing the built-in ones for the cost of new requests and for cost limits.',
    editor: 'prices',
  },
  request_log_retention_days: {
    label: 'Keep request logs',
    group: 'data',
    effect: 'Single request-log rows older than this are deleted; hourly and daily totals stay. 0 keeps them forever.',
    unit: 'days',
    min: 0,
    max: 36500,
  },
}

export function settingInfo(name: string): SettingInfo {
  return (
    SETTINGS[name] ?? {
      label: name.replace(/_/g, ' ').replace(/^./, (c) => c.toUpperCase()),
      group: 'data',
      effect: '',
    }
  )
}
