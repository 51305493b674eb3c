//! Starts and stops what the end-to-end tests run against: scripted `OpenAI`- and Stripe-compatible
//! servers on 127.0.0.1 (wiremock, programmable by each test; in front of the OpenAI one, a
//! small server that can stream, see [`stream_model`]), and the real worker under
//! `wrangler dev` with a throwaway persist directory, migrations applied, and settings pointing
//! at those servers. [`Stack`] kills the whole wrangler process group when dropped, so nothing
//! outlives the run, whatever the tests did.

use std::fs::{self, File};
use std::io::Read;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use wiremock::MockServer;

#[path = "stream_model.rs"]
pub mod stream_model;

use stream_model::StreamModel;

/// The HS256 secret the worker runs with in tests (tests forge tokens with it).
pub const JWT_SECRET: &str = "e2e-secret-e2e-secret-e2e-secret-0123456789";
/// Emails that become admins (once verified).
pub const ADMIN_EMAIL: &str = "admin@e2e.example.com";
/// A second admin address, registered by the test that proves the role waits for
/// verification.
#[allow(dead_code)]
pub const SECOND_ADMIN_EMAIL: &str = "second-admin@e2e.example.com";
/// An admin address the admin tests suspend (only `admin::` uses it).
pub const OPS_ADMIN_EMAIL: &str = "ops-admin@e2e.example.com";
/// An admin address never verified (only `admin::` uses it): never an admin.
pub const UNVERIFIED_ADMIN_EMAIL: &str = "unverified-admin@e2e.example.com";
/// The admin the browser tests sign in as, with two-factor authentication (only
/// `console::an_admin_signs_in_*` uses it).
pub const CONSOLE_ADMIN_EMAIL: &str = "console-admin@e2e.example.com";
/// The password whoever registers [`ADMIN_EMAIL`] first gives it (every test uses this one).
#[allow(dead_code)]
pub const ADMIN_PASSWORD: &str = "admin password";
/// The Stripe webhook secret the worker runs with (tests sign events with it).
pub const STRIPE_WEBHOOK_SECRET: &str = "whsec_e2e_secret";
/// Price ids the worker maps to tiers.
pub const PRICE_PRO: &str = "price_pro_e2e";
/// Power.
pub const PRICE_POWER: &str = "price_power_e2e";
/// Team (per seat).
pub const PRICE_TEAM: &str = "price_team_e2e";

/// The key the worker sends to the email API.
pub const EMAIL_API_KEY: &str = "re_e2e_key";

/// Everything started for the run.
pub struct Stack {
    /// The worker's base URL, e.g. `http://127.0.0.1:41234`.
    pub base_url: String,
    /// The scripted OpenAI-compatible server (programmed by the chat tests). The worker reaches
    /// it through [`Stack::stream_model`], which forwards every request no stream script claims.
    #[allow(dead_code)]
    pub openai: MockServer,
    /// The worker's `OPENAI_BASE_URL` (`{uri}/v1`): plays streamed answers scripted per marker,
    /// forwards everything else to [`Stack::openai`].
    #[allow(dead_code)]
    pub stream_model: StreamModel,
    /// The scripted Anthropic-compatible server (Messages API, JSON and SSE), reached by the
    /// worker only through an `anthropic` provider of `LLM_PROVIDERS` whose `base_url` is
    /// `{ANTHROPIC_URL}/v1` (see [`Stack::start_with`]).
    #[allow(dead_code)]
    pub anthropic: MockServer,
    /// The scripted Stripe-compatible server (programmed by the billing tests).
    pub stripe: MockServer,
    /// The scripted email API (Resend's `POST /emails`): answers 200 and records every message
    /// (`received_requests`); tests mount their own failures for their own recipients.
    pub email: MockServer,
    /// wrangler's combined output (the worker's JSON logs among it).
    pub log_path: PathBuf,
    /// The throwaway state directory (local D1, R2, Durable Objects) the worker runs on.
    pub persist_dir: PathBuf,
    wrangler: Child,
}

/// The repository's root directory.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the repo")
        .to_path_buf()
}

/// A loopback port free at the time of asking.
pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The repository's own wrangler, run from `root` without metrics or prompts.
pub fn wrangler_cmd(root: &Path) -> Command {
    let bin = root.join("node_modules/.bin");
    let mut cmd = Command::new(bin.join("wrangler"));
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    cmd.current_dir(root)
        .env("PATH", path)
        .env("WRANGLER_SEND_METRICS", "false")
        .env("CI", "true")
        .stdin(Stdio::null());
    cmd
}

