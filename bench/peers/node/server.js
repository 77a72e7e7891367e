// The fan-out subset of rtbus v1 on Node's `ws`, as a benchmark peer: subscribe without auth
// (snapshot or opt-out), publish -> `published` ack and `event` with a per-topic seq, ping/pong.
// Each event is serialized once and the same string is sent to every subscriber.
'use strict';

const http = require('http');
const { WebSocketServer } = require('ws');

const ENDPOINT = '/api/realtime';
const SUBPROTOCOL = 'rtbus.v1';
const TOPIC = /^[a-z0-9_-]+(\.[a-z0-9_-]+)*(:[A-Za-z0-9_.~-]+)?$/;
const MAX_TOPIC_LEN = 200;
const ACTIVITY_LIMIT = 100;

const topics = new Map(); // name -> { seq, subs: Set<ws>, state }

function family(name) {
  if (name.startsWith('custom.')) return 'custom';
  if (name.startsWith('sessions.activity:')) return 'sessions.activity';
  return null;
}

function topicOf(name) {
  let t = topics.get(name);
  if (!t) {
    t = { seq: 0, subs: new Set(), state: family(name) === 'custom' ? null : { entries: [] } };
    topics.set(name, t);
  }
  return t;
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
    case 'subscribe': {
      if (!data || !Array.isArray(data.topics) || data.topics.length === 0) {
        return error(ws, id, 'bad_request', 'invalid "subscribe" message: expected data.topics, a non-empty array');
      }
      for (const req of data.topics) {
        const bad = checkTopic(req && req.topic);
        if (bad) return error(ws, id, bad[0], bad[1], req && typeof req.topic === 'string' ? req.topic : undefined);
      }
      const names = data.topics.map((r) => r.topic);
      send(ws, withId({ type: 'subscribed', data: { topics: names } }, id));
      for (const req of data.topics) {
        const t = topicOf(req.topic);
        t.subs.add(ws);
        ws.rtbusTopics.add(req.topic);
        if (req.snapshot !== false) {
          send(ws, { type: 'snapshot', data: { topic: req.topic, seq: t.seq, emittedAt: new Date().toISOString(), isReplay: false, payload: t.state } });
        }
      }
      return;
    }
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
      if (fam === 'custom') {
        t.state = data.payload;
      } else {
        t.state.entries.push(data.payload);
        if (t.state.entries.length > ACTIVITY_LIMIT) t.state.entries.shift();
      }
      send(ws, withId({ type: 'published', data: { topic: data.topic, seq: t.seq } }, id));
      const frame = JSON.stringify({ type: 'event', data: { topic: data.topic, seq: t.seq, emittedAt: new Date().toISOString(), isReplay: false, payload: data.payload } });
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
  ws.rtbusTopics = new Set();
  ws.on('message', (data, isBinary) => {
    if (isBinary) return ws.close(1003, 'rtbus v1 uses JSON text frames only');
    onMessage(ws, data.toString());
  });
  ws.on('close', () => {
    for (const name of ws.rtbusTopics) {
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
