// Sync between two devices of one user against the real worker (create, pull, a conflict
// merged through If-Match, a deletion seen as a tombstone, cursor paging), the subscription's
// fallback where the server has no live notices (404 today), and the live-notice protocol
// against a tiny local WebSocket server.
import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { test } from "node:test";
import { WebSocketServer } from "ws";
import { BlobCipher, MemorySyncStateStore, MemoryTokenStore, Session, Sync, type Conflict } from "../src/index.js";
import { CountingTransport, e2e, eventually, open, PASSWORD, registered, upgrade } from "./helpers.js";

const text = (s: string) => new TextEncoder().encode(s);
const str = (b: Uint8Array) => new TextDecoder().decode(b);

async function twoDevices(tag: string) {
  const transport = new CountingTransport();
  const { session: laptop, email } = await registered(tag, { transport: transport.fetch });
  await upgrade(laptop); // records need a paid tier
  const phone = await open({ transport: transport.fetch });
  await phone.login(email, PASSWORD);
  // The user's record key, shared between their devices, never with the server.
  const raw = BlobCipher.generateKey();
  return { laptop, phone, email, transport, cipherA: await BlobCipher.fromKey(raw), cipherB: await BlobCipher.fromKey(raw) };
}

test("two devices sync a record, merge a conflict through If-Match, and see its tombstone", e2e, async () => {
  const { laptop, phone, transport, cipherA, cipherB } = await twoDevices("sync-journey");
  const merges: Conflict[] = [];
  const a = await Sync.open({ session: laptop, cipher: cipherA, merge: () => null });
  const b = await Sync.open({
    session: phone,
    cipher: cipherB,
    merge: (c) => {
      merges.push(c);
      // A field-wise merge as the app would do it: keep both edits.
      return text(`${str(c.remote!)} + ${str(c.local!)}`);
    },
  });

  const created = await a.put("tasks", "tasks:1", text("Buy milk"));
  let pulled = await b.pull();
  assert.equal(pulled.changed.length, 1);
  assert.equal(pulled.changed[0]!.key, "tasks:1");
  assert.equal(str(pulled.changed[0]!.data), "Buy milk");
  assert.equal(pulled.changed[0]!.id, created.id);

  // Both edit the version they have; the laptop wins the race, the phone merges.
  await a.put("tasks", "tasks:1", text("Buy oat milk"));
  const preconditionFailures = transport.seen.filter((s) => s.status === 412).length;
  const merged = await b.put("tasks", "tasks:1", text("Buy milk at 5"));
  assert.equal(merges.length, 1, "merge called once");
  assert.equal(str(merges[0]!.remote!), "Buy oat milk");
  assert.equal(str(merges[0]!.local!), "Buy milk at 5");
  assert.equal(transport.seen.filter((s) => s.status === 412).length - preconditionFailures, 1, "one 412");
  assert.equal(b.conflicts, 1);
  assert.equal(str(merged.data), "Buy oat milk + Buy milk at 5");

  pulled = await a.pull();
  assert.equal(pulled.changed.length, 1);
  assert.equal(str(pulled.changed[0]!.data), "Buy oat milk + Buy milk at 5");
  assert.equal((await a.pull()).changed.length, 0, "nothing new twice");

  // A second record, then a deletion: the other device sees the tombstone.
  await b.put("notes", "notes:7", text("Ideas"));
  await b.remove("tasks", "tasks:1");
  pulled = await a.pull();
  assert.deepEqual(pulled.changed.map((r) => r.key), ["notes:7"]);
  assert.deepEqual(pulled.deleted.map((d) => d.key), ["tasks:1"]);
  assert.equal(a.known("tasks", "tasks:1"), undefined);

  // Nothing on the server is readable: the listing has ids, tables and sizes only.
  const listing = await (await fetch(`${laptop.baseUrl}/api/v1/storage/records`, {
    headers: { authorization: `Bearer ${laptop.tokens!.access_token}` },
  })).text();
  assert.ok(!listing.includes("milk") && !listing.includes("Ideas"));
});

