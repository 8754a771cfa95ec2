#!/usr/bin/env node
// What the server costs: tokens/s of K concurrent streaming clients of `lingualinked serve`
// against `lingualinked run --parallel K`, both on the same 3 worker processes started here,
// the same model, prompt and greedy settings (so both generate the same tokens). Both figures
// are end to end: generated tokens over the time from the first prompt sent to the last token
// received (run: at the head; serve: at the clients, HTTP and SSE included). Prints each pair
// and their ratio, measured in the same run, alternating run and serve `--reps` times.
//
// Usage: node tools/serve_bench.mjs --cli build/lingualinked --model MODEL.gguf
//          [--clients 1,4,8] [--tokens 200] [--reps 3] [--prompt TEXT] [--threads 1]
import { spawn, spawnSync } from 'node:child_process';
import http from 'node:http';
import { dirname, resolve } from 'node:path';

function parseArgs(argv) {
  const o = { clients: [1, 4, 8], tokens: 200, reps: 3, prompt: 'Once upon a time', threads: 1 };
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, value] = [argv[i], argv[i + 1]];
    if (value === undefined) throw new Error(`${flag} needs a value`);
    if (flag === '--cli') o.cli = resolve(value);
    else if (flag === '--model') o.model = resolve(value);
    else if (flag === '--clients') o.clients = value.split(',').map(Number);
    else if (flag === '--tokens') o.tokens = Number(value);
    else if (flag === '--reps') o.reps = Number(value);
    else if (flag === '--prompt') o.prompt = value;
    else if (flag === '--threads') o.threads = Number(value);
    else throw new Error(`unknown flag ${flag}`);
  }
  if (!o.cli || !o.model) throw new Error('give --cli BINARY and --model FILE');
  if (o.clients.some((k) => !(k >= 1 && k <= 256)) || !(o.tokens >= 2) || !(o.reps >= 1)) {
    throw new Error('--clients 1..256 each, --tokens >= 2, --reps >= 1');
  }
  return o;
}

// Resolves once `proc`'s stream `from` has printed a line matching `re`, to the match.
function waitForLine(proc, from, re, what) {
  return new Promise((resolveLine, reject) => {
    let text = '';
    const timer = setTimeout(() => reject(new Error(`${what}: no line matching ${re} within 240 s:\n${text}`)), 240000);
    proc[from].on('data', (chunk) => {
      text += chunk;
      const m = text.match(re);
      if (m) { clearTimeout(timer); resolveLine(m); }
    });
    proc.on('exit', (code) => { clearTimeout(timer); reject(new Error(`${what} exited with ${code}:\n${text}`)); });
  });
}

async function startWorkers(o) {
  const workers = [];
  for (let i = 0; i < 3; ++i) {
    const proc = spawn(o.cli, ['worker', '--listen', 'tcp://127.0.0.1:0', '--insecure', '-t', String(o.threads),
                               '--name', `bench${i + 1}`, '--models', dirname(o.model)],
                       { stdio: ['ignore', 'pipe', 'ignore'] });
    const m = await waitForLine(proc, 'stdout', /listening tcp:\/\/(\S+) key/, `worker ${i + 1}`);
    workers.push({ proc, endpoint: m[1] });
  }
  return workers;
}

function clusterFlags(o, workers) {
  return ['-m', o.model, '-t', String(o.threads), '--workers', workers.map((w) => w.endpoint).join(','), '--insecure',
          '--planner', 'even'];
}

// `run --parallel k`: its end-to-end tokens/s and tokens.
function runBaseline(o, workers, k) {
  const r = spawnSync(o.cli, ['run', ...clusterFlags(o, workers), '-p', o.prompt, '-n', String(o.tokens), '--temp', '0',
                              '--parallel', String(k)], { encoding: 'utf8', timeout: 600000 });
  const m = r.stderr.match(/all sequences: (\d+) tokens in ([\d.]+) s from the first prompt sent/);
  if (r.status !== 0 || !m) throw new Error(`run --parallel ${k} failed (${r.status}):\n${r.stderr}`);
  return { tokens: Number(m[1]), tps: Number(m[1]) / Number(m[2]) };
}

// One streaming completion on a connection of its own (a pooled one may have been closed by the
// server while `run` was measured); resolves to the tokens it generated.
function streamOne(url, o) {
  const body = JSON.stringify({ model: 'bench', prompt: o.prompt, max_tokens: o.tokens, temperature: 0, stream: true,
                                stream_options: { include_usage: true } });
  return new Promise((resolveTokens, reject) => {
    const req = http.request(`${url}/v1/completions`, {
      method: 'POST', agent: false, headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) },
    }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => { text += chunk; });
      res.on('end', () => {
        if (res.statusCode !== 200) return reject(new Error(`HTTP ${res.statusCode}: ${text}`));
        const usage = text.split('\n').filter((l) => l.startsWith('data: {')).map((l) => JSON.parse(l.slice(6)))
          .find((e) => e.usage)?.usage;
        if (!usage) return reject(new Error(`no usage in the stream:\n${text.slice(-500)}`));
        resolveTokens(usage.completion_tokens);
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

// k concurrent streaming clients: their end-to-end tokens/s and tokens.
async function serveClients(url, o, k) {
  const t0 = performance.now();
  const counts = await Promise.all(Array.from({ length: k }, () => streamOne(url, o)));
  const seconds = (performance.now() - t0) / 1000;
  const tokens = counts.reduce((a, b) => a + b, 0);
  return { tokens, tps: tokens / seconds };
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const workers = await startWorkers(o);
  const np = Math.max(...o.clients);
  const server = spawn(o.cli, ['serve', ...clusterFlags(o, workers), '--port', '0', '-a', 'bench', '-np', String(np)],
                       { stdio: ['ignore', 'ignore', 'pipe'] });
  try {
    const url = (await waitForLine(server, 'stderr', /serving \S+ on (http:\/\/[\d.]+:\d+)/, 'serve'))[1];
    await serveClients(url, o, 1);  // warm-up
    console.log(`${o.tokens} tokens per sequence, greedy, prompt "${o.prompt}", 3 workers with ${o.threads} thread(s) each, ` +
                `best of ${o.reps}`);
    console.log('clients  run --parallel K (tok/s)  serve, K streams (tok/s)  serve / run');
    for (const k of o.clients) {
      let bestRun = { tps: 0 };
      let bestServe = { tps: 0 };
      for (let rep = 0; rep < o.reps; ++rep) {
        const r = runBaseline(o, workers, k);
        if (r.tps > bestRun.tps) bestRun = r;
        const s = await serveClients(url, o, k);
        if (s.tps > bestServe.tps) bestServe = s;
      }
      if (bestRun.tokens !== bestServe.tokens) {
        throw new Error(`run generated ${bestRun.tokens} tokens but the clients got ${bestServe.tokens}`);
      }
      console.log(`${String(k).padStart(7)}  ${bestRun.tps.toFixed(1).padStart(24)}  ${bestServe.tps.toFixed(1).padStart(24)}` +
                  `  ${(bestServe.tps / bestRun.tps).toFixed(3).padStart(11)}`);
    }
  } finally {
    server.kill('SIGTERM');
    await new Promise((r) => server.on('exit', r));
    for (const w of workers) w.proc.kill('SIGTERM');
  }
}

main().catch((e) => {
  console.error(`error: ${e.message}${e.cause ? ` (${e.cause.message ?? e.cause})` : ''}`);
  process.exit(1);
});
