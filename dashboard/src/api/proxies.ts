// /api/proxies and PUT /api/accounts/<id>/egress: egress proxies, pools and each account's route.
import { z } from 'zod'
import { request } from './client'

export const egressProxy = z.object({
  id: z.number(),
  name: z.string(),
  url: z.string(),
  has_credentials: z.boolean(),
  username: z.string(),
  pool: z.string(),
  weight: z.number(),
  check: z.object({
    ok: z.boolean(),
    detail: z.string(),
    checked_at: z.number().nullable(),
    exit_address: z.string().nullable(),
    latency_ms: z.number().nullable(),
  }),
  up: z.boolean().optional(),
  down_reason: z.string().nullable().optional(),
  accounts: z.array(z.number()).optional(),
})
export type EgressProxy = z.infer<typeof egressProxy>

export const accountRoute = z.object({
  account_id: z.number(),
  bound_to: z.string(),
  proxy_id: z.number().nullable(),
  pool: z.string(),
  available: z.boolean(),
  reason: z.string().nullable(),
  route: z.string().nullable(),
})
export type AccountRoute = z.infer<typeof accountRoute>

export const proxyOverview = z.object({
  proxies: z.array(egressProxy),
  pools: z.array(z.object({ name: z.string(), proxies: z.array(z.string()) })),
  accounts: z.array(accountRoute),
})
export type ProxyOverview = z.infer<typeof proxyOverview>

export const proxyTest = z.object({
  proxy: z.string(),
  ok: z.boolean(),
  exit_address: z.string().nullable(),
  latency_ms: z.number(),
  detail: z.string(),
})
export type ProxyTest = z.infer<typeof proxyTest>

export interface ProxyInput {
  name: string
  url: string
  username?: string
  password?: string
  pool?: string
  weight?: number
}
export type RouteInput = { proxy_id: number } | { pool: string } | Record<string, never>

export const listProxies = () => request('GET', '/api/proxies', proxyOverview)
export const createProxy = (spec: ProxyInput) => request('POST', '/api/proxies', egressProxy, { body: spec })
export const deleteProxy = (id: number) => request('DELETE', `/api/proxies/${id}`, z.object({ deleted: z.number() }))
export const testProxy = (id: number) => request('POST', `/api/proxies/${id}/test`, proxyTest)
export const bindAccountEgress = (accountId: number, route: RouteInput) =>
  request('PUT', `/api/accounts/${accountId}/egress`, accountRoute.extend({ binding: z.string() }), { body: route })
