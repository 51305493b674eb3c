//! Storage figures under `wrangler dev`: (1) throughput and latency of a record create + get
//! (1 KB blobs) against `GET /health` in the same run — the ratio is the figure, since the local
//! proxy dominates absolute numbers; (2) workerd's peak resident memory while a 50 MB backup
//! streams through, against its resident memory before: a worker that buffered the body would
//! grow by at least the body's size. Only 127.0.0.1 is contacted; bounded by request counts.

#[path = "../api/harness.rs"]
#[allow(dead_code)]
mod harness;

use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use harness::{percentile_ms, team_user, Stack};

const PAIRS: usize = 300;

/// Resident memory (KiB) of the workerd processes in wrangler's process group `pgid`.
fn workerd_rss_kib(pgid: u32) -> u64 {
    let out = Command::new("ps")
        .args(["-eo", "pgid=,rss=,comm="])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (g, rss, comm) = (f.next()?, f.next()?, f.next()?);
            if g.parse::<u32>().ok()? == pgid && comm == "workerd" {
                rss.parse::<u64>().ok()
            } else {
                None
            }
        })
        .sum()
}

// One script, read top to bottom: the phases share the stack, the client and the user.
#[allow(clippy::too_many_lines)]
fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let stack = Stack::start().await.expect("worker");
        let client = reqwest::Client::new();
        let base = &stack.base_url;
        let token = team_user(&client, base).await;

        // (1) create + get of 1 KB records, interleaved with the health route.
        let blob: Vec<u8> = (0..1024u32).map(|i| u8::try_from(i % 251).unwrap()).collect();
        let body = json!({"table": "bench", "blob": STANDARD.encode(&blob), "checksum": hex::encode(Sha256::digest(&blob))});
        let (mut pair_lat, mut hello_lat) = (Vec::new(), Vec::new());
        let (mut pair_wall, mut hello_wall) = (Duration::ZERO, Duration::ZERO);
        for _ in 0..PAIRS {
            let t = Instant::now();
            let r: Value = client.post(format!("{base}/api/v1/storage/records")).bearer_auth(&token).json(&body).send().await.unwrap().json().await.unwrap();
            let id = r["id"].as_str().expect("created").to_owned();
            let got = client.get(format!("{base}/api/v1/storage/records/{id}")).bearer_auth(&token).send().await.unwrap().bytes().await.unwrap();
            assert_eq!(got.len(), 1024);
            let e = t.elapsed();
            pair_lat.push(e);
            pair_wall += e;
            let t = Instant::now();
            let r = client.get(format!("{base}/api/v1/health")).send().await.unwrap();
            assert!(r.status().is_success());
            let _ = r.bytes().await;
            let e = t.elapsed();
            hello_lat.push(e);
            hello_wall += e;
        }
        #[allow(clippy::cast_precision_loss)]
        let (pair_rps, hello_rps) = (PAIRS as f64 / pair_wall.as_secs_f64(), PAIRS as f64 / hello_wall.as_secs_f64());
        println!("storage benchmark: {PAIRS} sequential create+get pairs (1 KB) interleaved with GET /health");
        println!("record create+get   {pair_rps:>7.1} pairs/s   p50 {:>6.2} ms   p99 {:>6.2} ms", percentile_ms(&pair_lat, 0.5), percentile_ms(&pair_lat, 0.99));
        println!("GET /health         {hello_rps:>7.1} req/s     p50 {:>6.2} ms   p99 {:>6.2} ms", percentile_ms(&hello_lat, 0.5), percentile_ms(&hello_lat, 0.99));
        println!("ratio: a create+get pair costs {:.1} hello-world requests", hello_rps / pair_rps);

        // (2) memory while a 50 MB backup streams through.
        // `BACKUP_MB` changes the size (e.g. to see whether resident memory scales with it).
        let mb: usize = std::env::var("BACKUP_MB").ok().and_then(|v| v.parse().ok()).unwrap_or(50);
        let size = mb * 1024 * 1024;
        let data: Vec<u8> = (0..size).map(|i| u8::try_from(i % 253).unwrap()).collect();
        let checksum = hex::encode(Sha256::digest(&data));
        tokio::time::sleep(Duration::from_millis(500)).await;
        // The worker's own heap: the access log's `wasm_memory_bytes` of a request before the
        // upload and of the upload and download themselves (wasm memory never shrinks, so each
        // is the high-water mark up to that request).
        let r = client.get(format!("{base}/api/v1/health")).header("X-Request-Id", "bench-mem-before").send().await.unwrap();
        assert_eq!(r.status(), 200);
        let pgid = stack.process_group();
        let before = workerd_rss_kib(pgid);
        assert!(before > 0, "workerd found in process group {pgid}");
        let peak = Arc::new(AtomicU64::new(before));
        let done = Arc::new(AtomicBool::new(false));
        let sampler = {
            let (peak, done) = (Arc::clone(&peak), Arc::clone(&done));
            std::thread::spawn(move || {
                while !done.load(Ordering::Relaxed) {
                    peak.fetch_max(workerd_rss_kib(pgid), Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(25));
                }
            })
        };
        let t = Instant::now();
        let r = client
            .put(format!("{base}/api/v1/backup"))
            .bearer_auth(&token)
            .header("Content-Type", "application/octet-stream")
            .header("X-Backup-Version", "1")
            .header("X-Backup-Timestamp", "1")
            .header("X-Backup-Checksum", &checksum)
            .header("X-Request-Id", "bench-mem-put-50mb")
            .body(data)
            .send()
            .await
            .unwrap();
        let upload = t.elapsed();
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
        let t = Instant::now();
        let back = client.get(format!("{base}/api/v1/backup")).bearer_auth(&token).header("X-Request-Id", "bench-mem-get-50mb").send().await.unwrap().bytes().await.unwrap();
        let download = t.elapsed();
        done.store(true, Ordering::Relaxed);
        sampler.join().unwrap();
        assert_eq!(hex::encode(Sha256::digest(&back)), checksum, "the {mb} MB backup round-trips intact");
        let peak = peak.load(Ordering::Relaxed);
        println!(
            "{mb} MB backup: upload {:.2} s, download {:.2} s; workerd RSS {} MiB before, peak {} MiB (+{} MiB)",
            upload.as_secs_f64(),
            download.as_secs_f64(),
            before / 1024,
            peak / 1024,
            peak.saturating_sub(before) / 1024
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        let log = stack.log();
        let wasm = |id: &str| -> u64 {
            log.lines()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .find(|v| v["message"] == "request" && v["span"]["request_id"] == id)
                .and_then(|v| v["wasm_memory_bytes"].as_u64())
                .unwrap_or_else(|| panic!("no access log line with wasm_memory_bytes for {id}"))
        };
        let (m0, m_put, m_get) = (wasm("bench-mem-before"), wasm("bench-mem-put-50mb"), wasm("bench-mem-get-50mb"));
        println!(
            "worker wasm heap (linear memory): {} KiB before, {} KiB after the {mb} MB upload, {} KiB after the download (+{} KiB)",
            m0 / 1024,
            m_put / 1024,
            m_get / 1024,
            m_get.saturating_sub(m0) / 1024
        );
        assert!(m_get.saturating_sub(m0) < 8 * 1024 * 1024, "the worker's heap grew by {} bytes while {mb} MB streamed", m_get - m0);
        drop(stack);
    });
}