/// The `p` quantile (0–1) of `samples`, in milliseconds (benchmarks).
pub fn percentile_ms(samples: &[Duration], p: f64) -> f64 {
    let mut s = samples.to_vec();
    s.sort();
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let i = (((s.len() - 1) as f64) * p).round() as usize;
    s[i].as_secs_f64() * 1e3
}

/// A `Stripe-Signature` header for `payload` at `t`, computed here with `hmac` (independently
/// of the server's code).
pub fn stripe_signature(payload: &str, t: i64, secret: &str) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(format!("{t}.{payload}").as_bytes());
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// A random address in 10.0.0.0/8, so per-address throttles (registration) never cross users.
pub fn random_ip() -> String {
    let b = uuid::Uuid::new_v4().into_bytes();
    format!("10.{}.{}.{}", b[0], b[1], b[2].max(1))
}

/// Registers a user with a 1000-seat team subscription; returns its access token.
pub async fn team_user(client: &reqwest::Client, base: &str) -> String {
    let email = format!("bench-{}@bench.example.com", uuid::Uuid::new_v4().simple());
    let r: serde_json::Value = client
        .post(format!("{base}/api/v1/auth/register"))
        .header("CF-Connecting-IP", random_ip())
        .json(&serde_json::json!({"email": email, "password": "bench password"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = r["access_token"].as_str().unwrap().to_owned();
    let me: serde_json::Value = client
        .get(format!("{base}/api/v1/auth/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    make_team(client, base, me["id"].as_str().unwrap()).await;
    token
}

/// Makes `user` (an id) a 1000-seat team through a signed `checkout.session.completed`.
pub async fn make_team(client: &reqwest::Client, base: &str, user: &str) {
    let now = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap();
    let event = serde_json::json!({"id": format!("evt_{}", uuid::Uuid::new_v4().simple()), "object": "event",
        "type": "checkout.session.completed", "created": now, "data": {"object": {
            "object": "checkout.session", "mode": "subscription", "client_reference_id": user,
            "customer": format!("cus_{}", uuid::Uuid::new_v4().simple()),
            "subscription": format!("sub_{}", uuid::Uuid::new_v4().simple()),
            "metadata": {"tier": "team", "seats": "1000"}}}})
    .to_string();
    let r = client
        .post(format!("{base}/api/v1/billing/webhook"))
        .header("Content-Type", "application/json")
        .header(
            "Stripe-Signature",
            stripe_signature(&event, now, STRIPE_WEBHOOK_SECRET),
        )
        .body(event)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// Stripe's happy path, at a low priority: tests mount their own answers (priority 1–5) for
/// their own users and see every request in `received_requests`.
async fn mount_stripe_defaults(stripe: &MockServer) {
    use wiremock::matchers::{method, path, path_regex};
    use wiremock::{Mock, ResponseTemplate};
    Mock::given(method("POST"))
        .and(path("/v1/checkout/sessions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "id": "cs_test_default",
            "object": "checkout.session",
            "url": "https://checkout.stripe.test/c/pay/cs_test_default"
        })))
        .with_priority(10)
        .mount(stripe)
        .await;
    Mock::given(method("POST"))
        .and(path_regex(r"^/v1/subscriptions/[^/]+$"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "id": "sub_default", "object": "subscription", "cancel_at_period_end": true
        })))
        .with_priority(10)
        .mount(stripe)
        .await;
    // Every customer has one saved card, every off-session charge succeeds, every transfer is
    // made: tests scope their own answers by customer or destination.
    Mock::given(method("GET"))
        .and(path_regex(r"^/v1/customers/[^/]+/payment_methods$"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "object": "list", "has_more": false,
            "data": [{"id": "pm_default", "object": "payment_method", "type": "card"}]
        })))
        .with_priority(10)
        .mount(stripe)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/payment_intents"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "id": "pi_default", "object": "payment_intent", "status": "succeeded"
        })))
        .with_priority(10)
        .mount(stripe)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/transfers"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "id": "tr_default", "object": "transfer"
        })))
        .with_priority(10)
        .mount(stripe)
        .await;
}

/// The email API accepts every message, at a low priority (tests mount failures for their own
/// recipients at priority 1–5).
async fn mount_email_defaults(email: &MockServer) {
    use wiremock::matchers::{header, method, path};
    use wiremock::{Mock, ResponseTemplate};
    Mock::given(method("POST"))
        .and(path("/emails"))
        .and(header("authorization", format!("Bearer {EMAIL_API_KEY}")))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(serde_json::json!({"id": "email_e2e_default"})),
        )
        .with_priority(10)
        .mount(email)
        .await;
}

