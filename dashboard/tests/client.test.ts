import { afterEach, describe, expect, it, vi } from 'vitest'
import { ApiError, listAccounts, importAccounts, createApiKey, readSettings, setSignInRequiredHandler } from '@/api'

function answer(status: number, body: unknown) {
  return vi.fn(async () => new Response(body === undefined ? '' : JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } }))
}

const account = {
  id: 1,
  chatgpt_account_id: 'acc-1',
  label: '',
  email: 'a@example.com',
  plan_type: 'plus',
  status: 'active',
  status_reason: '',
  status_until: null,
  status_since: 1700000000,
  slot: 0,
  created_at: 1700000000,
  last_refresh_at: 1700000000,
  access_expires_at: 1700003600,
  usage: { primary: { used_percent: 12, window_minutes: 300, reset_at: 1700010000 }, secondary: null, credits: { has_credits: false, unlimited: false, balance: null }, plan_type: 'plus' },
  usage_polled_at: 1700000000,
  routing_policy: 'normal',
  reserve_percent: 0,
  live: { in_flight: 2, cooldown_until: null, primary_used_percent: 12, primary_reset_at: 1700010000, secondary_used_percent: 0, secondary_reset_at: null },
}

afterEach(() => {
  vi.unstubAllGlobals()
  setSignInRequiredHandler(null)
})

describe('the API client', () => {
  it('checks answers against the server shape', async () => {
    vi.stubGlobal('fetch', answer(200, { accounts: [account] }))
    const accounts = await listAccounts()
    expect(accounts[0]!.live!.in_flight).toBe(2)
  })

  it('notices a changed answer shape instead of showing garbage', async () => {
    vi.stubGlobal('fetch', answer(200, { accounts: [{ ...account, status: 3 }] }))
    await expect(listAccounts()).rejects.toThrow(/Unexpected answer from GET \/api\/accounts: accounts.0.status/)
  })

  it("throws the server's own error message, code and param", async () => {
    vi.stubGlobal('fetch', answer(400, { error: { message: "'limits[0].max' must be a positive number.", type: 'invalid_request_error', code: 'invalid_api_key_spec', param: 'limits[0].max' } }))
    const failure = await createApiKey({ name: 'x', limits: [{ quantity: 'requests', window: 'day', max: -1 }] }).catch((e) => e)
    expect(failure).toBeInstanceOf(ApiError)
    expect(failure.message).toBe("'limits[0].max' must be a positive number.")
    expect(failure.code).toBe('invalid_api_key_spec')
    expect(failure.param).toBe('limits[0].max')
    expect(failure.status).toBe(400)
  })

  it('sends JSON with same-origin credentials', async () => {
    const fetch = answer(201, { id: 1, name: 'ci', key_prefix: 'sk-clb-ab', enabled: true, created_at: 1, updated_at: 1, expires_at: null, last_used_at: null, allowed_models: null, allowed_reasoning_efforts: null, allowed_account_ids: null, limits: [], usage: { request_count: 0, total_tokens: 0, cached_input_tokens: 0, cost_usd: 0 }, key: 'sk-clb-secret' })
    vi.stubGlobal('fetch', fetch)
    const created = await createApiKey({ name: 'ci' })
    expect(created.key).toBe('sk-clb-secret')
    const [url, init] = fetch.mock.calls[0] as unknown as [string, RequestInit]
    expect(url).toBe('/api/api-keys')
    expect(init.credentials).toBe('same-origin')
    expect((init.headers as Record<string, string>)['content-type']).toBe('application/json')
    expect(init.body).toBe('{"name":"ci"}')
  })

  it('uploads auth.json files in the auth_json field, accepting a partial 207', async () => {
    const fetch = answer(207, { imported: [], errors: [{ source: 'bad.json', error: 'not an auth.json' }] })
    vi.stubGlobal('fetch', fetch)
    const result = await importAccounts([new File(['{}'], 'bad.json')])
    expect(result.errors[0]!.error).toBe('not an auth.json')
    const init = (fetch.mock.calls[0] as unknown as [string, RequestInit])[1]
    expect((init.body as FormData).getAll('auth_json')).toHaveLength(1)
  })

  it('keeps settings it does not know yet', async () => {
    const known = {
      routing_strategy: 'round_robin',
      sticky_sessions: true,
      prefer_earlier_reset: 'off',
      session_placement: 'headroom',
      upstream_stream_transport: 'auto',
      api_key_auth_enabled: false,
      pricing_overrides: { 'gpt-5.4': { input: 2.5, cached_input: 0.25, output: 15 } },
      request_log_retention_days: 30,
    }
    vi.stubGlobal('fetch', answer(200, { ...known, request_log_sample_rate: 0.5 }))
    const settings = await readSettings()
    expect(settings.pricing_overrides['gpt-5.4']!.output).toBe(15)
    expect(settings.request_log_sample_rate).toBe(0.5)
  })

  it('notices a setting whose shape changed', async () => {
    vi.stubGlobal('fetch', answer(200, { routing_strategy: 'usage', sticky_sessions: true, upstream_stream_transport: 'auto', api_key_auth_enabled: false, pricing_overrides: {}, request_log_retention_days: 30 }))
    await expect(readSettings()).rejects.toThrow()
  })

  it('sends the user to sign in when the session is gone', async () => {
    vi.stubGlobal('fetch', answer(401, { error: { message: 'Sign in first.', code: 'sign_in_required' } }))
    const handler = vi.fn()
    setSignInRequiredHandler(handler)
    await expect(listAccounts()).rejects.toThrow('Sign in first.')
    expect(handler).toHaveBeenCalledOnce()
  })

  it('says so when the server does not answer', async () => {
    vi.stubGlobal('fetch', vi.fn(async () => { throw new TypeError('Failed to fetch') }))
    await expect(listAccounts()).rejects.toThrow(/did not answer/)
  })
})
