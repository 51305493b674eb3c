//! Load under `wrangler dev`: each route is driven for a fixed time by a fixed number of
//! concurrent clients (after a short warm-up), and its throughput and p50/p99 latency are printed
//! next to `GET /api/v1/health` of the same worker in the same run — the ratio is the figure,
//! since the local proxy and this machine dominate absolute numbers. `/health` runs several
//! times between the other phases, so drift over the run shows.
//!
//! One worker, with the limiter **on** (as in production): every request of an authenticated route
//! takes its unit from the user's home. Each of the [`CONCURRENCY`] clients cycles through
//! [`USERS_PER_CLIENT`] team accounts of its own, so no user reaches the team's 200 requests a
//! minute (the limiter is paid for on every request but never refuses). Two phases then spread the
//! same clients over [`MANY_USERS`] distinct users, each client cycling through its share, to show
//! that throughput does not depend on how many homes there are. Last, fresh free users each fire
//! 40 requests at once, and exactly 20 must pass and 20 be refused with 429. Any other non-2xx
//! answer, and any transport error, is an error; the bench exits non-zero if there is one. Only
//! 127.0.0.1 is contacted; every phase is bounded in time (about three minutes, plus the worker's
//! start and the users' registration). A phase's req/s is the requests its clients started before
//! its deadline over the time until the last of them finished; its p50/p99 are over those
//! requests.
//!
//! The CPU column is workerd's own CPU time (user + system, from `/proc`) over the measured phase
//! divided by its requests: what the worker, its Durable Objects and the runtime spent per
//! request, without the load generator and wrangler's proxy (10 ms clock ticks, so a phase's
//! total is exact to ±10 ms).
//!
//! Then the same kind of clients drive the **floor** (`bench-worker/floor/`): a plain JavaScript
//! worker with DESIGN.md's hop budget and nothing else — an HS256 check in the worker, one home
//! Durable Object call per request (admit + reserve, then commit, for a write) with the home's
//! limiter (200 a minute, written as the home writes it), R2 for the bytes — under its own
//! `wrangler dev`, against its own `GET /health`: what that hop budget costs on this machine
//! with no code of ours in the way.
//! `LOAD_FLOOR=only` runs the floor alone, `LOAD_FLOOR=off` the API alone.
//!
//! Run: `scripts/bench.sh` (or `cargo bench -p tests --bench load` with the toolchain set up
//! and the worker built by `scripts/build-worker.sh`).

#[path = "../api/harness.rs"]
#[allow(dead_code)]
mod harness;

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use futures_util::future::join_all;
use futures_util::{stream, StreamExt};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

use harness::{make_team, percentile_ms, Stack};
use shared::auth::tokens::AccessTokens;
use shared::domain::{Tier, UserId};

/// Concurrent clients in every throughput phase.
const CONCURRENCY: usize = 16;
/// Team accounts each client cycles through: at ~20 requests a second per client, four keep
/// every user under 200 a minute over the whole run.
const USERS_PER_CLIENT: usize = 4;
/// Measured time of a throughput phase.
const PHASE: Duration = Duration::from_secs(8);
/// Unmeasured time before it (its errors still count).
const WARMUP: Duration = Duration::from_secs(2);
/// Login is argon2id (~36 ms of CPU each): a shorter phase.
const LOGIN_PHASE: Duration = Duration::from_secs(5);
const LOGIN_WARMUP: Duration = Duration::from_secs(1);
/// Distinct users of the many-users phases.
const MANY_USERS: usize = 1000;
/// Their warm-up: long enough to reach every user once, so the phase measures homes in use
/// (a home idle for over a minute first reloads its copy of the account from D1 — by design,
/// and once per user, which would otherwise dominate a phase this short).
const MANY_WARMUP: Duration = Duration::from_secs(10);
/// Free users in the burst phase, each firing [`BURST`] requests at once.
const BURST_USERS: usize = 3;
const BURST: usize = 40;
/// The free tier's per-minute allowance (README "Rate limits"): what a burst lets through.
const FREE_LIMIT: usize = 20;
const RECORD_BYTES: usize = 1024;
const BACKUP_BYTES: usize = 64 * 1024;
const PASSWORD: &str = "load password";
/// Request ids of failed requests kept per row (their worker log lines are printed).
const EXAMPLES: usize = 3;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Op {
    Health,
    Refresh,
    Me,
    Login,
    Create,
    Get,
    Update,
    Backup,
    Chat,
}

