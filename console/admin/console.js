// The Adiuva admin console: a page of the API's own Worker (same origin), for accounts listed
// as admins. It holds its session in memory only (a reload signs out) and renders every value
// it shows as text (manifests and notes come from plugin authors: never parsed as HTML).
const API = "/api/v1";
const $ = (id) => document.getElementById(id);

let session = null; // { access, refresh }
let pendingMfa = null; // the mfa_token of a two-factor sign-in under way

/** An element with attributes and children (strings become text nodes). */
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v !== false && v != null) node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c == null || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

function say(text, isError = false) {
  const s = $("status");
  s.textContent = text;
  s.classList.toggle("error", isError);
}

const when = (ms) => (ms == null ? "—" : new Date(ms).toISOString().replace(".000Z", "Z"));
const money = (cents) => `$${(cents / 100).toFixed(2)}`;

class ApiError extends Error {
  constructor(status, body) {
    const e = (body && body.error) || {};
    super(e.message || `HTTP ${status}`);
    this.status = status;
    this.code = e.code || "http_" + status;
    this.details = e.details;
  }
}

async function call(method, path, body, { auth = true, retried = false } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (auth && session) headers.Authorization = `Bearer ${session.access}`;
  const resp = await fetch(API + path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "omit",
  });
  const data = resp.status === 204 ? null : await resp.json().catch(() => null);
  if (resp.status === 401 && auth && session && !retried && (await refresh())) {
    return call(method, path, body, { auth, retried: true });
  }
  if (!resp.ok) throw new ApiError(resp.status, data);
  return data;
}

async function refresh() {
  try {
    const t = await call("POST", "/auth/refresh", { refresh_token: session.refresh }, { auth: false });
    session = { access: t.access_token, refresh: t.refresh_token };
    return true;
  } catch {
    signedOut("Your session ended; sign in again.");
    return false;
  }
}

function explain(err) {
  if (!(err instanceof ApiError)) return `Network error: ${err.message}`;
  if (err.code === "forbidden") return "Forbidden: this account is not an admin.";
  if (err.code === "validation_failed" && Array.isArray(err.details?.fields)) {
    return "Not valid: " + err.details.fields.map((f) => `${f.field} ${f.message}`).join("; ");
  }
  return `${err.message} (${err.code})`;
}

async function guarded(action) {
  try {
    await action();
  } catch (err) {
    say(explain(err), true);
  }
}

// ---- sign-in ----------------------------------------------------------------------------

async function started(tokens, email) {
  session = { access: tokens.access_token, refresh: tokens.refresh_token };
  try {
    await call("GET", "/admin/plugins/pending"); // an admin check that costs nothing extra
  } catch (err) {
    // Not an admin (or the check failed): end the session just opened rather than leave it.
    await endSession();
    throw err;
  }
  $("sign-in").hidden = true;
  $("console").hidden = false;
  $("who").textContent = email;
  $("who").hidden = false;
  $("sign-out").hidden = false;
  say(`Signed in as ${email}.`);
  show("review");
}

function signedOut(message) {
  session = null;
  pendingMfa = null;
  $("console").hidden = true;
  $("sign-in").hidden = false;
  $("login-form").hidden = false;
  $("mfa-form").hidden = true;
  $("who").hidden = true;
  $("sign-out").hidden = true;
  $("login-password").value = "";
  say(message);
}

$("login-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const email = $("login-email").value.trim();
  const password = $("login-password").value;
  guarded(async () => {
    try {
      const tokens = await call("POST", "/auth/login", { email, password }, { auth: false });
      await started(tokens, email);
    } catch (err) {
      if (err instanceof ApiError && err.code === "mfa_required" && err.details?.mfa_token) {
        pendingMfa = { token: err.details.mfa_token, email };
        $("login-form").hidden = true;
        $("mfa-form").hidden = false;
        $("mfa-code").focus();
        say("Enter your two-factor code.");
        return;
      }
      throw err;
    } finally {
      $("login-password").value = "";
    }
  });
});

