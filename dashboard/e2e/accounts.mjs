// Accounts: the empty state, importing auth.json by drag and drop, pause and resume, the detail page.
import { config, dropFiles, run, shoot, toast } from './lib.mjs'

await run(async ({ page, result }) => {
  await page.goto('/accounts')
  await page.waitForURL('**/accounts')
  await page.getByText('No accounts in the pool yet').waitFor()
  result.screenshots.push(...(await shoot(page, 'accounts-empty')))

  await dropFiles(page, '[data-testid=auth-json-drop]', config.auth_json_files)
  await toast(page, 'Added')
  const row = page.locator('[data-account]').first()
  await row.waitFor()
  if ((await page.locator('[data-account]').count()) !== config.auth_json_files.length) throw new Error('not every account was imported')
  await page.getByText('All accounts serving').waitFor()
  // The usage poller (every 2 s in this test) fills in the bars.
  await page.locator('[data-account] [role=progressbar]:not([aria-valuenow="0"])').first().waitFor()
  result.screenshots.push(...(await shoot(page, 'accounts')))

  await row.locator('[data-testid=pause]').click()
  await toast(page, 'Paused')
  await page.locator('[data-account][data-status=paused]').waitFor()
  result.paused = await page.locator('[data-account][data-status=paused]').count()
  result.screenshots.push(...(await shoot(page, 'accounts-one-paused', { phone: false })))
  await page.locator('[data-account][data-status=paused] [data-testid=resume]').click()
  await toast(page, 'Resumed')
  await page.locator('[data-account][data-status=paused]').waitFor({ state: 'detached' })

  // Live refresh keeps the user's place: a filter survives two background refreshes of the list.
  await page.getByLabel('Filter accounts').fill('pro')
  for (let i = 0; i < 2; i++) await page.waitForResponse((r) => r.url().endsWith('/api/accounts') && r.ok(), { timeout: 15000 })
  result.filtered_after_refresh = await page.locator('[data-account]').count()
  await page.getByLabel('Filter accounts').fill('')

  // Keyboard: Tab reaches "Add account" and Enter opens it.
  await page.evaluate(() => document.activeElement?.blur?.())
  let focused = ''
  result.tab_order = []
  for (let i = 0; i < 30 && focused !== 'add-account-button'; i++) {
    await page.keyboard.press('Tab')
    focused = await page.evaluate(() => document.activeElement?.closest('[data-testid]')?.getAttribute('data-testid') ?? '')
    result.tab_order.push(await page.evaluate(() => {
      const e = document.activeElement
      return e ? `${e.tagName.toLowerCase()}:${(e.getAttribute('aria-label') || e.textContent || '').trim().slice(0, 30)}` : ''
    }))
  }
  if (focused !== 'add-account-button') throw new Error(`Tab does not reach the Add account button: ${result.tab_order.join(' | ')}`)
  await page.keyboard.press('Enter')
  await page.getByRole('dialog').waitFor()
  result.screenshots.push(...(await shoot(page, 'add-account')))
  await page.getByRole('dialog').getByText('Device code', { exact: true }).click()
  await page.getByRole('button', { name: 'Get a device code' }).click()
  await page.getByTestId('device-code').waitFor()
  result.device_code = (await page.getByTestId('device-code').innerText()).trim()
  result.screenshots.push(...(await shoot(page, 'add-account-device-code')))
  // Someone enters the code on the (fake) sign-in page: the polled status completes and the dialog closes.
  const approved = await fetch(`${config.fake_url}/__device/approve`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ user_code: result.device_code, account: null, deny: false }),
  })
  if (!approved.ok) throw new Error(`the fake refused the device approval: ${approved.status}`)
  await toast(page, 'Account added')
  await page.getByRole('dialog').waitFor({ state: 'detached' })
  await page.locator('[data-account]').nth(config.auth_json_files.length).waitFor()
  result.accounts_after_device = await page.locator('[data-account]').count()

  // Browser on another machine: start a browser sign-in, let the (fake) sign-in page redirect, paste
  // the address it ended on.
  await page.getByTestId('add-account-button').click()
  const dialog = page.getByRole('dialog')
  await dialog.getByText('Callback URL', { exact: true }).click()
  await dialog.getByRole('button', { name: '1. Start a browser sign-in' }).click()
  const authorize = await dialog.locator('a', { hasText: '1. Open the sign-in page' }).getAttribute('href')
  const redirect = await fetch(authorize, { redirect: 'manual' })
  result.callback_url = redirect.headers.get('location')
  await page.locator('#callback-url').fill(result.callback_url)
  result.screenshots.push(...(await shoot(page, 'add-account-callback', { phone: false })))
  await dialog.getByRole('button', { name: '3. Finish sign-in' }).click()
  await toast(page, 'Account added')
  await page.locator('[data-account]').nth(config.auth_json_files.length + 1).waitFor()
  result.accounts_after_callback = await page.locator('[data-account]').count()

  // The theme button: system (light here) → dark → light → system.
  await page.getByTestId('theme-toggle').click()
  result.forced_theme = await page.evaluate(() => document.documentElement.classList.contains('dark'))
  await page.getByTestId('theme-toggle').click()
  await page.getByTestId('theme-toggle').click()

  await page.locator('[data-account] a').first().click()
  await page.waitForURL(/\/accounts\/\d+$/)
  await page.getByText('State history').waitFor()
  await page.getByText('Identity').waitFor()
  result.screenshots.push(...(await shoot(page, 'account-detail')))

  // Delete asks for the account's name to be typed.
  const name = (await page.locator('h1').innerText()).split('\n')[0].trim()
  await page.getByRole('button', { name: 'Delete', exact: true }).click()
  const confirm = page.getByTestId('confirm-delete')
  if (!(await confirm.isDisabled())) throw new Error('delete was possible without typing the name')
  await page.locator('#typed-confirm').fill(name)
  result.screenshots.push(...(await shoot(page, 'account-delete', { phone: false })))
  await confirm.click()
  await toast(page, 'Deleted')
  await page.waitForURL('**/accounts')
  await page.locator('[data-account]').nth(config.auth_json_files.length).waitFor()
  result.accounts_after_delete = await page.locator('[data-account]').count()

  // Nothing is ever blank: a missing account shows the server's message with a retry, an unknown page says so.
  await page.goto('/accounts/999999')
  await page.getByText('No account 999999').waitFor()
  result.screenshots.push(...(await shoot(page, 'account-missing', { phone: false })))
  await page.goto('/no-such-page')
  await page.getByText('No such page').waitFor()
  result.screenshots.push(...(await shoot(page, 'not-found', { phone: false })))
})
