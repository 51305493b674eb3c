// Session against the real worker: register, refresh storms (one refresh for 20 concurrent
// callers), rotation through a shared store, a lost refresh answer retried inside the grace,
// persistence, logout and logout-all, and rate_limited surfacing Retry-After.
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { ApiError, FileTokenStore, MemoryTokenStore } from "../src/index.js";
import { CountingTransport, e2e, open, PASSWORD, registered, uniqueEmail, upgrade } from "./helpers.js";

const REFRESH = "/api/v1/auth/refresh";
const ME = "/api/v1/auth/me";

test("register, me, login again and the typed errors of a duplicate", e2e, async () => {
  const { session, email } = await registered("journey");
  assert.ok(session.signedIn);
  const me = await session.me();
  assert.equal(me.email, email);
  assert.equal(me.tier, "free");
  const again = await open();
  await again.login(email, PASSWORD);
  assert.equal((await again.me()).id, me.id);
  const dup = await open();
  await assert.rejects(dup.register(email, PASSWORD), (e: unknown) => {
    assert.ok(e instanceof ApiError);
    assert.equal(e.code, "conflict");
    assert.equal(e.status, 409);
    assert.match(e.requestId ?? "", /.{8,}/, "the request id travels with the error");
    return true;
  });
  await assert.rejects(again.login(email, "wrong password!"), (e: unknown) => e instanceof ApiError && e.code === "unauthorized" && e.status === 401);
});

test("20 concurrent calls with an expired access token send exactly one refresh", e2e, async () => {
  const transport = new CountingTransport();
  const { session } = await registered("storm-clock", { transport: transport.fetch });
  await upgrade(session); // a free user's 20 requests a minute would not do
  const store = new MemoryTokenStore({ ...session.tokens!, expires_at: Date.now() - 1 });
  const expired = await open({ store, transport: transport.fetch });
  const before = transport.count("POST", REFRESH);
  const answers = await Promise.all(Array.from({ length: 20 }, () => expired.me()));
  assert.equal(transport.count("POST", REFRESH) - before, 1, "one refresh request for 20 callers");
  assert.equal(expired.refreshes, 1);
  assert.ok(answers.every((a) => a.id === answers[0]!.id));
  assert.ok((await store.load())!.expires_at > Date.now(), "the new pair was persisted");
});

test("20 concurrent 401s trigger one refresh and every call is retried once", e2e, async () => {
  const transport = new CountingTransport();
  const { session } = await registered("storm-401", { transport: transport.fetch });
  await upgrade(session);
  // A token the server refuses though the clock says it is valid (revoked key, skewed clock…).
  const store = new MemoryTokenStore({ ...session.tokens!, access_token: "not.a.token" });
  const refused = await open({ store, transport: transport.fetch });
  const [refreshes, mes] = [transport.count("POST", REFRESH), transport.count("GET", ME)];
  const answers = await Promise.all(Array.from({ length: 20 }, () => refused.me()));
  assert.equal(answers.length, 20);
  assert.equal(transport.count("POST", REFRESH) - refreshes, 1, "exactly one refresh");
  assert.equal(transport.count("GET", ME) - mes, 40, "20 refused, 20 retried");
  assert.equal(transport.seen.filter((s) => s.path === ME && s.status === 401).length, 20);
});

test("a session sharing the store adopts a pair another one rotated instead of presenting the old token", e2e, async () => {
  const transport = new CountingTransport();
  const { session } = await registered("shared-store", { transport: transport.fetch });
  const store = new MemoryTokenStore(session.tokens);
  const windowA = await open({ store, transport: transport.fetch });
  const windowB = await open({ store, transport: transport.fetch });
  const before = transport.count("POST", REFRESH);
  const rotated = await windowA.refresh();
  const adopted = await windowB.refresh();
  assert.equal(transport.count("POST", REFRESH) - before, 1, "B sent no refresh of its own");
  assert.equal(adopted.refresh_token, rotated.refresh_token);
  // The family is intact: the rotated token still refreshes.
  const next = await windowB.refresh();
  assert.notEqual(next.refresh_token, rotated.refresh_token);
  assert.ok((await windowA.me()).id);
});

test("a refresh whose answer was lost is retried with the same token inside the grace and stays signed in", e2e, async () => {
  const transport = new CountingTransport();
  const { session } = await registered("lost-answer", { transport: transport.fetch });
  const first = session.tokens!;
  let dropped = 0;
  transport.fail = (request) => {
    if (new URL(request.url).pathname === REFRESH && dropped === 0) {
      dropped++;
      return "after-server"; // the server rotated the token; the client never heard
    }
    return false;
  };
  const before = transport.count("POST", REFRESH);
  const fresh = await session.refresh();
  assert.equal(transport.count("POST", REFRESH) - before, 2, "the lost one and its retry");
  assert.notEqual(fresh.refresh_token, first.refresh_token);
  assert.ok(session.signedIn);
  assert.ok((await session.me()).id, "the retried pair works");
  assert.ok(await session.refresh(), "and its refresh token is live, not a revoked family");
});

test("tokens persist in a file store across runs", e2e, async () => {
  const path = join(mkdtempSync(join(tmpdir(), "kit-tokens-")), "tokens.json");
  const first = await open({ store: new FileTokenStore(path) });
  await first.register(uniqueEmail("file-store"), PASSWORD);
  const id = (await first.me()).id;
  const later = await open({ store: new FileTokenStore(path) });
  assert.ok(later.signedIn);
  assert.equal((await later.me()).id, id);
  const { statSync } = await import("node:fs");
  assert.equal(statSync(path).mode & 0o777, 0o600, "readable by its owner only");
  await later.logout();
  assert.equal(await new FileTokenStore(path).load(), null);
});

test("logout ends the session; logout-all ends every device's", e2e, async () => {
  const { session, email } = await registered("logout");
  const refresh = session.tokens!.refresh_token;
  let reason: unknown;
  const laptop = await open({ onSignedOut: (r) => (reason = r) });
  await laptop.login(email, PASSWORD);
  await session.logout();
  assert.ok(!session.signedIn);
  const reuse = await open({ store: new MemoryTokenStore({ access_token: "x", refresh_token: refresh, expires_at: 0 }) });
  await assert.rejects(reuse.refresh(), (e: unknown) => e instanceof ApiError && e.code === "unauthorized");
  assert.ok(!reuse.signedIn, "a refused refresh signs out");

  const phone = await open();
  await phone.login(email, PASSWORD);
  assert.equal(await phone.logoutAll(), 2, "the laptop's and the phone's sessions");
  await assert.rejects(laptop.refresh(), (e: unknown) => e instanceof ApiError && e.status === 401);
  assert.ok(reason instanceof ApiError, "the laptop was told it was signed out");
  assert.ok(!laptop.signedIn);
});

test("rate_limited surfaces with its Retry-After", e2e, async () => {
  const { session } = await registered("limited"); // free: 20 requests a minute
  let error: unknown;
  for (let i = 0; i < 30 && !error; i++) {
    try {
      await session.me();
    } catch (e) {
      error = e;
    }
  }
  assert.ok(error instanceof ApiError, `expected a refusal, got ${String(error)}`);
  assert.equal(error.code, "rate_limited");
  assert.equal(error.status, 429);
  assert.ok(error.retryAfter !== undefined && error.retryAfter > 0 && error.retryAfter <= 60, `retryAfter ${error.retryAfter}`);
});