/// A model that answers every chat completion with one harmless sentence, at a low priority:
/// tests script their own answers (priority 1–5) for messages carrying their own marker, and
/// the contract fuzzer's chats get a 200 rather than an unscripted 404 from this server.
async fn mount_openai_defaults(openai: &MockServer) {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, ResponseTemplate};
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "id": "chatcmpl-default", "object": "chat.completion", "created": 1,
            "model": "gpt-4o-mini",
            "choices": [{"index": 0, "finish_reason": "stop",
                "message": {"role": "assistant", "content": "I can help with that."}}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
        })))
        .with_priority(10)
        .mount(openai)
        .await;
}

/// `vars` with `{OPENAI_URL}` and `{ANTHROPIC_URL}` in their values replaced by those origins.
fn substitute<'a>(
    vars: &[(&'a str, &str)],
    openai: &str,
    anthropic: &str,
) -> Vec<(&'a str, String)> {
    vars.iter()
        .map(|(k, v)| {
            let v = v
                .replace("{OPENAI_URL}", openai)
                .replace("{ANTHROPIC_URL}", anthropic);
            (*k, v)
        })
        .collect()
}

/// An Anthropic model that answers every message with one harmless sentence, at a low
/// priority (tests script their own answers for their own markers).
async fn mount_anthropic_defaults(anthropic: &MockServer) {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, ResponseTemplate};
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "id": "msg_default", "type": "message", "role": "assistant",
            "model": "claude-3-5-haiku-latest",
            "content": [{"type": "text", "text": "I can help with that."}],
            "stop_reason": "end_turn", "stop_sequence": null,
            "usage": {"input_tokens": 1, "output_tokens": 1}
        })))
        .with_priority(10)
        .mount(anthropic)
        .await;
}

impl Stack {
    /// Starts the scripted servers and the worker; waits until `/health` answers.
    pub async fn start() -> Result<Self> {
        Self::start_with(&[]).await
    }

