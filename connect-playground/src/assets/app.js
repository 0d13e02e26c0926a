// The playground page: plain JavaScript, no framework, no network but this
// server. The WebSocket protocol is described in connect-server/src/playground/mod.rs.
'use strict';

const $ = (selector) => document.querySelector(selector);
const HISTORY_KEY = 'connect-playground.history';
const HISTORY_SIZE = 20;

let schema = null;        // /schema.json
let methods = new Map();  // path -> method
let socket = null;        // the call in flight
let callEnded = true;
let copyKind = 'connect-client';

// ---- start -------------------------------------------------------------

async function init() {
  schema = await (await fetch('schema.json')).json();
  $('#server').textContent = 'gRPC at ' + schema.grpcUrl;
  const select = $('#method');
  for (const service of schema.services) {
    const group = document.createElement('optgroup');
    group.label = service.name;
    for (const method of service.methods) {
      methods.set(method.path, method);
      const option = document.createElement('option');
      option.value = method.path;
      option.textContent = method.name;
      group.append(option);
    }
    select.append(group);
  }
  select.addEventListener('change', () => selectMethod(select.value));
  $('#mode-form').addEventListener('click', () => setMode('form'));
  $('#mode-json').addEventListener('click', () => setMode('json'));
  $('#add-metadata').addEventListener('click', () => addMetadata('', ''));
  $('#send').addEventListener('click', send);
  $('#send-message').addEventListener('click', sendMessage);
  $('#half-close').addEventListener('click', () => command({ type: 'halfClose' }));
  $('#cancel').addEventListener('click', () => command({ type: 'cancel' }));
  $('#copy').addEventListener('click', () => navigator.clipboard && navigator.clipboard.writeText($('#copy-text').textContent));
  $('#clear-history').addEventListener('click', () => { localStorage.removeItem(HISTORY_KEY); showHistory(); });
  for (const tab of document.querySelectorAll('#copy-tabs .tab')) {
    tab.addEventListener('click', () => {
      copyKind = tab.dataset.copy;
      for (const other of document.querySelectorAll('#copy-tabs .tab')) other.classList.toggle('active', other === tab);
      updateCopy();
    });
  }
  $('#form').addEventListener('input', updateCopy);
  $('#json').addEventListener('input', updateCopy);
  $('#timeout').addEventListener('input', updateCopy);
  $('#metadata').addEventListener('input', updateCopy);
  selectMethod(select.value);
  showHistory();
}

function currentMethod() {
  return methods.get($('#method').value);
}

function kindOf(method) {
  if (method.clientStreaming && method.serverStreaming) return 'bidirectional streaming';
  if (method.clientStreaming) return 'client streaming';
  if (method.serverStreaming) return 'server streaming';
  return 'unary';
}

function selectMethod(path) {
  const method = methods.get(path);
  $('#method').value = path;
  $('#kind').textContent = kindOf(method) + ': ' + method.input + ' \u2192 ' + method.output;
  const form = $('#form');
  form.replaceChildren(...buildFields(method.input, '', 0));
  $('#json').value = '{}';
  setButtons();
  updateCopy();
}

// ---- the request as a form or as JSON ------------------------------------

function buildFields(typeName, prefix, depth) {
  const type = schema.messages[typeName];
  const nodes = [];
  if (!type) return nodes;
  for (const field of type.fields) {
    const path = prefix + field.jsonName;
    const note = field.oneof ? ' (oneof ' + field.oneof + ')' : '';
    if (field.repeated || field.map || (field.kind === 'message' && depth >= 3)) {
      nodes.push(labelled(field, note + (field.map ? ' map, as JSON' : field.repeated ? ' list, as JSON' : ' as JSON'),
        input('textarea', path, 'json')));
    } else if (field.kind === 'message') {
      const set = document.createElement('fieldset');
      const legend = document.createElement('legend');
      legend.textContent = field.jsonName + ' (' + field.message + ')' + note;
      set.append(legend, ...buildFields(field.message, path + '.', depth + 1));
      nodes.push(set);
    } else if (field.kind === 'bool') {
      const box = input('input', path, 'bool');
      box.type = 'checkbox';
      const label = document.createElement('label');
      label.className = 'check';
      label.append(box, field.jsonName + note);
      nodes.push(label);
    } else if (field.kind === 'enum') {
      const select = input('select', path, 'enum');
      select.append(new Option('(default)', ''));
      for (const name of field.enum) select.append(new Option(name, name));
      nodes.push(labelled(field, note, select));
    } else {
      const box = input('input', path, field.kind);
      if (field.kind === 'int' || field.kind === 'float') box.type = 'number';
      nodes.push(labelled(field, note, box));
    }
  }
  return nodes;
}

