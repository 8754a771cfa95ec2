// The page of `lingualinked serve`: a chat streamed from /v1/chat/completions and a live view of
// the cluster from /v1/status (both server-sent events, read with fetch so that the API key can
// travel in the Authorization header).
'use strict';

const $ = (id) => document.getElementById(id);
const state = { model: null, history: [], events: new Map(), busy: false };

// --- the API key: asked for when the server answers 401 -----------------------------------

let apiKey = localStorage.getItem('lingualinked-key') || '';
let keyWanted = null;  // resolves once a key was given

function authHeaders() {
  return apiKey ? { Authorization: `Bearer ${apiKey}` } : {};
}

function askForKey() {
  $('key-form').hidden = false;
  $('key').focus();
  keyWanted ??= new Promise((resolve) => {
    $('key-form').onsubmit = (e) => {
      e.preventDefault();
      apiKey = $('key').value.trim();
      localStorage.setItem('lingualinked-key', apiKey);
      $('key-form').hidden = true;
      keyWanted = null;
      resolve();
    };
  });
  return keyWanted;
}

// --- server-sent events over fetch ----------------------------------------------------------

// Calls onEvent(name, data) for each event of the response's body until it ends.
async function readEvents(response, onEvent) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let name = 'message';
      const data = [];
      for (const line of block.split('\n')) {
        if (line.startsWith('event:')) name = line.slice(6).trim();
        else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
      }
      if (data.length) onEvent(name, data.join('\n'));
    }
  }
}

async function errorText(response) {
  try {
    return (await response.json()).error.message;
  } catch {
    return `HTTP ${response.status}`;
  }
}

// --- the chat -------------------------------------------------------------------------------

function addMessage(role, text) {
  const li = document.createElement('li');
  li.className = role;
  li.textContent = text;
  $('messages').append(li);
  li.scrollIntoView({ block: 'end' });
  return li;
}

async function send(text) {
  state.history.push({ role: 'user', content: text });
  addMessage('user', text);
  const reply = addMessage('assistant', '');
  reply.classList.add('streaming');
  let content = '';
  try {
    for (;;) {
      const response = await fetch('/v1/chat/completions', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', ...authHeaders() },
        body: JSON.stringify({
          model: state.model,
          messages: state.history,
          stream: true,
          max_tokens: Number($('max-tokens').value),
          temperature: Number($('temperature').value),
        }),
      });
      if (response.status === 401) {
        await askForKey();
        continue;
      }
      if (!response.ok) throw new Error(await errorText(response));
      await readEvents(response, (_, data) => {
        if (data === '[DONE]') return;
        const chunk = JSON.parse(data);
        if (chunk.error) throw new Error(chunk.error.message);
        const piece = chunk.choices?.[0]?.delta?.content;
        if (piece) {
          content += piece;
          reply.textContent = content;
          reply.scrollIntoView({ block: 'end' });
        }
      });
      break;
    }
    state.history.push({ role: 'assistant', content });
  } catch (e) {
    reply.className = 'error';
    reply.textContent = `${content}\n[${e.message}]`;
    state.history.pop();  // the question goes unanswered: asked again with the next message
  } finally {
    reply.classList.remove('streaming');
    reply.dataset.done = 'true';
  }
}

$('compose').addEventListener('submit', async (e) => {
  e.preventDefault();
  const text = $('prompt').value.trim();
  if (!text || state.busy || !state.model) return;
  $('prompt').value = '';
  state.busy = true;
  $('send').disabled = true;
  await send(text);
  state.busy = false;
  $('send').disabled = false;
});

$('prompt').addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && !e.shiftKey) {
    e.preventDefault();
    $('compose').requestSubmit();
  }
});

$('clear').addEventListener('click', () => {
  state.history = [];
  $('messages').replaceChildren();
});

// --- the cluster view -----------------------------------------------------------------------

const ms = (seconds) => (seconds * 1000).toFixed(2);

