// The load benchmark's floor: the API's hop budget and nothing else (see wrangler.toml).
// Routes, as the load benchmark drives them:
//   GET  /api/v1/health                 -> {"status":"ok"}
//   GET  /api/v1/auth/me                -> JWT check, one home call (admit)
//   POST /api/v1/storage/records        -> JWT, checksum, home (admit + reserve), R2 put, home (commit)
//   GET  /api/v1/storage/records/{id}   -> JWT, home (admit + metadata), R2 get
//   PUT  /api/v1/storage/records/{id}   -> as POST, with If-Match checked by the home

const LIMIT_PER_MINUTE = 200; // a team member's, as the load benchmark's users are
const QUOTA_BYTES = 1 << 30;
const PREFIX = "/api/v1";

let key; // the HMAC key, imported once per isolate

function b64urlDecode(s) {
  const b = atob(s.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((s.length + 3) % 4));
  return Uint8Array.from(b, (c) => c.charCodeAt(0));
}

function hex(buf) {
  return [...new Uint8Array(buf)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

function error(status, code) {
  return Response.json({ error: { code, message: code } }, { status });
}

// HS256 access token -> its subject, or null.
async function userOf(request, env) {
  const auth = request.headers.get("Authorization") || "";
  if (!auth.startsWith("Bearer ")) return null;
  const parts = auth.slice(7).split(".");
  if (parts.length !== 3) return null;
  key ??= await crypto.subtle.importKey(
    "raw", new TextEncoder().encode(env.JWT_SECRET), { name: "HMAC", hash: "SHA-256" }, false, ["verify"]);
  const ok = await crypto.subtle.verify(
    "HMAC", key, b64urlDecode(parts[2]), new TextEncoder().encode(`${parts[0]}.${parts[1]}`));
  if (!ok) return null;
  const claims = JSON.parse(new TextDecoder().decode(b64urlDecode(parts[1])));
  if (typeof claims.sub !== "string" || !(claims.exp * 1000 > Date.now())) return null;
  return claims.sub;
}

async function home(env, user, op) {
  const stub = env.USER_HOME.get(env.USER_HOME.idFromName(user));
  const r = await stub.fetch("https://home/op", { method: "POST", body: JSON.stringify(op) });
  return { status: r.status, body: await r.json() };
}

async function write(request, env, user, id, ifMatch) {
  const body = await request.json();
  const bytes = Uint8Array.from(atob(body.blob), (c) => c.charCodeAt(0));
  if (hex(await crypto.subtle.digest("SHA-256", bytes)) !== body.checksum) {
    return error(400, "checksum_mismatch");
  }
  const reserved = await home(env, user, { op: "reserve", id, size: bytes.length, if_match: ifMatch });
  if (reserved.status !== 200) return Response.json(reserved.body, { status: reserved.status });
  const version = reserved.body.version;
  await env.RECORDS.put(`${user}/${id}/${version}`, bytes);
  const committed = await home(env, user, { op: "commit", id, version, size: bytes.length });
  if (committed.status !== 200) return Response.json(committed.body, { status: committed.status });
  const etag = `"${version}"`;
  return Response.json(
    { id, etag, updated_at: committed.body.updated_at },
    { status: ifMatch === undefined ? 201 : 200, headers: { ETag: etag } });
}

export default {
  async fetch(request, env) {
    const path = new URL(request.url).pathname;
    if (!path.startsWith(PREFIX)) return error(404, "not_found");
    const route = path.slice(PREFIX.length);
    if (route === "/health" && request.method === "GET") return Response.json({ status: "ok" });
    const user = await userOf(request, env);
    if (user === null) return error(401, "unauthorized");
    if (route === "/auth/me" && request.method === "GET") {
      const r = await home(env, user, { op: "admit" });
      if (r.status !== 200) return Response.json(r.body, { status: r.status });
      return Response.json({ id: user, tier: r.body.tier });
    }
    if (route === "/storage/records" && request.method === "POST") {
      return write(request, env, user, crypto.randomUUID(), undefined);
    }
    const m = route.match(/^\/storage\/records\/([0-9a-f-]{36})$/);
    if (m && request.method === "PUT") {
      const ifMatch = (request.headers.get("If-Match") || "").replace(/"/g, "");
      return write(request, env, user, m[1], ifMatch);
    }
    if (m && request.method === "GET") {
      const r = await home(env, user, { op: "get", id: m[1] });
      if (r.status !== 200) return Response.json(r.body, { status: r.status });
      const object = await env.RECORDS.get(`${user}/${m[1]}/${r.body.version}`);
      if (object === null) return error(404, "not_found");
      return new Response(object.body, {
        headers: { "Content-Type": "application/octet-stream", ETag: `"${r.body.version}"` },
      });
    }
    return error(404, "not_found");
  },
};

// One per user: the request limiter, usage, record metadata.
export class Home {
  constructor(state) {
    this.sql = state.storage.sql;
    this.sql.exec(`CREATE TABLE IF NOT EXISTS limiter (id INTEGER PRIMARY KEY, tat INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS usage (id INTEGER PRIMARY KEY, bytes INTEGER NOT NULL, reserved INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS records (id TEXT PRIMARY KEY, version TEXT NOT NULL, size INTEGER NOT NULL,
        pending TEXT, pending_size INTEGER, updated_at INTEGER NOT NULL);
      INSERT OR IGNORE INTO usage (id, bytes, reserved) VALUES (1, 0, 0);`);
  }

  // GCRA, decided in memory and written once a second of allowance ahead of the stored value,
  // as the API's home does (durable-objects/src/home/memo.rs, LIMITER_LAG_MS).
  admit(now) {
    const interval = 60000 / LIMIT_PER_MINUTE;
    if (this.tat === undefined) {
      const row = this.sql.exec("SELECT tat FROM limiter WHERE id = 1").toArray()[0];
      this.tat = this.stored = row ? row.tat : null;
    }
    const tat = Math.max(this.tat ?? now, now) + interval;
    if (tat - now > 60000) return false;
    this.tat = tat;
    if (tat - Math.max(this.stored ?? now, now) >= 1000) {
      this.sql.exec("INSERT INTO limiter (id, tat) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET tat = excluded.tat", tat);
      this.stored = tat;
    }
    return true;
  }

  async fetch(request) {
    const op = await request.json();
    const now = Date.now();
    if (op.op !== "commit" && !this.admit(now)) {
      return Response.json({ error: { code: "rate_limited" } }, { status: 429 });
    }
    const record = () => this.sql.exec("SELECT version, size, pending, pending_size FROM records WHERE id = ?", op.id).toArray()[0];
    switch (op.op) {
      case "admit":
        return Response.json({ tier: "team" });
      case "get": {
        const row = record();
        return row ? Response.json({ version: row.version }) : Response.json({ error: { code: "not_found" } }, { status: 404 });
      }
      case "reserve": {
        const row = record();
        if (op.if_match !== undefined && (!row || row.version !== op.if_match)) {
          return Response.json({ error: { code: "precondition_failed" } }, { status: 412 });
        }
        const usage = this.sql.exec("SELECT bytes, reserved FROM usage WHERE id = 1").toArray()[0];
        if (usage.bytes + usage.reserved + op.size > QUOTA_BYTES) {
          return Response.json({ error: { code: "quota_exceeded" } }, { status: 403 });
        }
        const version = crypto.randomUUID();
        this.sql.exec("UPDATE usage SET reserved = reserved + ? WHERE id = 1", op.size);
        this.sql.exec(`INSERT INTO records (id, version, size, pending, pending_size, updated_at) VALUES (?, '', 0, ?, ?, ?)
          ON CONFLICT (id) DO UPDATE SET pending = excluded.pending, pending_size = excluded.pending_size`, op.id, version, op.size, now);
        return Response.json({ version });
      }
      case "commit": {
        const row = record();
        if (!row || row.pending !== op.version) {
          return Response.json({ error: { code: "conflict" } }, { status: 409 });
        }
        this.sql.exec("UPDATE usage SET reserved = reserved - ?, bytes = bytes + ? - ? WHERE id = 1", op.size, op.size, row.size);
        this.sql.exec("UPDATE records SET version = ?, size = ?, pending = NULL, pending_size = NULL, updated_at = ? WHERE id = ?",
          op.version, op.size, now, op.id);
        return Response.json({ updated_at: now });
      }
      default:
        return Response.json({ error: { code: "not_found" } }, { status: 404 });
    }
  }
}
