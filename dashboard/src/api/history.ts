// /api/request-logs, /api/usage and /api/sessions: the request history (server/api/usage.py).
import { z } from 'zod'
import { request } from './client'

const n = z.number()
const pct = z.object({ p50: n.nullable(), p90: n.nullable(), p99: n.nullable() })

export const requestLog = z.object({
  id: n,
  request_id: z.string(),
  started_at: n,
  route: z.string(),
  transport: z.string(),
  upstream_transport: z.string().optional(),
  account_id: n.nullable(),
  api_key_id: n.nullable(),
  model: z.string(),
  reasoning_effort: z.string(),
  status: n,
  error_code: z.string(),
  input_tokens: n,
  cached_input_tokens: n,
  output_tokens: n,
  reasoning_tokens: n,
  total_tokens: n,
  cost_usd: n.nullable(),
  latency_ms: n,
  ttft_ms: n.nullable(),
  attempts: n,
  session_key_hash: z.string(),
  routing: z.string(),
  user_agent: z.string().optional(),
  failovers: z.string().optional(),
  egress: z.string().optional(),
})
export type RequestLog = z.infer<typeof requestLog>
export const requestLogPage = z.object({ request_logs: z.array(requestLog), next_cursor: z.string().nullable() })
export const requestLogDetail = requestLog.extend({
  account: z.string().nullable(),
  api_key: z.string().nullable(),
  moved: z.boolean(),
  move_reason: z.string(),
  session_turn: n.optional(),
})
export type RequestLogDetail = z.infer<typeof requestLogDetail>

const basic = {
  requests: n,
  errors: n,
  input_tokens: n,
  cached_input_tokens: n,
  output_tokens: n,
  reasoning_tokens: n,
  total_tokens: n,
  cost_usd: n,
  unpriced_requests: n,
  error_rate: n,
  latency_avg_ms: n.nullable(),
}
const withPct = { ...basic, latency_ms: pct, ttft_ms: pct }
export const usageBucket = z.object({ t: n, ...withPct })
export type UsageBucket = z.infer<typeof usageBucket>
export const usageReport = z.object({
  since: n,
  until: n,
  bucket: z.enum(['hour', 'day']),
  totals: z.object(withPct),
  series: z.array(usageBucket),
  errors_by_code: z.array(z.object({ code: z.string(), errors: n })),
  by: z.object({
    account: z.array(z.object({ id: n.nullable(), name: z.string(), ...withPct })),
    key: z.array(z.object({ id: n.nullable(), name: z.string(), ...withPct })),
    model: z.array(z.object({ model: z.string(), ...withPct })),
    route: z.array(z.object({ route: z.string(), ...withPct })),
    transport: z.array(z.object({ transport: z.string(), ...withPct })),
  }),
  split: z.record(z.string(), z.array(z.object({ t: n, ...basic }))),
})
export type UsageReport = z.infer<typeof usageReport>

export const sessionSummary = z.object({
  session: z.string(),
  first_seen: n,
  last_seen: n,
  turns: n,
  total_tokens: n,
  accounts: n,
  moves: n,
  errors: n,
  cost_usd: n,
})
export type SessionSummary = z.infer<typeof sessionSummary>
export const conversationList = z.object({ sessions: z.array(sessionSummary), since: n, until: n })
export const sessionMove = z.object({
  at: n,
  log_id: n,
  from_account_id: n,
  to_account_id: n,
  from_account: z.string().nullable().optional(),
  to_account: z.string().nullable().optional(),
  reason: z.string(),
})
export const sessionDetail = z.object({
  session: z.string(),
  turns: z.array(requestLog.extend({ account: z.string().nullable().optional() })),
  moves: z.array(sessionMove),
})
export type SessionDetail = z.infer<typeof sessionDetail>

export interface LogFilter {
  since?: number
  until?: number
  account_id?: number
  api_key_id?: number
  model?: string
  status?: string
  error_code?: string
  transport?: string
  route?: string
  session?: string
  request_id?: string
}
type Query = Record<string, string | number | undefined>

export const listRequestLogs = (filter: LogFilter, cursor?: string | null, limit = 50) =>
  request('GET', '/api/request-logs', requestLogPage, { query: { ...(filter as Query), cursor: cursor ?? undefined, limit } })
export const showRequestLog = (id: number) => request('GET', `/api/request-logs/${id}`, requestLogDetail)
export function requestLogsCsvUrl(filter: LogFilter): string {
  const params = new URLSearchParams()
  for (const [k, v] of Object.entries(filter)) if (v !== undefined && v !== '' && v !== null) params.set(k, String(v))
  const text = params.toString()
  return `/api/request-logs.csv${text ? `?${text}` : ''}`
}
export const readUsage = (q: { since: number; until?: number; bucket: 'hour' | 'day'; split?: string; top?: number }) =>
  request('GET', '/api/usage', usageReport, { query: q })
export const listConversations = (since?: number, until?: number, limit = 100) =>
  request('GET', '/api/sessions', conversationList, { query: { since, until, limit } })
export const showConversation = (session: string) =>
  request('GET', `/api/sessions/${encodeURIComponent(session)}`, sessionDetail)
