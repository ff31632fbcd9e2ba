import { describe, expect, it } from 'vitest'
import { flushPromises, mount } from '@vue/test-utils'
import { createPinia, setActivePinia } from 'pinia'
import { NDialogProvider, NMessageProvider } from 'naive-ui'
import { defineComponent, h, ref } from 'vue'
import SettingRow from '@/components/SettingRow.vue'
import LimitRules, { type RuleDraft } from '@/components/LimitRules.vue'

function inProviders(render: () => ReturnType<typeof h>) {
  return defineComponent({ setup: () => () => h(NMessageProvider, null, () => h(NDialogProvider, null, render)) })
}

describe('SettingRow', () => {
  it('says what requiring API keys does to clients and asks before turning it on', async () => {
    setActivePinia(createPinia())
    const changes: unknown[] = []
    const wrapper = mount(
      inProviders(() => h(SettingRow, { name: 'api_key_auth_enabled', value: false, disabled: false, saving: false, onChange: (v: unknown) => changes.push(v) })),
      { attachTo: document.body },
    )
    expect(wrapper.text()).toContain('Require API keys')
    expect(wrapper.text()).toContain('must send an API key')
    await wrapper.get('[role=switch]').trigger('click')
    await flushPromises()
    expect(changes).toEqual([]) // nothing changes before the confirmation
    expect(document.body.textContent).toContain('gets 401')
    const turnOn = [...document.querySelectorAll('button')].find((b) => b.textContent?.includes('Turn it on'))!
    turnOn.click()
    await flushPromises()
    expect(changes).toEqual([true])
    wrapper.unmount()
  })

  it('shows the effect of the chosen transport and sends a new choice at once', async () => {
    setActivePinia(createPinia())
    const changes: unknown[] = []
    const wrapper = mount(
      inProviders(() => h(SettingRow, { name: 'upstream_stream_transport', value: 'http', disabled: false, saving: false, onChange: (v: unknown) => changes.push(v) })),
    )
    expect(wrapper.text()).toContain('One HTTP request per turn')
    await wrapper.findAll('input[type=radio]').find((r) => (r.element as HTMLInputElement).value === 'websocket')!.setValue(true)
    expect(changes).toEqual(['websocket'])
  })

  it('offers to go back to the environment default once a saved value differs from it', async () => {
    setActivePinia(createPinia())
    const changes: unknown[] = []
    const row = (value: string) =>
      mount(inProviders(() => h(SettingRow, { name: 'routing_strategy', value, defaultValue: 'usage_weighted', disabled: false, saving: false, onChange: (v: unknown) => changes.push(v) })))
    expect(row('usage_weighted').text()).not.toContain('Reset')
    const changed = row('round_robin')
    const reset = changed.findAll('button').find((b) => b.text().includes('Reset to the default (Most headroom)'))!
    await reset.trigger('click')
    expect(changes).toEqual([null])
  })

  it('edits a setting it does not know yet with a plain editor', async () => {
    setActivePinia(createPinia())
    const wrapper = mount(inProviders(() => h(SettingRow, { name: 'request_log_sample_rate', value: 0.5, disabled: false, saving: false })))
    expect(wrapper.text()).toContain('Request log sample rate')
    expect(wrapper.find('input').exists()).toBe(true)
  })
})

describe('PricingEditor', () => {
  it('edits prices per model in dollar fields and saves them as one change', async () => {
    setActivePinia(createPinia())
    const changes: unknown[] = []
    const value = { 'gpt-5.4': { input: 2.5, cached_input: 0.25, output: 15 } }
    const wrapper = mount(
      inProviders(() => h(SettingRow, { name: 'pricing_overrides', value, disabled: false, saving: false, onChange: (v: unknown) => changes.push(v) })),
    )
    expect(wrapper.text()).toContain('Pricing overrides')
    expect((wrapper.get('[aria-label="Row 1 model"]').element as HTMLInputElement).value).toBe('gpt-5.4')
    const save = () => wrapper.get('[data-testid=save-prices]')
    expect(save().attributes('disabled')).toBeDefined() // nothing changed yet
    await wrapper.get('[data-testid=add-price]').trigger('click')
    await wrapper.get('[aria-label="Row 2 model"]').setValue('My-Model')
    await flushPromises()
    expect(wrapper.text()).toContain('my-model needs an input and an output price')
    expect(save().attributes('disabled')).toBeDefined()
    for (const [label, price] of [['Row 2 input price', '1.5'], ['Row 2 output price', '6']]) {
      const input = wrapper.get(`[aria-label="${label}"]`)
      await input.setValue(price)
      await input.trigger('blur')
    }
    await flushPromises()
    expect(save().attributes('disabled')).toBeUndefined()
    await save().trigger('click')
    expect(changes).toEqual([
      { 'gpt-5.4': { input: 2.5, cached_input: 0.25, output: 15 }, 'my-model': { input: 1.5, cached_input: 1.5, output: 6 } },
    ])
  })

  it('says that the built-in prices apply when there are no overrides', () => {
    const wrapper = mount(inProviders(() => h(SettingRow, { name: 'pricing_overrides', value: {}, disabled: false, saving: false })))
    expect(wrapper.text()).toContain('built-in prices')
    expect(wrapper.find('textarea').exists()).toBe(false)
  })
})

describe('LimitRules', () => {
  it('adds and removes rules, each with a quantity, a maximum, a window and an optional model', async () => {
    const rules = ref<RuleDraft[]>([])
    const wrapper = mount(defineComponent({ setup: () => () => h(LimitRules, { modelValue: rules.value, 'onUpdate:modelValue': (v: RuleDraft[]) => (rules.value = v) }) }))
    expect(wrapper.text()).toContain('No limits')
    await wrapper.get('[data-testid=add-limit]').trigger('click')
    await wrapper.get('[data-testid=add-limit]').trigger('click')
    expect(rules.value).toEqual([
      { quantity: 'requests', window: 'day', max: 1000, model: '' },
      { quantity: 'requests', window: 'day', max: 1000, model: '' },
    ])
    expect(wrapper.find('[aria-label="Rule 2 maximum"]').exists()).toBe(true)
    await wrapper.get('[aria-label="Remove rule 1"]').trigger('click')
    expect(rules.value).toHaveLength(1)
  })
})
