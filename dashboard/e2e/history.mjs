// The history pages on a month of demo history: the overview's figures (read back for the test to
// compare with the API), the forecast, request logs filtered by key and status with a row opened and
// the CSV exported, usage and cost, and a session with its moves. Screenshots of each.
import { readFileSync } from 'node:fs'
import { config, run, shoot } from './lib.mjs'

async function choose(page, testid, option) {
  await page.getByTestId(testid).click()
  await page.locator('.n-base-select-option', { hasText: option }).first().click()
}

await run(async ({ page, result }) => {
  await page.goto('/overview')
  await page.locator('[data-range="30d"] [data-figure="requests"]').waitFor()
  result.overview = {}
  for (const range of ['24h', '7d', '30d']) {
    const figures = {}
    for (const name of ['requests', 'tokens', 'cost', 'error-rate'])
      figures[name] = Number(await page.locator(`[data-range="${range}"] [data-figure="${name}"]`).getAttribute('data-value'))
    result.overview[range] = figures
  }
  result.active_accounts = Number(await page.getByTestId('state-active').innerText())
  result.screenshots.push(...(await shoot(page, 'overview')))

  await page.goto('/forecast')
  await page.getByText('Where the pool is heading').first().waitFor()
  await page.locator('[data-window="secondary"]').first().waitFor()
  result.screenshots.push(...(await shoot(page, 'forecast')))

  await page.goto('/request-logs')
  await page.locator('tr[data-log]').first().waitFor()
  await choose(page, 'filter-key', config.key_name)
  await page.waitForURL(/api_key_id=/)
  await choose(page, 'filter-status', 'Failed (any)')
  await page.waitForURL(/status=error/)
  await page.locator('tr[data-log]').first().waitFor()
  result.logs_url = page.url()
  result.logs_rows = await page.locator('tr[data-log]').count()
  result.screenshots.push(...(await shoot(page, 'request-logs')))
  await page.locator('tr[data-log]').first().click()
  const detail = page.getByTestId('log-detail')
  await detail.waitFor()
  result.detail_text = await detail.innerText()
  result.detail_log_id = Number(new URL(page.url()).searchParams.get('open'))
  result.screenshots.push(...(await shoot(page, 'request-log-detail')))
  await page.keyboard.press('Escape')

  const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('export-csv').click()])
  result.csv = readFileSync(await download.path(), 'utf8')

  await page.goto('/usage')
  await page.locator('[data-figure="requests"]').waitFor()
  result.screenshots.push(...(await shoot(page, 'usage')))

  await page.goto('/sessions?range=604800')
  await page.locator('li[data-session]').first().waitFor()
  // A conversation that moved between accounts shows the most: pick one when the list has it.
  const moved = page.locator('li[data-session]:has(.moved)')
  await ((await moved.count()) ? moved.first() : page.locator('li[data-session]').first()).click()
  await page.getByText('Accounts over time').waitFor()
  result.screenshots.push(...(await shoot(page, 'sessions')))
})