impl Op {
    fn label(self) -> &'static str {
        match self {
            Op::Health => "GET /health",
            Op::Refresh => "POST /auth/refresh (rotation)",
            Op::Me => "GET /auth/me",
            Op::Login => "POST /auth/login (argon2id)",
            Op::Create => "POST /storage/records (1 KB)",
            Op::Get => "GET /storage/records/{id}",
            Op::Update => "PUT /storage/records/{id} If-Match",
            Op::Backup => "PUT /backup (64 KB)",
            Op::Chat => "POST /chat (2 LLM calls)",
        }
    }
}

/// What every client shares.
struct Shared {
    client: reqwest::Client,
    base: String,
    record_create: String,
    record_update: String,
    backup: Vec<u8>,
    backup_checksum: String,
    chat: String,
    /// wrangler's process group, whose workerd processes run the worker.
    group: u32,
}

impl Shared {
    fn url(&self, p: &str) -> String {
        format!("{}/api/v1{p}", self.base)
    }
}

/// One client: its own (team) account, token chain and records.
struct Client {
    email: String,
    access: String,
    refresh: String,
    /// `(id, current ETag)` of the records it created.
    records: Vec<(String, String)>,
    cursor: usize,
    seq: u64,
}

enum Outcome {
    Ok,
    Failed(String),
}

/// One row of the table.
struct Row {
    name: String,
    requests: usize,
    wall: Duration,
    latencies: Vec<Duration>,
    errors: usize,
    limited: usize,
    examples: Vec<String>,
    /// workerd's CPU time over the measured phase, when it could be read.
    cpu: Option<Duration>,
    /// `/health` rows are the baseline; the burst's ratio means nothing.
    kind: RowKind,
}

#[derive(PartialEq, Eq)]
enum RowKind {
    Health,
    Route,
    Burst,
}

impl Row {
    #[allow(clippy::cast_precision_loss)]
    fn rps(&self) -> f64 {
        self.requests as f64 / self.wall.as_secs_f64()
    }

    /// workerd's CPU microseconds per request of the phase.
    #[allow(clippy::cast_precision_loss)]
    fn cpu_us(&self) -> Option<f64> {
        let cpu = self.cpu?;
        (self.requests > 0).then(|| cpu.as_secs_f64() * 1e6 / self.requests as f64)
    }
}

/// The CPU time (user + system) of the workerd processes in process group `group` so far.
fn workerd_cpu(group: u32) -> Option<Duration> {
    // /proc/<pid>/stat: "pid (comm) state ppid pgrp ... utime stime" (fields 14 and 15), in
    // clock ticks of 1/100 s (USER_HZ on Linux).
    let mut ticks = 0u64;
    let mut found = false;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let Some((head, rest)) = stat.rsplit_once(") ") else {
            continue;
        };
        if !head.ends_with("(workerd") {
            continue;
        }
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // rest starts at field 3 (state): pgrp is field 5, utime 14, stime 15.
        if fields.get(2).and_then(|g| g.parse::<u32>().ok()) != Some(group) {
            continue;
        }
        let tick = |i: usize| {
            fields
                .get(i)
                .and_then(|t| t.parse::<u64>().ok())
                .unwrap_or(0)
        };
        ticks += tick(11) + tick(12);
        found = true;
    }
    found.then(|| Duration::from_millis(ticks * 10))
}

/// A unique documentation-range IP (RFC 5737), as the auth tests pick client IPs.
fn unique_ip() -> String {
    let b = uuid::Uuid::new_v4().into_bytes();
    format!("198.51.{}.{}", b[0], b[1].max(1))
}

fn snippet(body: &[u8]) -> String {
    String::from_utf8_lossy(&body[..body.len().min(160)]).into_owned()
}