function input(tag, path, kind) {
  const element = document.createElement(tag);
  element.dataset.path = path;
  element.dataset.kind = kind;
  element.name = path;
  return element;
}

function labelled(field, note, control) {
  const label = document.createElement('label');
  const name = document.createElement('span');
  name.append(field.jsonName + ' ');
  const type = document.createElement('span');
  type.className = 'type';
  type.textContent = (field.kind === 'message' ? field.message : field.kind) + note;
  name.append(type);
  label.append(name, control);
  return label;
}

// The form's values as a JSON object; empty fields are left out.
function formJson() {
  const out = {};
  for (const element of $('#form').querySelectorAll('[data-path]')) {
    let value;
    const kind = element.dataset.kind;
    if (kind === 'bool') {
      if (!element.checked) continue;
      value = true;
    } else {
      const text = element.value.trim();
      if (text === '') continue;
      if (kind === 'json') value = JSON.parse(text);
      else if (kind === 'int' || kind === 'float') value = Number(text);
      else value = text;
    }
    const keys = element.dataset.path.split('.');
    let target = out;
    for (const key of keys.slice(0, -1)) target = target[key] = target[key] || {};
    target[keys[keys.length - 1]] = value;
  }
  return out;
}

// Fills the form from a JSON object (what does not fit stays in the JSON tab).
function fillForm(json) {
  for (const element of $('#form').querySelectorAll('[data-path]')) {
    let value = json;
    for (const key of element.dataset.path.split('.')) value = value == null ? undefined : value[key];
    if (element.dataset.kind === 'bool') element.checked = value === true;
    else if (element.dataset.kind === 'json') element.value = value === undefined ? '' : JSON.stringify(value);
    else element.value = value === undefined ? '' : String(value);
  }
}

function mode() {
  return $('#json').hidden ? 'form' : 'json';
}

function setMode(next) {
  if (next === mode()) return;
  if (next === 'json') {
    try { $('#json').value = JSON.stringify(formJson(), null, 2); } catch (e) { /* keep the text */ }
  } else {
    try { fillForm(JSON.parse($('#json').value)); } catch (e) { /* keep the form */ }
  }
  $('#form').hidden = next !== 'form';
  $('#json').hidden = next !== 'json';
  $('#mode-form').classList.toggle('active', next === 'form');
  $('#mode-json').classList.toggle('active', next === 'json');
  updateCopy();
}

// The request message to send, or an exception saying why it is not JSON.
function requestJson() {
  return mode() === 'form' ? formJson() : JSON.parse($('#json').value || '{}');
}

function setRequest(json) {
  $('#json').value = JSON.stringify(json, null, 2);
  fillForm(json);
}

// ---- metadata and deadline -------------------------------------------------

function addMetadata(key, value) {
  const row = document.createElement('div');
  row.className = 'meta';
  const keyBox = document.createElement('input');
  keyBox.placeholder = 'key (authorization)';
  keyBox.value = key;
  keyBox.className = 'meta-key';
  const valueBox = document.createElement('input');
  valueBox.placeholder = 'value (Bearer ...)';
  valueBox.value = value;
  valueBox.className = 'meta-value';
  const remove = document.createElement('button');
  remove.type = 'button';
  remove.className = 'small';
  remove.textContent = '\u00d7';
  remove.addEventListener('click', () => { row.remove(); updateCopy(); });
  row.append(keyBox, valueBox, remove);
  $('#metadata').append(row);
}

function metadata() {
  const out = {};
  for (const row of document.querySelectorAll('#metadata .meta')) {
    const key = row.querySelector('.meta-key').value.trim().toLowerCase();
    if (key) out[key] = row.querySelector('.meta-value').value;
  }
  return out;
}

function timeoutMs() {
  const text = $('#timeout').value.trim();
  return text === '' ? null : Number(text);
}

// ---- the call ---------------------------------------------------------------

function setButtons() {
  const method = currentMethod();
  const running = socket !== null && !callEnded;
  $('#send').textContent = method.clientStreaming ? 'Start call' : 'Send';
  $('#send').disabled = running;
  $('#send-message').hidden = !method.clientStreaming;
  $('#half-close').hidden = !method.clientStreaming;
  $('#send-message').disabled = !running;
  $('#half-close').disabled = !running;
  $('#cancel').disabled = !running;
  $('#method').disabled = running;
}

