//! What a handler gets: the request, bindings, configuration, path parameters, the caller.

use std::rc::Rc;

use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use serde::Serialize;
use shared::input::{self, JSON_BODY_LIMIT};
use shared::AppError;
use worker::{Env, Request, Response};

use super::Principal;
use crate::state::Shared;

/// One request's context.
pub struct Ctx {
    /// The request.
    pub req: Request,
    /// Bindings.
    pub env: Env,
    /// Configuration.
    pub shared: Rc<Shared>,
    /// This request's id.
    pub request_id: String,
    /// Path parameters of the matched route.
    pub params: Vec<(String, String)>,
    /// The authenticated caller (set by the pipeline on protected routes).
    pub principal: Option<Principal>,
}

impl Ctx {
    /// A context for `req`.
    pub fn new(req: Request, env: Env, shared: Rc<Shared>, request_id: String) -> Self {
        Self {
            req,
            env,
            shared,
            request_id,
            params: Vec::new(),
            principal: None,
        }
    }

    /// A request header.
    pub fn header(&self, name: &str) -> Option<String> {
        self.req.headers().get(name).ok().flatten()
    }

    /// The path parameter `name` of the matched route ("" if the route has none by that name).
    pub fn param(&self, name: &str) -> &str {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }

    /// The authenticated caller. Only protected routes call this, and the pipeline has
    /// authenticated them, so `None` is a routing bug: answer 401 rather than panic.
    pub fn principal(&self) -> Result<&Principal, AppError> {
        self.principal.as_ref().ok_or(AppError::Unauthorized)
    }

    /// The caller's IP address as Cloudflare reports it.
    pub fn client_ip(&self) -> Option<String> {
        self.header("CF-Connecting-IP")
    }

    /// Reads the body, refusing more than `limit` bytes (413) whether or not a length is declared.
    pub async fn body_bytes(&mut self, limit: u64) -> Result<Vec<u8>, AppError> {
        let declared = self
            .header("Content-Length")
            .and_then(|v| v.trim().parse::<u64>().ok());
        input::check_length(declared, limit)?;
        // No stream means no body at all.
        let Ok(mut stream) = self.req.stream() else {
            return Ok(Vec::new());
        };
        let mut buf = Vec::new();
        while let Some(chunk) = stream.next().await {
            // The request's own body can only break off on the client's side.
            let chunk =
                chunk.map_err(|e| AppError::RequestAborted(format!("reading body: {e}")))?;
            if (buf.len() + chunk.len()) as u64 > limit {
                return Err(AppError::PayloadTooLarge { limit });
            }
            buf.extend_from_slice(&chunk);
        }
        Ok(buf)
    }

    /// Parses a JSON body (415 / 400 / 413 / 422 as [`shared::input`] says).
    pub async fn json_body<T: DeserializeOwned>(&mut self) -> Result<T, AppError> {
        self.json_body_up_to(JSON_BODY_LIMIT).await
    }

    /// As [`Ctx::json_body`], for the few bodies allowed past [`JSON_BODY_LIMIT`].
    pub async fn json_body_up_to<T: DeserializeOwned>(
        &mut self,
        limit: u64,
    ) -> Result<T, AppError> {
        let content_type = self.header("Content-Type");
        if !input::is_json(content_type.as_deref()) {
            return Err(AppError::UnsupportedMediaType {
                expected: "application/json",
            });
        }
        let bytes = self.body_bytes(limit).await?;
        input::parse_json(content_type.as_deref(), &bytes)
    }
}

/// A JSON response with `status`.
pub fn json<T: Serialize>(status: u16, body: &T) -> Result<Response, AppError> {
    Response::from_json(body)
        .map(|r| r.with_status(status))
        .map_err(|e| AppError::internal(format!("serialising response: {e}")))
}