/// Sends one request of `op` for `c`, checks the answer, and advances `c`'s state.
async fn step(s: &Shared, c: &mut Client, op: Op) -> Outcome {
    match send(s, c, op).await {
        Ok(o) => o,
        Err(e) => Outcome::Failed(format!("transport error: {e}")),
    }
}

/// The request of `op` for `c`, and for a record operation the index of the record it targets.
fn request(
    s: &Shared,
    c: &mut Client,
    op: Op,
) -> Result<(reqwest::RequestBuilder, Option<usize>), String> {
    let http = &s.client;
    let mut slot = None;
    let req = match op {
        Op::Health => http.get(s.url("/health")),
        Op::Me => http.get(s.url("/auth/me")).bearer_auth(&c.access),
        Op::Refresh => http
            .post(s.url("/auth/refresh"))
            .json(&json!({"refresh_token": c.refresh})),
        Op::Login => {
            let ip = unique_ip();
            http.post(s.url("/auth/login"))
                .header("CF-Connecting-IP", &ip)
                .header("X-Forwarded-For", &ip)
                .json(&json!({"email": c.email, "password": PASSWORD}))
        }
        Op::Create => http
            .post(s.url("/storage/records"))
            .bearer_auth(&c.access)
            .header("Content-Type", "application/json")
            .body(s.record_create.clone()),
        Op::Get | Op::Update => {
            if c.records.is_empty() {
                return Err("no record created to use".to_owned());
            }
            let i = c.cursor % c.records.len();
            c.cursor += 1;
            slot = Some(i);
            let (id, etag) = &c.records[i];
            let url = s.url(&format!("/storage/records/{id}"));
            if op == Op::Get {
                http.get(url).bearer_auth(&c.access)
            } else {
                http.put(url)
                    .bearer_auth(&c.access)
                    .header("If-Match", etag)
                    .header("Content-Type", "application/json")
                    .body(s.record_update.clone())
            }
        }
        Op::Backup => {
            c.seq += 1;
            http.put(s.url("/backup"))
                .bearer_auth(&c.access)
                .header("Content-Type", "application/octet-stream")
                .header("X-Backup-Version", "1")
                .header(
                    "X-Backup-Timestamp",
                    (1_700_000_000_000 + c.seq).to_string(),
                )
                .header("X-Backup-Checksum", &s.backup_checksum)
                .body(s.backup.clone())
        }
        Op::Chat => http
            .post(s.url("/chat"))
            .bearer_auth(&c.access)
            .header("Content-Type", "application/json")
            .body(s.chat.clone()),
    };
    Ok((req, slot))
}

