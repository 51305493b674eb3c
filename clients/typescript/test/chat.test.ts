// ChatStream against the real worker and the scripted streaming model (tests/api/stream_model.rs,
// mounted by the Rust trial): a whole answer, a socket dropped mid-answer and resumed without
// losing or repeating a token, cancel, browser-style ticket auth; and the heartbeat against a
// tiny local server that goes silent.
import assert from "node:assert/strict";
import type { AddressInfo } from "node:net";
import { test } from "node:test";
import { WebSocket, WebSocketServer } from "ws";
import { ApiError, ChatStream, MemoryTokenStore, Session, type WebSocketConstructor } from "../src/index.js";
import { e2e, registered, script, upgrade } from "./helpers.js";

function request(marker: string, text: string) {
  return { message: `${text} ${marker}`, execution_mode: "direct" as const, context: { recent_tasks: [{ id: 1, title: "Write report", status: "todo" }] } };
}

/** `ws` as the kit would use it, remembering every socket it opened. */
function trackingWs(): { ctor: WebSocketConstructor; sockets: WebSocket[] } {
  const sockets: WebSocket[] = [];
  class Tracked extends WebSocket {
    constructor(url: string, protocols?: string | string[], options?: object) {
      super(url, protocols, options);
      sockets.push(this);
    }
  }
  return { ctor: Tracked as unknown as WebSocketConstructor, sockets };
}

test("a streamed answer arrives token by token, then done with the whole text", e2e, async (t) => {
  const s = script("plain");
  const { session } = await registered("chat-plain");
  await upgrade(session);
  const stream = await ChatStream.connect({ session });
  t.after(() => stream.close()); // also when an assertion fails: an open socket would keep node alive
  const seqs: number[] = [];
  const run = stream.send(request(s.marker, "How does my week look?"), { onToken: (_t, seq) => seqs.push(seq) });
  const done = await run.done;
  assert.equal(done.response, s.text);
  assert.equal(run.text, s.text);
  assert.deepEqual(seqs, Array.from({ length: s.tokens }, (_, i) => i));
  assert.ok(run.requestId && done.request_id === run.requestId);
  assert.deepEqual(done.actions, []);
  stream.close();
});

test("a stream dropped mid-answer reconnects and resumes from the last seq, losing and repeating nothing", e2e, async (t) => {
  const s = script("resume");
  const { session } = await registered("chat-resume");
  await upgrade(session);
  const { ctor, sockets } = trackingWs();
  const stream = await ChatStream.connect({ session, webSocket: ctor, reconnect: { baseDelayMs: 100 } });
  t.after(() => stream.close());
  const seqs: number[] = [];
  let reconnected = 0;
  const run = stream.send(request(s.marker, "Explain it slowly"), {
    onToken: (_t, seq) => {
      seqs.push(seq);
      if (seq === 4) sockets[0]!.terminate(); // the connection just goes away (no close frame)
    },
    onReconnect: () => reconnected++,
  });
  const done = await run.done;
  assert.equal(reconnected, 1);
  assert.equal(run.reconnects, 1);
  assert.equal(sockets.length, 2, "one new socket");
  assert.deepEqual(seqs, Array.from({ length: s.tokens }, (_, i) => i), "every token once, in order");
  assert.equal(run.text, s.text);
  assert.equal(done.response, s.text);
  assert.ok(!done.cancelled);
  stream.close();
});

test("cancel ends a running request with done.cancelled", e2e, async (t) => {
  const s = script("cancel");
  const { session } = await registered("chat-cancel");
  await upgrade(session);
  const stream = await ChatStream.connect({ session });
  t.after(() => stream.close());
  let tokens = 0;
  const run = stream.send(request(s.marker, "Tell me everything"), {
    onToken: () => {
      if (++tokens === 2) run.cancel();
    },
  });
  const started = Date.now();
  const done = await run.done;
  assert.equal(done.cancelled, true);
  assert.ok(tokens < s.tokens, `${tokens} of ${s.tokens} tokens before the end`);
  assert.ok(Date.now() - started < 5_000);
  // The stream is free for the next request.
  assert.ok(!stream.busy);
  stream.close();
});

