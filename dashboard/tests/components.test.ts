import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { flushPromises, mount } from '@vue/test-utils'
import { createPinia, setActivePinia } from 'pinia'
import { QueryClient, VueQueryPlugin } from '@tanstack/vue-query'
import { createMemoryHistory, createRouter } from 'vue-router'
import { NDialogProvider, NMessageProvider } from 'naive-ui'
import { defineComponent, h } from 'vue'
import UsageBar from '@/components/UsageBar.vue'
import StateTag from '@/components/StateTag.vue'
import AccountRow from '@/components/AccountRow.vue'
import SignIn from '@/pages/SignIn.vue'
import { usePrefs } from '@/stores/prefs'
import { snippets } from '@/lib/snippets'
import type { Account } from '@/api'

function plugins() {
  const pinia = createPinia()
  setActivePinia(pinia)
  const router = createRouter({
    history: createMemoryHistory(),
    routes: [
      { path: '/', component: { render: () => null } },
      { path: '/sign-in', name: 'sign-in', component: SignIn },
      { path: '/accounts', name: 'accounts', component: { render: () => h('div', 'accounts page') } },
      { path: '/accounts/:id', component: { render: () => null } },
    ],
  })
  return { pinia, router, plugins: [pinia, router, [VueQueryPlugin, { queryClient: new QueryClient() }]] as never[] }
}

/** Mount inside naive-ui's message and dialog providers, as App.vue does. */
function withProviders(component: unknown, props: Record<string, unknown> = {}) {
  return defineComponent({
    render: () => h(NMessageProvider, null, () => h(NDialogProvider, null, () => h(component as never, props))),
  })
}

beforeEach(() => {
  window.matchMedia ??= ((query: string) => ({ matches: false, media: query, addEventListener() {}, removeEventListener() {}, addListener() {}, removeListener() {}, onchange: null, dispatchEvent: () => false })) as never
})
afterEach(() => vi.unstubAllGlobals())

describe('UsageBar', () => {
  it.each([
    [42, 'ok'],
    [85, 'warn'],
    [97, 'danger'],
  ])('at %s %% it is %s, with the value for screen readers', (used, level) => {
    const { plugins: global } = plugins()
    const bar = mount(UsageBar, { props: { label: '5 h', used, resetAt: Date.now() / 1000 + 3 * 3600 + 60 }, global: { plugins: global } })
    expect(bar.classes()).toContain(level)
    expect(bar.get('[role=progressbar]').attributes('aria-valuenow')).toBe(String(used))
    expect(bar.text()).toContain(`${used} % used`)
    expect(bar.text()).toMatch(/resets in 3 h 1 min|resets in 3 h/)
  })

  it('says there is no data instead of showing an empty bar as 0 %', () => {
    const { plugins: global } = plugins()
    const bar = mount(UsageBar, { props: { label: '7 d', used: null, resetAt: null }, global: { plugins: global } })
    expect(bar.text()).toContain('no data yet')
    expect(bar.text()).not.toContain('reset')
  })
})

describe('StateTag', () => {
  it('has one label and a colour per theme for each state', async () => {
    const { plugins: global } = plugins()
    const tag = mount(StateTag, { props: { status: 'rate_limited', reason: 'usage limit until 14:00' }, global: { plugins: global } })
    expect(tag.text()).toBe('Rate-limited')
    expect(tag.attributes('title')).toBe('usage limit until 14:00')
    const light = tag.attributes('style')
    usePrefs().theme = 'dark'
    await flushPromises()
    expect(tag.attributes('style')).not.toBe(light)
  })
})

const account: Account = {
  id: 7,
  chatgpt_account_id: 'acc-7',
  label: 'Team A',
  email: 'a@example.com',
  plan_type: 'pro',
  status: 'paused',
  status_reason: 'paused by the operator',
  status_until: null,
  status_since: Date.now() / 1000 - 120,
  slot: 0,
  created_at: 1,
  last_refresh_at: 1,
  access_expires_at: null,
  last_used_at: null,
  usage: { primary: { used_percent: 88, window_minutes: 300, reset_at: Date.now() / 1000 + 600 }, secondary: null },
  usage_polled_at: 1,
  routing_policy: 'normal',
  reserve_percent: 0,
  live: { in_flight: 3, cooldown_until: null, primary_used_percent: 0, primary_reset_at: null, secondary_used_percent: 0, secondary_reset_at: null },
}

describe('AccountRow', () => {
  it('shows why the account is out, its windows and what runs, and offers Resume when paused', async () => {
    const { plugins: global } = plugins()
    const row = mount(withProviders(AccountRow, { account, busy: null, readOnly: false, onResume: vi.fn() }), { global: { plugins: global } })
    const text = row.text()
    expect(text).toContain('Team A')
    expect(text).toContain('Paused')
    expect(text).toContain('paused by the operator')
    expect(text).toContain('5 h')
    expect(text).toContain('88 % used') // from the last poll: this host has no live value
    expect(text).toContain('3')
    expect(row.find('[data-testid=resume]').exists()).toBe(true)
    expect(row.find('[data-testid=pause]').exists()).toBe(false)
  })

  it('shows a routing policy other than normal, with what it does', () => {
    const { plugins: global } = plugins()
    const normal = mount(withProviders(AccountRow, { account, busy: null, readOnly: false }), { global: { plugins: global } })
    expect(normal.find('[data-testid=policy-badge]').exists()).toBe(false)
    const preserving = { ...account, routing_policy: 'preserve' as const, reserve_percent: 25 }
    const row = mount(withProviders(AccountRow, { account: preserving, busy: null, readOnly: false }), { global: { plugins: global } })
    const badge = row.get('[data-testid=policy-badge]')
    expect(badge.text()).toBe('Preserve 25 %')
    expect(badge.attributes('title')).toContain('reserve')
  })

  it('emits resume when the button is pressed', async () => {
    const { plugins: global } = plugins()
    const onResume = vi.fn()
    const row = mount(withProviders(AccountRow, { account, busy: null, readOnly: false, onResume }), { global: { plugins: global } })
    await row.get('[data-testid=resume]').trigger('click')
    expect(onResume).toHaveBeenCalledOnce()
  })

  it('disables every action for a read-only viewer', () => {
    const { plugins: global } = plugins()
    const row = mount(withProviders(AccountRow, { account, busy: null, readOnly: true }), { global: { plugins: global } })
    expect(row.get('[data-testid=resume]').attributes('disabled')).toBeDefined()
  })
})

