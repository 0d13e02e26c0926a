// Drives the playground of a user's own service (examples/greeter, served by
// connect-server's builder) in headless Chromium: greeter.v1.Greeter is
// listed beside health and reflection, SayHello greets Ada, SayHelloStream
// streams its greetings and refuses too many, asserting the exact text the
// page shows; saves a screenshot of the finished stream.
//
// Usage: node greeter.mjs http://127.0.0.1:PORT/ SCREENSHOT.png
import assert from 'node:assert/strict';
import { openPage, step } from './page.mjs';

const [url, screenshot] = process.argv.slice(2);
if (!url || !screenshot) {
  console.error('usage: node greeter.mjs URL SCREENSHOT.png');
  process.exit(2);
}

const { browser, page, failed, rows, texts, choose } = await openPage();

try {
  await page.goto(url);
  await page.waitForSelector('#method option[value="/greeter.v1.Greeter/SayHello"]', { state: 'attached' });

  await step('greeter.v1.Greeter listed', async () => {
    const services = await page.locator('#method optgroup').evaluateAll((groups) => groups.map((g) => g.label));
    assert.deepEqual(services, ['greeter.v1.Greeter', 'grpc.health.v1.Health',
      'grpc.reflection.v1.ServerReflection', 'grpc.reflection.v1alpha.ServerReflection']);
    const methods = await page.locator('#method optgroup[label="greeter.v1.Greeter"] option').allTextContents();
    assert.deepEqual(methods, ['SayHello', 'SayHelloStream']);
  });

  await step('SayHello, name Ada', async () => {
    await choose('/greeter.v1.Greeter/SayHello');
    assert.equal(await page.textContent('#kind'), 'unary: greeter.v1.SayHelloRequest → greeter.v1.SayHelloResponse');
    await page.fill('[data-path="name"]', 'Ada');
    await page.click('#send');
    await rows('trailers').waitFor();
    assert.deepEqual(await texts('message'), ['{"message":"Hello, Ada"}']);
    assert.equal(await page.textContent('#status'), 'OK');
    assert.equal(await page.textContent('#copy-text'),
      '# connect-client has no command for /greeter.v1.Greeter/SayHello; try grpcurl');
    await page.click('#copy-tabs [data-copy="curl"]');
    assert.match(await page.textContent('#copy-text'),
      /^curl -H 'content-type: application\/json' -d '\{"name":"Ada"\}' http:\/\/127\.0\.0\.1:\d+\/greeter\.v1\.Greeter\/SayHello$/);
  });

  await step('SayHelloStream, times 2', async () => {
    await choose('/greeter.v1.Greeter/SayHelloStream');
    await page.fill('[data-path="name"]', 'Ada');
    await page.fill('[data-path="times"]', '2');
    await page.click('#send');
    await rows('trailers').waitFor();
    assert.deepEqual(await texts('message'), ['{"message":"Hello, Ada (1/2)"}', '{"message":"Hello, Ada (2/2)"}']);
    assert.equal(await page.textContent('#status'), 'OK');
    await page.screenshot({ path: screenshot, fullPage: true });
  });

  await step('SayHelloStream, times 101 is refused', async () => {
    await page.fill('[data-path="times"]', '101');
    await page.click('#send');
    await rows('trailers').waitFor();
    assert.equal(await rows('message').count(), 0);
    assert.equal(await page.textContent('#status'), 'INVALID_ARGUMENT: times must be at most 100');
  });

  await step('history', async () => {
    const history = await page.locator('#history li').allTextContents();
    assert.equal(history.length, 3);
    assert.match(history[0], /\/greeter\.v1\.Greeter\/SayHelloStream → INVALID_ARGUMENT$/);
    assert.match(history[1], /\/greeter\.v1\.Greeter\/SayHelloStream → OK$/);
    assert.match(history[2], /\/greeter\.v1\.Greeter\/SayHello → OK$/);
  });

  assert.deepEqual(failed, []);
} finally {
  await browser.close();
}
console.log('greeter playground in a browser: ok');