test("a first pull pages through the listing by cursor and a new device starts from the saved cursor", e2e, async () => {
  const { laptop, phone, cipherA, cipherB } = await twoDevices("sync-pages");
  const a = await Sync.open({ session: laptop, cipher: cipherA, merge: () => null });
  for (let i = 0; i < 5; i++) await a.put("tasks", `tasks:${i}`, text(`task ${i}`));
  const store = new MemorySyncStateStore();
  const b = await Sync.open({ session: phone, cipher: cipherB, merge: () => null, store, pageSize: 2 });
  const first = await b.pull();
  assert.equal(first.pages, 3, "2 + 2 + 1");
  assert.deepEqual(first.changed.map((r) => r.key).sort(), ["tasks:0", "tasks:1", "tasks:2", "tasks:3", "tasks:4"]);
  await a.put("tasks", "tasks:5", text("task 5"));
  const resumed = await Sync.open({ session: phone, cipher: cipherB, merge: () => null, store, pageSize: 2 });
  const second = await resumed.pull();
  assert.deepEqual(second.changed.map((r) => r.key), ["tasks:5"], "only what changed since the saved cursor");
});

test("X-Sync-Reset makes a pull start over and report what the full listing lacks as deleted", e2e, async () => {
  const { laptop, phone, email, cipherA, cipherB } = await twoDevices("sync-reset");
  const a = await Sync.open({ session: laptop, cipher: cipherA, merge: () => null });
  for (let i = 0; i < 3; i++) await a.put("tasks", `tasks:${i}`, text(`task ${i}`));
  const store = new MemorySyncStateStore();
  const b = await Sync.open({ session: phone, cipher: cipherB, merge: () => null, store, pageSize: 2 });
  assert.equal((await b.pull()).reset, false);
  // A record this device knew was deleted and its tombstone purged (past 30 days): the
  // listing no longer shows it, and the server says so on a listing from the old cursor.
  const state = (await store.load())!;
  const ghost = "00000000-0000-4000-8000-000000000000";
  state.records[ghost] = { table: "tasks", key: "tasks:ghost", etag: '"1.abc"' };
  await store.save(state);
  const cursors: (string | null)[] = [];
  const resetting = async (request: Request): Promise<Response> => {
    const response = await fetch(request);
    const url = new URL(request.url);
    if (request.method !== "GET" || !url.pathname.endsWith("/storage/records")) return response;
    cursors.push(url.searchParams.get("cursor"));
    if (!url.searchParams.has("cursor")) return response;
    const headers = new Headers(response.headers);
    headers.set("X-Sync-Reset", "true");
    return new Response(response.body, { status: response.status, headers });
  };
  const phone2 = await open({ transport: resetting });
  await phone2.login(email, PASSWORD);
  await a.put("tasks", "tasks:3", text("task 3"));
  const back = await Sync.open({ session: phone2, cipher: cipherB, merge: () => null, store, pageSize: 2 });
  const pulled = await back.pull();
  assert.equal(pulled.reset, true);
  assert.equal(cursors[0] !== null, true, "the pull began from the saved cursor");
  assert.equal(cursors[1], null, "then started over from the start");
  assert.deepEqual(pulled.deleted, [{ id: ghost, table: "tasks", key: "tasks:ghost" }]);
  assert.deepEqual(pulled.changed.map((r) => r.key), ["tasks:3"], "known records are not fetched again");
  assert.equal(back.known("tasks", "tasks:ghost"), undefined);
  assert.notEqual(back.known("tasks", "tasks:0"), undefined);
});

test("a record moved between keys by the server is refused", e2e, async () => {
  const { laptop, cipherA } = await twoDevices("sync-swap");
  const a = await Sync.open({ session: laptop, cipher: cipherA, merge: () => null });
  const one = await a.put("tasks", "tasks:1", text("one"));
  // Write tasks:2's sealed bytes under tasks:1's id (as a malicious server could).
  const forged = await cipherA.seal(text("two"), "record/tasks", "tasks:2");
  const { checksum, toBase64 } = await import("../src/index.js");
  const r = await laptop.api.PUT("/api/v1/storage/records/{id}", {
    params: { path: { id: one.id } },
    body: { blob: toBase64(forged), checksum: await checksum(forged) },
  });
  assert.equal(r.response.status, 200);
  const fresh = await Sync.open({ session: laptop, cipher: cipherA, merge: () => null, store: new MemorySyncStateStore() });
  await fresh.pull(); // a new device learns tasks:2 under that id
  await assert.rejects(a.pull(), /changed its key from tasks:1 to tasks:2/);
});

