// The fan-out subset of rtbus v1 on Node's `ws`, as a benchmark peer: subscribe without auth
// (snapshot, opt-out, or resume with the epoch and seq seen), publish -> `published` ack and
// `event` with the topic's epoch and seq, ping/pong. Each event is serialized once and the same
// string is sent to every subscriber; the last HISTORY_LIMIT events of a topic are kept for
// resumes, as the reference server does.
'use strict';

const crypto = require('crypto');
const http = require('http');
const { WebSocketServer } = require('ws');

const ENDPOINT = '/api/realtime';
const SUBPROTOCOL = 'rtbus.v1';
const TOPIC = /^[a-z0-9_-]+(\.[a-z0-9_-]+)*(:[A-Za-z0-9_.~-]+)?$/;
const EPOCH = /^[A-Za-z0-9_-]{1,64}$/;
const MAX_TOPIC_LEN = 200;
const ACTIVITY_LIMIT = 100;
const HISTORY_LIMIT = 1024;
const UNPAIRED_RESUME = 'resumeAfter and epoch go together: send both (the last seq seen and the epoch it came with) to resume, or neither to start afresh';

// Epochs are `<process nonce>-<topic counter>`: a restarted peer never reuses one.
const NONCE = crypto.randomBytes(8).toString('hex');
let cellsCreated = 0;

// name -> { epoch, seq, subs: Set<ws>, state, history: payloads by seq % HISTORY_LIMIT }
const topics = new Map();

function family(name) {
  if (name.startsWith('custom.')) return 'custom';
  if (name.startsWith('sessions.activity:')) return 'sessions.activity';
  return null;
}

function topicOf(name) {
  let t = topics.get(name);
  if (!t) {
    cellsCreated += 1;
    t = {
      epoch: `${NONCE}-${cellsCreated.toString(16)}`,
      seq: 0,
      subs: new Set(),
      state: family(name) === 'custom' ? null : { entries: [] },
      history: new Array(HISTORY_LIMIT),
    };
    topics.set(name, t);
  }
  return t;
}

// Whether the history still holds every event after `n` (none are needed when n == seq).
function historyCovers(t, n) {
  return n <= t.seq && t.seq - n <= Math.min(t.seq, HISTORY_LIMIT);
}

function delivery(kind, name, t, seq, isReplay, payload) {
  return JSON.stringify({ type: kind, data: { topic: name, epoch: t.epoch, seq, emittedAt: new Date().toISOString(), isReplay, payload } });
}

function send(ws, obj) {
  ws.send(JSON.stringify(obj));
}

function error(ws, id, code, message, topic) {
  const data = { code, message };
  if (topic !== undefined) data.topic = topic;
  const frame = { type: 'error', data };
  if (id !== undefined) frame.id = id;
  send(ws, frame);
}

function checkTopic(name) {
  if (typeof name !== 'string') return ['bad_request', 'expected a topic string'];
  if (name.length > MAX_TOPIC_LEN || !TOPIC.test(name)) {
    return ['invalid_topic', `topic ${JSON.stringify(name)} does not follow the topic grammar`];
  }
  if (!family(name)) {
    return ['unknown_topic', `topic ${JSON.stringify(name)} belongs to no family this server serves (custom.*, sessions.activity:<id>)`];
  }
  return null;
}

function validActivity(p) {
  return p && typeof p === 'object' && !Array.isArray(p) &&
    ['message', 'toolCall', 'toolResult', 'status', 'output'].includes(p.kind) &&
    typeof p.text === 'string' && typeof p.at === 'string';
}

function withId(frame, id) {
  if (id !== undefined) frame.id = id;
  return frame;
}

