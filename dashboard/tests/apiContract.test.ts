// @vitest-environment node
// The dashboard's zod schemas against the answers the server describes in /api/openapi.json, kept in
// tests/api-answers.json (tests/test_dashboard_schemas.py keeps that file equal to what the server serves).
// Each API function is called with the fetch layer replaced, so the schema checked is the one it really uses.
import { describe, expect, it, vi } from 'vitest'
import type { z } from 'zod'
import * as api from '@/api'
import described from './api-answers.json'
import { asOpenApi, drift } from './schemaDrift'

interface Call {
  method: string
  path: string
  schema: z.ZodType | null
}
const calls = vi.hoisted(() => [] as Call[])
vi.mock('@/api/client', async (importOriginal) => ({
  ...(await importOriginal<typeof import('@/api/client')>()),
  request: async (method: string, path: string, schema: z.ZodType | null) => {
    calls.push({ method, path, schema })
    return {}
  },
}))

// One call of every API function (the file list covers a new one: see the last test).
const CALLS: Record<string, () => unknown> = {
  listAccounts: () => api.listAccounts(),
  showAccount: () => api.showAccount(1),
  accountUsageHistory: () => api.accountUsageHistory(1),
  importAccounts: () => api.importAccounts([]),
  renameAccount: () => api.renameAccount(1, 'a'),
  setAccountPolicy: () => api.setAccountPolicy(1, 'normal'),
  pauseAccount: () => api.pauseAccount(1),
  resumeAccount: () => api.resumeAccount(1),
  refreshAccount: () => api.refreshAccount(1),
  deleteAccount: () => api.deleteAccount(1),
  reauthAccount: () => api.reauthAccount(1, 'browser'),
  startBrowserLogin: () => api.startBrowserLogin(),
  startDeviceLogin: () => api.startDeviceLogin(),
  completeBrowserLogin: () => api.completeBrowserLogin('http://localhost:1455/auth/callback'),
  loginStatus: () => [api.loginStatus({ flow_id: 'f', kind: 'browser' }), api.loginStatus({ flow_id: 'f', kind: 'device' })],
  listApiKeys: () => api.listApiKeys(),
  createApiKey: () => api.createApiKey({}),
  editApiKey: () => api.editApiKey(1, {}),
  deleteApiKey: () => api.deleteApiKey(1),
  regenerateApiKey: () => api.regenerateApiKey(1),
  readSettings: () => api.readSettings(),
  readSettingDefaults: () => api.readSettingDefaults(),
  changeSettings: () => api.changeSettings({}),
  authStatus: () => api.authStatus(),
  login: () => api.login('p'),
  bootstrap: () => api.bootstrap('t', 'p'),
  logout: () => api.logout(),
  logoutAll: () => api.logoutAll(),
  changePassword: () => api.changePassword('p'),
  setupTotp: () => api.setupTotp(),
  enableTotp: () => api.enableTotp('c'),
  disableTotp: () => api.disableTotp('c'),
  setViewerPassword: () => api.setViewerPassword(null),
  listSessions: () => api.listSessions(),
  revokeSession: () => api.revokeSession('s'),
  listAudit: () => api.listAudit(),
  listRequestLogs: () => api.listRequestLogs({}),
  showRequestLog: () => api.showRequestLog(1),
  readUsage: () => api.readUsage({ since: 0, bucket: 'hour' }),
  listConversations: () => api.listConversations(),
  showConversation: () => api.showConversation('s'),
  listProxies: () => api.listProxies(),
  createProxy: () => api.createProxy({ name: 'p', url: 'http://p' }),
  deleteProxy: () => api.deleteProxy(1),
  testProxy: () => api.testProxy(1),
  bindAccountEgress: () => api.bindAccountEgress(1, {}),
}
// Functions that build a URL or handle errors rather than read an answer.
const NOT_CALLS = ['request', 'messageOf', 'setSignInRequiredHandler', 'ApiError', 'exportAccountUrl', 'requestLogsCsvUrl']
// Described answers the dashboard does not read.
const UNREAD = ['GET /api/codex/usage', 'GET /api/accounts/{account_id}/export', 'GET /api/request-logs.csv', 'PATCH /api/proxies/{proxy_id}']

interface Answer {
  status: number
  media_type: string | null
  schema: object | null
}
const answers = described as Record<string, Answer>

/** The described operation a call went to: its method and the path template with the fewest parameters. */
function operationOf(call: Call): string | undefined {
  const matching = Object.keys(answers).filter((key) => {
    const [method, template] = key.split(' ')
    const pattern = new RegExp(`^${template.replace(/\{[^}]+\}/g, '[^/]+')}$`)
    return method === call.method && pattern.test(call.path)
  })
  return matching.sort((a, b) => a.split('{').length - b.split('{').length)[0]
}

describe('the dashboard reads answers as the server describes them', () => {
  calls.length = 0
  for (const call of Object.values(CALLS)) call()
  const used = calls.map((call) => ({ ...call, operation: operationOf(call) }))

  it.each(used.map((call) => [`${call.method} ${call.path}`, call] as const))('%s', (_label, call) => {
    expect(call.operation, 'a route the server does not describe').toBeDefined()
    const answer = answers[call.operation!]
    if (call.schema === null) {
      expect(answer.schema, `${call.operation} answers a body the dashboard ignores`).toBeNull()
      return
    }
    expect(answer.media_type).toBe('application/json')
    expect(drift(asOpenApi(call.schema), answer.schema as object)).toEqual([])
  })

  it('every described answer is read by an API function, or listed as unread', () => {
    const read = new Set(used.map((call) => call.operation))
    const unread = Object.keys(answers).filter((operation) => !read.has(operation))
    expect(unread.sort()).toEqual([...UNREAD].sort())
  })

  it('every API function is called above', () => {
    const functions = Object.entries(api).filter(([, value]) => typeof value === 'function').map(([name]) => name)
    expect(functions.filter((name) => !NOT_CALLS.includes(name)).sort()).toEqual(Object.keys(CALLS).sort())
  })
})