$("mfa-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const code = $("mfa-code").value.replace(/\s+/g, "");
  $("mfa-code").value = "";
  guarded(async () => {
    const body = /^\d{6}$/.test(code)
      ? { mfa_token: pendingMfa.token, code }
      : { mfa_token: pendingMfa.token, recovery_code: code };
    const tokens = await call("POST", "/auth/login/mfa", body, { auth: false });
    const { email } = pendingMfa;
    pendingMfa = null;
    await started(tokens, email);
  });
});

/** Revokes the current session (logout needs its access token and its refresh token). */
async function endSession() {
  if (session) {
    await call("POST", "/auth/logout", { refresh_token: session.refresh }).catch(() => {});
  }
  session = null;
}

$("sign-out").addEventListener("click", () =>
  guarded(async () => {
    await endSession();
    signedOut("Signed out.");
  }),
);

// ---- tabs -------------------------------------------------------------------------------

const loaders = { review: loadReview, users: () => {}, payouts: loadPayouts, audit: loadAudit };

function show(tab) {
  for (const b of document.querySelectorAll("nav button")) {
    if (b.dataset.tab === tab) b.setAttribute("aria-current", "page");
    else b.removeAttribute("aria-current");
  }
  for (const s of document.querySelectorAll(".tab")) s.hidden = s.id !== `tab-${tab}`;
  guarded(loaders[tab]);
}

for (const b of document.querySelectorAll("nav button")) {
  b.addEventListener("click", () => show(b.dataset.tab));
}

// ---- plugin review ----------------------------------------------------------------------

/** Only links to this origin are followed (the package link is the API's own). */
function sameOriginHref(url) {
  try {
    const u = new URL(url, location.origin);
    return u.origin === location.origin ? u.href : null;
  } catch {
    return null;
  }
}

function reviewCard(p) {
  const m = p.manifest;
  const notes = el("textarea", { "aria-label": `Notes for ${m.name}`, maxlength: 2000 });
  const decide = (decision) =>
    guarded(async () => {
      const r = await call("POST", `/plugins/${encodeURIComponent(p.plugin_id)}/review`, {
        decision,
        notes: notes.value,
      });
      say(`${m.name} ${r.version}: ${r.status}.`);
      await loadReview();
    });
  const href = sameOriginHref(p.download_url);
  const ownPlugin = p.checklist.some((c) => c.name === "not_own_plugin" && !c.passed);
  return el(
    "article",
    { class: "card", "data-plugin": p.plugin_id },
    el("h3", {}, `${m.name} ${m.version}`),
    el(
      "dl",
      {},
      el("dt", {}, "Author"), el("dd", {}, `${m.author} (${p.author_id})`),
      el("dt", {}, "Category"), el("dd", {}, m.category),
      el("dt", {}, "Price"), el("dd", {}, m.price_cents ? money(m.price_cents) : "free"),
      el("dt", {}, "Permissions"), el("dd", {}, m.permissions.join(", ") || "none"),
      el("dt", {}, "Live version"), el("dd", {}, p.live_version || "none"),
      el("dt", {}, "Submitted"), el("dd", {}, when(p.submitted_at)),
      el("dt", {}, "Package"), el("dd", {}, `${p.package_size} bytes, sha256 ${p.package_checksum} `,
        href ? el("a", { href, download: "", rel: "noopener" }, "download") : "no link"),
    ),
    el("p", {}, m.description),
    el("h4", {}, "Checklist"),
    el("ul", { class: "checklist" }, p.checklist.map((c) =>
      el("li", { class: c.passed ? "pass" : "fail", "data-check": c.name },
        `${c.passed ? "✓" : "✗"} ${c.name}`, c.problems.length ? `: ${c.problems.join(", ")}` : ""))),
    el("h4", {}, `Agents (${p.agents.length})`),
    p.agents.length ? el("pre", {}, JSON.stringify(p.agents, null, 2)) : el("p", {}, "No agents declared."),
    el("label", {}, "Notes for the author (required to reject)", notes),
    el(
      "div",
      { class: "actions" },
      el("button", { type: "button", onclick: () => decide("approve"), disabled: ownPlugin }, "Approve"),
      el("button", { type: "button", onclick: () => decide("reject"), disabled: ownPlugin }, "Reject"),
    ),
  );
}

async function loadReview() {
  const { pending } = await call("GET", "/admin/plugins/pending");
  const list = $("review-list");
  list.replaceChildren(...(pending.length ? pending.map(reviewCard) : [el("p", {}, "Nothing waits for review.")]));
}

