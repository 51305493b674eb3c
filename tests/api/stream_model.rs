//! A scripted *streaming* model in front of the wiremock OpenAI server.
//!
//! wiremock answers with whole bodies, so it cannot play a model that streams slowly. This small
//! HTTP/1.1 server (raw tokio TCP, one request per connection, `Connection: close`) is what the
//! worker's `OPENAI_BASE_URL` points at. For each request it reads the body; if the body carries
//! a marker a test registered with [`StreamModel::script`], it plays that [`Script`]:
//!
//! - a streamed request (`"stream":true`, the agent's call) gets an SSE stream in OpenAI's chunk
//!   format, one token per HTTP chunk with [`Script::delay`] between tokens, then the
//!   `finish_reason` chunk, a usage chunk and `[DONE]` — or, with [`Script::break_after`], an
//!   abrupt close after that many tokens;
//! - any other request (the intent classifier's call, a plan step's call) gets a plain JSON
//!   completion whose text is [`Script`]'s intent — after [`Script::hold`], if set, watching
//!   whether the worker drops the connection meanwhile (an aborted request).
//!
//! Everything else is forwarded to the wiremock server unchanged (method, path, headers, body)
//! and its answer relayed, so tests that script wiremock keep working. What happened to a
//! script's requests is counted in its [`Probe`], including whether the worker went away before
//! a stream ended (an aborted upstream request). Dropping the [`StreamModel`] stops it.

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

/// What the model does for the requests carrying one marker.
#[derive(Debug, Clone)]
pub struct Script {
    intent: String,
    tokens: Vec<String>,
    delay: Duration,
    break_after: Option<usize>,
    hold: Duration,
}

impl Script {
    /// A token standing for the system message of the streamed request itself: it is played
    /// as that text (as the worker sent it, in pieces of 7 chars), like a model echoing its
    /// instructions.
    pub const ECHO_SYSTEM: &'static str = "\u{1}echo-system\u{1}";
    /// A token standing for the system message of the last non-streamed request carrying the
    /// marker (the intent classifier's prompt, with its agent roster), played likewise.
    pub const ECHO_CLASSIFIER: &'static str = "\u{1}echo-classifier\u{1}";

    /// The classifier answers `intent`; a streamed call streams `tokens`, without delay.
    pub fn new<T: Into<String>>(intent: &str, tokens: impl IntoIterator<Item = T>) -> Self {
        Self {
            intent: intent.to_owned(),
            tokens: tokens.into_iter().map(Into::into).collect(),
            delay: Duration::ZERO,
            break_after: None,
            hold: Duration::ZERO,
        }
    }

    /// Waits `delay` between two tokens.
    #[must_use]
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// Closes the connection abruptly after `n` tokens (no final chunk, no `[DONE]`).
    #[must_use]
    pub fn break_after(mut self, n: usize) -> Self {
        self.break_after = Some(n);
        self
    }

    /// Holds each non-streamed answer for `hold` before sending it, watching the connection:
    /// a client that goes away meanwhile is recorded as a disconnect (an aborted request).
    #[must_use]
    pub fn hold(mut self, hold: Duration) -> Self {
        self.hold = hold;
        self
    }

    /// The whole streamed text.
    pub fn text(&self) -> String {
        self.tokens.concat()
    }

    /// This script with its echo tokens played as `system` and `classifier`.
    fn expand(&self, system: &str, classifier: &str) -> Self {
        let pieces = |text: &str| -> Vec<String> {
            let chars: Vec<char> = text.chars().collect();
            chars.chunks(7).map(|c| c.iter().collect()).collect()
        };
        let tokens = self
            .tokens
            .iter()
            .flat_map(|t| match t.as_str() {
                Self::ECHO_SYSTEM => pieces(system),
                Self::ECHO_CLASSIFIER => pieces(classifier),
                _ => vec![t.clone()],
            })
            .collect();
        Self {
            tokens,
            ..self.clone()
        }
    }
}

