//! Whole bodies of small internal answers, read in one call into the runtime.
//!
//! `worker::Response::{text, json, bytes}` read a streamed body chunk by chunk through a
//! `ReadableStream` reader (several JS↔wasm crossings per chunk), and `Request::json` decodes
//! through `serde_wasm_bindgen` (one crossing per field). A home's answer or a limiter's decision
//! are small and wanted whole: `text()` hands them over in
//! one piece, and `serde_json` decodes them in wasm.

use worker::wasm_bindgen_futures::JsFuture;
use worker::{web_sys, Error, Request, Response};

fn js(what: &str, e: &worker::wasm_bindgen::JsValue) -> Error {
    Error::RustError(format!("{what}: {}", e.as_string().unwrap_or_default()))
}

/// The whole body of `resp` as text.
async fn response_text(resp: Response) -> Result<String, Error> {
    let web: web_sys::Response = resp.into();
    let promise = web.text().map_err(|e| js("reading a body", &e))?;
    JsFuture::from(promise)
        .await
        .map_err(|e| js("reading a body", &e))?
        .as_string()
        .ok_or_else(|| Error::RustError("a body that is not text".into()))
}

/// `resp`'s JSON body, decoded in wasm.
pub async fn response_json<T: serde::de::DeserializeOwned>(resp: Response) -> Result<T, Error> {
    let text = response_text(resp).await?;
    serde_json::from_str(&text).map_err(|e| Error::RustError(format!("decoding a body: {e}")))
}

/// `req`'s JSON body, decoded in wasm.
pub async fn request_json<T: serde::de::DeserializeOwned>(req: &mut Request) -> Result<T, Error> {
    let text = req.text().await?;
    serde_json::from_str(&text).map_err(|e| Error::RustError(format!("decoding a body: {e}")))
}