function bytes(n) {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  for (; n >= 1024 && i < units.length - 1; i++) n /= 1024;
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

function renderDevices(devices) {
  const list = $('devices');
  while (list.children.length > devices.length) list.lastElementChild.remove();
  while (list.children.length < devices.length) list.append($('device-template').content.firstElementChild.cloneNode(true));
  devices.forEach((d, i) => {
    const field = (name) => list.children[i].querySelector(`[data-field="${name}"]`);
    field('name').textContent = d.name;
    field('address').textContent = d.address;
    field('units').textContent = d.units;
    field('threads').textContent = d.threads;
    field('compute').textContent = ms(d.compute_seconds_per_token);
    field('queue').textContent = ms(d.queue_seconds_per_token);
    field('send').textContent = ms(d.send_seconds_per_token);
    const limit = d.memory_limit_bytes;
    field('memory').textContent = `${bytes(d.memory_used_bytes)} of ${limit ? bytes(limit) : 'unknown'}`;
    field('memory-bar').style.width = limit ? `${Math.min(100, (100 * d.memory_used_bytes) / limit)}%` : '0';
  });
}

function drawChart(history) {
  const canvas = $('chart');
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth * ratio;
  const height = canvas.clientHeight * ratio;
  canvas.width = width;
  canvas.height = height;
  const g = canvas.getContext('2d');
  const top = Math.max(1, ...history);
  const x = (i) => (i / Math.max(1, history.length - 1)) * width;
  const y = (v) => height - 4 * ratio - (v / top) * (height - 20 * ratio);
  g.fillStyle = 'rgba(47, 111, 223, 0.15)';
  g.strokeStyle = '#2f6fdf';
  g.lineWidth = 2 * ratio;
  g.beginPath();
  history.forEach((v, i) => (i ? g.lineTo(x(i), y(v)) : g.moveTo(x(i), y(v))));
  g.stroke();
  g.lineTo(width, height);
  g.lineTo(0, height);
  g.fill();
  g.fillStyle = '#6b7385';
  g.font = `${11 * ratio}px system-ui`;
  g.fillText(`${top} tokens/s`, 4 * ratio, 12 * ratio);
  g.textAlign = 'right';
  g.fillText('last 60 s', width - 4 * ratio, 12 * ratio);
}

function addEvent(e) {
  if (state.events.has(e.id)) return;
  state.events.set(e.id, e);
  const list = $('events');
  if (state.events.size === 1) list.replaceChildren();
  const li = document.createElement('li');
  const kind = document.createElement('span');
  kind.className = 'kind';
  kind.textContent = `${new Date(e.unix_seconds * 1000).toLocaleTimeString()} ${e.kind}`;
  li.append(kind, e.text);
  list.prepend(li);
}

function renderStatus(s) {
  if (!state.model) {
    state.model = s.model;
    $('model').textContent = s.model;
  }
  $('tps').textContent = s.tokens_per_second.toFixed(1);
  $('speed').textContent = s.generating_tokens_per_second.toFixed(0);
  $('active').textContent = s.active_sequences;
  $('queued').textContent = s.queued_requests;
  $('served').textContent = s.completion_tokens_total;
  $('memory-note').textContent = s.memory_note;
  renderDevices(s.devices);
  drawChart(s.tokens_per_second_history);
  s.events.forEach(addEvent);
}

// Follows /v1/status for as long as the page is open, connecting again when it ends.
async function followStatus() {
  for (;;) {
    try {
      const response = await fetch('/v1/status', { headers: authHeaders() });
      if (response.status === 401) {
        $('connection').textContent = 'the server needs its API key';
        await askForKey();
        continue;
      }
      if (!response.ok) throw new Error(await errorText(response));
      $('connection').textContent = 'live';
      await readEvents(response, (name, data) => {
        if (name === 'status') renderStatus(JSON.parse(data));
        else if (name === 'cluster') addEvent(JSON.parse(data));
      });
      $('connection').textContent = 'disconnected';
    } catch (e) {
      $('connection').textContent = `disconnected: ${e.message}`;
    }
    await new Promise((resolve) => setTimeout(resolve, 2000));
  }
}

followStatus();