/// What happened to one script's requests; shared between the server and the test.
#[derive(Debug, Default)]
pub struct Probe {
    requests: AtomicUsize,
    streams: AtomicUsize,
    tokens_sent: AtomicUsize,
    held_dropped: AtomicUsize,
    times: Mutex<Times>,
}

#[derive(Debug, Default, Clone)]
struct Times {
    disconnected: Option<Instant>,
    finished: Option<Instant>,
    /// The system message of the last non-streamed request (see [`Script::ECHO_CLASSIFIER`]).
    classifier_system: Option<String>,
}

impl Probe {
    /// Requests that carried the marker (classifier and streamed calls).
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// Streamed requests among them.
    pub fn streams(&self) -> usize {
        self.streams.load(Ordering::SeqCst)
    }

    /// Token chunks written so far, over all streams.
    pub fn tokens_sent(&self) -> usize {
        self.tokens_sent.load(Ordering::SeqCst)
    }

    /// Held answers (see [`Script::hold`]) whose client went away before they were sent.
    pub fn held_dropped(&self) -> usize {
        self.held_dropped.load(Ordering::SeqCst)
    }

    /// When the client last went away before a stream ended (it closed the connection, or a
    /// write failed): the upstream request was aborted.
    pub fn disconnected_at(&self) -> Option<Instant> {
        self.times.lock().unwrap().disconnected
    }

    /// When a stream was last served through `[DONE]`.
    pub fn finished_at(&self) -> Option<Instant> {
        self.times.lock().unwrap().finished
    }

    /// The system message of the last non-streamed request (the classifier's prompt).
    pub fn classifier_system(&self) -> Option<String> {
        self.times.lock().unwrap().classifier_system.clone()
    }

    /// Waits up to `within` for a disconnect; returns when it happened.
    pub async fn wait_disconnect(&self, within: Duration) -> Option<Instant> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(at) = self.disconnected_at() {
                return Some(at);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn set(&self, f: impl FnOnce(&mut Times)) {
        f(&mut self.times.lock().unwrap());
    }
}

type Scripts = Arc<Mutex<HashMap<String, (Script, Arc<Probe>)>>>;

/// The front server; stops when dropped.
pub struct StreamModel {
    uri: String,
    scripts: Scripts,
    accept: JoinHandle<()>,
}

impl StreamModel {
    /// Starts on 127.0.0.1, forwarding unscripted requests to `upstream` (wiremock's URI).
    pub async fn start(upstream: String) -> io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let uri = format!("http://{}", listener.local_addr()?);
        let scripts = Scripts::default();
        let forward = Forward {
            client: reqwest::Client::builder()
                .no_proxy()
                .build()
                .map_err(io::Error::other)?,
            upstream,
        };
        let accept = tokio::spawn(accept_loop(listener, Arc::clone(&scripts), forward));
        Ok(Self {
            uri,
            scripts,
            accept,
        })
    }

    /// Base URI, e.g. `http://127.0.0.1:40123` (the worker gets `{uri}/v1`).
    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// Plays `script` for every request whose body contains `marker`.
    pub fn script(&self, marker: &str, script: Script) -> Arc<Probe> {
        let probe = Arc::new(Probe::default());
        self.scripts
            .lock()
            .unwrap()
            .insert(marker.to_owned(), (script, Arc::clone(&probe)));
        probe
    }
}

impl Drop for StreamModel {
    fn drop(&mut self) {
        // The accept task owns the connection tasks (a JoinSet): aborting it ends them all.
        self.accept.abort();
    }
}

#[derive(Clone)]
struct Forward {
    client: reqwest::Client,
    upstream: String,
}

async fn accept_loop(listener: TcpListener, scripts: Scripts, forward: Forward) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                if let Ok((conn, _)) = accepted {
                    connections.spawn(serve(conn, Arc::clone(&scripts), forward.clone()));
                }
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

