// Drives Marquez's web UI in headless Debian chromium (playwright-core; no browser download) and prints one
// JSON report: every /api/ request with its status, console errors, page errors, expected calls never made,
// and each page's visible text. Called by tests/ui/ui_check.py, which decides what fails (README "make test-ui").
// Usage: node drive.mjs <ui base url> <screenshot dir> <pages json> <chromium path>
import { chromium } from 'playwright-core'

const [base, shots, pagesJson, executablePath] = process.argv.slice(2)
const pages = JSON.parse(pagesJson)
const report = { requests: [], console: [], pageErrors: [], missing: [], visits: [] }
let current = ''
let inflight = 0
const isApi = (url) => new URL(url).pathname.startsWith('/api/')

const browser = await chromium.launch({ executablePath, args: ['--no-sandbox'] })
const context = await browser.newContext({ viewport: { width: 1600, height: 1000 } })
context.on('request', (r) => { if (isApi(r.url())) inflight++ })
context.on('requestfinished', (r) => { if (isApi(r.url())) inflight-- })
context.on('response', (r) => {
  const u = new URL(r.url())
  if (isApi(r.url()) || r.status() >= 400) {
    report.requests.push({ page: current, method: r.request().method(), url: r.url(), path: u.pathname + u.search, status: r.status() })
  }
})
context.on('requestfailed', (r) => {
  const u = new URL(r.url())
  if (isApi(r.url())) inflight--
  report.requests.push({ page: current, method: r.method(), url: r.url(), path: u.pathname + u.search, status: 0, failure: r.failure()?.errorText })
})
const page = await context.newPage()
page.on('console', (m) => {
  if (m.type() === 'error') report.console.push({ page: current, text: m.text().slice(0, 500), url: m.location()?.url })
})
page.on('pageerror', (e) => report.pageErrors.push({ page: current, text: String(e).slice(0, 500) }))

// The UI loads namespaces first and renders the page's calls later (seconds on a busy machine): wait for the
// calls each page must make, then for 1.5 s without an /api/ request in flight.
async function expectCalls(paths, maxMs = 60000) {
  const start = Date.now()
  const missing = () => {
    const seen = report.requests.filter((r) => r.page === current && r.status > 0).map((r) => r.path)
    return paths.filter((want) => !seen.some((path) => path.startsWith(want)))
  }
  while (Date.now() - start < maxMs) {
    if (missing().length === 0) return
    await new Promise((res) => setTimeout(res, 200))
  }
  report.missing.push({ page: current, missing: missing() })
}
async function settle(quietMs = 1500, maxMs = 30000) {
  const start = Date.now()
  let quietSince = Date.now()
  while (Date.now() - start < maxMs) {
    await new Promise((res) => setTimeout(res, 100))
    if (inflight > 0) quietSince = Date.now()
    else if (Date.now() - quietSince >= quietMs) return
  }
}

for (const p of pages) {
  current = p.name
  await page.goto(base + p.path, { waitUntil: 'load' })
  await expectCalls(p.expect || [])
  for (const a of p.actions || []) {
    if (a.click) await page.getByText(a.click, { exact: false }).first().click()
    if (a.fill) await page.locator(a.selector).fill(a.fill)
    await expectCalls(a.expect || [])
  }
  await settle()
  await page.screenshot({ path: `${shots}/${p.name}.png` })
  report.visits.push({ name: p.name, url: page.url(), text: await page.locator('body').innerText() })
}
await browser.close()
console.log(JSON.stringify(report))