function send() {
  const method = currentMethod();
  let first = null;
  if (!method.clientStreaming) {
    try { first = requestJson(); } catch (e) { return setStatus('The request is not JSON: ' + e.message, 'bad'); }
  }
  $('#timeline tbody').replaceChildren();
  setStatus('Calling ' + method.path + ' \u2026', '');
  const url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws';
  const ws = new WebSocket(url);
  socket = ws;
  callEnded = false;
  const record = { method: method.path, metadata: metadata(), timeoutMs: timeoutMs(), request: first, messages: [], code: null, at: Date.now() };
  ws.onopen = () => {
    ws.send(JSON.stringify({ type: 'start', method: method.path, metadata: record.metadata, timeoutMs: record.timeoutMs }));
    if (first !== null) ws.send(JSON.stringify({ type: 'message', json: first }));
  };
  ws.onmessage = (message) => {
    const event = JSON.parse(message.data);
    if (event.type === 'sent') record.messages.push(event.json);
    show(event);
    if (event.type === 'trailers' || event.type === 'cancelled' || (event.type === 'error' && event.fatal)) {
      callEnded = true;
      record.code = event.code || 'ERROR';
      if (record.request === null && record.messages.length) record.request = record.messages[record.messages.length - 1];
      remember(record);
      setButtons();
    }
  };
  ws.onclose = () => {
    if (!callEnded) {
      callEnded = true;
      show({ type: 'error', t: null, message: 'the socket closed before the call ended', fatal: true });
    }
    if (socket === ws) socket = null;
    setButtons();
  };
  setButtons();
}

function sendMessage() {
  let json;
  try { json = requestJson(); } catch (e) { return setStatus('The request is not JSON: ' + e.message, 'bad'); }
  command({ type: 'message', json });
}

function command(message) {
  if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message));
}

// ---- the timeline -------------------------------------------------------------

const CLIENT_EVENTS = new Set(['request', 'sent', 'halfClosed', 'cancelled']);

function show(event) {
  const row = document.createElement('tr');
  row.className = 'ev-' + event.type;
  const t = document.createElement('td');
  t.className = 't';
  t.textContent = event.t == null ? '' : Number(event.t).toFixed(1);
  const client = document.createElement('td');
  client.className = 'client';
  const server = document.createElement('td');
  server.className = 'server';
  const cell = CLIENT_EVENTS.has(event.type) ? client : server;
  const [label, body] = describe(event);
  const title = document.createElement('span');
  title.className = 'label';
  title.textContent = label;
  cell.append(title);
  if (body) {
    const pre = document.createElement('pre');
    pre.textContent = body;
    cell.append(pre);
  }
  if (event.type === 'trailers' && event.status !== 0) row.classList.add('bad');
  row.append(t, client, server);
  $('#timeline tbody').append(row);
  if (event.type === 'trailers') {
    setStatus(event.code + (event.message ? ': ' + event.message : ''), event.status === 0 ? 'ok' : 'bad');
  } else if (event.type === 'cancelled') {
    setStatus('CANCELLED (by you)', 'bad');
  } else if (event.type === 'error' && event.fatal) {
    setStatus('Error: ' + event.message, 'bad');
  }
}

function headerLines(headers) {
  return Object.entries(headers || {}).map(([key, value]) => key + ': ' + value).join('\n');
}

function describe(event) {
  switch (event.type) {
    case 'request': return ['request headers ' + event.method, headerLines(event.headers)];
    case 'sent': return ['request message', JSON.stringify(event.json)];
    case 'halfClosed': return ['half-close', ''];
    case 'cancelled': return ['CANCELLED', 'the call was cancelled (RST_STREAM)'];
    case 'headers': {
      // With tracing on, the server names the call's span in `traceresponse` (00-TRACE-SPAN-FLAGS).
      const trace = ((event.headers || {}).traceresponse || '').split('-')[1];
      return [trace ? 'response headers (trace ' + trace + ')' : 'response headers', headerLines(event.headers)];
    }
    case 'message': return ['response message', JSON.stringify(event.json)];
    case 'error': return [event.fatal ? 'error (no call)' : 'error', event.message];
    case 'trailers': {
      const lines = ['grpc-status: ' + event.status + ' ' + event.code];
      if (event.message) lines.push('message: ' + event.message);
      for (const detail of event.details || []) {
        for (const violation of detail.fieldViolations || []) {
          lines.push('  field ' + violation.field + ': ' + violation.description);
        }
        if (!detail.fieldViolations) lines.push('  detail ' + JSON.stringify(detail));
      }
      // The status is shown decoded above; the other trailers as they came.
      const shown = new Set(['grpc-status', 'grpc-message', 'grpc-status-details-bin']);
      const others = headerLines(Object.fromEntries(Object.entries(event.trailers || {}).filter(([key]) => !shown.has(key))));
      if (others) lines.push(others);
      return [event.trailersOnly ? 'trailers (trailers-only response)' : 'trailers', lines.join('\n')];
    }
    default: return [event.type, JSON.stringify(event)];
  }
}