$("review-refresh").addEventListener("click", () => guarded(loadReview));

// ---- users ------------------------------------------------------------------------------

function userCard(u) {
  const action = (path, body, done) =>
    guarded(async () => {
      const updated = await call("POST", `/admin/users/${encodeURIComponent(u.id)}/${path}`, body);
      say(done);
      $("user-result").replaceChildren(userCard(updated));
    });
  const tier = el("select", { "aria-label": "Comp tier" },
    ["pro", "power", "team"].map((t) => el("option", { value: t }, t)));
  const until = el("input", { type: "date", "aria-label": "Comp until" });
  const compNow = () => {
    if (!until.value) return say("Choose the date the comp ends.", true);
    const end = Date.parse(`${until.value}T23:59:59Z`);
    action("comp", { tier: tier.value, until: end }, `${u.email}: ${tier.value} until ${until.value}.`);
  };
  const suspended = u.suspended_at != null;
  return el(
    "article",
    { class: "card", "data-user": u.id },
    el("h3", {}, u.email),
    el(
      "dl",
      {},
      el("dt", {}, "Id"), el("dd", {}, u.id),
      el("dt", {}, "Role"), el("dd", {}, u.role),
      el("dt", {}, "Verified"), el("dd", {}, u.email_verified ? "yes" : "no"),
      el("dt", {}, "Tier"), el("dd", { "data-field": "tier" }, u.tier),
      el("dt", {}, "Paid tier"), el("dd", {}, u.paid_tier + (u.paid_tier_until ? ` until ${when(u.paid_tier_until)}` : "")),
      el("dt", {}, "Comp"), el("dd", { "data-field": "comp" }, u.comp ? `${u.comp.tier} until ${when(u.comp.until)}` : "none"),
      el("dt", {}, "Seats"), el("dd", {}, u.seats),
      el("dt", {}, "Created"), el("dd", {}, when(u.created_at)),
      el("dt", {}, "Last seen"), el("dd", {}, when(u.last_seen_at)),
      el("dt", {}, "Sessions"), el("dd", {}, u.sessions),
      el("dt", {}, "Status"), el("dd", { "data-field": "status" }, suspended ? `suspended since ${when(u.suspended_at)}` : "active"),
    ),
    el(
      "div",
      { class: "actions" },
      suspended
        ? el("button", { type: "button", onclick: () => action("unsuspend", undefined, `${u.email} restored.`) }, "Unsuspend")
        : el("button", { type: "button", onclick: () => action("suspend", undefined, `${u.email} suspended.`) }, "Suspend"),
      tier,
      until,
      el("button", { type: "button", onclick: compNow }, "Comp"),
    ),
  );
}

$("user-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const email = $("user-email").value.trim();
  guarded(async () => {
    const { users } = await call("GET", `/admin/users?email=${encodeURIComponent(email)}`);
    $("user-result").replaceChildren(...(users.length ? users.map(userCard) : [el("p", {}, "No account has that address.")]));
    say(users.length ? "" : "No account has that address.");
  });
});

// ---- payouts and audit ------------------------------------------------------------------

async function loadPayouts() {
  const { months } = await call("GET", "/admin/payouts");
  $("payout-list").replaceChildren(
    months.length
      ? el("table", {},
          el("tr", {}, ["Month", "Status", "Total", "Paid", "Developers"].map((h) => el("th", {}, h))),
          months.map((m) => el("tr", { "data-period": m.period },
            el("td", {}, m.period), el("td", {}, m.status), el("td", {}, money(m.total_cents)),
            el("td", {}, money(m.paid_cents)), el("td", {}, m.payouts.length))))
      : el("p", {}, "No payouts yet."),
  );
}

async function loadAudit() {
  const { entries } = await call("GET", "/admin/audit");
  $("audit-list").replaceChildren(
    entries.length
      ? el("table", {},
          el("tr", {}, ["When", "Admin", "Action", "Target"].map((h) => el("th", {}, h))),
          entries.map((e) => el("tr", {},
            el("td", {}, when(e.at)), el("td", {}, e.admin_id), el("td", {}, e.action), el("td", {}, e.target || ""))))
      : el("p", {}, "No admin actions yet."),
  );
}
