// Starting and stopping `lingualinked serve` for the tests.
// Environment: LL_CLI (the lingualinked binary), LL_SHARED_DATA (../shared/data).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';

export const cli = process.env.LL_CLI;
export const data = process.env.LL_SHARED_DATA;

// Starts `lingualinked serve` on stories260K with `args`; resolves to the process, its URL and its stderr so far.
export async function startServer(args) {
  assert.ok(cli && data, 'LL_CLI and LL_SHARED_DATA must be set');
  const proc = spawn(cli, ['serve', '-m', `${data}/models/stories260K/stories260K.gguf`, '-t', '1', '--port', '0',
                           ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no 'serving' line within 240 s:\n${log}`)), 240000);
    proc.stderr.on('data', (chunk) => {
      log += chunk;
      const m = log.match(/serving \S+ on (http:\/\/[\d.]+:\d+)/);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
    proc.on('exit', (code) => { clearTimeout(timer); reject(new Error(`serve exited with ${code}:\n${log}`)); });
  });
  return { proc, url, log };
}

export async function stopServer(proc) {
  if (proc.exitCode !== null) return;
  const exited = new Promise((resolve) => proc.on('exit', resolve));
  proc.kill('SIGTERM');
  const timer = setTimeout(() => proc.kill('SIGKILL'), 30000);
  const code = await exited;
  clearTimeout(timer);
  assert.equal(code, 0, 'serve stops cleanly on SIGTERM');
}