function setStatus(text, kind) {
  const status = $('#status');
  status.textContent = text;
  status.className = 'status ' + kind;
}

// ---- copy as ---------------------------------------------------------------------

function shellQuote(text) {
  return "'" + String(text).replace(/'/g, "'\\''") + "'";
}

function updateCopy() {
  let text;
  try { text = copyAs(copyKind, currentMethod(), requestJson()); } catch (e) { text = '# the request is not JSON yet'; }
  $('#copy-text').textContent = text;
}

function copyAs(kind, method, json) {
  const url = new URL(schema.grpcUrl);
  const tls = url.protocol === 'https:';
  const hostPort = url.host;
  const headers = Object.entries(metadata());
  const timeout = timeoutMs();
  const body = JSON.stringify(json);
  const service = method.path.split('/')[1];
  if (kind === 'connect-client') {
    const parts = ['connect-client'];
    if (url.origin !== 'http://localhost:50051') parts.push('--addr', url.origin);
    for (const [key, value] of headers) parts.push('-H', shellQuote(key + ': ' + value));
    if (timeout) parts.push('--timeout', timeout + 'ms');
    const data = json.requestData !== undefined ? json.requestData : json.request_data;
    switch (method.path) {
      case '/ConnectService/UnaryRPC': return [...parts, 'unary', shellQuote(data || '')].join(' ');
      case '/ConnectService/ServerStreamRPC':
        parts.push('server-stream', shellQuote(data || ''));
        if (json.count) parts.push('--count', json.count);
        if (json.intervalMs || json.interval_ms) parts.push('--interval-ms', json.intervalMs || json.interval_ms);
        return parts.join(' ');
      case '/ConnectService/ClientStreamRPC': return [...parts, 'client-stream', shellQuote(data || '')].join(' ');
      case '/ConnectService/BidiStreamRPC': return 'printf ' + shellQuote((data || '') + '\\n') + ' | ' + [...parts, 'bidi'].join(' ');
      case '/grpc.health.v1.Health/Check': return [...parts, 'health', shellQuote(json.service || '')].join(' ');
      default: return '# connect-client has no command for ' + method.path + '; try grpcurl';
    }
  }
  if (kind === 'grpcurl') {
    const parts = ['grpcurl'];
    if (!tls) parts.push('-plaintext');
    for (const [key, value] of headers) parts.push('-H', shellQuote(key + ': ' + value));
    if (timeout) parts.push('-max-time', String(timeout / 1000));
    parts.push('-d', shellQuote(body), hostPort, service + '/' + method.name);
    return parts.join(' ');
  }
  if (kind === 'buf') {
    const parts = ['buf', 'curl', '--protocol', 'grpc'];
    if (!tls) parts.push('--http2-prior-knowledge');
    for (const [key, value] of headers) parts.push('-H', shellQuote(key + ': ' + value));
    if (timeout) parts.push('--timeout', (timeout / 1000) + 's');
    parts.push('-d', shellQuote(body), url.origin + method.path);
    return parts.join(' ');
  }
  if (method.clientStreaming || method.serverStreaming) {
    return '# curl speaks Connect unary calls only (JSON in, JSON out); use buf curl for streams';
  }
  const parts = ['curl', '-H', shellQuote('content-type: application/json')];
  for (const [key, value] of headers) parts.push('-H', shellQuote(key + ': ' + value));
  if (timeout) parts.push('-H', shellQuote('connect-timeout-ms: ' + timeout));
  parts.push('-d', shellQuote(body), url.origin + method.path);
  return parts.join(' ');
}

// ---- history ----------------------------------------------------------------------

function loadHistory() {
  try { return JSON.parse(localStorage.getItem(HISTORY_KEY)) || []; } catch (e) { return []; }
}

function remember(record) {
  const history = loadHistory();
  history.unshift(record);
  localStorage.setItem(HISTORY_KEY, JSON.stringify(history.slice(0, HISTORY_SIZE)));
  showHistory();
}

function showHistory() {
  const list = $('#history');
  list.replaceChildren();
  for (const record of loadHistory()) {
    const item = document.createElement('li');
    const when = new Date(record.at).toLocaleTimeString();
    item.textContent = when + ' ' + record.method + ' \u2192 ' + record.code;
    item.addEventListener('click', () => restore(record));
    list.append(item);
  }
}

function restore(record) {
  if (!methods.has(record.method) || (socket && !callEnded)) return;
  selectMethod(record.method);
  $('#metadata').replaceChildren();
  for (const [key, value] of Object.entries(record.metadata || {})) addMetadata(key, value);
  $('#timeout').value = record.timeoutMs || '';
  if (record.request) setRequest(record.request);
  updateCopy();
}

init().catch((error) => setStatus('Cannot load the schema: ' + error.message, 'bad'));