async fn send(s: &Shared, c: &mut Client, op: Op) -> Result<Outcome, reqwest::Error> {
    let (req, slot) = match request(s, c, op) {
        Ok(r) => r,
        Err(why) => return Ok(Outcome::Failed(why)),
    };
    let r = req.send().await?;
    let status = r.status();
    let header = |name: &str| {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let request_id = header("x-request-id").unwrap_or_default();
    let etag = header("etag");
    let body = r.bytes().await?;
    let fail = |why: String| Ok(Outcome::Failed(format!("{why} [request {request_id}]")));
    if !status.is_success() {
        return fail(format!("{status}: {}", snippet(&body)));
    }
    let json = || serde_json::from_slice::<Value>(&body).unwrap_or(Value::Null);
    match op {
        Op::Refresh | Op::Login => {
            let b = json();
            let (Some(access), Some(refresh)) =
                (b["access_token"].as_str(), b["refresh_token"].as_str())
            else {
                return fail(format!("{status} without tokens: {}", snippet(&body)));
            };
            if op == Op::Refresh {
                access.clone_into(&mut c.access);
                refresh.clone_into(&mut c.refresh);
            }
        }
        Op::Create => {
            let (Some(id), Some(etag)) = (json()["id"].as_str().map(str::to_owned), etag) else {
                return fail(format!("{status} without id or ETag"));
            };
            c.records.push((id, etag));
        }
        Op::Get if body.len() != RECORD_BYTES => {
            return fail(format!("{status} with {} bytes", body.len()));
        }
        Op::Update => {
            let (Some(i), Some(etag)) = (slot, etag) else {
                return fail(format!("{status} without ETag"));
            };
            c.records[i].1 = etag;
        }
        Op::Chat if json()["response"] != "task_agent" => {
            return fail(format!("{status} with another answer: {}", snippet(&body)));
        }
        _ => {}
    }
    Ok(Outcome::Ok)
}

/// What one client measured.
struct Measured {
    latencies: Vec<Duration>,
    errors: usize,
    examples: Vec<String>,
}

/// Every client sends `op` back to back until `time` has passed, each request as the next user
/// of its group (one user per group in most phases).
async fn drive(
    s: &Arc<Shared>,
    groups: Vec<Vec<Client>>,
    op: Op,
    time: Duration,
) -> (Vec<Vec<Client>>, Vec<Measured>, Duration) {
    let started = Instant::now();
    let deadline = started + time;
    let handles: Vec<_> = groups
        .into_iter()
        .map(|mut group| {
            let s = Arc::clone(s);
            tokio::spawn(async move {
                let mut m = Measured {
                    latencies: Vec::new(),
                    errors: 0,
                    examples: Vec::new(),
                };
                let mut next = 0;
                while Instant::now() < deadline {
                    let slot = next % group.len();
                    let user = &mut group[slot];
                    next += 1;
                    let t = Instant::now();
                    let outcome = step(&s, user, op).await;
                    m.latencies.push(t.elapsed());
                    if let Outcome::Failed(why) = outcome {
                        m.errors += 1;
                        if m.examples.len() < EXAMPLES {
                            m.examples.push(why);
                        }
                    }
                }
                (group, m)
            })
        })
        .collect();
    let (groups, measured) = join_all(handles)
        .await
        .into_iter()
        .map(|h| h.expect("client task"))
        .unzip();
    (groups, measured, started.elapsed())
}

/// A warm-up, then the measured phase; the warm-up's errors count, its latencies do not.
async fn phase(
    s: &Arc<Shared>,
    groups: Vec<Vec<Client>>,
    op: Op,
    name: String,
    (time, warmup): (Duration, Duration),
) -> (Vec<Vec<Client>>, Row) {
    eprintln!(
        "==> {name}: {warmup:?} warm-up, {time:?} measured, {} clients",
        groups.len()
    );
    let (groups, warm, _) = drive(s, groups, op, warmup).await;
    let cpu_before = workerd_cpu(s.group);
    let (groups, measured, wall) = drive(s, groups, op, time).await;
    let cpu = cpu_before
        .zip(workerd_cpu(s.group))
        .map(|(a, b)| b.saturating_sub(a));
    let mut row = Row {
        name,
        requests: 0,
        wall,
        latencies: Vec::new(),
        errors: 0,
        limited: 0,
        examples: Vec::new(),
        cpu,
        kind: if op == Op::Health {
            RowKind::Health
        } else {
            RowKind::Route
        },
    };
    for m in &measured {
        row.requests += m.latencies.len();
        row.latencies.extend_from_slice(&m.latencies);
    }
    for m in warm.into_iter().chain(measured) {
        row.errors += m.errors;
        for e in m.examples {
            if row.examples.len() < EXAMPLES {
                row.examples.push(e);
            }
        }
    }
    (groups, row)
}

/// Registers a user; returns `(access, refresh)`.
async fn register(client: &reqwest::Client, base: &str, email: &str) -> (String, String) {
    let r = client
        .post(format!("{base}/api/v1/auth/register"))
        .header("CF-Connecting-IP", harness::random_ip())
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .expect("register");
    assert_eq!(r.status(), StatusCode::CREATED, "register {email}");
    let b: Value = r.json().await.expect("register JSON");
    (
        b["access_token"].as_str().expect("access").to_owned(),
        b["refresh_token"].as_str().expect("refresh").to_owned(),
    )
}

/// The user id (`sub`) inside an access token.
fn user_id_of(access: &str) -> String {
    let payload = access.split('.').nth(1).expect("a JWT");
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .expect("base64url claims"),
    )
    .expect("JSON claims");
    claims["sub"].as_str().expect("sub").to_owned()
}

