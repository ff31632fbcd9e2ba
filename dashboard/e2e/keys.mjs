// API keys and settings: create a key with a limit, copy its snippet, turn on "Require API keys", switch
// the routing strategy and override a model's price, use the key through the proxy, and see its usage
// against the limit.
import { clipboard, run, shoot, toast } from './lib.mjs'

await run(async ({ page, result }) => {
  await page.goto('/api-keys')
  await page.getByText('No API keys yet').waitFor()
  result.screenshots.push(...(await shoot(page, 'api-keys-empty')))

  await page.getByTestId('create-key').click()
  await page.locator('#key-name').fill('ci-runner')
  await page.getByTestId('add-limit').click()
  await page.getByLabel('Rule 1 maximum').fill('100')
  result.screenshots.push(...(await shoot(page, 'api-key-form')))
  await page.getByTestId('save-key').click()

  const reveal = page.getByTestId('key-reveal')
  await reveal.waitFor()
  result.key = (await page.getByTestId('new-key').innerText()).trim()
  await page.getByRole('button', { name: 'Copy Codex CLI snippet' }).click()
  await toast(page, 'Copied')
  result.codex_snippet = await clipboard(page, 'model_provider')
  await reveal.getByText('curl', { exact: true }).click()
  await page.getByRole('button', { name: 'Copy curl snippet' }).click()
  result.curl_snippet = await clipboard(page, 'curl ')
  result.screenshots.push(...(await shoot(page, 'api-key-created')))
  await page.getByRole('button', { name: 'I have copied it' }).click()

  // Settings: require API keys (asks for confirmation first).
  await page.goto('/settings')
  const apiKeyAuth = page.locator('[data-setting=api_key_auth_enabled]')
  await apiKeyAuth.waitFor()
  await apiKeyAuth.getByRole('switch').click()
  await page.getByRole('button', { name: 'Turn it on' }).click()
  await toast(page, 'Saved: Require API keys')
  await apiKeyAuth.getByText('On: clients without a key get 401').waitFor()

  // Routing strategy: one click, and the line under it says what the new choice does.
  const strategy = page.locator('[data-setting=routing_strategy]')
  await strategy.getByText('Round robin', { exact: true }).click()
  await toast(page, 'Saved: Routing strategy')
  await strategy.getByText('Each account in turn.').waitFor()
  await strategy.getByText('Reset to the default (Most headroom)').waitFor() // the environment's value

  // A price for gpt-5.4, per million tokens, in dollar fields (cached input left empty: same as input).
  const prices = page.locator('[data-setting=pricing_overrides]')
  await prices.getByText('built-in prices').waitFor()
  await prices.getByTestId('add-price').click()
  await prices.getByLabel('Row 1 model').fill('gpt-5.4')
  await prices.getByLabel('Row 1 input price', { exact: true }).fill('1000')
  await prices.getByLabel('Row 1 output price').fill('2000')
  await prices.getByLabel('Row 1 model').click() // leave the number field so it commits its value
  await prices.getByTestId('save-prices').click()
  await toast(page, 'Saved: Pricing overrides')
  await page.reload()
  await prices.getByLabel('Row 1 model').waitFor()
  result.saved_price_model = await prices.getByLabel('Row 1 model').inputValue()
  result.saved_cached_price = await prices.getByLabel('Row 1 cached input price').inputValue()
  result.screenshots.push(...(await shoot(page, 'settings')))

  // The key from the copied curl snippet, through the proxy, as a client would send it.
  const bearer = result.curl_snippet.match(/Bearer (sk-clb-[A-Za-z0-9_-]+)/)[1]
  const url = result.curl_snippet.match(/curl (\S+)/)[1]
  const answer = await fetch(url, {
    method: 'POST',
    headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'gpt-5.4', input: 'Say hi' }),
  })
  result.proxy_status = answer.status
  result.proxy_text = (await answer.json()).output?.[0]?.content?.[0]?.text ?? null
  const keyless = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"model":"gpt-5.4","input":"hi"}' })
  result.keyless_status = keyless.status

  await page.goto('/api-keys')
  const card = page.locator('[data-key=ci-runner]')
  await card.getByText('1 req of 100 req').waitFor({ timeout: 15000 })
  result.screenshots.push(...(await shoot(page, 'api-keys')))
})
