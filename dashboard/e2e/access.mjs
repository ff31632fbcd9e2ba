// The pages a visitor sees before signing in: the bootstrap step for a remote first visit, and the
// fail-closed page when the reverse proxy is required. Screenshots only, plus the bootstrap itself.
import { config, run, shoot } from './lib.mjs'

await run(async ({ page, result }) => {
  await page.goto('/')
  await page.waitForURL('**/sign-in**')
  if (config.expect === 'bootstrap') {
    await page.locator('#bootstrap-token').waitFor()
    result.screenshots.push(...(await shoot(page, 'sign-in-bootstrap')))
    await page.locator('#bootstrap-token').fill(config.bootstrap_token)
    await page.locator('#bootstrap-password').fill('a long enough password')
    await page.locator('#bootstrap-repeat').fill('a long enough password')
    await page.getByRole('button', { name: 'Set password and sign in' }).click()
    await page.waitForURL('**/overview')
    result.bootstrapped = true
  } else {
    await page.getByTestId('fail-closed').waitFor()
    result.screenshots.push(...(await shoot(page, 'sign-in-proxy-required')))
    result.fail_closed = true
  }
})
