// `lingualinked serve --devices 3` on stories260K shows itself: GET /metrics in Prometheus' text
// format whose counters move with each request, and GET /v1/status streaming the cluster's
// snapshot every second and a recovery as it happens when a worker is killed.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { data, startServer, stopServer, workerPids } from './serve_process.mjs';

const model = 'stories260K';
const apiKey = 'status-test-key';
const auth = { Authorization: `Bearer ${apiKey}` };
const reference = readFileSync(`${data}/reference/stories260K/greedy_t0_n256.txt`, 'utf8');

let server;
let baseURL;

before(async () => {
  const started = await startServer(['--devices', '3', '--planner', 'even', '--api-key', apiKey]);
  server = started.proc;
  baseURL = started.url;
});

after(async () => {
  if (server) await stopServer(server);
});

// Prometheus text -> { 'name{labels}': value }, checking that every sample has HELP and TYPE.
function parseMetrics(text) {
  const samples = {};
  const described = new Set();
  for (const line of text.split('\n')) {
    if (!line) continue;
    const meta = line.match(/^# (HELP|TYPE) (\w+) (.+)$/);
    if (meta) {
      if (meta[1] === 'TYPE') assert.match(meta[3], /^(counter|gauge)$/);
      described.add(`${meta[1]} ${meta[2]}`);
      continue;
    }
    const m = line.match(/^(\w+)(\{[^}]*\})? (\S+)$/);
    assert.ok(m, `a sample line: ${line}`);
    assert.ok(described.has(`HELP ${m[1]}`) && described.has(`TYPE ${m[1]}`), `HELP and TYPE before ${m[1]}`);
    samples[m[1] + (m[2] ?? '')] = Number(m[3]);
  }
  return samples;
}

async function metrics() {
  const res = await fetch(`${baseURL}/metrics`, { headers: auth });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /^text\/plain; version=0\.0\.4/);
  return parseMetrics(await res.text());
}

async function complete(body) {
  const res = await fetch(`${baseURL}/v1/completions`, {
    method: 'POST', headers: { 'Content-Type': 'application/json', ...auth },
    body: JSON.stringify({ model, temperature: 0, ...body }),
  });
  assert.equal(res.status, 200);
  return res.json();
}

// Reads a server-sent event stream; next() resolves to { event, data } (data parsed as JSON).
function eventReader(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  return {
    async next() {
      for (;;) {
        const end = buffer.indexOf('\n\n');
        if (end >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const event = block.match(/^event: (.*)$/m)[1];
          return { event, data: JSON.parse(block.match(/^data: (.*)$/m)[1]) };
        }
        const { value, done } = await reader.read();
        if (done) throw new Error('the status stream ended');
        buffer += decoder.decode(value, { stream: true });
      }
    },
    cancel: () => reader.cancel(),
  };
}

test('/metrics and /v1/status ask for the API key', async () => {
  for (const path of ['/metrics', '/v1/status']) {
    const res = await fetch(`${baseURL}${path}`, { headers: { Authorization: 'Bearer wrong' } });
    assert.equal(res.status, 401, path);
    assert.equal((await res.json()).error.type, 'invalid_request_error');
  }
  // The page itself holds nothing of the server's: it loads, and asks for the key itself.
  const page = await fetch(`${baseURL}/`);
  assert.equal(page.status, 200);
  assert.match(page.headers.get('content-type'), /^text\/html/);
  assert.match(await page.text(), /<script src="\/app.js">/);
  const script = await fetch(`${baseURL}/app.js`);
  assert.match(script.headers.get('content-type'), /^text\/javascript/);
  assert.equal((await fetch(`${baseURL}/nothing.js`)).status, 404);
});