// Reads one entry of `subscribe`: [request, null] or [null, [code, message, topic]].
function subscriptionRequest(req, i) {
  if (!req || typeof req !== 'object' || Array.isArray(req)) {
    return [null, ['bad_request', `invalid "subscribe" message at /data/topics/${i}: expected an object {topic, snapshot?, resumeAfter?, epoch?}`]];
  }
  const bad = checkTopic(req.topic);
  if (bad) return [null, [bad[0], bad[1], typeof req.topic === 'string' ? req.topic : undefined]];
  if (req.snapshot !== undefined && typeof req.snapshot !== 'boolean') {
    return [null, ['bad_request', `invalid "subscribe" message at /data/topics/${i}/snapshot: expected true or false`]];
  }
  if (req.resumeAfter !== undefined && !(Number.isSafeInteger(req.resumeAfter) && req.resumeAfter >= 0)) {
    return [null, ['bad_request', `invalid "subscribe" message at /data/topics/${i}/resumeAfter: expected a seq, a whole number from 0 to 2^53-1`]];
  }
  if (req.epoch !== undefined && !(typeof req.epoch === 'string' && EPOCH.test(req.epoch))) {
    return [null, ['bad_request', `invalid "subscribe" message at /data/topics/${i}/epoch: expected 1 to 64 of A-Z, a-z, 0-9, '_', '-'`]];
  }
  if ((req.resumeAfter === undefined) !== (req.epoch === undefined)) {
    return [null, ['bad_request', `invalid "subscribe" message at /data/topics/${i}: topic ${req.topic}: ${UNPAIRED_RESUME}`]];
  }
  return [req, null];
}

// How one topic starts for this connection, and the frames that follow `subscribed` for it.
function start(ws, req, t) {
  const resume = req.epoch !== undefined;
  const wantsSnapshot = req.snapshot !== false;
  const since = ws.rtbusTopics.get(req.topic);
  const snapshot = () => [delivery('snapshot', req.topic, t, t.seq, false, t.state)];
  if (!resume) return wantsSnapshot ? ['snapshot', snapshot()] : ['live', []];
  const n = req.resumeAfter;
  if (req.epoch === t.epoch && since !== undefined && since <= n && n <= t.seq) {
    // Everything after `since` was already sent on this connection.
    return ['resumed', []];
  }
  if (req.epoch === t.epoch && since === undefined && historyCovers(t, n)) {
    const replay = [];
    for (let seq = n + 1; seq <= t.seq; seq += 1) {
      replay.push(delivery('event', req.topic, t, seq, true, t.history[seq % HISTORY_LIMIT]));
    }
    return ['resumed', replay];
  }
  return ['reset', wantsSnapshot ? snapshot() : []];
}

// All or nothing: every entry is checked before any topic is subscribed. The reply, the
// snapshots and replays are sent before any later event, in one turn of the event loop.
function subscribe(ws, id, data) {
  if (!data || !Array.isArray(data.topics) || data.topics.length === 0) {
    return error(ws, id, 'bad_request', 'invalid "subscribe" message: expected data.topics, a non-empty array');
  }
  const requests = [];
  for (const [i, entry] of data.topics.entries()) {
    const [req, bad] = subscriptionRequest(entry, i);
    if (bad) return error(ws, id, bad[0], bad[1], bad[2]);
    // A topic named twice is subscribed once, with its first entry's options.
    if (!requests.some((r) => r.topic === req.topic)) requests.push(req);
  }
  const entries = [];
  const frames = [];
  for (const req of requests) {
    const t = topicOf(req.topic);
    const [how, follow] = start(ws, req, t);
    entries.push({ topic: req.topic, epoch: t.epoch, seq: t.seq, start: how });
    frames.push(...follow);
    if (!ws.rtbusTopics.has(req.topic)) ws.rtbusTopics.set(req.topic, t.seq);
    t.subs.add(ws);
  }
  send(ws, withId({ type: 'subscribed', data: { topics: entries } }, id));
  for (const frame of frames) ws.send(frame);
}

