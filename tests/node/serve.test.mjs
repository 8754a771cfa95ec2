// `lingualinked serve` on stories260K across 3 worker processes (--devices 3), and on one process, driven by the
// official `openai` client: greedy text against the reference, streamed and not, chat, and every
// kind of bad request answered with OpenAI's error shape while the server keeps serving.
// Environment: LL_CLI (the lingualinked binary), LL_SHARED_DATA (../shared/data).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cli, data, startServer, stopServer } from './serve_process.mjs';

let OpenAI;
try {
  ({ default: OpenAI } = await import('openai'));
} catch (e) {
  throw new Error(`the openai npm package is missing: run \`npm ci\` in tests/node (${e.message})`);
}

const model = 'stories260K';
const apiKey = 'serve-test-key';
const reference = readFileSync(`${data}/reference/stories260K/greedy_t0_n200.txt`, 'utf8');

let server;
let baseURL;
let client;

before(async () => {
  const started = await startServer(['--devices', '3', '--planner', 'even', '--api-key', apiKey]);
  server = started.proc;
  baseURL = started.url;
  // The model is served from 3 worker processes, not from this one.
  assert.match(started.log, /starting 3 workers on loopback/);
  client = new OpenAI({ apiKey, baseURL: `${baseURL}/v1`, maxRetries: 0, timeout: 120000 });
});

after(async () => {
  if (server) await stopServer(server);
});

// The server still answers a good request.
async function stillServes() {
  const r = await client.completions.create({ model, prompt: 'Once', max_tokens: 4, temperature: 0 });
  assert.equal(r.choices.length, 1);
  assert.equal(r.usage.completion_tokens, 4);
}

async function rawPost(path, body, headers = {}) {
  const res = await fetch(`${baseURL}${path}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${apiKey}`, ...headers },
    body,
  });
  return { status: res.status, json: await res.json() };
}

function assertErrorShape(json, code) {
  assert.equal(typeof json.error, 'object', JSON.stringify(json));
  assert.equal(typeof json.error.message, 'string');
  assert.ok(json.error.message.length > 0);
  assert.equal(typeof json.error.type, 'string');
  assert.ok('param' in json.error && 'code' in json.error, JSON.stringify(json));
  if (code !== undefined) assert.equal(json.error.code, code);
}

test('health and the model list', async () => {
  const health = await fetch(`${baseURL}/health`);
  assert.equal(health.status, 200);
  const models = await client.models.list();
  assert.deepEqual(models.data.map((m) => m.id), [model]);
});

test('a greedy completion is the reference text', async () => {
  const r = await client.completions.create({ model, prompt: '', max_tokens: 200, temperature: 0 });
  assert.equal(r.object, 'text_completion');
  assert.equal(r.choices[0].text, reference);
  assert.equal(r.choices[0].finish_reason, 'length');
  assert.deepEqual(r.usage, { prompt_tokens: 1, completion_tokens: 200, total_tokens: 201 });
});

test('a streamed greedy completion concatenates to the reference text', async () => {
  const stream = await client.completions.create({ model, prompt: '', max_tokens: 200, temperature: 0, stream: true,
                                                    stream_options: { include_usage: true } });
  let text = '';
  const finishes = [];
  let usage;
  let chunks = 0;
  for await (const chunk of stream) {
    if (chunk.usage) usage = chunk.usage;
    for (const c of chunk.choices) {
      text += c.text;
      if (c.finish_reason) finishes.push(c.finish_reason);
    }
    ++chunks;
  }
  assert.equal(text, reference);
  assert.ok(chunks > 10, `${chunks} chunks: the text came in pieces`);
  assert.deepEqual(finishes, ['length']);
  assert.equal(usage.completion_tokens, 200);
});

test('a stop string ends the text before it', async () => {
  const r = await client.completions.create({ model, prompt: '', max_tokens: 200, temperature: 0, stop: ['Lily', 'zzz'] });
  assert.equal(r.choices[0].text, reference.slice(0, reference.indexOf('Lily')));
  assert.equal(r.choices[0].finish_reason, 'stop');
  const stream = await client.completions.create({ model, prompt: '', max_tokens: 200, temperature: 0, stop: 'Lily',
                                                    stream: true });
  let text = '';
  for await (const chunk of stream) for (const c of chunk.choices) text += c.text;
  assert.equal(text, reference.slice(0, reference.indexOf('Lily')));
  await stillServes();
});