async fn team_client(client: &reqwest::Client, base: &str) -> Client {
    let email = format!("load-{}@bench.example.com", uuid::Uuid::new_v4().simple());
    let (access, refresh) = register(client, base, &email).await;
    make_team(client, base, &user_id_of(&access)).await;
    Client {
        email,
        access,
        refresh,
        records: Vec::new(),
        cursor: 0,
        seq: 0,
    }
}

/// Fresh free users each fire [`BURST`] `GET /auth/me` at once on the worker with the limiter on.
async fn burst_phase(stack: &Stack) -> Row {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let base = &stack.base_url;
    let mut row = Row {
        name: format!("GET /auth/me burst: {BURST_USERS} free users x {BURST} at once"),
        requests: 0,
        wall: Duration::ZERO,
        latencies: Vec::new(),
        errors: 0,
        limited: 0,
        examples: Vec::new(),
        cpu: None,
        kind: RowKind::Burst,
    };
    eprintln!("==> {}", row.name);
    for _ in 0..BURST_USERS {
        let email = format!("burst-{}@bench.example.com", uuid::Uuid::new_v4().simple());
        let (access, _) = register(&client, base, &email).await;
        let url = format!("{base}/api/v1/auth/me");
        let started = Instant::now();
        let answers = join_all((0..BURST).map(|_| {
            let req = client.get(&url).bearer_auth(&access);
            async move {
                let t = Instant::now();
                let r = req.send().await;
                let r = match r {
                    Ok(r) => {
                        let status = r.status();
                        let rid = r
                            .headers()
                            .get("x-request-id")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_owned();
                        match r.bytes().await {
                            Ok(body) => Ok((status, rid, body)),
                            Err(e) => Err(e),
                        }
                    }
                    Err(e) => Err(e),
                };
                (t.elapsed(), r)
            }
        }))
        .await;
        row.wall += started.elapsed();
        let (mut passed, mut refused) = (0usize, 0usize);
        for (latency, answer) in answers {
            row.requests += 1;
            row.latencies.push(latency);
            let why = match answer {
                Ok((StatusCode::OK, ..)) => {
                    passed += 1;
                    continue;
                }
                Ok((StatusCode::TOO_MANY_REQUESTS, ..)) => {
                    refused += 1;
                    continue;
                }
                Ok((status, rid, body)) => {
                    format!("{status}: {} [request {rid}]", snippet(&body))
                }
                Err(e) => format!("transport error: {e}"),
            };
            row.errors += 1;
            if row.examples.len() < EXAMPLES {
                row.examples.push(why);
            }
        }
        // Exactly the allowance passes: a 200 or a 429 beyond it is an error.
        row.limited += refused.min(FREE_LIMIT);
        let wrong = passed.saturating_sub(FREE_LIMIT) + refused.saturating_sub(BURST - FREE_LIMIT);
        if wrong > 0 {
            row.errors += wrong;
            row.examples
                .push(format!("burst let {passed} through and refused {refused}"));
        }
    }
    row
}

/// The worker answers every chat completion with `task_agent`: the classifier routes there, and
/// the agent answers that text (as `tests/benches/chat.rs` scripts it).
async fn script_openai(stack: &Stack) {
    let completion = json!({
        "id": "chatcmpl-load", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini",
        "choices": [{"index": 0, "finish_reason": "stop",
            "message": {"role": "assistant", "content": "task_agent"}}],
        "usage": {"prompt_tokens": 100, "completion_tokens": 5, "total_tokens": 105}
    });
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(&completion))
        .mount(&stack.openai)
        .await;
}

