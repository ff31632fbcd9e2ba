// Shared pieces of the browser tests: Debian's Chromium through playwright-core, screenshots of a page
// in both themes and at phone width, and a real drag-and-drop of files.
import { chromium } from 'playwright-core'
import { mkdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'

export const config = JSON.parse(process.env.E2E_CONFIG ?? '{}')
export const base = config.base_url
const artefacts = config.artefacts_dir
mkdirSync(artefacts, { recursive: true })

export const DESKTOP = { width: 1280, height: 800 }
export const PHONE = { width: 390, height: 844 }

export async function launch() {
  // A new, empty profile per run (playwright passes it as --user-data-dir).
  const context = await chromium.launchPersistentContext(config.profile_dir, {
    executablePath: config.chromium ?? '/usr/bin/chromium',
    viewport: DESKTOP,
    colorScheme: 'light',
    baseURL: base,
    extraHTTPHeaders: config.headers ?? {},
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  })
  const browser = context
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: base })
  const page = context.pages()[0] ?? (await context.newPage())
  const problems = []
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`))
  page.on('console', (message) => {
    // A 4xx the app handles (e.g. /api/auth/status on a server without sign-in) is logged by the
    // browser as "Failed to load resource"; server errors are caught by the response check below.
    if (message.type() === 'error' && !message.text().startsWith('Failed to load resource'))
      problems.push(`console error: ${message.text()}`)
  })
  page.on('response', (response) => {
    if (response.status() >= 500) problems.push(`${response.status()} from ${response.request().method()} ${response.url()}`)
  })
  return { browser, context, page, problems }
}

/** Screenshots of what the page shows now: light and dark, desktop and phone width. */
export async function shoot(page, name, { phone = true } = {}) {
  const shots = []
  // Screenshots show the settled colours, not naive-ui's 0.3 s colour transitions half-way.
  const still = await page.addStyleTag({ content: '*, *::before, *::after { transition: none !important; animation: none !important; }' })
  const sizes = phone ? [['desktop', DESKTOP], ['phone', PHONE]] : [['desktop', DESKTOP]]
  for (const [size, viewport] of sizes) {
    await page.setViewportSize(viewport)
    for (const scheme of ['light', 'dark']) {
      await page.emulateMedia({ colorScheme: scheme })
      await page.waitForTimeout(250) // re-layout and the chart's redraw
      const path = join(artefacts, `${name}-${size}-${scheme}.png`)
      await page.screenshot({ path, fullPage: true })
      shots.push(path)
    }
  }
  await page.setViewportSize(DESKTOP)
  await page.emulateMedia({ colorScheme: 'light' })
  await still.evaluate((node) => node.remove())
  return shots
}

/** Drop files on an element as a person dragging them from a file manager would. */
export async function dropFiles(page, selector, files) {
  const dataTransfer = await page.evaluateHandle((items) => {
    const transfer = new DataTransfer()
    for (const { name, text } of items) transfer.items.add(new File([text], name, { type: 'application/json' }))
    return transfer
  }, files.map((path) => ({ name: path.split('/').pop(), text: readFileSync(path, 'utf8') })))
  for (const type of ['dragenter', 'dragover', 'drop']) await page.dispatchEvent(selector, type, { dataTransfer })
}

/** The text of the newest toast. */
export async function toast(page, text) {
  const locator = page.locator('.n-message', { hasText: text }).last()
  await locator.waitFor({ timeout: 10000 })
  return locator.innerText()
}

/** The clipboard once it holds `expected` (copying is asynchronous). */
export async function clipboard(page, expected) {
  await page.waitForFunction(async (text) => (await navigator.clipboard.readText()).includes(text), expected, { timeout: 10000 })
  return page.evaluate(() => navigator.clipboard.readText())
}

export async function run(scenario) {
  const session = await launch()
  const result = { screenshots: [] }
  try {
    await scenario({ ...session, result })
    if (session.problems.length) throw new Error(session.problems.join('\n'))
    console.log(JSON.stringify(result))
  } catch (error) {
    const path = join(artefacts, `failure-${Date.now()}.png`)
    await session.page.screenshot({ path, fullPage: true }).catch(() => {})
    console.error(`${error.stack ?? error}\nscreenshot of the failure: ${path}`)
    process.exitCode = 1
  } finally {
    await session.browser.close()
  }
}
