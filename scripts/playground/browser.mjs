// Drives the playground page in headless Chromium: a unary call, a server
// stream with rising timestamps, bidi ping-pong, a cancel, a health check, and raw JSON with
// metadata and a deadline ending in a field violation, asserting the exact
// text the page shows; saves a screenshot of the finished server stream.
//
// Usage: node browser.mjs http://127.0.0.1:PORT/ SCREENSHOT.png
import assert from 'node:assert/strict';
import { openPage, step } from './page.mjs';

const [url, screenshot] = process.argv.slice(2);
if (!url || !screenshot) {
  console.error('usage: node browser.mjs URL SCREENSHOT.png');
  process.exit(2);
}

const { browser, page, failed, rows, texts, times, choose } = await openPage();

try {
  await page.goto(url);
  await page.waitForSelector('#method option[value="/ConnectService/UnaryRPC"]', { state: 'attached' });

  await step('unary', async () => {
    await choose('/ConnectService/UnaryRPC');
    await page.fill('[data-path="requestData"]', 'People');
    await page.click('#send');
    await rows('trailers').waitFor();
    assert.deepEqual(await texts('message'), ['{"responseData":"Hello, People"}']);
    assert.equal(await page.textContent('#status'), 'OK');
    const headers = await rows('headers').locator('pre').textContent();
    assert.match(headers, /^x-request-id: [0-9a-f-]{36}$/m);
    assert.match(headers, /^x-served-by: /m);
    assert.match(await page.textContent('#copy-text'), /^connect-client --addr http:\/\/127\.0\.0\.1:\d+ unary 'People'$/);
  });

  await step('server stream, 10 messages 200 ms apart', async () => {
    await choose('/ConnectService/ServerStreamRPC');
    await page.fill('[data-path="requestData"]', 'Playground');
    await page.fill('[data-path="count"]', '10');
    await page.fill('[data-path="intervalMs"]', '200');
    await page.click('#send');
    await rows('trailers').waitFor();
    const expected = Array.from({ length: 10 }, (_, i) => `{"responseData":"Hello, Playground: server(${i + 1}) "}`);
    assert.deepEqual(await texts('message'), expected);
    const t = await times('message');
    for (let i = 1; i < t.length; i++) assert.ok(t[i] > t[i - 1], 'rising: ' + t);
    assert.ok(t[9] - t[0] >= 1790, 'spread over 1.8 s: ' + t);
    assert.equal(await page.textContent('#status'), 'OK');
    assert.match(await rows('trailers').locator('pre').textContent(), /^x-message-count: 10$/m);
    await page.screenshot({ path: screenshot, fullPage: true });
  });

  await step('bidi ping-pong', async () => {
    await choose('/ConnectService/BidiStreamRPC');
    await page.click('#send');
    await rows('request').waitFor();
    await page.fill('[data-path="requestData"]', 'ping');
    await page.click('#send-message');
    await rows('message').first().waitFor();
    assert.deepEqual(await texts('message'), ['{"responseData":"Hello, ping"}']);
    await page.fill('[data-path="requestData"]', 'pong');
    await page.click('#send-message');
    await rows('message').nth(1).waitFor();
    assert.deepEqual(await texts('message'), ['{"responseData":"Hello, ping"}', '{"responseData":"Hello, pong"}']);
    await page.click('#half-close');
    await rows('trailers').waitFor();
    assert.equal(await page.textContent('#status'), 'OK');
    assert.equal(await rows('halfClosed').count(), 1);
  });

  await step('cancel mid-stream', async () => {
    await choose('/ConnectService/ServerStreamRPC');
    await page.fill('[data-path="count"]', '100');
    await page.fill('[data-path="intervalMs"]', '100');
    await page.click('#send');
    await rows('message').first().waitFor();
    await page.click('#cancel');
    await rows('cancelled').waitFor();
    assert.equal(await page.textContent('#status'), 'CANCELLED (by you)');
    assert.equal(await rows('trailers').count(), 0);
  });

  await step('health check, no code per method', async () => {
    await choose('/grpc.health.v1.Health/Check');
    await page.click('#send');
    await rows('trailers').waitFor();
    assert.deepEqual(await texts('message'), ['{"status":"SERVING"}']);
    assert.equal(await page.textContent('#status'), 'OK');
  });

  await step('history', async () => {
    const history = await page.locator('#history li').allTextContents();
    assert.equal(history.length, 5);
    assert.match(history[0], /\/grpc\.health\.v1\.Health\/Check → OK$/);
    assert.match(history[1], /\/ConnectService\/ServerStreamRPC → CANCELLED$/);
    assert.match(history[4], /\/ConnectService\/UnaryRPC → OK$/);
  });

  await step('raw JSON, metadata, a deadline and a field violation', async () => {
    await choose('/ConnectService/ServerStreamRPC');
    await page.click('#mode-json');
    await page.fill('#json', '{"count": 2000000}');
    await page.click('#add-metadata');
    await page.fill('#metadata .meta-key', 'x-request-id');
    await page.fill('#metadata .meta-value', 'browser-1');
    await page.fill('#timeout', '5000');
    await page.click('#send');
    await rows('trailers').waitFor();
    assert.equal(await page.textContent('#status'), 'INVALID_ARGUMENT: count must be at most 1000000');
    const request = await rows('request').locator('pre').textContent();
    assert.match(request, /^grpc-timeout: 5S$/m);
    assert.match(request, /^x-request-id: browser-1$/m);
    // A trailers-only response: the response headers came with the status.
    assert.equal(await rows('trailers').locator('.label').textContent(), 'trailers (trailers-only response)');
    const trailers = await rows('trailers').locator('pre').textContent();
    assert.match(trailers, /^grpc-status: 3 INVALID_ARGUMENT$/m);
    assert.match(trailers, /^ {2}field count: count must be at most 1000000$/m);
    assert.match(trailers, /^x-request-id: browser-1$/m);
    await page.click('#copy-tabs [data-copy="grpcurl"]');
    assert.match(await page.textContent('#copy-text'),
      /^grpcurl -plaintext -H 'x-request-id: browser-1' -max-time 5 -d '\{"count":2000000\}' 127\.0\.0\.1:\d+ ConnectService\/ServerStreamRPC$/);
    await page.click('#copy-tabs [data-copy="curl"]');
    assert.equal(await page.textContent('#copy-text'),
      '# curl speaks Connect unary calls only (JSON in, JSON out); use buf curl for streams');
    await choose('/ConnectService/UnaryRPC');
    await page.fill('#json', '{"requestData": "curl"}');
    assert.match(await page.textContent('#copy-text'),
      /^curl -H 'content-type: application\/json' -H 'x-request-id: browser-1' -H 'connect-timeout-ms: 5000' -d '\{"requestData":"curl"\}' http:\/\/127\.0\.0\.1:\d+\/ConnectService\/UnaryRPC$/);
  });

  assert.deepEqual(failed, []);
} finally {
  await browser.close();
}
console.log('playground in a browser: ok');