describe('snippets', () => {
  it("fill in this server's address and the key for every client", () => {
    const list = snippets('https://lb.example:2455', 'sk-clb-abc')
    const by = Object.fromEntries(list.map((s) => [s.id, s.text]))
    expect(Object.keys(by)).toEqual(['codex', 'opencode', 'sdk', 'curl'])
    expect(by.codex).toContain('base_url = "https://lb.example:2455/backend-api/codex"')
    expect(by.codex).toContain('env_key = "CODEX_LB_API_KEY"')
    expect(by.opencode).toContain('"baseURL": "https://lb.example:2455/v1"')
    expect(by.sdk).toContain('OpenAI(base_url="https://lb.example:2455/v1", api_key="sk-clb-abc")')
    expect(by.curl).toContain("-H 'authorization: Bearer sk-clb-abc'")
  })
})

describe('SignIn', () => {
  function server(answers: Record<string, (body: unknown) => [number, unknown]>) {
    const calls: string[] = []
    vi.stubGlobal(
      'fetch',
      vi.fn(async (url: string, init?: RequestInit) => {
        const key = `${init?.method ?? 'GET'} ${url}`
        calls.push(key)
        const body = init?.body ? JSON.parse(String(init.body)) : null
        const [status, payload] = answers[key]!(body)
        return new Response(payload === null ? '' : JSON.stringify(payload), { status })
      }),
    )
    return calls
  }
  const signedOut = { mode: 'standard', authenticated: false, role: null, user: null, password_set: true, totp_enabled: true, bootstrap_required: false, local_without_password: false, proxy_required: false }

  it('asks for the code with the password when two-factor sign-in is on, then goes where the user was headed', async () => {
    let signedIn = false
    const logins: unknown[] = []
    server({
      'GET /api/auth/status': () => [200, { ...signedOut, authenticated: signedIn, role: signedIn ? 'admin' : null }],
      'POST /api/auth/login': (body) => {
        logins.push(body)
        const b = body as { password: string; totp_code?: string }
        // Like the server: a missing code is answered as a wrong one, never with a hint.
        if (b.totp_code !== '123456') return [401, { error: { message: 'Wrong password or code.', code: 'invalid_credentials' } }]
        signedIn = true
        return [200, { role: 'admin' }]
      },
    })
    const { plugins: global, router } = plugins()
    await router.push('/sign-in?next=/accounts')
    const page = mount(SignIn, { global: { plugins: global }, attachTo: document.body })
    await flushPromises()
    expect(page.find('#totp-code').exists()).toBe(true)
    await page.get('#password').setValue('hunter2hunter2')
    await page.get('form').trigger('submit')
    await flushPromises()
    expect(page.get('[data-testid=sign-in-error]').text()).toBe('Wrong password or code.')
    expect(logins[0]).toEqual({ password: 'hunter2hunter2' })

    await page.get('#totp-code').setValue('000000')
    await page.get('form').trigger('submit')
    await flushPromises()
    expect(page.get('[data-testid=sign-in-error]').text()).toBe('Wrong password or code.')

    await page.get('#totp-code').setValue('123456')
    await page.get('form').trigger('submit')
    await flushPromises()
    expect(router.currentRoute.value.fullPath).toBe('/accounts')
    page.unmount()
  })

  it('asks for no code when two-factor sign-in is off', async () => {
    server({ 'GET /api/auth/status': () => [200, { ...signedOut, totp_enabled: false }] })
    const { plugins: global, router } = plugins()
    await router.push('/sign-in')
    const page = mount(SignIn, { global: { plugins: global } })
    await flushPromises()
    expect(page.find('#password').exists()).toBe(true)
    expect(page.find('#totp-code').exists()).toBe(false)
  })

  it('shows the fail-closed page when the reverse proxy is required', async () => {
    server({ 'GET /api/auth/status': () => [200, { ...signedOut, mode: 'trusted_header', proxy_required: true }] })
    const { plugins: global, router } = plugins()
    await router.push('/sign-in')
    const page = mount(SignIn, { global: { plugins: global } })
    await flushPromises()
    expect(page.find('[data-testid=fail-closed]').text()).toContain('Sign in through your reverse proxy')
  })

  it('asks for the bootstrap token on a remote first visit', async () => {
    server({ 'GET /api/auth/status': () => [200, { ...signedOut, password_set: false, totp_enabled: false, bootstrap_required: true }] })
    const { plugins: global, router } = plugins()
    await router.push('/sign-in')
    const page = mount(SignIn, { global: { plugins: global } })
    await flushPromises()
    expect(page.find('#bootstrap-token').exists()).toBe(true)
    expect(page.text()).toContain('Set up the dashboard')
  })
})
