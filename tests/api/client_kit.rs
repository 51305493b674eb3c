//! The desktop app's client kit (`clients/typescript`, `@adiuva/client`) against this worker:
//! mounts the scripted model answers its chat tests stream, then runs its node tests
//! (`node --test`, on the machine's Node — 20, the oldest the kit supports — not wrangler's
//! Node 24) with the worker's URL and the Stripe webhook secret (to upgrade its users) in the
//! environment, and fails with node's whole output unless every test passed.
//!
//! The package must be built first (`scripts/test.sh` does: `npm ci`, `npm run build`, the
//! test compile); this trial does not build it.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness::stream_model::Script;
use crate::harness::STRIPE_WEBHOOK_SECRET;
use crate::helpers::{marker, TestApp};

/// The longest the node tests may take.
const NODE_TIMEOUT: Duration = Duration::from_secs(300);

fn kit_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../clients/typescript")
}

/// `ADIUVA_NODE`, else the first `node` on PATH outside a `node_modules/.bin` (wrangler's Node
/// 24 sits there, first on PATH under scripts/test.sh; the kit is tested on the system's).
pub(crate) fn node_binary() -> PathBuf {
    if let Some(node) = std::env::var_os("ADIUVA_NODE") {
        return PathBuf::from(node);
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .filter(|dir| !dir.ends_with("node_modules/.bin"))
        .map(|dir| dir.join("node"))
        .find(|node| node.is_file())
        .unwrap_or_else(|| PathBuf::from("node"))
}

fn words(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i} ")).collect()
}

pub async fn the_typescript_client_kit_passes_its_node_tests_against_this_worker(app: TestApp) {
    let dir = kit_dir();
    let files = compiled_tests(&dir);
    let scripts = mount_scripts(&app);
    let node = node_binary();
    let version = std::process::Command::new(&node)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    eprintln!(
        "==> client kit: node --test with {} ({version})",
        node.display()
    );
    let started = Instant::now();
    let mut cmd = tokio::process::Command::new(&node);
    // A test that hangs fails by name after 2 minutes instead of stalling the run.
    cmd.args(["--test", "--test-reporter=spec", "--test-timeout=120000"])
        .args(&files)
        .current_dir(&dir)
        .env("ADIUVA_BASE_URL", &app.base)
        .env("ADIUVA_STRIPE_WEBHOOK_SECRET", STRIPE_WEBHOOK_SECRET)
        .env("ADIUVA_E2E_SCRIPTS", scripts.to_string())
        .env("ADIUVA_REQUIRE_E2E", "1")
        .env("NO_COLOR", "1");
    let (status, stdout, stderr) = run(cmd).await;
    let summary: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with('ℹ') || l.contains("recall@"))
        .collect();
    eprintln!(
        "==> client kit: node tests took {:.1} s\n{}",
        started.elapsed().as_secs_f64(),
        summary.join("\n")
    );
    let Some(status) = status else {
        panic!(
            "the node tests ran longer than {NODE_TIMEOUT:?}:\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}"
        );
    };
    assert!(
        status.success(),
        "the client kit's node tests failed ({status}):\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}"
    );
    assert!(
        stdout.contains("ℹ fail 0") && !stdout.contains("ℹ pass 0\n"),
        "node reported no passing run:\n{stdout}"
    );
    assert!(
        stdout.contains("ℹ skipped 0"),
        "some node tests skipped (the worker was not seen?):\n{stdout}"
    );
}

/// The compiled test files (Node 20 takes no glob: `*.test.js`, not the shared helpers).
fn compiled_tests(dir: &Path) -> Vec<String> {
    let tests = dir.join("build-test/test");
    assert!(
        tests.is_dir(),
        "the client kit's tests are not built: run scripts/test.sh (or, in clients/typescript, \
         npm ci && npm run build && npm run pretest)"
    );
    let mut files: Vec<String> = std::fs::read_dir(tests)
        .expect("the compiled tests")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|name| name.ends_with(".test.js"))
        .map(|name| format!("build-test/test/{name}"))
        .collect();
    files.sort();
    assert!(files.len() >= 6, "compiled test files: {files:?}");
    files
}

/// Scripts the streaming model for the kit's chat tests; returns name → marker, text, tokens.
fn mount_scripts(app: &TestApp) -> serde_json::Value {
    let mut scripts = serde_json::Map::new();
    let mut mount = |name: &str, script: Script| {
        let m = marker();
        let tokens = script.text().split_inclusive(' ').count();
        scripts.insert(
            name.to_owned(),
            json!({"marker": m, "text": script.text(), "tokens": tokens}),
        );
        app.stack.stream_model.script(&m, script);
    };
    let plain = [
        "Your ", "week ", "looks ", "calm: ", "two ", "notes ", "left.",
    ];
    mount("plain", Script::new("note_agent", plain));
    // 30 tokens over ~3 s: time to drop the socket after the fifth and resume.
    mount(
        "resume",
        Script::new("note_agent", words("piece", 30)).delay(Duration::from_millis(100)),
    );
    // 60 tokens over ~6 s, cancelled after two.
    mount(
        "cancel",
        Script::new("note_agent", words("long", 60)).delay(Duration::from_millis(100)),
    );
    // Batches: every (non-streamed) call of a plan step carrying the marker answers this text.
    let batch = "Batch item done.";
    let m = marker();
    scripts.insert(
        "batch".to_owned(),
        json!({"marker": m, "text": batch, "tokens": 0}),
    );
    app.stack
        .stream_model
        .script(&m, Script::new(batch, Vec::<String>::new()));
    serde_json::Value::Object(scripts)
}

/// Runs `cmd` with its output captured, at most [`NODE_TIMEOUT`] (`None`: it was killed then).
pub(crate) async fn run(
    mut cmd: tokio::process::Command,
) -> (Option<std::process::ExitStatus>, String, String) {
    let mut child = cmd
        .kill_on_drop(true)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("node starts");
    let read = |pipe: Option<Box<dyn tokio::io::AsyncRead + Unpin + Send>>| {
        tokio::spawn(async move {
            let mut buf = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = tokio::io::AsyncReadExt::read_to_end(&mut pipe, &mut buf).await;
            }
            String::from_utf8_lossy(&buf).into_owned()
        })
    };
    let stdout = read(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = read(child.stderr.take().map(|p| Box::new(p) as _));
    let status = if let Ok(status) = tokio::time::timeout(NODE_TIMEOUT, child.wait()).await {
        Some(status.expect("node ran"))
    } else {
        let _ = child.kill().await;
        None
    };
    (
        status,
        stdout.await.unwrap_or_default(),
        stderr.await.unwrap_or_default(),
    )
}