test("browser-style ticket auth opens the socket (a ticket is single use)", e2e, async (t) => {
  const s = script("plain");
  const { session } = await registered("chat-ticket");
  await upgrade(session);
  // The browser constructor takes a URL only; `ws` called that way sends no header either.
  const Browserish = class extends WebSocket {
    constructor(url: string) {
      super(url);
    }
  } as unknown as WebSocketConstructor;
  const stream = await ChatStream.connect({ session, auth: "ticket", webSocket: Browserish });
  t.after(() => stream.close());
  const done = await stream.send(request(s.marker, "Ticket please")).done;
  assert.equal(done.response, s.text);
  stream.close();
  const headerless = new WebSocket(`${session.baseUrl.replace("http", "ws")}/api/v1/chat/stream`);
  const status = await new Promise<number>((resolve) => {
    headerless.on("unexpected-response", (_req, res) => resolve(res.statusCode ?? 0));
    headerless.on("open", () => resolve(101));
  });
  headerless.on("error", () => undefined); // terminating a refused handshake reports one
  headerless.terminate();
  assert.equal(status, 401, "no ticket, no header: refused before the upgrade");
});

test("a second request while one runs is refused locally with conflict, and a cancel sent before the start still cancels", e2e, async (t) => {
  const s = script("cancel");
  const { session } = await registered("chat-busy");
  await upgrade(session);
  const stream = await ChatStream.connect({ session });
  t.after(() => stream.close());
  const first = stream.send(request(s.marker, "Long one"));
  const second = stream.send(request(s.marker, "Another"));
  await assert.rejects(second.done, (e: unknown) => e instanceof ApiError && e.code === "conflict");
  first.cancel(); // before the server has even named the request
  const done = await first.done;
  assert.equal(done.cancelled, true);
  assert.ok(first.text.split(" ").length < s.tokens, "cancelled early, not run to the end");
  stream.close();
});

test("a silent connection is detected by the heartbeat, dropped, and the request resumed", async () => {
  // A local stand-in for the chat endpoint: the first socket streams two tokens then goes silent
  // (no frames, no close); the second expects a resume after seq 1 and finishes.
  const wss = new WebSocketServer({ port: 0, host: "127.0.0.1" });
  const frames: unknown[] = [];
  let connections = 0;
  let auth: string | undefined;
  wss.on("connection", (socket, req) => {
    connections++;
    auth = req.headers.authorization;
    const mine = connections;
    socket.on("message", (data) => {
      const frame = JSON.parse(String(data)) as { type?: string; after?: number; request_id?: string };
      frames.push(frame);
      if (frame.type === "ping") return; // silent: no pong either
      if (mine === 1 && frame.type === undefined) {
        socket.send(JSON.stringify({ type: "started", request_id: "r1" }));
        socket.send(JSON.stringify({ type: "token", request_id: "r1", seq: 0, text: "a" }));
        socket.send(JSON.stringify({ type: "token", request_id: "r1", seq: 1, text: "b" }));
      }
      if (mine === 2 && frame.type === "resume") {
        socket.send(JSON.stringify({ type: "token", request_id: "r1", seq: 1, text: "b" })); // a replay the client already has
        socket.send(JSON.stringify({ type: "token", request_id: "r1", seq: 2, text: "c" }));
        socket.send(JSON.stringify({ type: "done", done: true, request_id: "r1", response: "abc", actions: [] }));
      }
    });
  });
  await new Promise((r) => wss.once("listening", r));
  const port = (wss.address() as AddressInfo).port;
  try {
    const session = await Session.open({
      baseUrl: `http://127.0.0.1:${port}`,
      store: new MemoryTokenStore({ access_token: "local-token", refresh_token: "r", expires_at: Date.now() + 3_600_000 }),
    });
    const stream = await ChatStream.connect({ session, heartbeatTimeoutMs: 300, pingIntervalMs: 100, reconnect: { baseDelayMs: 50 } });
    const tokens: string[] = [];
    const started = Date.now();
    const run = stream.send({ message: "hi" }, { onToken: (t) => tokens.push(t) });
    const done = await run.done;
    assert.equal(done.response, "abc");
    assert.deepEqual(tokens, ["a", "b", "c"], "the replayed seq 1 is not delivered twice");
    assert.equal(run.reconnects, 1);
    assert.equal(connections, 2);
    assert.equal(auth, "Bearer local-token", "header auth in Node");
    assert.ok(frames.some((f) => (f as { type?: string }).type === "ping"), "the client pings");
    assert.deepEqual(
      frames.find((f) => (f as { type?: string }).type === "resume"),
      { type: "resume", request_id: "r1", after: 1 },
    );
    assert.ok(Date.now() - started < 3_000, "detected within the heartbeat timeout, not a TCP timeout");
    stream.close();
  } finally {
    for (const c of wss.clients) c.terminate();
    await new Promise((r) => wss.close(r));
  }
});
