//! Search latency of the local vector index (the `VectorIndex` Durable Object) through the API:
//! 10,000 vectors of 384 dimensions for one user, then 50 `top_k` 10 searches, against
//! `GET /health` in the same run. Random unit vectors (the index is exact, so the data's
//! shape does not change the work). Only 127.0.0.1 is contacted; bounded by counts.

#[path = "../api/harness.rs"]
#[allow(dead_code)]
mod harness;

use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use harness::{percentile_ms, team_user, Stack};

const VECTORS: usize = 10_000;
const DIMS: usize = 384;
const BATCH: usize = 100;
const SEARCHES: usize = 50;

/// A deterministic unit vector (xorshift), so runs compare.
fn unit(seed: u64) -> Vec<f32> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut v: Vec<f32> = (0..DIMS)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            #[allow(clippy::cast_precision_loss)]
            let f = (x % 2_000_000) as f32 / 1_000_000.0 - 1.0;
            f
        })
        .collect();
    let norm = v.iter().map(|a| a * a).sum::<f32>().sqrt();
    for a in &mut v {
        *a /= norm;
    }
    v
}

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

        let t = Instant::now();
        for b in 0..VECTORS / BATCH {
            let items: Vec<Value> = (0..BATCH)
                .map(|i| {
                    let n = b * BATCH + i;
                    let blob = format!("payload-{n}");
                    json!({"id": format!("v{n}"), "values": unit(n as u64),
                        "blob": STANDARD.encode(&blob), "checksum": hex::encode(Sha256::digest(&blob))})
                })
                .collect();
            let r = client.post(format!("{base}/api/v1/storage/vectors/upsert")).bearer_auth(&token)
                .json(&json!({"vectors": items})).send().await.unwrap();
            assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
        }
        let load = t.elapsed();

        let (mut search_lat, mut health_lat) = (Vec::new(), Vec::new());
        for q in 0..SEARCHES {
            let query = unit(1_000_000 + q as u64);
            let t = Instant::now();
            let r: Value = client.post(format!("{base}/api/v1/storage/vectors/search")).bearer_auth(&token)
                .json(&json!({"vector": query, "top_k": 10})).send().await.unwrap().json().await.unwrap();
            search_lat.push(t.elapsed());
            assert_eq!(r["results"].as_array().map(Vec::len), Some(10));
            let t = Instant::now();
            let _ = client.get(format!("{base}/api/v1/health")).send().await.unwrap().bytes().await;
            health_lat.push(t.elapsed());
        }
        let overhead: Vec<Duration> = search_lat.iter().zip(&health_lat).map(|(s, h)| s.saturating_sub(*h)).collect();
        println!("vector benchmark: {VECTORS} vectors x {DIMS} dims in one user's local index (loaded in {:.1} s, {BATCH} per upsert)", load.as_secs_f64());
        println!("search top_k 10      p50 {:>7.2} ms   p99 {:>7.2} ms", percentile_ms(&search_lat, 0.5), percentile_ms(&search_lat, 0.99));
        println!("GET /health          p50 {:>7.2} ms   p99 {:>7.2} ms", percentile_ms(&health_lat, 0.5), percentile_ms(&health_lat, 0.99));
        println!("search minus health  p50 {:>7.2} ms   p99 {:>7.2} ms", percentile_ms(&overhead, 0.5), percentile_ms(&overhead, 0.99));
        drop(stack);
    });
}
