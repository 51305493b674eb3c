//! Outbound HTTP over the Workers `fetch`, with a real deadline: the request is aborted (its
//! `AbortController`) when the timeout wins the race, so nothing hangs and nothing lingers.
//!
//! Streamed responses answer as soon as the headers arrive; the deadline covers only that wait.
//! The body's stream owns the request's `AbortController`: dropping the stream before the body
//! ended (the caller gave up, or a stall was detected) aborts the request. A whole-body `send`
//! likewise aborts its request when its future is dropped before the answer arrived.

use std::time::Duration;

use async_trait::async_trait;
use futures_util::future::{select, Either};
use futures_util::{pin_mut, stream, StreamExt};
use shared::ports::{
    HttpClient, HttpError, HttpRequest, HttpResponse, HttpStreamResponse, MAX_RESPONSE_BYTES,
};
use worker::{AbortController, Delay, Fetch, Headers, Method, Request, RequestInit};

/// `fetch`.
#[derive(Debug, Clone, Copy, Default)]
pub struct FetchHttpClient;

fn network(what: &str, e: &worker::Error) -> HttpError {
    HttpError::Network(format!("{what}: {e}"))
}

/// The Workers request for `req`.
fn build_request(req: &HttpRequest) -> Result<Request, HttpError> {
    let headers = Headers::new();
    for (k, v) in &req.headers {
        headers.set(k, v).map_err(|e| network("header", &e))?;
    }
    let mut init = RequestInit::new();
    init.with_method(Method::from(req.method.to_owned()))
        .with_headers(headers);
    if !req.body.is_empty() {
        init.with_body(Some(js_sys::Uint8Array::from(req.body.as_slice()).into()));
    }
    Request::new_with_init(&req.url, &init).map_err(|e| network("request", &e))
}

/// Aborts the request when dropped, unless disarmed (the body was read to its end).
struct AbortOnDrop(Option<AbortController>);

impl AbortOnDrop {
    fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(controller) = self.0.take() {
            controller.abort();
        }
    }
}

/// The whole body, at most [`MAX_RESPONSE_BYTES`]. A declared length over the bound is
/// refused before anything is read; the stream is counted chunk by chunk all the same, since
/// `fetch` decompresses a gzip or brotli body whose `Content-Length` is its compressed size.
async fn bounded_body(mut resp: worker::Response) -> Result<Vec<u8>, HttpError> {
    let declared = resp
        .headers()
        .get("Content-Length")
        .ok()
        .flatten()
        .and_then(|v| v.trim().parse::<u64>().ok());
    if let Some(length) = declared {
        if length > MAX_RESPONSE_BYTES as u64 {
            return Err(HttpError::TooLarge);
        }
    }
    let Ok(mut chunks) = resp.stream() else {
        return Ok(Vec::new());
    };
    let mut body = Vec::new();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(|e| network("body", &e))?;
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(HttpError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[async_trait(?Send)]
impl HttpClient for FetchHttpClient {
    async fn send(&self, req: HttpRequest) -> Result<HttpResponse, HttpError> {
        let request = build_request(&req)?;
        let controller = AbortController::default();
        let signal = controller.signal();
        // Every way out but a whole answer (the timeout, an error, the caller dropping this
        // future — a cancelled batch item) aborts the request.
        let mut guard = AbortOnDrop(Some(controller));
        let exchange = async {
            let resp = Fetch::Request(request)
                .send_with_signal(&signal)
                .await
                .map_err(|e| network("fetch", &e))?;
            let status = resp.status_code();
            let body = bounded_body(resp).await?;
            Ok(HttpResponse { status, body })
        };
        let deadline = Delay::from(Duration::from_millis(req.timeout_ms));
        pin_mut!(exchange);
        match select(exchange, deadline).await {
            Either::Left((result, _)) => {
                if result.is_ok() {
                    guard.disarm();
                }
                result
            }
            Either::Right(((), _)) => Err(HttpError::Timeout),
        }
    }

    async fn send_streaming(&self, req: HttpRequest) -> Result<HttpStreamResponse, HttpError> {
        let request = build_request(&req)?;
        let controller = AbortController::default();
        let signal = controller.signal();
        // From here on, every way out (error, timeout, the stream dropped) aborts the request.
        let mut guard = AbortOnDrop(Some(controller));
        let fetch = Fetch::Request(request);
        let headers = fetch.send_with_signal(&signal);
        let deadline = Delay::from(Duration::from_millis(req.timeout_ms));
        pin_mut!(headers);
        let mut resp = match select(headers, deadline).await {
            Either::Left((result, _)) => result.map_err(|e| network("fetch", &e))?,
            Either::Right(((), _)) => return Err(HttpError::Timeout),
        };
        let status = resp.status_code();
        let Ok(body) = resp.stream() else {
            // No body at all (e.g. 204): an empty stream.
            guard.disarm();
            return Ok(HttpStreamResponse {
                status,
                body: Box::pin(stream::empty()),
            });
        };
        let chunks = stream::unfold(
            (Box::pin(body), guard),
            |(mut body, mut guard)| async move {
                let Some(chunk) = body.next().await else {
                    // Read to the end: nothing left to abort.
                    guard.disarm();
                    return None;
                };
                Some((chunk.map_err(|e| network("body", &e)), (body, guard)))
            },
        );
        Ok(HttpStreamResponse {
            status,
            body: Box::pin(chunks),
        })
    }

    async fn sleep(&self, ms: u64) {
        Delay::from(Duration::from_millis(ms)).await;
    }
}
