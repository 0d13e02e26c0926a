// Drives `connect-client ui` in headless Chromium: the playground page the
// client serves for another server. Checks that the page lists exactly the
// services expected, makes a unary call (ConnectService/UnaryRPC, data
// "People") and asserts its timeline: request, sent, half-close, headers,
// the greeting and trailers OK, in that order; saves a screenshot.
//
// Usage: node client-ui.mjs http://127.0.0.1:PORT/ SCREENSHOT.png SERVICE[,SERVICE...]
import assert from 'node:assert/strict';
import { openPage, step } from './page.mjs';

const [url, screenshot, services] = process.argv.slice(2);
if (!url || !screenshot || !services) {
  console.error('usage: node client-ui.mjs URL SCREENSHOT.png SERVICE[,SERVICE...]');
  process.exit(2);
}

const { browser, page, failed, rows, texts, choose } = await openPage();

try {
  await page.goto(url);
  await page.waitForSelector('#method option[value="/ConnectService/UnaryRPC"]', { state: 'attached' });

  await step('services listed: ' + services, async () => {
    const listed = await page.locator('#method optgroup').evaluateAll((groups) => groups.map((g) => g.label));
    assert.deepEqual(listed, services.split(','));
  });

  await step('unary through the client', async () => {
    await choose('/ConnectService/UnaryRPC');
    await page.fill('[data-path="requestData"]', 'People');
    await page.click('#send');
    await rows('trailers').waitFor();
    const timeline = await page.locator('#timeline tbody tr').evaluateAll(
      (trs) => trs.map((tr) => [...tr.classList].find((c) => c.startsWith('ev-')).slice(3)));
    assert.deepEqual(timeline, ['request', 'sent', 'halfClosed', 'headers', 'message', 'trailers']);
    assert.deepEqual(await texts('message'), ['{"responseData":"Hello, People"}']);
    assert.equal(await page.textContent('#status'), 'OK');
    assert.match(await page.textContent('#copy-text'), /^connect-client --addr http:\/\/127\.0\.0\.1:\d+ unary 'People'$/);
    await page.screenshot({ path: screenshot, fullPage: true });
  });

  assert.deepEqual(failed, []);
} finally {
  await browser.close();
}
console.log('connect-client ui in a browser: ok');
