// Many users at once on `lingualinked serve`, stories260K across 3 worker processes (--devices 3,
// -np 8 --queue 1), driven by the official `openai` client: 8 concurrent streams each get the text
// their request gets alone; a request that comes while others stream starts before they end; a
// client that goes away mid-stream has its sequence freed on every worker and the server keeps
// serving; a request past the bound gets a 503 with Retry-After.
// Environment: LL_CLI (the lingualinked binary), LL_SHARED_DATA (../shared/data).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

import { startServer, stopServer } from './serve_process.mjs';

let OpenAI;
try {
  ({ default: OpenAI } = await import('openai'));
} catch (e) {
  throw new Error(`the openai npm package is missing: run \`npm ci\` in tests/node (${e.message})`);
}

const data = process.env.LL_SHARED_DATA;
const model = 'stories260K';
const reference = readFileSync(`${data}/reference/stories260K/greedy_t0_n200.txt`, 'utf8');
const parallel = 8;

let server;
let baseURL;
let workerLog;
let client;

before(async () => {
  // --balance off: the pipeline stays on all 3 workers however the load on this machine varies.
  const started = await startServer(['--devices', '3', '--planner', 'even', '--balance', 'off', '-np', String(parallel),
                                     '--queue', '1']);
  server = started.proc;
  baseURL = started.url;
  const m = started.log.match(/starting 3 workers on loopback \(logs: (\S+)\)/);
  assert.ok(m, started.log);
  workerLog = m[1];
  client = new OpenAI({ apiKey: 'unused', baseURL: `${baseURL}/v1`, maxRetries: 0, timeout: 120000 });
});

after(async () => {
  if (server) await stopServer(server);
});

// Eight different requests: the greedy reference, and prompts and seeds that differ.
const prompts = ['', 'Once upon a time', 'Lily went', 'The dog', 'Tom had a ball', 'Once upon a time', 'Mom said',
                 'The sun'];
function requestOf(i, maxTokens = 300) {
  if (i === 0) return { model, prompt: '', max_tokens: 200, temperature: 0 };
  return { model, prompt: prompts[i], max_tokens: maxTokens, temperature: 0.9, top_p: 0.95, seed: 1000 + i };
}

// Streams `request`; resolves to its text, the times its first and last chunks came, and its finish reason.
async function streamed(request) {
  const stream = await client.completions.create({ ...request, stream: true });
  let text = '';
  let first;
  let finish;
  for await (const chunk of stream) {
    for (const c of chunk.choices) {
      if (c.text && first === undefined) first = performance.now();
      text += c.text;
      if (c.finish_reason) finish = c.finish_reason;
    }
  }
  return { text, first, last: performance.now(), finish };
}

test('8 concurrent streams each get the text their request gets alone', async () => {
  const alone = [];
  for (let i = 0; i < parallel; ++i) {
    const r = await client.completions.create(requestOf(i));
    alone.push(r.choices[0].text);
  }
  assert.equal(alone[0], reference);
  assert.equal(new Set(alone).size, parallel, 'the requests differ');
  const together = await Promise.all(Array.from({ length: parallel }, (_, i) => streamed(requestOf(i))));
  for (let i = 0; i < parallel; ++i) assert.equal(together[i].text, alone[i], `stream ${i}`);
  // They ran at once: every stream had its first text before any stream ended.
  const firstEnd = Math.min(...together.map((s) => s.last));
  for (let i = 0; i < parallel; ++i) assert.ok(together[i].first < firstEnd, `stream ${i} started before the first ended`);
});

