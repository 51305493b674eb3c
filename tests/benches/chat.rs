//! What the worker adds to one chat round trip: `POST /chat` (classifier call + one agent call
//! to the scripted OpenAI server) against the same two calls made directly to that server, in
//! the same run, interleaved. The difference is the worker's own cost (routing, auth, D1 tier
//! read, rate limiter, orchestration, sanitizer) plus wrangler's local proxy. Only 127.0.0.1 is
//! contacted; bounded by request counts.

#[path = "../api/harness.rs"]
#[allow(dead_code)]
mod harness;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

use harness::{percentile_ms, team_user, Stack};

const ROUNDS: usize = 300;

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let stack = Stack::start().await.expect("worker");
        let completion = json!({
            "id": "chatcmpl-bench", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini",
            "choices": [{"index": 0, "finish_reason": "stop",
                "message": {"role": "assistant", "content": "task_agent"}}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 5, "total_tokens": 105}
        });
        Mock::given(method("POST"))
            .and(path("/v1/chat/completions"))
            .respond_with(ResponseTemplate::new(200).set_body_json(&completion))
            .mount(&stack.openai)
            .await;
        let client = reqwest::Client::new();
        let base = &stack.base_url;
        let token = team_user(&client, base).await;
        let upstream = format!("{}/v1/chat/completions", stack.openai.uri());
        let request = json!({"message": "What is due today?",
            "context": {"recent_tasks": [{"id": 1, "title": "Write report", "status": "todo"}]}});
        let direct_body = json!({"model": "gpt-4o-mini", "messages": [
            {"role": "system", "content": "x".repeat(1500)}, {"role": "user", "content": "What is due today?"}]});

        let (mut chat_lat, mut direct_lat) = (Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            let t = Instant::now();
            let r = client.post(format!("{base}/api/v1/chat")).bearer_auth(&token).json(&request).send().await.unwrap();
            assert_eq!(r.status(), 200);
            let body: Value = r.json().await.unwrap();
            assert_eq!(body["response"], "task_agent");
            chat_lat.push(t.elapsed());

            let t = Instant::now();
            for _ in 0..2 {
                let r = client.post(&upstream).bearer_auth("sk-e2e").json(&direct_body).send().await.unwrap();
                assert!(r.status().is_success());
                let _ = r.bytes().await;
            }
            direct_lat.push(t.elapsed());
        }
        let overhead: Vec<Duration> = chat_lat.iter().zip(&direct_lat).map(|(c, d)| c.saturating_sub(*d)).collect();
        println!("chat benchmark: {ROUNDS} sequential POST /chat (2 upstream calls each), interleaved with the same 2 calls made directly");
        println!("POST /chat            p50 {:>6.2} ms   p99 {:>6.2} ms", percentile_ms(&chat_lat, 0.5), percentile_ms(&chat_lat, 0.99));
        println!("2 direct upstream     p50 {:>6.2} ms   p99 {:>6.2} ms", percentile_ms(&direct_lat, 0.5), percentile_ms(&direct_lat, 0.99));
        println!("worker overhead       p50 {:>6.2} ms   p99 {:>6.2} ms", percentile_ms(&overhead, 0.5), percentile_ms(&overhead, 0.99));
        drop(stack);
    });
}
