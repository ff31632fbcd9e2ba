// The typed API client: one function per server route, named after it.
import { z } from 'zod'
import { request } from './client'
import * as s from './schemas'

export * from './client'
export * from './schemas'
export * from './proxies'

// /api/accounts
export const listAccounts = () => request('GET', '/api/accounts', s.accountList).then((a) => a.accounts)
export const showAccount = (id: number) => request('GET', `/api/accounts/${id}`, s.accountDetail)
export const accountUsageHistory = (id: number, days = 7) =>
  request('GET', `/api/accounts/${id}/usage-history`, s.usageHistory, { query: { days } })
export const importAccounts = (files: File[]) => {
  const form = new FormData()
  for (const file of files) form.append('auth_json', file, file.name)
  return request('POST', '/api/accounts/import', s.importResult, { form })
}
export const renameAccount = (id: number, label: string) =>
  request('PATCH', `/api/accounts/${id}`, s.account, { body: { label } })
export const setAccountPolicy = (id: number, routing_policy: s.RoutingPolicy, reserve_percent?: number) =>
  request('PUT', `/api/accounts/${id}/policy`, s.account, {
    body: routing_policy === 'preserve' ? { routing_policy, reserve_percent } : { routing_policy },
  })
export const pauseAccount = (id: number) => request('POST', `/api/accounts/${id}/pause`, s.account)
export const resumeAccount = (id: number) => request('POST', `/api/accounts/${id}/resume`, s.account)
export const refreshAccount = (id: number) => request('POST', `/api/accounts/${id}/refresh`, s.account)
export const deleteAccount = (id: number) =>
  request('DELETE', `/api/accounts/${id}`, z.object({ deleted: z.number() }))
export const reauthAccount = (id: number, method: 'browser' | 'device') =>
  request('POST', `/api/accounts/${id}/reauth`, s.loginFlow, { body: { method } })
export const exportAccountUrl = (id: number) => `/api/accounts/${id}/export`
export const startBrowserLogin = () => request('POST', '/api/accounts/oauth/start', s.loginFlow)
export const startDeviceLogin = () => request('POST', '/api/accounts/device/start', s.loginFlow)
export const completeBrowserLogin = (callbackUrl: string) =>
  request('POST', '/api/accounts/oauth/complete', s.loginFlow, { body: { callback_url: callbackUrl } })
export const loginStatus = (flow: Pick<s.LoginFlow, 'flow_id' | 'kind'>) =>
  request('GET', `/api/accounts/${flow.kind === 'device' ? 'device' : 'oauth'}/${flow.flow_id}`, s.loginFlow)

// /api/api-keys
export interface LimitRuleInput {
  quantity: 'tokens' | 'cost_usd' | 'requests'
  window: string
  max: number
  model?: string | null
}
export interface KeyInput {
  name?: string
  enabled?: boolean
  expires_at?: number | string | null
  allowed_models?: string[] | null
  allowed_reasoning_efforts?: string[] | null
  allowed_account_ids?: number[] | null
  limits?: LimitRuleInput[]
}
export const listApiKeys = () => request('GET', '/api/api-keys', s.apiKeyList).then((a) => a.api_keys)
export const createApiKey = (spec: KeyInput) => request('POST', '/api/api-keys', s.apiKey, { body: spec })
export const editApiKey = (id: number, spec: KeyInput) =>
  request('PATCH', `/api/api-keys/${id}`, s.apiKey, { body: spec })
export const deleteApiKey = (id: number) => request('DELETE', `/api/api-keys/${id}`, null)
export const regenerateApiKey = (id: number) => request('POST', `/api/api-keys/${id}/regenerate`, s.apiKey)

// /api/settings
export const readSettings = () => request('GET', '/api/settings', s.runtimeSettings)
/** The environment's values: what a setting returns to when reset (PUT null). */
export const readSettingDefaults = () => request('GET', '/api/settings/defaults', s.runtimeSettings)
export const changeSettings = (changes: { [name: string]: unknown }) =>
  request('PUT', '/api/settings', s.runtimeSettings, { body: changes })

// /api/auth (issue 14's contract, coord/AUTH_API.md)
export const authStatus = () => request('GET', '/api/auth/status', s.authStatus)
export const login = (password: string, totpCode?: string) =>
  request('POST', '/api/auth/login', s.loginAnswer, {
    body: totpCode ? { password, totp_code: totpCode } : { password },
  })
export const bootstrap = (token: string, password: string) =>
  request('POST', '/api/auth/bootstrap', s.loginAnswer, { body: { token, password } })
export const logout = () => request('POST', '/api/auth/logout', null)
export const logoutAll = () => request('POST', '/api/auth/logout-all', null)
export const changePassword = (newPassword: string, currentPassword?: string) =>
  request('POST', '/api/auth/password', null, {
    body: currentPassword ? { current_password: currentPassword, new_password: newPassword } : { new_password: newPassword },
  })
export const setupTotp = () => request('POST', '/api/auth/totp/setup', s.totpSetup)
export const enableTotp = (code: string) => request('POST', '/api/auth/totp/enable', s.totpEnabled, { body: { code } })
export const disableTotp = (code: string) => request('POST', '/api/auth/totp/disable', null, { body: { code } })
export const setViewerPassword = (password: string | null, currentPassword?: string) =>
  request('PUT', '/api/auth/viewer-password', null, {
    body: currentPassword ? { password, current_password: currentPassword } : { password },
  })
export const listSessions = () => request('GET', '/api/auth/sessions', s.sessionList).then((a) => a.sessions)
export const revokeSession = (id: string | number) => request('DELETE', `/api/auth/sessions/${id}`, null)
export interface AuditFilter {
  action?: string
  actor?: string
  since?: number
  until?: number
  limit?: number
  before_id?: number
}
export const listAudit = (filter: AuditFilter = {}) =>
  request('GET', '/api/audit', s.auditPage, { query: { ...filter } })
export * from './history'
