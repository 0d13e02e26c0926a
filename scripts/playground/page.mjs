// What the browser tests of the playground share: headless Chromium on one
// page, the timeline's rows and texts, choosing a method, and named steps.
// Imported by browser.mjs (connect-server's own service) and greeter.mjs (a
// user's service, examples/greeter).
import { chromium } from 'playwright-core';

// Opens a page in headless Chromium (CHROMIUM or /usr/bin/chromium); `failed`
// collects the page's errors and failed requests, to be asserted empty.
export async function openPage() {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--no-first-run'],
  });
  const failed = [];
  const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
  page.on('pageerror', (error) => failed.push(error.message));
  page.on('requestfailed', (request) => failed.push('request failed: ' + request.url()));
  page.setDefaultTimeout(10_000);

  const rows = (type) => page.locator('#timeline tbody tr.ev-' + type);
  return {
    browser,
    page,
    failed,
    // The timeline's rows of one event type ('message', 'trailers', ...).
    rows,
    // Their texts, and their times in ms since the call started.
    texts: async (type) => rows(type).locator('pre').allTextContents(),
    times: async (type) => (await rows(type).locator('td.t').allTextContents()).map(Number),
    choose: async (method) => page.selectOption('#method', method),
  };
}

// Runs one named step, printing `NAME ... ok`.
export async function step(name, body) {
  process.stdout.write(name + ' ... ');
  await body();
  console.log('ok');
}
