// The server's JSON shapes (server/api/*.py), checked at run time with zod.
import { z } from 'zod'

const time = z.number().nullable()

export const accountStatuses = [
  'active',
  'rate_limited',
  'quota_exceeded',
  'paused',
  'reauth_required',
  'deactivated',
] as const
export type AccountStatus = (typeof accountStatuses)[number]

export const usageWindow = z
  .object({ used_percent: z.number(), window_minutes: z.number().nullable(), reset_at: time })
  .nullable()

export const account = z.object({
  id: z.number(),
  chatgpt_account_id: z.string(),
  label: z.string(),
  email: z.string(),
  plan_type: z.string(),
  status: z.string(),
  status_reason: z.string(),
  status_until: time,
  status_since: time,
  slot: z.number(),
  created_at: z.number(),
  last_refresh_at: time,
  access_expires_at: time,
  last_used_at: time.optional(),
  usage: z
    .object({
      primary: usageWindow.optional(),
      secondary: usageWindow.optional(),
      credits: z
        .object({ has_credits: z.boolean().nullable(), unlimited: z.boolean().nullable(), balance: z.number().nullable() })
        .partial()
        .nullable()
        .optional(),
      plan_type: z.string().nullable().optional(),
    })
    .nullable(),
  usage_polled_at: time,
  routing_policy: z.enum(['normal', 'burn_first', 'preserve']),
  reserve_percent: z.number(),
  live: z
    .object({
      in_flight: z.number(),
      cooldown_until: time,
      primary_used_percent: z.number(),
      primary_reset_at: time,
      secondary_used_percent: z.number(),
      secondary_reset_at: time,
    })
    .optional(),
})
export type Account = z.infer<typeof account>
export type RoutingPolicy = Account['routing_policy']

export const accountList = z.object({ accounts: z.array(account) })

export const accountEvent = z.object({
  at: z.number(),
  kind: z.string(),
  from: z.string(),
  to: z.string(),
  reason: z.string(),
})
export type AccountEvent = z.infer<typeof accountEvent>

export const accountDetail = account.extend({ events: z.array(accountEvent) })
export type AccountDetail = z.infer<typeof accountDetail>

export const usagePoint = z.object({
  at: z.number(),
  primary_used: z.number().nullable(),
  primary_window_minutes: z.number().nullable(),
  primary_reset_at: time,
  secondary_used: z.number().nullable(),
  secondary_window_minutes: z.number().nullable(),
  secondary_reset_at: time,
  credits_balance: z.number().nullable(),
})
export const usageHistory = z.object({ account_id: z.number(), days: z.number(), history: z.array(usagePoint) })
export type UsagePoint = z.infer<typeof usagePoint>

export const importResult = z.object({
  imported: z.array(account.omit({ live: true, last_used_at: true }).extend({ source: z.string(), created: z.boolean() })),
  errors: z.array(z.object({ source: z.string(), error: z.string() })),
})
export type ImportResult = z.infer<typeof importResult>

export const loginFlow = z.object({
  flow_id: z.string(),
  kind: z.string(),
  status: z.string(),
  error: z.string().nullable(),
  account_id: z.number().nullable(),
  reauth_account_id: z.number().nullable(),
  expires_at: z.number(),
  user_code: z.string().nullable().optional(),
  authorize_url: z.string().optional(),
  redirect_uri: z.string().optional(),
  verification_url: z.string().optional(),
  interval: z.number().optional(),
})
export type LoginFlow = z.infer<typeof loginFlow>

export const limitStatus = z.object({
  id: z.number(),
  quantity: z.enum(['tokens', 'cost_usd', 'requests']),
  window: z.string(),
  window_kind: z.string(),
  max: z.number(),
  model: z.string().nullable(),
  used: z.number(),
  reserved: z.number(),
  remaining: z.number(),
  window_start: z.string(),
  resets_at: z.string(),
})
export type LimitStatus = z.infer<typeof limitStatus>

export const apiKey = z.object({
  id: z.number(),
  name: z.string(),
  key_prefix: z.string(),
  enabled: z.boolean(),
  created_at: z.number(),
  updated_at: z.number(),
  expires_at: time,
  last_used_at: time,
  allowed_models: z.array(z.string()).nullable(),
  allowed_reasoning_efforts: z.array(z.string()).nullable(),
  allowed_account_ids: z.array(z.number()).nullable(),
  limits: z.array(limitStatus),
  usage: z.object({
    request_count: z.number(),
    total_tokens: z.number(),
    cached_input_tokens: z.number(),
    cost_usd: z.number(),
  }),
  key: z.string().optional(),
})
export type ApiKey = z.infer<typeof apiKey>
export const apiKeyList = z.object({ api_keys: z.array(apiKey) })

/** USD per 1M tokens; cached input is part of input. */
export const modelPrice = z.object({ input: z.number(), cached_input: z.number(), output: z.number() })
export type ModelPrice = z.infer<typeof modelPrice>

/** Run-time settings: the known ones are typed, any newer ones pass through untouched. */
export const runtimeSettings = z.looseObject({
  routing_strategy: z.enum(['usage_weighted', 'round_robin', 'least_inflight']),
  sticky_sessions: z.boolean(),
  prefer_earlier_reset: z.enum(['off', '5h', 'weekly']),
  session_placement: z.enum(['headroom', 'rendezvous']),
  upstream_stream_transport: z.enum(['auto', 'http', 'websocket']),
  api_key_auth_enabled: z.boolean(),
  pricing_overrides: z.record(z.string(), modelPrice),
  request_log_retention_days: z.number(),
})
export type RuntimeSettings = z.infer<typeof runtimeSettings>

export const authStatus = z.object({
  mode: z.enum(['standard', 'trusted_header', 'disabled']),
  authenticated: z.boolean(),
  role: z.enum(['admin', 'viewer']).nullable(),
  user: z.string().nullable(),
  password_set: z.boolean(),
  totp_enabled: z.boolean(),
  bootstrap_required: z.boolean(),
  local_without_password: z.boolean(),
  proxy_required: z.boolean(),
  // How the caller is admitted: session, local, header (trusted_header mode) or disabled; null: not signed in.
  via: z.enum(['session', 'local', 'header', 'disabled']).nullable().optional(),
})
export type AuthStatus = z.infer<typeof authStatus>

export const loginAnswer = z.object({ role: z.enum(['admin', 'viewer']) })
export const totpSetup = z.object({ secret: z.string(), otpauth_uri: z.string(), qr_svg: z.string() })
export const totpEnabled = z.object({ recovery_codes: z.array(z.string()) })
export const session = z.object({
  id: z.union([z.string(), z.number()]),
  role: z.string(),
  user: z.string().nullable().optional(),
  created_at: z.number(),
  last_seen_at: z.number(),
  expires_at: z.number(),
  client_address: z.string().nullable(),
  user_agent: z.string().nullable(),
  current: z.boolean(),
})
export type Session = z.infer<typeof session>
export const sessionList = z.object({ sessions: z.array(session) })
export const auditEvent = z.object({
  id: z.number(),
  at: z.number(),
  actor: z.string().nullable(),
  client_address: z.string().nullable(),
  action: z.string(),
  target: z.string().nullable(),
  details: z.record(z.string(), z.unknown()).nullable(),
})
export type AuditEvent = z.infer<typeof auditEvent>
export const auditPage = z.object({ events: z.array(auditEvent), next_before_id: z.number().nullable() })