fn shared(base: &str, group: u32) -> Shared {
    let blob = |seed: u8| -> Vec<u8> {
        (0..RECORD_BYTES)
            .map(|i| u8::try_from(i % 251).unwrap() ^ seed)
            .collect()
    };
    let (v1, v2) = (blob(0), blob(0x5a));
    let backup: Vec<u8> = (0..BACKUP_BYTES)
        .map(|i| u8::try_from(i % 253).unwrap())
        .collect();
    Shared {
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap(),
        base: base.to_owned(),
        record_create: json!({"table": "load", "blob": STANDARD.encode(&v1),
            "checksum": hex::encode(Sha256::digest(&v1))})
        .to_string(),
        record_update: json!({"blob": STANDARD.encode(&v2),
            "checksum": hex::encode(Sha256::digest(&v2))})
        .to_string(),
        backup_checksum: hex::encode(Sha256::digest(&backup)),
        backup,
        chat: json!({"message": "What is due today?",
            "context": {"recent_tasks": [{"id": 1, "title": "Write report", "status": "todo"}]}})
        .to_string(),
        group,
    }
}

/// Every throughput phase, in order: one user per client, then many users per client.
async fn throughput_phases(stack: &Stack) -> Vec<Row> {
    script_openai(stack).await;
    let s = Arc::new(shared(&stack.base_url, stack.process_group()));
    let clients: Vec<Client> = stream::iter(0..CONCURRENCY * USERS_PER_CLIENT)
        .map(|_| team_client(&s.client, &s.base))
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let plan = [
        Op::Health,
        Op::Refresh,
        Op::Me,
        Op::Health,
        Op::Login,
        Op::Create,
        Op::Get,
        Op::Update,
        Op::Health,
        Op::Backup,
        Op::Chat,
        Op::Health,
    ];
    let mut groups: Vec<Vec<Client>> = (0..CONCURRENCY).map(|_| Vec::new()).collect();
    for (i, c) in clients.into_iter().enumerate() {
        groups[i % CONCURRENCY].push(c);
    }
    let mut rows = Vec::new();
    for op in plan {
        let (name, times) = match op {
            Op::Login => (
                format!("{}, own account, new IP per request", op.label()),
                (LOGIN_PHASE, LOGIN_WARMUP),
            ),
            _ => (op.label().to_owned(), (PHASE, WARMUP)),
        };
        let (back, row) = phase(&s, groups, op, name, times).await;
        groups = back;
        rows.push(row);
    }
    rows.extend(many_users_phases(&s).await);
    let health_runs = rows.iter().filter(|r| r.kind == RowKind::Health).count();
    for (i, r) in rows
        .iter_mut()
        .filter(|r| r.kind == RowKind::Health)
        .enumerate()
    {
        r.name = format!("{} ({}/{health_runs})", r.name, i + 1);
    }
    rows
}