async fn serve(conn: TcpStream, scripts: Scripts, forward: Forward) {
    // Tokens are small writes: send each at once rather than wait for the previous one's ACK.
    let _ = conn.set_nodelay(true);
    let (read, mut write) = conn.into_split();
    let mut read = BufReader::new(read);
    let Ok(req) = read_request(&mut read).await else {
        return;
    };
    let body = String::from_utf8_lossy(&req.body);
    let hit = scripts
        .lock()
        .unwrap()
        .iter()
        .find(|(marker, _)| body.contains(marker.as_str()))
        .map(|(_, hit)| hit.clone());
    let Some((script, probe)) = hit else {
        let (status, content_type, body) = forward.send(req).await;
        let _ = write_whole(&mut write, status, &content_type, &body).await;
        return;
    };
    probe.requests.fetch_add(1, Ordering::SeqCst);
    let system = serde_json::from_slice::<Value>(&req.body)
        .ok()
        .and_then(|v| v["messages"][0]["content"].as_str().map(str::to_owned))
        .unwrap_or_default();
    if body.contains(r#""stream":true"#) {
        probe.streams.fetch_add(1, Ordering::SeqCst);
        let classifier = probe.times.lock().unwrap().classifier_system.clone();
        let script = script.expand(&system, classifier.as_deref().unwrap_or_default());
        stream(read, write, &script, &probe).await;
    } else {
        probe.set(|t| t.classifier_system = Some(system));
        if !script.hold.is_zero() {
            let mut buf = [0_u8; 256];
            let peer_gone = async { while matches!(read.read(&mut buf).await, Ok(n) if n > 0) {} };
            tokio::select! {
                () = peer_gone => {
                    probe.held_dropped.fetch_add(1, Ordering::SeqCst);
                    probe.set(|t| t.disconnected = Some(Instant::now()));
                    return;
                }
                () = tokio::time::sleep(script.hold) => {}
            }
        }
        let answer = completion(&script.intent).to_string();
        let _ = write_whole(&mut write, 200, "application/json", answer.as_bytes()).await;
    }
}

async fn read_request(read: &mut BufReader<OwnedReadHalf>) -> io::Result<Request> {
    let mut line = String::new();
    if read.read_line(&mut line).await? == 0 {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    let mut words = line.split_whitespace();
    let method = words.next().unwrap_or_default().to_owned();
    let path = words.next().unwrap_or_default().to_owned();
    let mut headers = Vec::new();
    loop {
        line.clear();
        if read.read_line(&mut line).await? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let Some((name, value)) = line.trim_end().split_once(':') else {
            break; // the blank line ending the head
        };
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    let mut body = Vec::new();
    if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        loop {
            line.clear();
            read.read_line(&mut line).await?;
            let size = line.trim().split(';').next().unwrap_or_default();
            let size = usize::from_str_radix(size, 16).map_err(io::Error::other)?;
            let mut chunk = vec![0; size + 2]; // the data and its CRLF
            read.read_exact(&mut chunk).await?;
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    } else if let Some(len) = header("content-length") {
        body = vec![0; len.parse().map_err(io::Error::other)?];
        read.read_exact(&mut body).await?;
    }
    Ok(Request {
        method,
        path,
        headers,
        body,
    })
}

impl Forward {
    /// Sends `req` to wiremock; returns its status, content type and body (502 if unreachable).
    async fn send(&self, req: Request) -> (u16, String, Vec<u8>) {
        let method = reqwest::Method::from_bytes(req.method.as_bytes()).unwrap_or_default();
        let mut builder = self
            .client
            .request(method, format!("{}{}", self.upstream, req.path));
        for (name, value) in &req.headers {
            if !matches!(
                name.as_str(),
                "host" | "content-length" | "transfer-encoding" | "connection"
            ) {
                builder = builder.header(name, value);
            }
        }
        let Ok(r) = builder.body(req.body).send().await else {
            return (
                502,
                "text/plain".to_owned(),
                b"wiremock unreachable".to_vec(),
            );
        };
        let status = r.status().as_u16();
        let content_type = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/octet-stream")
            .to_owned();
        let body = r.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
        (status, content_type, body)
    }
}

async fn write_whole(
    write: &mut OwnedWriteHalf,
    status: u16,
    content_type: &str,
    body: &[u8],
) -> io::Result<()> {
    let reason = reqwest::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Unknown");
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n",
        body.len()
    );
    write.write_all(head.as_bytes()).await?;
    write.write_all(body).await?;
    write.shutdown().await
}

/// A non-streamed chat completion answering `text`.
fn completion(text: &str) -> Value {
    json!({
        "id": "chatcmpl-stream-model", "object": "chat.completion", "created": 1_795_000_000,
        "model": "gpt-4o-mini",
        "choices": [{"index": 0, "finish_reason": "stop",
            "message": {"role": "assistant", "content": text}}],
        "usage": {"prompt_tokens": 42, "completion_tokens": 1, "total_tokens": 43}
    })
}

/// One SSE event of the stream, as one HTTP chunk.
fn sse_chunk(data: &Value) -> Vec<u8> {
    let event = format!("data: {data}\n\n");
    format!("{:x}\r\n{event}\r\n", event.len()).into_bytes()
}

fn delta_chunk(delta: &Value, finish_reason: Option<&str>) -> Value {
    json!({"id": "chatcmpl-stream-model", "object": "chat.completion.chunk",
        "created": 1_795_000_000, "model": "gpt-4o-mini",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]})
}

