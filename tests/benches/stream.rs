//! What the worker adds to a streamed chat answer over the WebSocket `GET /chat/stream`, against
//! the scripted streaming model (the harness's front server) read directly over HTTP in the same
//! run, interleaved:
//!
//! - time to first token: ChatRequest sent → first `token` frame, against the same two model
//!   calls made directly (the classifier's JSON answer, then the streamed call up to its first
//!   content chunk); the difference is the worker's own cost (auth on the socket's Durable
//!   Object, D1 tier read, rate limiter, orchestration, sanitizer, frame encoding) plus wrangler's
//!   local proxy;
//! - throughput: a 500-token answer streamed without pauses, first token → `done` through the
//!   worker against first token → `[DONE]` read directly.
//!
//! Only 127.0.0.1 is contacted; bounded by round counts.

#[path = "../api/harness.rs"]
#[allow(dead_code)]
mod harness;

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{connect_async_with_config, MaybeTlsStream, WebSocketStream};

use harness::stream_model::Script;
use harness::{percentile_ms, team_user, Stack};

const ROUNDS: usize = 100;
const THROUGHPUT_ROUNDS: usize = 10;
const LONG_TOKENS: usize = 500;

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

fn words(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i} ")).collect()
}

/// Sends a chat request; returns (first token frame, done frame) times and the token frames.
async fn through_worker(ws: &mut Socket, message: &str) -> (Instant, Instant, usize) {
    let request = json!({"message": message, "execution_mode": "direct"});
    ws.send(Message::text(request.to_string())).await.unwrap();
    let (mut first, mut frames) = (None, 0);
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(30), ws.next())
            .await
            .expect("a frame within 30 s")
            .expect("socket open")
            .expect("socket ok");
        let Message::Text(text) = msg else { continue };
        let frame: Value = serde_json::from_str(&text).unwrap();
        match frame["type"].as_str() {
            Some("token") => {
                first.get_or_insert_with(Instant::now);
                frames += 1;
            }
            Some("done") => {
                return (first.expect("a token before done"), Instant::now(), frames);
            }
            Some("error") => panic!("error frame: {frame}"),
            _ => {}
        }
    }
}

/// The two model calls of one chat message, made directly to the front server: returns the
/// time the first content chunk arrived, the time `[DONE]` arrived, and the content chunks.
async fn direct(client: &reqwest::Client, url: &str, message: &str) -> (Instant, Instant, usize) {
    let classify = json!({"model": "gpt-4o-mini", "messages": [
        {"role": "system", "content": "You are an intent classifier."},
        {"role": "user", "content": message}]});
    let r = client
        .post(url)
        .bearer_auth("sk-e2e")
        .json(&classify)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let _ = r.bytes().await.unwrap();

    let agent = json!({"model": "gpt-4o-mini", "stream": true,
        "stream_options": {"include_usage": true},
        "messages": [{"role": "user", "content": message}]});
    let r = client
        .post(url)
        .bearer_auth("sk-e2e")
        .json(&agent)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let mut body = r.bytes_stream();
    let (mut buf, mut first, mut tokens) = (Vec::<u8>::new(), None, 0);
    while let Some(chunk) = body.next().await {
        buf.extend_from_slice(&chunk.unwrap());
        while let Some(end) = buf.windows(2).position(|w| w == b"\n\n") {
            let event: Vec<u8> = buf.drain(..end + 2).collect();
            let data = String::from_utf8_lossy(&event);
            let data = data.trim().trim_start_matches("data:").trim();
            if data == "[DONE]" {
                return (
                    first.expect("a token before [DONE]"),
                    Instant::now(),
                    tokens,
                );
            }
            let chunk: Value = serde_json::from_str(data).unwrap();
            let content = chunk["choices"][0]["delta"]["content"].as_str();
            if content.is_some_and(|c| !c.is_empty()) {
                first.get_or_insert_with(Instant::now);
                tokens += 1;
            }
        }
    }
    panic!("the stream ended without [DONE]");
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let stack = Stack::start().await.expect("worker");
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let token = team_user(&client, &stack.base_url).await;
        let model_url = format!("{}/v1/chat/completions", stack.stream_model.uri());
        let mut request = format!("{}/api/v1/chat/stream", stack.base_url.replacen("http://", "ws://", 1))
            .into_client_request()
            .unwrap();
        request
            .headers_mut()
            .insert("authorization", HeaderValue::from_str(&format!("Bearer {token}")).unwrap());
        let (mut ws, _) = connect_async_with_config(request, None, true).await.expect("socket");

        let short = format!("m{}", uuid::Uuid::new_v4().simple());
        stack.stream_model.script(&short, Script::new("note_agent", words("short", 20)));
        let message = format!("What is due today? {short}");
        let (mut ttft_ws, mut ttft_direct) = (Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            let t = Instant::now();
            let (first, _, _) = through_worker(&mut ws, &message).await;
            ttft_ws.push(first - t);
            let t = Instant::now();
            let (first, _, _) = direct(&client, &model_url, &message).await;
            ttft_direct.push(first - t);
        }
        let overhead: Vec<Duration> =
            ttft_ws.iter().zip(&ttft_direct).map(|(w, d)| w.saturating_sub(*d)).collect();

        let long = format!("m{}", uuid::Uuid::new_v4().simple());
        stack.stream_model.script(&long, Script::new("note_agent", words("w", LONG_TOKENS)));
        let message = format!("Write a long answer {long}");
        let (mut rate_ws, mut rate_direct, mut frames) = (Vec::new(), Vec::new(), 0);
        #[allow(clippy::cast_precision_loss)]
        let per_sec = |d: Duration| LONG_TOKENS as f64 / d.as_secs_f64();
        for _ in 0..THROUGHPUT_ROUNDS {
            let (first, done, n) = through_worker(&mut ws, &message).await;
            rate_ws.push(per_sec(done - first));
            frames = n;
            let (first, done, n) = direct(&client, &model_url, &message).await;
            assert_eq!(n, LONG_TOKENS);
            rate_direct.push(per_sec(done - first));
        }
        let median = |v: &mut Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };

        println!("stream benchmark: {ROUNDS} chat requests over one WebSocket, interleaved with the same 2 model calls made directly");
        println!("time to first token, worker   p50 {:>6.2} ms   p99 {:>6.2} ms", percentile_ms(&ttft_ws, 0.5), percentile_ms(&ttft_ws, 0.99));
        println!("time to first token, direct   p50 {:>6.2} ms   p99 {:>6.2} ms", percentile_ms(&ttft_direct, 0.5), percentile_ms(&ttft_direct, 0.99));
        println!("worker overhead               p50 {:>6.2} ms   p99 {:>6.2} ms", percentile_ms(&overhead, 0.5), percentile_ms(&overhead, 0.99));
        println!("throughput, {LONG_TOKENS} tokens without pauses, first token to end, median of {THROUGHPUT_ROUNDS}:");
        println!("  forwarded by the worker  {:>9.0} tokens/s  ({frames} token frames)", median(&mut rate_ws));
        println!("  read directly            {:>9.0} tokens/s", median(&mut rate_direct));
        drop(ws);
        drop(stack);
    });
}
