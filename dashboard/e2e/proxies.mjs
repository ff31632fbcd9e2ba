// Egress proxies: add an HTTP proxy with credentials and test it (exit address and latency), add a dead
// SOCKS5 proxy in a pool and test it (down, with the reason), bind one account to each, and see the
// pool-bound account shown unavailable with the reason.
import { config, run, shoot, toast } from './lib.mjs'

await run(async ({ page, result }) => {
  await page.goto('/proxies')
  await page.getByText('No egress proxies').waitFor()
  result.screenshots.push(...(await shoot(page, 'proxies-empty', { phone: false })))

  async function add(name, url, pool) {
    await page.getByTestId('add-proxy').click()
    await page.getByTestId('proxy-name').locator('input').fill(name)
    await page.getByTestId('proxy-url').locator('input').fill(url)
    if (pool) await page.getByTestId('proxy-pool').locator('input').fill(pool)
    await page.getByTestId('save-proxy').click()
    await toast(page, `Added proxy “${name}”`)
  }
  await add('corp', config.http_proxy_url)
  await add('nl-1', config.dead_proxy_url, 'nl')
  const table = page.getByTestId('proxy-table')
  await table.locator('[data-proxy=nl-1]').waitFor()

  await page.getByTestId('test-corp').click()
  result.test_ok = await toast(page, 'corp: exit')
  await page.getByTestId('test-nl-1').click()
  result.test_failed = await toast(page, 'nl-1 failed')
  await table.locator('[data-proxy=nl-1]').getByText('down', { exact: true }).waitFor()

  const routes = page.getByTestId('route-table')
  async function bind(accountId, label) {
    await routes.locator(`[data-account="${accountId}"]`).locator('.n-select').click()
    await page.locator('.n-base-select-option:visible', { hasText: label }).click()
    await toast(page, `Account ${accountId}:`)
  }
  await bind(config.account_ids[0], 'Proxy: corp')
  await bind(config.account_ids[1], 'Pool: nl')
  await routes.locator(`[data-account="${config.account_ids[1]}"]`).getByText('unavailable').waitFor()
  await routes.locator(`[data-account="${config.account_ids[0]}"]`).getByText('proxy:corp').waitFor()
  result.unavailable_reason = await routes.locator(`[data-account="${config.account_ids[1]}"] .reason`).innerText()
  result.exit_cell = await table.locator('[data-proxy=corp] td.num.mono').innerText()
  result.screenshots.push(...(await shoot(page, 'proxies')))
})