enum Ended {
    Finished,
    Broke,
}

/// Plays the streamed answer; meanwhile watches the connection for the client going away.
async fn stream(
    mut read: BufReader<OwnedReadHalf>,
    mut write: OwnedWriteHalf,
    script: &Script,
    probe: &Probe,
) {
    let peer_gone = async {
        let mut buf = [0_u8; 256];
        while matches!(read.read(&mut buf).await, Ok(n) if n > 0) {}
    };
    let play = async {
        write
            .write_all(
                b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\
                  transfer-encoding: chunked\r\nconnection: close\r\n\r\n",
            )
            .await?;
        let role = json!({"role": "assistant", "content": ""});
        write
            .write_all(&sse_chunk(&delta_chunk(&role, None)))
            .await?;
        for (i, token) in script.tokens.iter().enumerate() {
            if script.break_after == Some(i) {
                return Ok(Ended::Broke);
            }
            if i > 0 && !script.delay.is_zero() {
                tokio::time::sleep(script.delay).await;
            }
            let delta = json!({"content": token});
            write
                .write_all(&sse_chunk(&delta_chunk(&delta, None)))
                .await?;
            probe.tokens_sent.fetch_add(1, Ordering::SeqCst);
        }
        write
            .write_all(&sse_chunk(&delta_chunk(&json!({}), Some("stop"))))
            .await?;
        let n = script.tokens.len();
        let usage = json!({"id": "chatcmpl-stream-model", "object": "chat.completion.chunk",
            "choices": [], "usage": {"prompt_tokens": 42, "completion_tokens": n,
            "total_tokens": 42 + n}});
        write.write_all(&sse_chunk(&usage)).await?;
        let done = "data: [DONE]\n\n";
        write
            .write_all(format!("{:x}\r\n{done}\r\n0\r\n\r\n", done.len()).as_bytes())
            .await?;
        write.flush().await?;
        Ok::<_, io::Error>(Ended::Finished)
    };
    tokio::select! {
        () = peer_gone => probe.set(|t| t.disconnected = Some(Instant::now())),
        ended = play => match ended {
            Ok(Ended::Finished) => probe.set(|t| t.finished = Some(Instant::now())),
            Ok(Ended::Broke) => {} // dropping both halves closes the connection mid-body
            Err(_) => probe.set(|t| t.disconnected = Some(Instant::now())),
        },
    }
}
