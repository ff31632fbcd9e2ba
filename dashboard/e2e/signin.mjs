// Sign-in: set a password and two-factor sign-in from Settings (admitted as a local request), sign out,
// sign in with password + TOTP code (the page asks for both at once), look at sessions and the audit log;
// then as the viewer, who is shown neither and meets no refusal; sign out.
import { run, shoot, toast } from './lib.mjs'
import { totp } from './totp.mjs'

await run(async ({ page, result }) => {
  await page.goto('/settings?tab=security')
  await page.getByText('Dashboard password').waitFor()
  await page.locator('#new-password').fill('correct horse battery')
  await page.locator('#repeat-password').fill('correct horse battery')
  await page.getByTestId('save-password').click()
  await toast(page, 'Password set')

  await page.getByTestId('totp-setup').click()
  const secret = (await page.getByTestId('totp-secret').innerText()).trim()
  result.screenshots.push(...(await shoot(page, 'settings-totp-setup')))
  // The previous time step's code: the sign-in below then uses the current one (each is accepted once).
  await page.locator('#totp-enable-code').fill(totp(secret, Math.floor(Date.now() / 1000 / 30) - 1))
  await page.getByTestId('totp-enable').click()
  await page.getByTestId('recovery-codes').waitFor()
  result.recovery_codes = (await page.getByTestId('recovery-codes').innerText()).trim().split('\n').length
  await page.getByRole('button', { name: 'I have saved them' }).click()
  result.screenshots.push(...(await shoot(page, 'settings-security')))

  await page.getByTestId('user-menu').click()
  await page.getByText('Sign out', { exact: true }).click()
  await page.waitForURL('**/sign-in**')
  await page.locator('#password').waitFor()
  result.screenshots.push(...(await shoot(page, 'sign-in')))

  await page.locator('#totp-code').waitFor() // two-factor sign-in is on: the code is asked with the password
  await page.locator('#password').fill('wrong password')
  await page.getByTestId('sign-in').click()
  result.wrong_password = await page.getByTestId('sign-in-error').innerText()

  // By keyboard only: type the password, Tab on to the code, Enter signs in.
  await page.locator('#password').fill('')
  await page.locator('#password').focus()
  await page.keyboard.type('correct horse battery')
  result.screenshots.push(...(await shoot(page, 'sign-in-totp')))
  for (let tabs = 0; tabs < 4 && !(await page.locator('#totp-code').evaluate((el) => el === document.activeElement)); tabs++) {
    await page.keyboard.press('Tab')
  }
  if (!(await page.locator('#totp-code').evaluate((el) => el === document.activeElement))) {
    throw new Error('Tab from the password never reached the code field')
  }
  await page.keyboard.type(totp(secret))
  await page.keyboard.press('Enter')
  // Signed in, the app goes where the user was headed: the overview, or the settings page signed out
  // from when a background request's refusal sent it to sign-in before the sign-out did.
  await page.waitForURL((url) => !url.pathname.startsWith('/sign-in'))
  result.signed_in = true

  await page.goto('/settings?tab=sessions')
  await page.getByText('this one').waitFor()
  result.screenshots.push(...(await shoot(page, 'settings-sessions')))
  await page.goto('/settings?tab=audit')
  await page.getByText('auth.sign_in_failed').first().waitFor()
  result.screenshots.push(...(await shoot(page, 'settings-audit')))

  const viewerPassword = await page.evaluate(async () => {
    const set = await fetch('/api/auth/viewer-password', { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ password: 'look but do not touch' }) })
    return set.status
  })
  if (viewerPassword !== 204) throw new Error(`setting the viewer password answered ${viewerPassword}`)
  await page.getByTestId('user-menu').click()
  await page.getByText('Sign out', { exact: true }).click()
  await page.waitForURL('**/sign-in**')

  // The viewer: the code field stays empty; the sessions and the audit log are not offered, and the
  // pages the viewer sees ask the server for nothing it refuses.
  const refused = []
  page.on('response', (response) => response.status() === 403 && refused.push(new URL(response.url()).pathname))
  await page.locator('#password').fill('look but do not touch')
  await page.getByTestId('sign-in').click()
  await page.waitForURL((url) => !url.pathname.startsWith('/sign-in'))
  const tabs = page.locator('.n-tabs-tab[data-name]')
  await page.goto('/settings?tab=audit')
  await page.locator('.n-tabs-tab--active[data-name="general"]').waitFor() // an admin's tab falls back to Pool
  result.viewer_tabs = await tabs.evaluateAll((all) => all.map((tab) => tab.dataset.name))
  await page.goto('/settings?tab=sessions')
  await page.locator('.n-tabs-tab--active[data-name="general"]').waitFor()
  await page.getByText('Routing and upstream').waitFor()
  result.viewer_refused = refused

  await page.getByTestId('user-menu').click()
  await page.getByText('Sign out', { exact: true }).click()
  await page.waitForURL('**/sign-in**')
  // Signed out for real: the API refuses this browser now.
  result.after_sign_out = await page.evaluate(async () => (await fetch('/api/accounts')).status)
})