test('/metrics counts requests, tokens and each stage\'s time', async () => {
  const before = await metrics();
  const r = await complete({ prompt: 'Once upon a time', max_tokens: 12 });
  assert.equal(r.usage.completion_tokens, 12);
  const after = await metrics();
  const moved = (name) => (after[name] ?? 0) - (before[name] ?? 0);
  assert.equal(moved('lingualinked_requests_total{route="/v1/completions",status="200"}'), 1);
  assert.equal(moved('lingualinked_prompt_tokens_total'), r.usage.prompt_tokens);
  assert.equal(moved('lingualinked_completion_tokens_total'), 12);
  assert.equal(after.lingualinked_active_sequences, 0);
  assert.ok('lingualinked_tokens_per_second' in after);
  // Every stage of the 3 computed each decode step (all but the first token, which the prompt's
  // pass gives), and took time for it.
  const stages = Object.keys(after).filter((k) => k.startsWith('lingualinked_stage_steps_total{'));
  assert.equal(stages.length, 3, stages.join(' '));
  for (const k of stages) {
    assert.equal(moved(k), 11, k);
    const compute = k.replace('stage_steps_total', 'stage_compute_seconds_total');
    assert.ok(moved(compute) > 0, compute);
    assert.ok(`${k.replace('stage_steps_total', 'stage_queue_seconds_total')}` in after);
    assert.ok(`${k.replace('stage_steps_total', 'stage_send_seconds_total')}` in after);
    assert.ok(after[k.replace('stage_steps_total', 'device_memory_used_bytes')] > 0);
    assert.ok(after[k.replace('stage_steps_total', 'device_memory_limit_bytes')] > 0);
  }
  // A refused request is counted by its status; a made-up path as "other".
  await fetch(`${baseURL}/v1/models`, { headers: { Authorization: 'Bearer wrong' } });
  await fetch(`${baseURL}/made/up/${Date.now()}`);
  const last = await metrics();
  assert.equal(last['lingualinked_requests_total{route="/v1/models",status="401"}'] -
               (after['lingualinked_requests_total{route="/v1/models",status="401"}'] ?? 0), 1);
  assert.ok(last['lingualinked_requests_total{route="other",status="404"}'] >= 1);
});

test('/v1/status streams the cluster every second and a recovery as it happens', { timeout: 120000 }, async () => {
  const res = await fetch(`${baseURL}/v1/status`, { headers: auth });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /^text\/event-stream/);
  const events = eventReader(res);
  const first = await events.next();
  assert.equal(first.event, 'status');
  const s = first.data;
  assert.equal(s.model, model);
  assert.equal(s.devices.length, 3);
  // Together the workers hold every unit of stories260K once (the balancer may have emptied one
  // that the earlier requests found slow).
  const units = s.devices.reduce((n, d) => n + d.unit_count, 0);
  assert.equal(units, 12);
  for (const d of s.devices) {
    assert.match(d.address, /^tcp:\/\/127\.0\.0\.1:\d+$/);
    assert.ok(d.memory_limit_bytes > d.memory_used_bytes, JSON.stringify(d));
    assert.equal(d.memory_used_bytes > 0, d.unit_count > 0, JSON.stringify(d));
    assert.ok(d.threads >= 1);
  }
  assert.equal(s.tokens_per_second_history.length, 60);

  // One worker is killed between requests: the next reply finds it gone, goes on over the
  // survivors and is still the reference text; the status stream says so as it happens.
  const steps = s.devices.map((d) => d.steps);
  const workers = workerPids(server);
  assert.equal(workers.length, 3, `worker processes: ${workers}`);
  const lost = [1, 0, 2].find((i) => s.devices[i].unit_count > 0);  // one that holds units
  process.kill(workers[lost], 'SIGKILL');
  const r = await complete({ prompt: '', max_tokens: 256 });
  assert.equal(r.choices[0].text, reference);

  let recovery;
  let lastStatus;
  let previousAt;
  const gaps = [];
  const served = s.completion_tokens_total + 256;  // once a snapshot counts the reply
  while (!recovery || !lastStatus || lastStatus.completion_tokens_total < served || gaps.length < 2) {
    const e = await events.next();
    if (e.event === 'cluster' && e.data.kind === 'recovery') recovery = e.data;
    if (e.event === 'status') {
      lastStatus = e.data;
      // By the server's clock: the snapshots may wait in the stream while the reply runs.
      const at = e.data.uptime_seconds;
      if (previousAt !== undefined) gaps.push(at - previousAt);
      previousAt = at;
      if (!recovery) recovery = lastStatus.events.find((x) => x.kind === 'recovery');
    }
  }
  events.cancel();
  assert.match(recovery.text, /lost/);
  for (const gap of gaps) assert.ok(gap > 0.5 && gap < 5, `a snapshot every second: ${gaps}`);
  // The tokens were seen per device and per second.
  assert.ok(lastStatus.tokens_per_second_history.reduce((a, b) => a + b, 0) > 0);
  // The survivors computed the reply's decode steps (the re-plan may put every unit on one).
  const sum = (xs) => xs.reduce((a, b) => a + b, 0);
  assert.ok(sum(lastStatus.devices.map((d) => d.steps)) - sum(steps) >= 255, JSON.stringify(lastStatus.devices));
  for (const d of lastStatus.devices.filter((x) => x.unit_count > 0)) assert.ok(d.compute_seconds_per_token > 0);
  // The lost worker now holds nothing; the survivors hold every unit.
  assert.equal(lastStatus.devices[lost].unit_count, 0);
  assert.equal(lastStatus.devices.reduce((n, d) => n + d.unit_count, 0), units);
});
