// Routing policies: set one account to burn first and another to preserve a 30 % reserve from the
// Accounts page, spend the earlier 5-hour reset first from Settings, then read why a proxied request
// went where it did in the request log.
import { config, run, shoot, toast } from './lib.mjs'

await run(async ({ page, result }) => {
  await page.goto('/accounts')
  const rows = page.locator('[data-account]')
  await rows.nth(1).waitFor()

  async function choose(account, policy, reserve) {
    const row = page.locator(`[data-account="${account}"]`)
    await row.getByRole('button', { name: /More actions/ }).click()
    await page.getByText('Routing policy…', { exact: true }).click()
    const dialog = page.getByTestId('policy-dialog')
    await dialog.waitFor()
    await dialog.getByTestId(`policy-${policy}`).click()
    if (reserve !== undefined) {
      const field = dialog.getByTestId('reserve-percent').locator('input')
      await field.fill(String(reserve))
      await field.press('Tab') // the number field commits its value on leaving
      result.screenshots.push(...(await shoot(page, 'accounts-policy-dialog')))
    }
    await dialog.getByTestId('save-policy').click()
    await toast(page, 'Routing policy of')
    await dialog.waitFor({ state: 'detached' })
    return row.getByTestId('policy-badge').innerText()
  }
  result.burn_badge = await choose(config.burn_account, 'burn_first')
  result.preserve_badge = await choose(config.preserve_account, 'preserve', 30)
  result.screenshots.push(...(await shoot(page, 'accounts-policies')))

  await page.goto('/settings')
  const earlier = page.locator('[data-setting=prefer_earlier_reset]')
  await earlier.getByText('5-hour', { exact: true }).click()
  await toast(page, 'Saved: Spend the earlier reset first')
  await earlier.getByText('The account whose 5-hour window resets soonest.').waitFor()
  await page.locator('[data-setting=session_placement]').getByText('Where a long one fits', { exact: true }).waitFor()
  result.screenshots.push(...(await shoot(page, 'settings-routing')))

  // A request through the proxy, as a client sends it: the burn-first account takes it.
  const answer = await fetch(`${config.base_url}/v1/responses`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'gpt-5.4', input: 'hello' }),
  })
  result.proxy_status = answer.status
  await page.goto('/request-logs')
  const row = page.locator('[data-log]').first()
  await row.waitFor()
  await row.click()
  const detail = page.getByTestId('log-detail')
  await detail.getByText('burn_first: a burn-first account, spent before the others').waitFor()
  result.routing_text = await detail.getByText('burn_first:').innerText()
  result.screenshots.push(...(await shoot(page, 'request-log-routing')))
})