// stories260K has no chat template: the messages become plain "role: content" lines and the
// assistant's turn opens with "assistant:".
test('a chat completion is the plain-format prompt completed', async () => {
  const messages = [{ role: 'system', content: 'Tell a story.' }, { role: 'user', content: 'Hello' }];
  const chat = await client.chat.completions.create({ model, messages, max_tokens: 40, temperature: 0 });
  assert.equal(chat.object, 'chat.completion');
  assert.equal(chat.choices[0].message.role, 'assistant');
  const plain = await client.completions.create({ model, prompt: 'system: Tell a story.\nuser: Hello\nassistant:',
                                                  max_tokens: 40, temperature: 0 });
  assert.ok(plain.choices[0].text.length > 0);
  assert.equal(chat.choices[0].message.content, plain.choices[0].text);
  assert.equal(chat.usage.prompt_tokens, plain.usage.prompt_tokens);

  const stream = await client.chat.completions.create({ model, messages, max_tokens: 40, temperature: 0, stream: true });
  let content = '';
  let role;
  const finishes = [];
  for await (const chunk of stream) {
    assert.equal(chunk.object, 'chat.completion.chunk');
    const c = chunk.choices[0];
    if (c.delta.role) role = c.delta.role;
    content += c.delta.content ?? '';
    if (c.finish_reason) finishes.push(c.finish_reason);
  }
  assert.equal(role, 'assistant');
  assert.equal(content, plain.choices[0].text);
  assert.equal(finishes.length, 1);
});

test('malformed JSON is a 400', async () => {
  const r = await rawPost('/v1/completions', '{"model": "stories260K", "prompt": ');
  assert.equal(r.status, 400);
  assertErrorShape(r.json);
  await stillServes();
});

test('a 10 MB body is a 413', async () => {
  const body = JSON.stringify({ model, prompt: 'a'.repeat(10 << 20) });
  const r = await rawPost('/v1/completions', body);
  assert.equal(r.status, 413);
  assertErrorShape(r.json, 'request_too_large');
  await stillServes();
});

test('max_tokens beyond the context is a 400', async () => {
  await assert.rejects(client.completions.create({ model, prompt: 'Once', max_tokens: 1e9 }), (e) => {
    assert.equal(e.status, 400);
    assert.equal(e.code, 'context_length_exceeded');
    assert.equal(e.param, 'max_tokens');
    return true;
  });
  await stillServes();
});

test('a wrong or missing key is a 401', async () => {
  const wrong = new OpenAI({ apiKey: 'not-the-key', baseURL: `${baseURL}/v1`, maxRetries: 0 });
  await assert.rejects(wrong.completions.create({ model, prompt: 'Once', max_tokens: 4 }), (e) => {
    assert.equal(e.status, 401);
    assert.equal(e.code, 'invalid_api_key');
    return true;
  });
  await assert.rejects(wrong.models.list(), (e) => e.status === 401);
  const res = await fetch(`${baseURL}/v1/models`);
  assert.equal(res.status, 401);
  assertErrorShape(await res.json(), 'invalid_api_key');
  await stillServes();
});

test('a wrong model name is a 404', async () => {
  await assert.rejects(client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'Hi' }] }),
                       (e) => {
                         assert.equal(e.status, 404);
                         assert.equal(e.code, 'model_not_found');
                         return true;
                       });
  await stillServes();
});

test('too many messages and a field of the wrong type are 400s', async () => {
  const messages = Array.from({ length: 300 }, () => ({ role: 'user', content: 'Hi' }));
  await assert.rejects(client.chat.completions.create({ model, messages }), (e) => e.status === 400 && e.param === 'messages');
  await assert.rejects(client.completions.create({ model, prompt: 'Once', temperature: 'hot' }),
                       (e) => e.status === 400 && e.param === 'temperature');
  await stillServes();
});

test('an address beyond loopback without --api-key is refused at start', () => {
  const r = spawnSync(cli, ['serve', '-m', `${data}/models/stories260K/stories260K.gguf`, '--host', '0.0.0.0'],
                      { encoding: 'utf8', timeout: 60000 });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /--host 0\.0\.0\.0 is reachable from other machines: give --api-key KEY/);
});

test('on one process (-m alone) the greedy completion is the reference text too', async () => {
  const { proc, url } = await startServer([]);
  try {
    const local = new OpenAI({ apiKey: 'unused', baseURL: `${url}/v1`, maxRetries: 0 });
    const r = await local.completions.create({ model, prompt: '', max_tokens: 200, temperature: 0 });
    assert.equal(r.choices[0].text, reference);
    const stream = await local.chat.completions.create({ model, messages: [{ role: 'user', content: 'Hello' }],
                                                          max_tokens: 20, temperature: 0, stream: true });
    let content = '';
    for await (const chunk of stream) content += chunk.choices[0]?.delta?.content ?? '';
    const plain = await local.completions.create({ model, prompt: 'user: Hello\nassistant:', max_tokens: 20, temperature: 0 });
    assert.equal(content, plain.choices[0].text);
  } finally {
    await stopServer(proc);
  }
});
