// Drives the admin console (/admin/) in Debian's Chromium against a running `wrangler dev`.
// Started by `admin::the_console_*` (tests/api/admin.rs), which seeds the accounts and the
// pending plugin, passes them here, and checks the API's state afterwards. Each flow leaves a
// screenshot in SCREENSHOTS. Exits non-zero, with the reason, when any step fails.
//
// Env: BASE (http://127.0.0.1:PORT), ADMIN_EMAIL, ADMIN_PASSWORD, ADMIN_TOTP_SECRET (base32),
// ADMIN_RECOVERY_CODES (comma-separated),
// USER_EMAIL, USER_PASSWORD (a non-admin), PLUGIN_ID, PLUGIN_NAME, TARGET_EMAIL, SCREENSHOTS,
// CHROMIUM (default /usr/bin/chromium).
import { createHmac } from "node:crypto";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};
const BASE = env("BASE");
const SHOTS = env("SCREENSHOTS");
mkdirSync(SHOTS, { recursive: true });

/** RFC 6238 (SHA-1, 6 digits, 30 s) from a base32 secret, `steps` steps from now. */
function totp(secretB32, steps) {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = "";
  for (const ch of secretB32.replace(/=+$/, "").toUpperCase()) {
    const i = alphabet.indexOf(ch);
    if (i < 0) throw new Error("bad base32 secret");
    bits += i.toString(2).padStart(5, "0");
  }
  const key = Buffer.from(bits.match(/.{8}/g).map((b) => parseInt(b, 2)));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(Date.now() / 30000) + steps));
  const h = createHmac("sha1", key).update(counter).digest();
  const o = h[19] & 0x0f;
  const bin = ((h[o] & 0x7f) << 24) | (h[o + 1] << 16) | (h[o + 2] << 8) | h[o + 3];
  return String(bin % 1_000_000).padStart(6, "0");
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
});
const failures = [];
const pageErrors = [];

async function flow(name, fn) {
  const context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
  const page = await context.newPage();
  page.setDefaultTimeout(15000);
  page.on("pageerror", (e) => pageErrors.push(`${name}: ${e.message}`));
  try {
    await fn(page);
    console.log(`ok   ${name}`);
  } catch (e) {
    failures.push(`${name}: ${e.message}`);
    console.log(`FAIL ${name}: ${e.message}`);
  } finally {
    await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true }).catch(() => {});
    await context.close();
  }
}

const expectText = async (locator, re, what) => {
  await locator.filter({ hasText: re }).first().waitFor({ state: "visible" }).catch(async () => {
    const got = await locator.first().textContent().catch(() => "(nothing)");
    throw new Error(`${what}: expected ${re}, saw ${JSON.stringify(got)}`);
  });
};

async function signIn(page, email, password) {
  await page.goto(`${BASE}/admin/`);
  await page.fill("#login-email", email);
  await page.fill("#login-password", password);
  await page.click("#login-form button[type=submit]");
}

// Each code is accepted once: the first sign-in uses the next step's TOTP code (the test
// confirmed two-factor with this step's), later ones a recovery code each.
const recoveryCodes = env("ADMIN_RECOVERY_CODES").split(",");
let totpUsed = false;

async function signInAsAdmin(page) {
  await signIn(page, env("ADMIN_EMAIL"), env("ADMIN_PASSWORD"));
  await page.locator("#mfa-form").waitFor({ state: "visible" });
  const code = totpUsed ? recoveryCodes.shift() : totp(env("ADMIN_TOTP_SECRET"), 1);
  totpUsed = true;
  await page.fill("#mfa-code", code);
  await page.click("#mfa-form button[type=submit]");
  await page.locator("#console").waitFor({ state: "visible" });
}

await flow("sign-in-with-two-factor", async (page) => {
  await signInAsAdmin(page);
  await expectText(page.locator("#who"), new RegExp(env("ADMIN_EMAIL").replace(/[.+]/g, "\\$&")), "signed-in name");
  if ((await page.locator("#login-password").inputValue()) !== "") throw new Error("the password stayed in the form");
  await page.click("#sign-out");
  await expectText(page.locator("#status"), /^Signed out\.$/, "status after signing out");
  await page.locator("#sign-in").waitFor({ state: "visible" });
  if (await page.locator("#console").isVisible()) throw new Error("the console stayed open");
});

await flow("a-non-admin-is-turned-away", async (page) => {
  await signIn(page, env("USER_EMAIL"), env("USER_PASSWORD"));
  await expectText(page.locator("#status"), /not an admin/, "status");
  if (await page.locator("#console").isVisible()) throw new Error("the console opened for a non-admin");
});

await flow("approve-a-pending-plugin", async (page) => {
  await signInAsAdmin(page);
  const card = page.locator(`article[data-plugin="${env("PLUGIN_ID")}"]`);
  await card.waitFor({ state: "visible" });
  await expectText(card.locator("h3"), new RegExp(env("PLUGIN_NAME")), "plugin title");
  for (const check of ["fields", "agents", "package_size", "not_own_plugin"]) {
    const cls = await card.locator(`li[data-check="${check}"]`).getAttribute("class");
    if (cls !== "pass") throw new Error(`checklist item ${check} is ${cls}`);
  }
  const href = await card.locator("a[download]").getAttribute("href");
  if (!href || !href.startsWith(`${BASE}/`)) throw new Error(`package link ${href}`);
  // The description is an author's text with markup in it: shown as text, never run.
  await expectText(card.locator("p"), /<img src=x onerror=/, "description as text");
  if (await page.evaluate(() => window.__xss === 1)) throw new Error("the author's markup ran");
  await card.locator("textarea").fill("Checked by the browser test.");
  await page.screenshot({ path: join(SHOTS, "approve-a-pending-plugin.queue.png"), fullPage: true });
  await card.getByRole("button", { name: "Approve" }).click();
  await expectText(page.locator("#status"), /approved/, "status after approving");
  await card.waitFor({ state: "detached" });
});

await flow("suspend-and-restore-a-user", async (page) => {
  await signInAsAdmin(page);
  await page.click('nav button[data-tab="users"]');
  await page.fill("#user-email", env("TARGET_EMAIL"));
  await page.click("#user-form button[type=submit]");
  const card = page.locator("#user-result article");
  await expectText(card.locator('[data-field="status"]'), /^active$/, "status before");
  await card.getByRole("button", { name: "Suspend" }).click();
  await expectText(page.locator('#user-result [data-field="status"]'), /^suspended since /, "status after suspending");
  await page.screenshot({ path: join(SHOTS, "suspend-and-restore-a-user.suspended.png"), fullPage: true });
  await page.locator("#user-result").getByRole("button", { name: "Unsuspend" }).click();
  await expectText(page.locator('#user-result [data-field="status"]'), /^active$/, "status after restoring");
  await page.click('nav button[data-tab="audit"]');
  await expectText(page.locator("#audit-list td"), /^user\.unsuspend$|unsuspend/, "audit log");
});

await browser.close();
if (pageErrors.length) failures.push(...pageErrors.map((e) => `page error: ${e}`));
if (failures.length) {
  console.error(failures.join("\n"));
  process.exit(1);
}
