// What the node tests share: the running worker (from the Rust e2e trial's environment), a
// counting transport, users, tier upgrades through a signed Stripe webhook, fixtures.
import { createHmac, randomBytes, randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { Session, type SessionOptions, type TokenStore, type Transport } from "../src/index.js";

/** The worker's origin, set by tests/api/client_kit.rs (unset: the end-to-end tests skip). */
export const BASE_URL = process.env.ADIUVA_BASE_URL;
/** Skip reason for end-to-end tests when no worker is given. */
export const e2e = BASE_URL ? {} : { skip: "no worker: set ADIUVA_BASE_URL (tests/api/client_kit.rs does)" };
if (!BASE_URL && process.env.ADIUVA_REQUIRE_E2E) throw new Error("ADIUVA_REQUIRE_E2E is set but ADIUVA_BASE_URL is not");

/** Scripted model answers the Rust trial mounted: name → marker and the text it streams. */
export interface ScriptedStream {
  marker: string;
  text: string;
  tokens: number;
}
export const scripts: Record<string, ScriptedStream> = JSON.parse(process.env.ADIUVA_E2E_SCRIPTS ?? "{}");

export function script(name: string): ScriptedStream {
  const s = scripts[name];
  if (!s) throw new Error(`the trial mounted no script "${name}"`);
  return s;
}

/** One request as the transport saw it. */
export interface Seen {
  method: string;
  path: string;
  status: number | "network-error";
}

/** A transport over global fetch that records every request and can fail chosen ones. */
export class CountingTransport {
  readonly seen: Seen[] = [];
  /** Throw (a network error) instead of answering, for requests this returns true for; `afterServer` = the server got it but the answer is lost. */
  fail: ((request: Request, index: number) => "before-server" | "after-server" | false) | undefined;

  readonly fetch = async (request: Request): Promise<Response> => {
    const url = new URL(request.url);
    const index = this.seen.length;
    const verdict = this.fail?.(request, index) ?? false;
    if (verdict === "before-server") {
      this.seen.push({ method: request.method, path: url.pathname, status: "network-error" });
      throw new TypeError("fetch failed (simulated: network down)");
    }
    const response = await globalThis.fetch(request);
    if (verdict === "after-server") {
      await response.arrayBuffer();
      this.seen.push({ method: request.method, path: url.pathname, status: "network-error" });
      throw new TypeError("fetch failed (simulated: connection reset before the answer)");
    }
    this.seen.push({ method: request.method, path: url.pathname, status: response.status });
    return response;
  };

  count(method: string, path: string | RegExp): number {
    return this.seen.filter((s) => s.method === method && (typeof path === "string" ? s.path === path : path.test(s.path))).length;
  }
}

export function uniqueEmail(tag: string): string {
  return `kit-${tag}-${randomUUID().replaceAll("-", "")}@e2e.example.com`;
}

export const PASSWORD = "kit password 123";

/**
 * A transport that says it comes from an address of its own (`CF-Connecting-IP`, which
 * `wrangler dev` passes through), as the Rust tests do: the worker allows 20 registrations an
 * hour per address, and every test here registers from 127.0.0.1.
 */
function fromOwnAddress(inner: Transport = (r) => fetch(r)): Transport {
  const [x = 0, y = 0, z = 0] = randomBytes(3);
  const address = `10.${x}.${y}.${Math.max(z, 1)}`;
  return (request) => {
    const sent = new Request(request);
    sent.headers.set("cf-connecting-ip", address);
    return inner(sent);
  };
}

/** A session on the worker (not signed in), from an address of its own. */
export function open(options: Partial<SessionOptions> & { store?: TokenStore } = {}): Promise<Session> {
  if (!BASE_URL) throw new Error("no worker");
  return Session.open({ baseUrl: BASE_URL, ...options, transport: fromOwnAddress(options.transport) });
}

/** A freshly registered user's session. */
export async function registered(tag: string, options: Partial<SessionOptions> = {}): Promise<{ session: Session; email: string }> {
  const session = await open(options);
  const email = uniqueEmail(tag);
  await session.register(email, PASSWORD);
  return { session, email };
}

/** Gives the session's user a paid tier as Stripe would (a signed `checkout.session.completed`). */
export async function upgrade(session: Session, tier: "pro" | "power" | "team" = "team", seats = 50): Promise<void> {
  const secret = process.env.ADIUVA_STRIPE_WEBHOOK_SECRET;
  if (!secret) throw new Error("ADIUVA_STRIPE_WEBHOOK_SECRET is not set");
  const me = await session.me();
  const now = Math.floor(Date.now() / 1000);
  const payload = JSON.stringify({
    id: `evt_${randomUUID().replaceAll("-", "")}`,
    object: "event",
    type: "checkout.session.completed",
    created: now,
    data: {
      object: {
        object: "checkout.session",
        mode: "subscription",
        client_reference_id: me.id,
        customer: null,
        subscription: `sub_${randomUUID().replaceAll("-", "")}`,
        metadata: { tier, user_id: me.id, seats: String(seats) },
      },
    },
  });
  const signature = createHmac("sha256", secret).update(`${now}.${payload}`).digest("hex");
  const r = await fetch(`${BASE_URL}/api/v1/billing/webhook`, {
    method: "POST",
    headers: { "content-type": "application/json", "stripe-signature": `t=${now},v1=${signature}` },
    body: payload,
  });
  if (r.status !== 200) throw new Error(`webhook answered ${r.status}: ${await r.text()}`);
}

/** A file of clients/fixtures/. */
export function fixturePath(name: string): URL {
  return new URL(`../../../fixtures/${name}`, import.meta.url);
}

export function readFixture(name: string): Buffer {
  return readFileSync(fixturePath(name));
}

export function hexBytes(hex: string): Uint8Array {
  return Uint8Array.from(Buffer.from(hex, "hex"));
}

export function f32FromHex(hex: string): Float32Array {
  const bytes = Buffer.from(hex, "hex");
  const out = new Float32Array(bytes.length / 4);
  for (let i = 0; i < out.length; i++) out[i] = bytes.readFloatLE(i * 4);
  return out;
}

export function f32ToHex(values: Float32Array): string {
  const bytes = Buffer.alloc(values.length * 4);
  values.forEach((v, i) => bytes.writeFloatLE(v, i * 4));
  return bytes.toString("hex");
}

/** Polls `check` until it returns true or `ms` pass. */
export async function eventually(check: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
