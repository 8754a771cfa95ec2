// The web page of `lingualinked serve --devices 3` (stories260K) in headless chromium, driven by
// puppeteer-core: it asks for the API key, streams a chat reply that grows over time and equals
// what the API answers, its cluster view's numbers change with the reply, and it lists the
// recovery when a device is lost.
// Environment: LL_CLI, LL_SHARED_DATA, LL_CHROMIUM (the browser; default /usr/bin/chromium),
// LL_SCREENSHOT (optional: where to save a picture of the page after the reply).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, stopServer, workerPids } from './serve_process.mjs';

let puppeteer;
try {
  ({ default: puppeteer } = await import('puppeteer-core'));
} catch (e) {
  throw new Error(`the puppeteer-core npm package is missing: run \`npm ci\` in tests/node (${e.message})`);
}

const model = 'stories260K';
const apiKey = 'web-test-key';

let server;
let baseURL;
let browser;

// As root the devices get a tenth of a core each (cgroups), so that a reply takes a few seconds
// and its growth is plain to see; otherwise the reply may come in a few pieces only.
const throttled = process.getuid() === 0;
const devices = throttled ? 'a:cpu=0.1;b:cpu=0.1;c:cpu=0.1' : '3';

before(async () => {
  const started = await startServer(['--devices', devices, '--planner', 'even', '--api-key', apiKey]);
  server = started.proc;
  baseURL = started.url;
  browser = await puppeteer.launch({
    executablePath: process.env.LL_CHROMIUM || '/usr/bin/chromium',
    headless: true,
    // --no-sandbox: chromium's sandbox needs user namespaces a container (or root) may not offer.
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
});

after(async () => {
  if (browser) await browser.close();
  if (server) await stopServer(server);
});

const text = (page, selector) => page.$eval(selector, (e) => e.textContent);
const numbers = (page, field) =>
  page.$$eval(`#devices [data-field="${field}"]`, (cells) => cells.map((c) => Number(c.textContent)));

test('the page streams a chat reply and shows the cluster working on it', { timeout: 180000 }, async () => {
  const page = await browser.newPage();
  await page.setViewport({ width: 1280, height: 1000 });
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  await page.goto(baseURL, { waitUntil: 'load' });

  // The server wants its key: the page asks for it, then follows the status stream.
  await page.waitForSelector('#key-form:not([hidden])');
  await page.type('#key', apiKey);
  await page.click('#key-form button');
  await page.waitForFunction(() => document.getElementById('connection').textContent === 'live');
  await page.waitForFunction(() => document.querySelectorAll('#devices .device').length === 3);
  assert.equal(await text(page, '#model'), model);
  const units = await page.$$eval('#devices [data-field="units"]', (cells) => cells.map((c) => c.textContent));
  for (const u of units) assert.match(u, /^units \d+\.\.\d+ \(.+\) of 12$/);
  const memory = await page.$$eval('#devices [data-field="memory"]', (cells) => cells.map((c) => c.textContent));
  for (const m of memory) assert.match(m, /^[\d.]+ (KiB|MiB) of [\d.]+ (MiB|GiB|TiB)$/);
  const computeBefore = await numbers(page, 'compute');
  assert.deepEqual(computeBefore, [0, 0, 0], 'no token computed yet');
  assert.equal(await text(page, '#served'), '0');

  // Every change of the reply's text, as the page makes it.
  await page.evaluate(() => {
    window.replyLengths = [];
    new MutationObserver(() => {
      const reply = document.querySelector('#messages li.assistant:last-child');
      if (reply) window.replyLengths.push(reply.textContent.length);
    }).observe(document.getElementById('messages'), { childList: true, subtree: true, characterData: true });
  });
  const question = 'Tell me a story about a dog.';
  await page.$eval('#max-tokens', (e) => { e.value = '200'; });
  await page.$eval('#temperature', (e) => { e.value = '0'; });
  await page.type('#prompt', question);
  await page.keyboard.press('Enter');
  await page.waitForSelector('#messages li[data-done="true"]', { timeout: 120000 });
  const reply = await text(page, '#messages li:last-child');
  const lengths = await page.evaluate(() => window.replyLengths);
  assert.ok(new Set(lengths).size > (throttled ? 20 : 2), `the reply grew in steps: ${lengths.join(' ')}`);
  assert.ok(lengths.every((n, i) => i === 0 || n >= lengths[i - 1]), 'it only grew');
  assert.equal(await page.$eval('#messages li:last-child', (e) => e.className), 'assistant');

  // The same question to the API, not streamed: the same greedy reply.
  const res = await fetch(`${baseURL}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${apiKey}` },
    body: JSON.stringify({ model, messages: [{ role: 'user', content: question }], max_tokens: 200, temperature: 0 }),
  });
  assert.equal(res.status, 200);
  const api = await res.json();
  assert.ok(api.choices[0].message.content.length > 20);
  assert.equal(reply, api.choices[0].message.content);

  // The cluster view saw the tokens: per device compute time, tokens/s, tokens served.
  await page.waitForFunction(() => Number(document.getElementById('tps').textContent) > 0, { timeout: 10000 });
  await page.waitForFunction(
    (n) => Number(document.getElementById('served').textContent) >= n, { timeout: 10000 },
    api.usage.completion_tokens);
  const computeAfter = await numbers(page, 'compute');
  for (const ms of computeAfter) assert.ok(ms > 0, `compute per token: ${computeAfter}`);

  // A device lost: the next reply goes on over the survivors, and the page lists the recovery.
  // The one lost holds units: the balancer may have emptied a device that the throttling slowed.
  const names = await page.$$eval('#devices [data-field="name"]', (cells) => cells.map((c) => c.textContent));
  const placed = (await page.$$eval('#devices [data-field="units"]', (cells) => cells.map((c) => c.textContent)))
    .map((u) => u !== 'nothing');
  const lost = [1, 0, 2].find((i) => placed[i]);
  process.kill(workerPids(server)[lost], 'SIGKILL');
  await page.type('#prompt', 'And then?');
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => document.querySelectorAll('#messages li[data-done="true"]').length === 2,
                             { timeout: 120000 });
  assert.equal(await page.$eval('#messages li:last-child', (e) => e.className), 'assistant');
  await page.waitForFunction(() => /recovery/.test(document.getElementById('events').textContent), { timeout: 10000 });
  assert.match(await text(page, '#events'), new RegExp(`${names[lost]} lost`));
  if (process.env.LL_SCREENSHOT) await page.screenshot({ path: process.env.LL_SCREENSHOT });
  assert.deepEqual(pageErrors, []);
});