    /// As [`Stack::start`], with extra worker settings (e.g. `RATE_LIMITS=off`). In their
    /// values, `{OPENAI_URL}` stands for the scripted OpenAI server's origin (as the worker's
    /// `OPENAI_BASE_URL` reaches it) and `{ANTHROPIC_URL}` for the scripted Anthropic server's
    /// (e.g. in `LLM_PROVIDERS`).
    #[allow(clippy::too_many_lines)] // one line per setting
    pub async fn start_with(extra_vars: &[(&str, &str)]) -> Result<Self> {
        let root = repo_root();
        let run_dir = root.join("target/e2e");
        fs::create_dir_all(&run_dir)?;
        // Unique per stack: a port just probed free may be probed again by the next stack, and
        // two stacks sharing a directory wipe each other's state.
        let stack_id = uuid::Uuid::new_v4().simple().to_string();
        let persist = run_dir.join(format!("state-{}-{stack_id}", std::process::id()));
        if persist.exists() {
            fs::remove_dir_all(&persist)?;
        }
        let log_path = if extra_vars.is_empty() {
            run_dir.join("wrangler.log")
        } else {
            run_dir.join(format!("wrangler-{stack_id}.log"))
        };

        let openai = MockServer::start().await;
        let anthropic = MockServer::start().await;
        mount_anthropic_defaults(&anthropic).await;
        let stripe = MockServer::start().await;
        mount_stripe_defaults(&stripe).await;
        let email = MockServer::start().await;
        mount_email_defaults(&email).await;
        mount_openai_defaults(&openai).await;
        let stream_model = StreamModel::start(openai.uri())
            .await
            .context("starting the streaming model")?;

        eprintln!("==> applying D1 migrations into {}", persist.display());
        let out = wrangler_cmd(&root)
            .args(["d1", "migrations", "apply", "DB", "--local", "--persist-to"])
            .arg(&persist)
            .output()
            .context("running wrangler d1 migrations apply")?;
        if !out.status.success() {
            bail!(
                "migrations failed:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }

        let port = free_port()?;
        let inspector = free_port()?;
        let vars = [
            ("ENV", "dev".to_owned()),
            ("JWT_SECRET", JWT_SECRET.to_owned()),
            (
                "ADMIN_EMAILS",
                format!(
                    "{ADMIN_EMAIL},{SECOND_ADMIN_EMAIL},{OPS_ADMIN_EMAIL},\
                     {UNVERIFIED_ADMIN_EMAIL},{CONSOLE_ADMIN_EMAIL}"
                ),
            ),
            ("OPENAI_API_KEY", "sk-e2e".to_owned()),
            ("OPENAI_BASE_URL", format!("{}/v1", stream_model.uri())),
            // Short, so the timeout test is quick; the scripted server answers in microseconds.
            ("OPENAI_TIMEOUT_MS", "2000".to_owned()),
            ("STRIPE_SECRET_KEY", "sk_test_e2e".to_owned()),
            ("STRIPE_WEBHOOK_SECRET", STRIPE_WEBHOOK_SECRET.to_owned()),
            ("STRIPE_API_BASE", stripe.uri()),
            ("STRIPE_PRICE_PRO", PRICE_PRO.to_owned()),
            ("STRIPE_PRICE_POWER", PRICE_POWER.to_owned()),
            ("STRIPE_PRICE_TEAM", PRICE_TEAM.to_owned()),
            ("CORS_ORIGINS", "https://web.e2e.example".to_owned()),
            ("EMAIL_API_BASE", email.uri()),
            ("EMAIL_API_KEY", EMAIL_API_KEY.to_owned()),
            ("EMAIL_FROM", "Adiuva <no-reply@e2e.example.com>".to_owned()),
            // WebSocket keep-alive pings every second instead of 30 (the ping test waits for them).
            ("CHAT_PING_MS", "1000".to_owned()),
        ];
        let log = File::create(&log_path)?;
        let mut cmd = wrangler_cmd(&root);
        cmd.args(["dev", "--ip", "127.0.0.1", "--port"])
            .arg(port.to_string())
            .arg("--inspector-port")
            .arg(inspector.to_string())
            .arg("--persist-to")
            .arg(&persist)
            .args([
                // Serves GET /__scheduled?cron=… (see `Stack::run_cron`).
                "--test-scheduled",
                "--show-interactive-dev-session=false",
                "--log-level",
                "info",
            ]);
        let extra = substitute(extra_vars, stream_model.uri(), &anthropic.uri());
        for (k, v) in vars.iter().chain(extra.iter()) {
            cmd.arg("--var").arg(format!("{k}:{v}"));
        }
        eprintln!(
            "==> starting wrangler dev on 127.0.0.1:{port} (log: {})",
            log_path.display()
        );
        let wrangler = cmd
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0)
            .spawn()
            .context("spawning wrangler dev")?;

        let mut stack = Self {
            base_url: format!("http://127.0.0.1:{port}"),
            openai,
            stream_model,
            anthropic,
            stripe,
            email,
            log_path,
            persist_dir: persist,
            wrangler,
        };
        stack.wait_healthy(Duration::from_secs(300)).await?;
        Ok(stack)
    }

    async fn wait_healthy(&mut self, timeout: Duration) -> Result<()> {
        let client = reqwest::Client::new();
        let url = format!("{}/api/v1/health", self.base_url);
        let started = Instant::now();
        loop {
            if let Some(status) = self.wrangler.try_wait()? {
                bail!(
                    "wrangler dev exited with {status}:\n{}",
                    self.log_tail(4000)
                );
            }
            if let Ok(r) = client
                .get(&url)
                .timeout(Duration::from_secs(2))
                .send()
                .await
            {
                if r.status().is_success() {
                    eprintln!(
                        "==> worker healthy after {:.1}s",
                        started.elapsed().as_secs_f64()
                    );
                    return Ok(());
                }
            }
            if started.elapsed() > timeout {
                bail!(
                    "worker not healthy after {timeout:?}:\n{}",
                    self.log_tail(4000)
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Runs `sql` against the worker's local D1 (as `wrangler d1 execute DB --local` on the
    /// run's persist directory), while the worker runs; returns wrangler's JSON output.
    #[allow(dead_code)]
    pub async fn d1_execute(&self, sql: &str) -> Result<serde_json::Value> {
        let mut cmd = wrangler_cmd(&repo_root());
        cmd.args(["d1", "execute", "DB", "--local", "--json", "--persist-to"])
            .arg(&self.persist_dir)
            .arg("--command")
            .arg(sql);
        let out = tokio::process::Command::from(cmd)
            .output()
            .await
            .context("running wrangler d1 execute")?;
        if !out.status.success() {
            bail!(
                "wrangler d1 execute failed:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        serde_json::from_slice(&out.stdout).with_context(|| {
            format!(
                "wrangler d1 execute printed no JSON:\n{}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    /// Stores `bytes` under `key` in the local R2 bucket `bucket` (its `bucket_name`), as a
    /// crash would leave an object behind: behind the worker's back.
    #[allow(dead_code)]
    pub async fn r2_put(&self, bucket: &str, key: &str, bytes: &[u8]) -> Result<()> {
        let file = self
            .persist_dir
            .with_extension(format!("put-{}", uuid::Uuid::new_v4().simple()));
        fs::write(&file, bytes)?;
        let mut cmd = wrangler_cmd(&repo_root());
        cmd.args(["r2", "object", "put"])
            .arg(format!("{bucket}/{key}"))
            .args(["--local", "--file"])
            .arg(&file)
            .arg("--persist-to")
            .arg(&self.persist_dir);
        let out = tokio::process::Command::from(cmd)
            .output()
            .await
            .context("running wrangler r2 object put")?;
        let _ = fs::remove_file(&file);
        if !out.status.success() {
            bail!(
                "wrangler r2 object put failed:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    }

    /// Fires the worker's cron (`*/30 * * * *` in wrangler.toml) through wrangler dev's
    /// `/__scheduled` (served with `--test-scheduled`); returns once the handler finished.
    #[allow(dead_code)]
    pub async fn run_cron(&self) -> Result<()> {
        let r = reqwest::Client::new()
            .get(format!("{}/__scheduled?cron=*/30+*+*+*+*", self.base_url))
            .timeout(Duration::from_secs(60))
            .send()
            .await
            .context("GET /__scheduled")?;
        let status = r.status();
        let body = r.text().await.unwrap_or_default();
        if !status.is_success() {
            bail!("/__scheduled answered {status}: {body}");
        }
        Ok(())
    }

    /// The process group of wrangler and its workerd children.
    pub fn process_group(&self) -> u32 {
        self.wrangler.id()
    }

    /// The whole wrangler log so far.
    pub fn log(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = File::open(&self.log_path) {
            let _ = f.read_to_string(&mut s);
        }
        s
    }

    /// The whole wrangler log once it holds `needle`, or as it stands after `within` (wrangler
    /// writes a request's log lines a moment after the response, later still under load).
    pub async fn log_once_it_holds(&self, needle: &str, within: std::time::Duration) -> String {
        let deadline = std::time::Instant::now() + within;
        loop {
            let log = self.log();
            if log.contains(needle) || std::time::Instant::now() >= deadline {
                return log;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    /// The last `n` bytes of the log.
    pub fn log_tail(&self, n: usize) -> String {
        let log = self.log();
        let start = log.len().saturating_sub(n);
        let start = (start..log.len())
            .find(|&i| log.is_char_boundary(i))
            .unwrap_or(log.len());
        log[start..].to_owned()
    }
}

impl Stack {
    /// Kills wrangler's whole process group with SIGKILL (a crash: no graceful shutdown), then
    /// starts it again with the very same command line — same port, settings and persist
    /// directory (read back from `/proc/<pid>/cmdline`) — and waits until `/health` answers.
    /// For a stack of its own ([`Stack::start_with`]), never the shared one.
    #[allow(dead_code)]
    pub async fn restart(&mut self) -> Result<()> {
        let raw = fs::read(format!("/proc/{}/cmdline", self.wrangler.id()))
            .context("reading wrangler's command line")?;
        let argv: Vec<String> = raw
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let (program, args) = argv.split_first().context("an empty command line")?;
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.process_group())])
            .stderr(Stdio::null())
            .status();
        let _ = self.wrangler.wait();
        // workerd may outlive the signal for an instant: wait until the port is free again.
        let port = self
            .base_url
            .rsplit(':')
            .next()
            .unwrap_or_default()
            .to_owned();
        let freed = Instant::now();
        while TcpListener::bind(format!("127.0.0.1:{port}")).is_err() {
            if freed.elapsed() > Duration::from_secs(10) {
                bail!("port {port} still busy 10 s after the kill");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let log = fs::OpenOptions::new().append(true).open(&self.log_path)?;
        // wrangler_cmd's environment (PATH, no metrics); the program and arguments from argv.
        let cmd = wrangler_cmd(&repo_root());
        let mut restarted = Command::new(program);
        restarted
            .args(args)
            .current_dir(repo_root())
            .envs(cmd.get_envs().filter_map(|(k, v)| v.map(|v| (k, v))))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0);
        eprintln!("==> restarting wrangler dev: {program} {}", args.join(" "));
        self.wrangler = restarted.spawn().context("respawning wrangler dev")?;
        self.wait_healthy(Duration::from_secs(120)).await
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // wrangler runs workerd as a child: signal the whole process group it leads.
        let group = format!("-{}", self.process_group());
        let signal = |sig: &str| {
            let _ = Command::new("kill")
                .args([sig, "--", &group])
                .stderr(Stdio::null())
                .status();
        };
        signal("-TERM");
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if matches!(self.wrangler.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        signal("-KILL");
        let _ = self.wrangler.wait();
    }
}