test("without live notices on the server (404), the subscription falls back to polling and still sees changes", e2e, async (t) => {
  const { laptop, phone, cipherA, cipherB } = await twoDevices("sync-poll");
  const a = await Sync.open({ session: laptop, cipher: cipherA, merge: () => null });
  const b = await Sync.open({ session: phone, cipher: cipherB, merge: () => null });
  const seen: string[] = [];
  const sub = b.subscribe({ pollIntervalMs: 200, onPull: (r) => seen.push(...r.changed.map((c) => c.key)) });
  t.after(() => sub.close());
  try {
    const mode = await sub.ready;
    // The worker of this branch has no /sync/stream: polling. Once it has, notices drive pulls.
    assert.ok(mode === "polling" || mode === "live", mode);
    await a.put("tasks", "tasks:9", text("from the laptop"));
    await eventually(() => seen.includes("tasks:9"), 5_000, "the phone to see the laptop's write");
  } finally {
    sub.close();
  }
  const off = b.subscribe({});
  t.after(() => off.close());
  assert.ok(["off", "live"].includes(await off.ready), "no polling interval: off");
  off.close();
});

/** A local stand-in for the worker: `/api/v1/sync/stream` sends notices; the listing answers `[]`. */
async function noticeServer(options: { offer: boolean }) {
  const listings: string[] = [];
  const server = createServer((req, res) => {
    if (req.url?.startsWith("/api/v1/storage/records")) {
      listings.push(req.headers.authorization ?? "");
      res.writeHead(200, { "content-type": "application/json" }).end("[]");
    } else {
      res.writeHead(404, { "content-type": "application/json" }).end('{"error":{"code":"not_found","message":"no route"}}');
    }
  });
  const wss = new WebSocketServer({ noServer: true });
  let auth: string | undefined;
  server.on("upgrade", (req, socket, head) => {
    if (!options.offer || req.url !== "/api/v1/sync/stream") {
      socket.end("HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}");
      return;
    }
    auth = req.headers.authorization;
    wss.handleUpgrade(req, socket, head, (ws) => {
      ws.send(JSON.stringify({ type: "changed", kind: "record", cursor: "1733000000000.0b6e" }));
      ws.send(JSON.stringify({ type: "changed", kind: "vector", cursor: null }));
      ws.send("not json");
      ws.send(JSON.stringify({ type: "something-new" }));
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as AddressInfo).port;
  const session = await Session.open({
    baseUrl: `http://127.0.0.1:${port}`,
    store: new MemoryTokenStore({ access_token: "local-token", refresh_token: "r", expires_at: Date.now() + 3_600_000 }),
  });
  const sync = await Sync.open({ session, cipher: await BlobCipher.fromKey(BlobCipher.generateKey()), merge: () => null });
  return {
    sync,
    listings,
    auth: () => auth,
    wss,
    close: async () => {
      for (const c of wss.clients) c.terminate();
      await new Promise((r) => server.close(r));
    },
  };
}

test("live notices: each record notice pulls, other kinds are reported, junk is ignored", async (t) => {
  const local = await noticeServer({ offer: true });
  try {
    const notices: string[] = [];
    const sub = local.sync.subscribe({ onNotice: (n) => notices.push(n.kind) });
    t.after(() => sub.close());
    assert.equal(await sub.ready, "live");
    await eventually(() => notices.length === 2 && local.listings.length === 1, 2_000, "two notices and one pull");
    assert.deepEqual(notices, ["record", "vector"]);
    assert.equal(sub.notices, 2);
    assert.equal(local.auth(), "Bearer local-token");
    assert.deepEqual(local.listings, ["Bearer local-token"], "the record notice pulled once, with the session's token");
    sub.close();
    assert.equal(sub.mode, "closed");
  } finally {
    await local.close();
  }
});

test("live notices: a server answering 404 gets polling or nothing, never an error", async (t) => {
  const local = await noticeServer({ offer: false });
  try {
    const errors: Error[] = [];
    const polling = local.sync.subscribe({ pollIntervalMs: 50, onError: (e) => errors.push(e) });
    t.after(() => polling.close());
    assert.equal(await polling.ready, "polling");
    await eventually(() => local.listings.length >= 2, 2_000, "two polls");
    polling.close();
    const off = local.sync.subscribe({ onError: (e) => errors.push(e) });
    t.after(() => off.close());
    assert.equal(await off.ready, "off");
    off.close();
    assert.deepEqual(errors, []);
  } finally {
    await local.close();
  }
});
