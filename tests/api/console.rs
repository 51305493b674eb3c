//! The admin console (`console/admin`, static assets of the same Worker at `/admin/`): how it is
//! served (its headers, the API untouched beside it), the same-origin rule that lets it call
//! the API, and its flows in a real browser: `tests/browser/console.mjs` drives Debian's
//! Chromium with playwright-core (installed by `scripts/setup.sh` with `SETUP_BROWSER=1`, which
//! `scripts/test.sh` sets) while this test seeds the accounts and checks the API's state after.
//! Screenshots of each flow land in `target/e2e/screenshots/` (kept by CI as an artifact).

use std::path::Path;
use std::time::Instant;

use base64::Engine;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::admin::verified;
use crate::harness::{random_ip, CONSOLE_ADMIN_EMAIL};
use crate::helpers::{assert_error, sha, TestApp};

pub async fn the_console_is_served_at_admin_with_a_strict_content_security_policy(app: TestApp) {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    // `/admin` leads to the page; the page, its script and its style carry the headers.
    let r = client
        .get(format!("{}/admin", app.base))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_redirection(), "{}", r.status());
    assert_eq!(r.headers()["location"], "/admin/");
    for (path, kind) in [
        ("/admin/", "text/html"),
        ("/admin/console.js", "javascript"),
        ("/admin/console.css", "text/css"),
    ] {
        let r = client
            .get(format!("{}{path}", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        let h = r.headers().clone();
        assert!(
            h["content-type"].to_str().unwrap().contains(kind),
            "{path}: {:?}",
            h["content-type"]
        );
        let csp = h["content-security-policy"].to_str().unwrap();
        for directive in [
            "default-src 'none'",
            "script-src 'self'",
            "connect-src 'self'",
            "frame-ancestors 'none'",
        ] {
            assert!(csp.contains(directive), "{path}: {csp}");
        }
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["cache-control"], "no-store", "{path}");
    }
    let page = client
        .get(format!("{}/admin/", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains(r#"<script type="module" src="/admin/console.js">"#));
    assert!(
        !page.contains("<script>"),
        "no inline script: the CSP forbids it"
    );
    // The assets' own configuration is not served; unknown paths still reach the Worker.
    for path in ["/_headers", "/.assetsignore", "/admin/nothing-here.js"] {
        let r = client
            .get(format!("{}{path}", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
        let body: Value = r.json().await.expect("the Worker's JSON 404");
        assert_eq!(body["error"]["code"], "not_found", "{path}: {body}");
    }
    let r = app.req(Method::GET, "/health").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

pub async fn the_consoles_own_origin_may_call_the_api_and_look_alike_origins_may_not(app: TestApp) {
    let user = app.register("console-origin").await;
    let own = app.base.clone();
    let r = app
        .req(Method::GET, "/auth/me")
        .header("Origin", &own)
        .bearer_auth(&user.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "same origin");
    assert_eq!(r.headers()["access-control-allow-origin"], own.as_str());
    let r = app
        .req(Method::POST, "/auth/login")
        .header("Origin", &own)
        .header("CF-Connecting-IP", random_ip())
        .json(&json!({"email": user.email, "password": user.password}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "the console's sign-in");
    let port = own.rsplit(':').next().unwrap();
    // (Not `https://` on the same host and port: wrangler dev's proxy rewrites an Origin
    // whose host is its own to its own scheme, so that case is covered by the unit tests of
    // `CorsPolicy::allows_from` only.)
    for foreign in [
        format!("http://127.0.0.2:{port}"),
        format!("{own}.evil.example"),
        format!("{own}0"),
        "null".to_owned(),
    ] {
        let r = app
            .req(Method::GET, "/auth/me")
            .header("Origin", &foreign)
            .bearer_auth(&user.access_token)
            .send()
            .await
            .unwrap();
        assert!(
            r.headers().get("access-control-allow-origin").is_none(),
            "{foreign}"
        );
        assert_error(r, 403, "forbidden").await;
    }
}

async fn session_count(app: &TestApp, user: &crate::helpers::TestUser) -> usize {
    let r = app.get_auth("/auth/sessions", &user.access_token).await;
    let body: Value = r.json().await.unwrap();
    body["sessions"].as_array().expect("sessions").len()
}

/// A plugin waiting for review, by a new author, whose description carries markup.
async fn pending_plugin(app: &TestApp) -> (String, String) {
    let author = app.register("console-author").await;
    let package = crate::plugins::package("console");
    let name = format!(
        "Console review {}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let mut manifest = crate::plugins::manifest(&name, "1.0.0", "productivity", 0);
    manifest["description"] = json!(r#"Sorts tasks. <img src=x onerror="window.__xss=1"> done"#);
    let body = json!({
        "manifest": manifest,
        "package": base64::engine::general_purpose::STANDARD.encode(&package),
        "package_checksum": sha(&package),
    });
    let r = app
        .req(Method::POST, "/plugins")
        .bearer_auth(&author.access_token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let b: Value = r.json().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{b}");
    (b["id"].as_str().unwrap().to_owned(), name)
}

#[allow(clippy::too_many_lines)] // one scenario, step by step
pub async fn an_admin_signs_in_with_two_factor_approves_a_plugin_and_suspends_and_restores_a_user_in_a_browser(
    app: TestApp,
) {
    let admin = verified(&app, CONSOLE_ADMIN_EMAIL).await;
    let (secret, recovery) = crate::accounts::with_two_factor(&app, &admin).await;
    let outsider = app.register("console-outsider").await;
    let target = app.register("console-target").await;
    let target_id = crate::helpers::user_id_of(&target);
    let (plugin_id, plugin_name) = pending_plugin(&app).await;

    let admin_sessions_before = session_count(&app, &admin).await;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let browser_dir = root.join("tests/browser");
    assert!(
        browser_dir.join("node_modules/playwright-core").is_dir(),
        "playwright-core is not installed: run `SETUP_BROWSER=1 . scripts/setup.sh` (scripts/test.sh does)"
    );
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned());
    assert!(
        Path::new(&chromium).is_file(),
        "{chromium} is missing: run `SETUP_BROWSER=1 . scripts/setup.sh` (installs Debian's chromium)"
    );
    let shots = root.join("target/e2e/screenshots");
    let started = Instant::now();
    let mut cmd = tokio::process::Command::new(crate::client_kit::node_binary());
    cmd.arg("console.mjs")
        .current_dir(&browser_dir)
        .env("BASE", &app.base)
        .env("ADMIN_EMAIL", &admin.email)
        .env("ADMIN_PASSWORD", &admin.password)
        .env("ADMIN_TOTP_SECRET", &secret)
        .env("ADMIN_RECOVERY_CODES", recovery.join(","))
        .env("USER_EMAIL", &outsider.email)
        .env("USER_PASSWORD", &outsider.password)
        .env("PLUGIN_ID", &plugin_id)
        .env("PLUGIN_NAME", &plugin_name)
        .env("TARGET_EMAIL", &target.email)
        .env("SCREENSHOTS", &shots)
        .env("CHROMIUM", &chromium);
    let (status, stdout, stderr) = crate::client_kit::run(cmd).await;
    eprintln!(
        "==> console: browser flows took {:.1} s\n{stdout}",
        started.elapsed().as_secs_f64()
    );
    let status = status.unwrap_or_else(|| panic!("the browser flows hung:\n{stdout}\n{stderr}"));
    assert!(
        status.success(),
        "the browser flows failed ({status}):\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}"
    );
    for flow in [
        "sign-in-with-two-factor",
        "a-non-admin-is-turned-away",
        "approve-a-pending-plugin",
        "suspend-and-restore-a-user",
    ] {
        assert!(
            stdout.contains(&format!("ok   {flow}")),
            "{flow}:\n{stdout}"
        );
        let shot = std::fs::metadata(shots.join(format!("{flow}.png"))).expect(flow);
        assert!(shot.len() > 1000, "{flow}: an empty screenshot");
    }

    // The admin signed in three times in the browser and out once.
    let sessions = session_count(&app, &admin).await;
    assert_eq!(
        sessions,
        admin_sessions_before + 2,
        "sign-out revoked its session"
    );
    // What the clicks did, read back from the API. The non-admin's console sign-in was ended
    // when the admin check refused it: only the test's own session is left.
    assert_eq!(
        session_count(&app, &outsider).await,
        1,
        "the refused console session was revoked"
    );
    let ops = verified(&app, crate::harness::OPS_ADMIN_EMAIL).await;
    let r = app
        .req(Method::GET, "/admin/plugins/pending")
        .bearer_auth(&ops.access_token)
        .send()
        .await
        .unwrap();
    let queue: Value = r.json().await.unwrap();
    assert!(
        !queue["pending"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["plugin_id"] == plugin_id.as_str()),
        "the approved plugin left the queue: {queue}"
    );
    let r = app
        .req(Method::GET, "/auth/me")
        .bearer_auth(&target.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "the restored account works");
    let r = app
        .req(Method::GET, "/admin/audit")
        .bearer_auth(&ops.access_token)
        .send()
        .await
        .unwrap();
    let audit: Value = r.json().await.unwrap();
    let actions: Vec<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["target"] == target_id.as_str() || e["target"] == plugin_id.as_str())
        .filter_map(|e| e["action"].as_str())
        .collect();
    for action in ["suspend", "unsuspend"] {
        assert!(actions.contains(&action), "{action} in {actions:?}");
    }
    assert!(
        actions.contains(&"plugin_review"),
        "the review in {actions:?}"
    );
}