/// [`MANY_USERS`] team users, each with one record, spread over the clients: `/auth/me` and
/// record `GET` again, then `/health`.
async fn many_users_phases(s: &Arc<Shared>) -> Vec<Row> {
    eprintln!("==> registering {MANY_USERS} team users with one record each");
    let started = Instant::now();
    let users: Vec<Client> = stream::iter(0..MANY_USERS)
        .map(|_| {
            let s = Arc::clone(s);
            async move {
                let mut c = team_client(&s.client, &s.base).await;
                if let Outcome::Failed(why) = step(&s, &mut c, Op::Create).await {
                    panic!("a many-users record: {why}");
                }
                c
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    eprintln!("    ready in {:.1?}", started.elapsed());
    let mut groups: Vec<Vec<Client>> = (0..CONCURRENCY).map(|_| Vec::new()).collect();
    for (i, c) in users.into_iter().enumerate() {
        groups[i % CONCURRENCY].push(c);
    }
    let mut rows = Vec::new();
    for op in [Op::Me, Op::Get, Op::Health] {
        let name = if op == Op::Health {
            op.label().to_owned()
        } else {
            format!("{}, {MANY_USERS} users", op.label())
        };
        let warmup = if op == Op::Health {
            WARMUP
        } else {
            MANY_WARMUP
        };
        let (back, row) = phase(s, groups, op, name, (PHASE, warmup)).await;
        groups = back;
        rows.push(row);
    }
    rows
}

fn print_table(rows: &[Row]) {
    let health: Vec<f64> = rows
        .iter()
        .filter(|r| r.kind == RowKind::Health)
        .map(Row::rps)
        .collect();
    #[allow(clippy::cast_precision_loss)]
    let baseline = health.iter().sum::<f64>() / health.len() as f64;
    println!(
        "load benchmark: {CONCURRENCY} concurrent clients per phase, {}s measured after {}s warm-up \
         (login {}s after {}s); one worker with the limiter on; each client {USERS_PER_CLIENT} team accounts of its own, \
         then {MANY_USERS} users spread over the clients; burst: free users ({FREE_LIMIT}/min)",
        PHASE.as_secs(),
        WARMUP.as_secs(),
        LOGIN_PHASE.as_secs(),
        LOGIN_WARMUP.as_secs()
    );
    println!(
        "ratio = route req/s / mean GET /health req/s of the run ({baseline:.1} req/s over {} runs); \
         CPU = workerd's CPU time over the phase / its requests",
        health.len()
    );
    println!();
    println!(
        "| {:<62} | {:>8} | {:>8} | {:>8} | {:>8} | {:>8} | {:>9} | {:>6} | {:>5} |",
        "route", "requests", "req/s", "p50 ms", "p99 ms", "ratio", "CPU µs/req", "errors", "429s"
    );
    println!(
        "|{}|{}:|{}:|{}:|{}:|{}:|{}:|{}:|{}:|",
        "-".repeat(64),
        "-".repeat(9),
        "-".repeat(9),
        "-".repeat(9),
        "-".repeat(9),
        "-".repeat(9),
        "-".repeat(10),
        "-".repeat(7),
        "-".repeat(6)
    );
    for r in rows {
        let ratio = if r.kind == RowKind::Burst {
            "n/a".to_owned()
        } else {
            format!("{:.3}", r.rps() / baseline)
        };
        let cpu = r
            .cpu_us()
            .map_or_else(|| "n/a".to_owned(), |us| format!("{us:.0}"));
        let (p50, p99) = if r.latencies.is_empty() {
            (f64::NAN, f64::NAN)
        } else {
            (
                percentile_ms(&r.latencies, 0.5),
                percentile_ms(&r.latencies, 0.99),
            )
        };
        println!(
            "| {:<62} | {:>8} | {:>8.1} | {:>8.2} | {:>8.2} | {:>8} | {:>9} | {:>6} | {:>5} |",
            r.name,
            r.requests,
            r.rps(),
            p50,
            p99,
            ratio,
            cpu,
            r.errors,
            r.limited
        );
    }
}

fn print_machine() {
    let cpus = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned());
    println!();
    println!(
        "machine: nproc {cpus}, CPU {model} (the load generator shares it with wrangler and workerd)"
    );
}

/// Prints the failures and the worker's log lines of their requests; returns the error count.
fn report_errors(rows: &[Row], log_paths: &[&std::path::Path]) -> usize {
    let total: usize = rows.iter().map(|r| r.errors).sum();
    let logs: Vec<String> = log_paths
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap_or_default())
        .collect();
    for (path, log) in log_paths.iter().zip(&logs) {
        let count = |level: &str| log.matches(&format!("\"level\":\"{level}\"")).count();
        println!(
            "worker log {}: {} ERROR, {} WARN lines",
            path.display(),
            count("ERROR"),
            count("WARN")
        );
    }
    if total == 0 {
        println!("errors: none");
        return 0;
    }
    println!("errors: {total}");
    for r in rows.iter().filter(|r| r.errors > 0) {
        println!("  {}: {} errors, e.g.", r.name, r.errors);
        for e in &r.examples {
            println!("    {e}");
            let Some(id) = e
                .split("[request ")
                .nth(1)
                .and_then(|t| t.strip_suffix(']'))
                .filter(|id| !id.is_empty())
            else {
                continue;
            };
            for line in logs
                .iter()
                .flat_map(|l| l.lines())
                .filter(|l| l.contains(id))
            {
                println!("      log: {line}");
            }
        }
    }
    total
}

/// The floor worker's `JWT_SECRET` (`bench-worker/floor/wrangler.toml`).
const FLOOR_SECRET: &[u8] = b"load-floor-secret-load-floor-secret-000";

/// The floor worker under its own `wrangler dev`; its process group is killed when dropped.
struct Floor {
    base: String,
    log_path: std::path::PathBuf,
    state: std::path::PathBuf,
    wrangler: std::process::Child,
}

impl Floor {
    async fn start() -> anyhow::Result<Self> {
        use std::os::unix::process::CommandExt;
        let root = harness::repo_root();
        let run_dir = root.join("target/e2e");
        std::fs::create_dir_all(&run_dir)?;
        let id = uuid::Uuid::new_v4().simple().to_string();
        let state = run_dir.join(format!("floor-state-{id}"));
        let log_path = run_dir.join(format!("floor-{id}.log"));
        let log = std::fs::File::create(&log_path)?;
        let port = harness::free_port()?;
        let wrangler = harness::wrangler_cmd(&root)
            .args([
                "dev",
                "-c",
                "bench-worker/floor/wrangler.toml",
                "--ip",
                "127.0.0.1",
            ])
            .arg("--port")
            .arg(port.to_string())
            .arg("--inspector-port")
            .arg(harness::free_port()?.to_string())
            .arg("--persist-to")
            .arg(&state)
            .arg("--show-interactive-dev-session=false")
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0)
            .spawn()?;
        let floor = Self {
            base: format!("http://127.0.0.1:{port}"),
            log_path,
            state,
            wrangler,
        };
        let client = reqwest::Client::new();
        let started = Instant::now();
        loop {
            let up = client
                .get(format!("{}/api/v1/health", floor.base))
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if up {
                return Ok(floor);
            }
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(120),
                "the floor worker did not start: see {}",
                floor.log_path.display()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    fn process_group(&self) -> u32 {
        self.wrangler.id()
    }
}

impl Drop for Floor {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.process_group())])
            .status();
        let _ = self.wrangler.wait();
        let _ = std::fs::remove_dir_all(&self.state);
    }
}