test('a request that comes while others stream starts and ends before they do', async () => {
  // Ended at their budget, before the story's end of text (which the head frees on every worker).
  const long = { model, prompt: '', max_tokens: 300, temperature: 0 };
  const running = [];
  const started = [];
  for (let i = 0; i < 3; ++i) {
    const stream = await client.completions.create({ ...long, stream: true });
    const it = stream[Symbol.asyncIterator]();
    await it.next();  // its generation is under way
    started.push(it);
  }
  for (const it of started) {
    running.push((async () => {
      for (let r = await it.next(); !r.done; r = await it.next());
      return performance.now();
    })());
  }
  const short = await client.completions.create({ model, prompt: 'Once', max_tokens: 8, temperature: 0 });
  const shortEnd = performance.now();
  assert.equal(short.usage.completion_tokens, 8);
  const longEnds = await Promise.all(running);
  for (const end of longEnds) assert.ok(shortEnd < end, 'the short request did not wait for the long ones');
});

// The "freed at the head's request" lines of the worker log since `offset`, as [worker, sequence].
function freedSince(offset) {
  const text = readFileSync(workerLog, 'utf8').slice(offset);
  return [...text.matchAll(/ (\S+): session [0-9a-f]+: sequence (\d+) freed at the head's request/g)]
    .map((m) => [m[1], Number(m[2])]);
}

test('a client that goes away mid-stream has its sequence freed on every worker', async () => {
  const offset = readFileSync(workerLog, 'utf8').length;
  // Others stream meanwhile (and slow the pipeline down, so the one that leaves does so mid-stream).
  // They end at their budget, before the story's end of text, so no other sequence is freed by the head.
  const other = { model, prompt: '', max_tokens: 300, temperature: 0 };
  const others = Array.from({ length: 4 }, () => streamed(other));
  const abort = new AbortController();
  const res = await fetch(`${baseURL}/v1/completions`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ model, prompt: '', max_tokens: 400, temperature: 0, stream: true }),
    signal: abort.signal,
  });
  assert.equal(res.status, 200);
  const reader = res.body.getReader();
  await reader.read();
  await reader.read();
  abort.abort();
  await reader.cancel().catch(() => {});
  let freed = [];
  const deadline = performance.now() + 20000;
  while (performance.now() < deadline) {
    freed = freedSince(offset);
    if (new Set(freed.map(([w]) => w)).size >= 3) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  const workers = new Set(freed.map(([w]) => w));
  assert.equal(workers.size, 3, `every worker freed it: ${JSON.stringify(freed)}`);
  assert.equal(new Set(freed.map(([, s]) => s)).size, 1, `one sequence: ${JSON.stringify(freed)}`);
  // The others went on to their own ends, and the server keeps serving.
  const alone = await client.completions.create(other);
  assert.ok(alone.choices[0].text.startsWith(reference));
  assert.equal(alone.choices[0].finish_reason, 'length');
  for (const s of await Promise.all(others)) assert.equal(s.text, alone.choices[0].text);
});

test('a request past --parallel and --queue gets a 503 with Retry-After, the others their text', async () => {
  const long = { model, prompt: '', max_tokens: 400, temperature: 0, stream: true };
  // parallel generate, 1 waits, and the last is refused.
  const n = parallel + 2;
  const results = await Promise.all(Array.from({ length: n }, async () => {
    const res = await fetch(`${baseURL}/v1/completions`, {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(long),
    });
    return { status: res.status, retryAfter: res.headers.get('retry-after'), body: await res.text() };
  }));
  const refused = results.filter((r) => r.status === 503);
  assert.equal(refused.length, 1, results.map((r) => r.status).join(','));
  assert.match(refused[0].retryAfter, /^\d+$/);
  const error = JSON.parse(refused[0].body).error;
  assert.equal(error.code, 'server_busy');
  assert.equal(error.type, 'server_error');
  assert.match(error.message, /busy/);
  const greedy = await client.completions.create({ ...long, stream: false });
  for (const r of results.filter((x) => x.status !== 503)) {
    assert.equal(r.status, 200);
    const text = r.body.split('\n').filter((l) => l.startsWith('data: {'))
      .map((l) => JSON.parse(l.slice(6)).choices.map((c) => c.text).join('')).join('');
    assert.equal(text, greedy.choices[0].text);
  }
});
