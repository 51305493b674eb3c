//! What the per-user rate limiter adds to a request, under `wrangler dev`.
//!
//! Starts two workers in one run — the limiter on, and `RATE_LIMITS=off` — each with a team
//! user of 1000 seats (so nothing is refused), then sends the same authenticated route
//! (`GET /api/v1/auth/me`) to both, interleaved so the machine's noise falls on both alike, and
//! prints p50/p99 latency and throughput of each and the difference. `/health` (no auth, no
//! limiter) is measured too as the floor of the local proxy. Only 127.0.0.1 is contacted; the
//! run is bounded by its request counts. Run: `scripts/bench.sh` (or
//! `cargo bench -p tests --bench limiter` with the toolchain set up).

#[path = "../api/harness.rs"]
#[allow(dead_code)]
mod harness;

use std::time::{Duration, Instant};

use futures_util::future::join_all;

use harness::{percentile_ms, team_user, Stack};

const ROUNDS: usize = 400;
const CONCURRENCY: usize = 4;

async fn timed(client: &reqwest::Client, url: &str, token: Option<&str>) -> Duration {
    let mut req = client.get(url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let started = Instant::now();
    let r = req.send().await.unwrap();
    let status = r.status();
    let _ = r.bytes().await;
    assert!(status.is_success(), "{url}: {status}");
    started.elapsed()
}

struct Series {
    name: &'static str,
    samples: Vec<Duration>,
    wall: Duration,
}

impl Series {
    fn pct(&self, p: f64) -> f64 {
        percentile_ms(&self.samples, p)
    }

    fn print(&self) {
        #[allow(clippy::cast_precision_loss)]
        let rps = self.samples.len() as f64 / self.wall.as_secs_f64();
        println!(
            "{:<34} p50 {:>6.2} ms   p99 {:>6.2} ms   {:>6.0} req/s  ({} requests)",
            self.name,
            self.pct(0.5),
            self.pct(0.99),
            rps,
            self.samples.len()
        );
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let on = Stack::start().await.expect("worker with the limiter");
        let off = Stack::start_with(&[("RATE_LIMITS", "off")]).await.expect("worker without it");
        let client = reqwest::Client::new();
        let token_on = team_user(&client, &on.base_url).await;
        let token_off = team_user(&client, &off.base_url).await;
        let targets = [
            ("GET /auth/me, limiter on", format!("{}/api/v1/auth/me", on.base_url), Some(token_on.as_str())),
            ("GET /auth/me, limiter off", format!("{}/api/v1/auth/me", off.base_url), Some(token_off.as_str())),
            ("GET /health (no auth, no limiter)", format!("{}/api/v1/health", on.base_url), None),
        ];
        // Warm both isolates, their D1 and the rate limiter object.
        for (_, url, token) in &targets {
            for _ in 0..30 {
                timed(&client, url, *token).await;
            }
        }
        let mut series: Vec<Series> = targets
            .iter()
            .map(|(name, _, _)| Series { name, samples: Vec::new(), wall: Duration::ZERO })
            .collect();
        for _ in 0..ROUNDS / CONCURRENCY {
            for (i, (_, url, token)) in targets.iter().enumerate() {
                let started = Instant::now();
                let batch = join_all((0..CONCURRENCY).map(|_| timed(&client, url, *token))).await;
                series[i].wall += started.elapsed();
                series[i].samples.extend(batch);
            }
        }
        println!("limiter benchmark: {ROUNDS} requests per series, {CONCURRENCY} concurrent, interleaved");
        for s in &series {
            s.print();
        }
        println!(
            "limiter adds: p50 {:+.2} ms, p99 {:+.2} ms per request",
            series[0].pct(0.5) - series[1].pct(0.5),
            series[0].pct(0.99) - series[1].pct(0.99)
        );
    });
}