/// A floor client: a fresh user id and an access token the floor worker accepts.
fn floor_client(tokens: &AccessTokens) -> Client {
    let now = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap();
    let user = UserId(uuid::Uuid::new_v4());
    let access = tokens
        .issue(user, Tier::Team, uuid::Uuid::nil(), uuid::Uuid::nil(), now)
        .expect("a floor token")
        .token;
    Client {
        email: String::new(),
        access,
        refresh: String::new(),
        records: Vec::new(),
        cursor: 0,
        seq: 0,
    }
}

/// The floor's phases: the routes with a target, `/health` between them.
async fn floor_phases(floor: &Floor) -> Vec<Row> {
    let s = Arc::new(shared(&floor.base, floor.process_group()));
    let tokens = AccessTokens::new(FLOOR_SECRET, 3600);
    let mut groups: Vec<Vec<Client>> = (0..CONCURRENCY)
        .map(|_| {
            (0..USERS_PER_CLIENT)
                .map(|_| floor_client(&tokens))
                .collect()
        })
        .collect();
    let mut rows = Vec::new();
    for op in [
        Op::Health,
        Op::Me,
        Op::Health,
        Op::Create,
        Op::Get,
        Op::Update,
        Op::Health,
    ] {
        let name = format!("floor: {}", op.label());
        let (back, row) = phase(&s, groups, op, name, (PHASE, WARMUP)).await;
        groups = back;
        rows.push(row);
    }
    rows
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mode = std::env::var("LOAD_FLOOR").unwrap_or_default();
    let errors = rt.block_on(async {
        let mut errors = 0;
        if mode != "only" {
            let stack = Stack::start().await.expect("the worker starts");
            let mut rows = throughput_phases(&stack).await;
            rows.push(burst_phase(&stack).await);
            print_table(&rows);
            print_machine();
            errors += report_errors(&rows, &[&stack.log_path]);
        }
        if mode != "off" {
            let floor = Floor::start().await.expect("the floor worker starts");
            let rows = floor_phases(&floor).await;
            println!();
            println!(
                "floor: bench-worker/floor (JavaScript, the same hop budget), ratios to its own \
                 GET /health"
            );
            print_table(&rows);
            errors += report_errors(&rows, &[&floor.log_path]);
        }
        errors
    });
    drop(rt);
    if errors > 0 {
        std::process::exit(1);
    }
}
