var __defProp = Object.defineProperty;
var __name = (target, value) => __defProp(target, "name", { value, configurable: true });

// worker.js
var LIMIT_PER_MINUTE = 2e5;
var QUOTA_BYTES = 1 << 30;
var PREFIX = "/api/v1";
var key;
function b64urlDecode(s) {
  const b = atob(s.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((s.length + 3) % 4));
  return Uint8Array.from(b, (c) => c.charCodeAt(0));
}
__name(b64urlDecode, "b64urlDecode");
function hex(buf) {
  return [...new Uint8Array(buf)].map((b) => b.toString(16).padStart(2, "0")).join("");
}
__name(hex, "hex");
function error(status, code) {
  return Response.json({ error: { code, message: code } }, { status });
}
__name(error, "error");
async function userOf(request, env) {
  const auth = request.headers.get("Authorization") || "";
  if (!auth.startsWith("Bearer ")) return null;
  const parts = auth.slice(7).split(".");
  if (parts.length !== 3) return null;
  key ??= await crypto.subtle.importKey(
    "raw",
    new TextEncoder().encode(env.JWT_SECRET),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["verify"]
  );
  const ok = await crypto.subtle.verify(
    "HMAC",
    key,
    b64urlDecode(parts[2]),
    new TextEncoder().encode(`${parts[0]}.${parts[1]}`)
  );
  if (!ok) return null;
  const claims = JSON.parse(new TextDecoder().decode(b64urlDecode(parts[1])));
  if (typeof claims.sub !== "string" || !(claims.exp * 1e3 > Date.now())) return null;
  return claims.sub;
}
__name(userOf, "userOf");
async function home(env, user, op) {
  const stub = env.USER_HOME.get(env.USER_HOME.idFromName(user));
  const r = await stub.fetch("https://home/op", { method: "POST", body: JSON.stringify(op) });
  return { status: r.status, body: await r.json() };
}
__name(home, "home");
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
    { status: ifMatch === void 0 ? 201 : 200, headers: { ETag: etag } }
  );
}
__name(write, "write");
var worker_default = {
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
      return write(request, env, user, crypto.randomUUID(), void 0);
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
        headers: { "Content-Type": "application/octet-stream", ETag: `"${r.body.version}"` }
      });
    }
    return error(404, "not_found");
  }
};
var Home = class {
  static {
    __name(this, "Home");
  }
  constructor(state) {
    this.sql = state.storage.sql;
    this.sql.exec(`CREATE TABLE IF NOT EXISTS limiter (id INTEGER PRIMARY KEY, tat INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS usage (id INTEGER PRIMARY KEY, bytes INTEGER NOT NULL, reserved INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS records (id TEXT PRIMARY KEY, version TEXT NOT NULL, size INTEGER NOT NULL,
        pending TEXT, pending_size INTEGER, updated_at INTEGER NOT NULL);
      INSERT OR IGNORE INTO usage (id, bytes, reserved) VALUES (1, 0, 0);`);
  }
  admit(now) {
    const interval = 6e4 / LIMIT_PER_MINUTE;
    const row = this.sql.exec("SELECT tat FROM limiter WHERE id = 1").toArray()[0];
    const tat = Math.max(row ? row.tat : now, now) + interval;
    if (tat - now > 6e4) return false;
    this.sql.exec("INSERT INTO limiter (id, tat) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET tat = excluded.tat", tat);
    return true;
  }
  async fetch(request) {
    const op = await request.json();
    const now = Date.now();
    if (op.op !== "commit" && !this.admit(now)) {
      return Response.json({ error: { code: "rate_limited" } }, { status: 429 });
    }
    const record = /* @__PURE__ */ __name(() => this.sql.exec("SELECT version, size, pending, pending_size FROM records WHERE id = ?", op.id).toArray()[0], "record");
    switch (op.op) {
      case "admit":
        return Response.json({ tier: "team" });
      case "get": {
        const row = record();
        return row ? Response.json({ version: row.version }) : Response.json({ error: { code: "not_found" } }, { status: 404 });
      }
      case "reserve": {
        const row = record();
        if (op.if_match !== void 0 && (!row || row.version !== op.if_match)) {
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
        this.sql.exec(
          "UPDATE records SET version = ?, size = ?, pending = NULL, pending_size = NULL, updated_at = ? WHERE id = ?",
          op.version,
          op.size,
          now,
          op.id
        );
        return Response.json({ updated_at: now });
      }
      default:
        return Response.json({ error: { code: "not_found" } }, { status: 404 });
    }
  }
};

// ../../node_modules/wrangler/templates/middleware/middleware-ensure-req-body-drained.ts
var drainBody = /* @__PURE__ */ __name(async (request, env, _ctx, middlewareCtx) => {
  try {
    return await middlewareCtx.next(request, env);
  } finally {
    try {
      if (request.body !== null && !request.bodyUsed) {
        const reader = request.body.getReader();
        while (!(await reader.read()).done) {
        }
      }
    } catch (e) {
      console.error("Failed to drain the unused request body.", e);
    }
  }
}, "drainBody");
var middleware_ensure_req_body_drained_default = drainBody;

// ../../node_modules/wrangler/templates/middleware/middleware-miniflare3-json-error.ts
function reduceError(e) {
  return {
    name: e?.name,
    message: e?.message ?? String(e),
    stack: e?.stack,
    cause: e?.cause === void 0 ? void 0 : reduceError(e.cause)
  };
}
__name(reduceError, "reduceError");
var jsonError = /* @__PURE__ */ __name(async (request, env, _ctx, middlewareCtx) => {
  try {
    return await middlewareCtx.next(request, env);
  } catch (e) {
    const error2 = reduceError(e);
    const body = JSON.stringify(error2);
    const headers = {
      "Content-Type": "application/json",
      "MF-Experimental-Error-Stack": "true"
    };
    const encoded = encodeURIComponent(body);
    if (encoded.length <= 8192) {
      headers["MF-Experimental-Error-Stack-Payload"] = encoded;
    }
    return new Response(body, { status: 500, headers });
  }
}, "jsonError");
var middleware_miniflare3_json_error_default = jsonError;

// .wrangler/tmp/bundle-nINU3p/middleware-insertion-facade.js
var __INTERNAL_WRANGLER_MIDDLEWARE__ = [
  middleware_ensure_req_body_drained_default,
  middleware_miniflare3_json_error_default
];
var middleware_insertion_facade_default = worker_default;

// ../../node_modules/wrangler/templates/middleware/common.ts
var __facade_middleware__ = [];
function __facade_register__(...args) {
  __facade_middleware__.push(...args.flat());
}
__name(__facade_register__, "__facade_register__");
function __facade_invokeChain__(request, env, ctx, dispatch, middlewareChain) {
  const [head, ...tail] = middlewareChain;
  const middlewareCtx = {
    dispatch,
    next(newRequest, newEnv) {
      return __facade_invokeChain__(newRequest, newEnv, ctx, dispatch, tail);
    }
  };
  return head(request, env, ctx, middlewareCtx);
}
__name(__facade_invokeChain__, "__facade_invokeChain__");
function __facade_invoke__(request, env, ctx, dispatch, finalMiddleware) {
  return __facade_invokeChain__(request, env, ctx, dispatch, [
    ...__facade_middleware__,
    finalMiddleware
  ]);
}
__name(__facade_invoke__, "__facade_invoke__");

// .wrangler/tmp/bundle-nINU3p/middleware-loader.entry.ts
var __Facade_ScheduledController__ = class ___Facade_ScheduledController__ {
  constructor(scheduledTime, cron, noRetry) {
    this.scheduledTime = scheduledTime;
    this.cron = cron;
    this.#noRetry = noRetry;
  }
  scheduledTime;
  cron;
  static {
    __name(this, "__Facade_ScheduledController__");
  }
  #noRetry;
  noRetry() {
    if (!(this instanceof ___Facade_ScheduledController__)) {
      throw new TypeError("Illegal invocation");
    }
    this.#noRetry();
  }
};
function wrapExportedHandler(worker) {
  if (__INTERNAL_WRANGLER_MIDDLEWARE__ === void 0 || __INTERNAL_WRANGLER_MIDDLEWARE__.length === 0) {
    return worker;
  }
  for (const middleware of __INTERNAL_WRANGLER_MIDDLEWARE__) {
    __facade_register__(middleware);
  }
  const fetchDispatcher = /* @__PURE__ */ __name(function(request, env, ctx) {
    if (worker.fetch === void 0) {
      throw new Error("Handler does not export a fetch() function.");
    }
    return worker.fetch(request, env, ctx);
  }, "fetchDispatcher");
  return {
    ...worker,
    fetch(request, env, ctx) {
      const dispatcher = /* @__PURE__ */ __name(function(type, init) {
        if (type === "scheduled" && worker.scheduled !== void 0) {
          const controller = new __Facade_ScheduledController__(
            Date.now(),
            init.cron ?? "",
            () => {
            }
          );
          return worker.scheduled(controller, env, ctx);
        }
      }, "dispatcher");
      return __facade_invoke__(request, env, ctx, dispatcher, fetchDispatcher);
    }
  };
}
__name(wrapExportedHandler, "wrapExportedHandler");
function wrapWorkerEntrypoint(klass) {
  if (__INTERNAL_WRANGLER_MIDDLEWARE__ === void 0 || __INTERNAL_WRANGLER_MIDDLEWARE__.length === 0) {
    return klass;
  }
  for (const middleware of __INTERNAL_WRANGLER_MIDDLEWARE__) {
    __facade_register__(middleware);
  }
  return class extends klass {
    #fetchDispatcher = /* @__PURE__ */ __name((request, env, ctx) => {
      this.env = env;
      this.ctx = ctx;
      if (super.fetch === void 0) {
        throw new Error("Entrypoint class does not define a fetch() function.");
      }
      return super.fetch(request);
    }, "#fetchDispatcher");
    #dispatcher = /* @__PURE__ */ __name((type, init) => {
      if (type === "scheduled" && super.scheduled !== void 0) {
        const controller = new __Facade_ScheduledController__(
          Date.now(),
          init.cron ?? "",
          () => {
          }
        );
        return super.scheduled(controller);
      }
    }, "#dispatcher");
    fetch(request) {
      return __facade_invoke__(
        request,
        this.env,
        this.ctx,
        this.#dispatcher,
        this.#fetchDispatcher
      );
    }
  };
}
__name(wrapWorkerEntrypoint, "wrapWorkerEntrypoint");
var WRAPPED_ENTRY;
if (typeof middleware_insertion_facade_default === "object") {
  WRAPPED_ENTRY = wrapExportedHandler(middleware_insertion_facade_default);
} else if (typeof middleware_insertion_facade_default === "function") {
  WRAPPED_ENTRY = wrapWorkerEntrypoint(middleware_insertion_facade_default);
}
var middleware_loader_entry_default = WRAPPED_ENTRY;
export {
  Home,
  __INTERNAL_WRANGLER_MIDDLEWARE__,
  middleware_loader_entry_default as default
};
//# sourceMappingURL=worker.js.map
