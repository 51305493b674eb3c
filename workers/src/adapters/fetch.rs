//! Outbound HTTP over the Workers `fetch`, with a real deadline: the request is aborted (its
//! `AbortController`) when the timeout wins the race, so nothing hangs and nothing lingers.

use std::time::Duration;

use async_trait::async_trait;
use futures_util::future::{select, Either};
use futures_util::pin_mut;
use shared::ports::{HttpClient, HttpError, HttpRequest, HttpResponse};
use worker::{AbortController, Delay, Fetch, Headers, Method, Request, RequestInit};

/// `fetch`.
#[derive(Debug, Clone, Copy, Default)]
pub struct FetchHttpClient;

#[async_trait(?Send)]
impl HttpClient for FetchHttpClient {
    async fn send(&self, req: HttpRequest) -> Result<HttpResponse, HttpError> {
        let network = |what: &str, e: worker::Error| HttpError::Network(format!("{what}: {e}"));
        let headers = Headers::new();
        for (k, v) in &req.headers {
            headers.set(k, v).map_err(|e| network("header", e))?;
        }
        let mut init = RequestInit::new();
        init.with_method(Method::from(req.method.to_owned()))
            .with_headers(headers);
        if !req.body.is_empty() {
            init.with_body(Some(js_sys::Uint8Array::from(req.body.as_slice()).into()));
        }
        let request = Request::new_with_init(&req.url, &init).map_err(|e| network("request", e))?;
        let controller = AbortController::default();
        let signal = controller.signal();
        let exchange = async {
            let mut resp = Fetch::Request(request)
                .send_with_signal(&signal)
                .await
                .map_err(|e| network("fetch", e))?;
            let status = resp.status_code();
            let body = resp.bytes().await.map_err(|e| network("body", e))?;
            Ok(HttpResponse { status, body })
        };
        let deadline = Delay::from(Duration::from_millis(req.timeout_ms));
        pin_mut!(exchange);
        match select(exchange, deadline).await {
            Either::Left((result, _)) => result,
            Either::Right(((), _)) => {
                controller.abort();
                Err(HttpError::Timeout)
            }
        }
    }

    async fn sleep(&self, ms: u64) {
        Delay::from(Duration::from_millis(ms)).await;
    }
}