function onMessage(ws, text) {
  let msg;
  try {
    msg = JSON.parse(text);
  } catch (e) {
    return error(ws, undefined, 'bad_request', `frame is not valid JSON: ${e.message}`);
  }
  if (!msg || typeof msg !== 'object' || Array.isArray(msg)) {
    return error(ws, undefined, 'bad_request', 'expected a JSON object');
  }
  const id = typeof msg.id === 'string' && msg.id.length >= 1 && msg.id.length <= 64 ? msg.id : undefined;
  const data = msg.data;
  switch (msg.type) {
    case 'ping':
      return send(ws, withId(msg.data === undefined ? { type: 'pong' } : { type: 'pong', data: msg.data }, id));
    case 'auth':
      // No authorization in this peer: every token may read and publish.
      return send(ws, withId({ type: 'authenticated', data: { principal: 'peer', roles: ['publisher'] } }, id));
    case 'subscribe':
      return subscribe(ws, id, data);
    case 'unsubscribe': {
      if (!data || !Array.isArray(data.topics) || data.topics.length === 0) {
        return error(ws, id, 'bad_request', 'invalid "unsubscribe" message: expected data.topics, a non-empty array');
      }
      for (const name of data.topics) {
        const t = topics.get(name);
        if (t) t.subs.delete(ws);
        ws.rtbusTopics.delete(name);
      }
      return send(ws, withId({ type: 'unsubscribed', data: { topics: data.topics } }, id));
    }
    case 'publish': {
      if (!data || typeof data !== 'object' || !('payload' in data)) {
        return error(ws, id, 'bad_request', 'invalid "publish" message: expected data.topic and data.payload');
      }
      const bad = checkTopic(data.topic);
      if (bad) return error(ws, id, bad[0], bad[1], typeof data.topic === 'string' ? data.topic : undefined);
      const fam = family(data.topic);
      if (fam === 'sessions.activity' && !validActivity(data.payload)) {
        return error(ws, id, 'invalid_payload', 'payload is not a valid sessions.activity event', data.topic);
      }
      const t = topicOf(data.topic);
      t.seq += 1;
      t.history[t.seq % HISTORY_LIMIT] = data.payload;
      if (fam === 'custom') {
        t.state = data.payload;
      } else {
        t.state.entries.push(data.payload);
        if (t.state.entries.length > ACTIVITY_LIMIT) t.state.entries.shift();
      }
      send(ws, withId({ type: 'published', data: { topic: data.topic, epoch: t.epoch, seq: t.seq } }, id));
      const frame = delivery('event', data.topic, t, t.seq, false, data.payload);
      for (const sub of t.subs) sub.send(frame);
      return;
    }
    default:
      return error(ws, id, 'bad_request', `unknown message type ${JSON.stringify(msg.type)}; expected one of auth, subscribe, unsubscribe, publish, ping`);
  }
}

const wss = new WebSocketServer({
  noServer: true,
  perMessageDeflate: false,
  handleProtocols: (protocols) => (protocols.has(SUBPROTOCOL) ? SUBPROTOCOL : false),
});

wss.on('connection', (ws) => {
  ws.rtbusTopics = new Map(); // topic -> its seq when this connection first subscribed
  ws.on('message', (data, isBinary) => {
    if (isBinary) return ws.close(1003, 'rtbus v1 uses JSON text frames only');
    onMessage(ws, data.toString());
  });
  ws.on('close', () => {
    for (const name of ws.rtbusTopics.keys()) {
      const t = topics.get(name);
      if (t) t.subs.delete(ws);
    }
  });
  ws.on('error', () => {});
});

const server = http.createServer((req, res) => {
  res.writeHead(req.url === '/healthz' ? 200 : 404, { 'content-type': 'text/plain' });
  res.end(req.url === '/healthz' ? 'ok\n' : 'not found\n');
});

server.on('upgrade', (req, socket, head) => {
  const path = req.url.split('?')[0];
  const offered = (req.headers['sec-websocket-protocol'] || '').split(',').map((s) => s.trim());
  const refuse = (status, reason) => {
    socket.end(`HTTP/1.1 ${status}\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n${reason}\n`);
  };
  if (path !== ENDPOINT) return refuse('404 Not Found', `rtbus is served on ${ENDPOINT}`);
  if (!offered.includes(SUBPROTOCOL)) return refuse('400 Bad Request', `offer the WebSocket subprotocol ${SUBPROTOCOL}`);
  wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
});

const listen = process.argv[2] || '127.0.0.1:0';
const colon = listen.lastIndexOf(':');
server.listen(Number(listen.slice(colon + 1)), listen.slice(0, colon), () => {
  const { address, port } = server.address();
  console.log(`listening ws://${address}:${port}${ENDPOINT} pid ${process.pid}`);
});

const stop = () => {
  for (const ws of wss.clients) ws.close(1001, 'server shutting down');
  server.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 1000).unref();
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
