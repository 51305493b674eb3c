//! What a handler gets: the request, the wiring, path parameters, the caller and their home.

use std::rc::Rc;

use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use serde::Serialize;
use shared::accounts::ClientMeta;
use shared::domain::{DeviceName, UserId};
use shared::home::HomePrincipal;
use shared::input::{self, JSON_BODY_LIMIT};
use shared::AppError;
use worker::{Request, Response};

use crate::adapters::{HomeClient, HomeSeen, R2BlobStore};
use crate::app::{App, Storage};

/// The authenticated caller, as their token (or ticket) names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    /// The user.
    pub user_id: UserId,
    /// The session (refresh family) of the token.
    pub sid: Option<uuid::Uuid>,
}

/// One request's context.
pub struct Ctx {
    /// The request.
    pub req: Request,
    /// The wiring.
    pub app: App,
    /// This request's id.
    pub request_id: String,
    /// Path parameters of the matched route.
    pub params: Vec<(String, String)>,
    /// The authenticated caller (set by the pipeline on protected routes).
    pub caller: Option<Caller>,
    /// What the caller's home said of them (shared with the pipeline for the headers).
    pub seen: Rc<HomeSeen>,
}

impl Ctx {
    /// A context for `req`.
    pub fn new(req: Request, app: App, request_id: String) -> Self {
        Self {
            req,
            app,
            request_id,
            params: Vec::new(),
            caller: None,
            seen: Rc::default(),
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
    pub fn caller(&self) -> Result<Caller, AppError> {
        self.caller.ok_or(AppError::Unauthorized)
    }

    /// The caller's home. The request's first call to it takes the admission.
    pub fn home(&self) -> Result<HomeClient, AppError> {
        let c = self.caller()?;
        self.app.home(c.user_id, c.sid, Rc::clone(&self.seen))
    }

    /// The caller's home with `bucket`: the record and backup services.
    pub fn storage(&self, bucket: Result<R2BlobStore, AppError>) -> Result<Storage, AppError> {
        Ok(Storage {
            home: self.home()?,
            bucket: bucket?,
        })
    }

    /// The caller as their home knows them (tier in force, seats, role) — available once the
    /// request's first home call was answered (the pipeline's admission, on `User` routes).
    pub fn principal(&self) -> Result<HomePrincipal, AppError> {
        self.seen.principal.get().ok_or(AppError::Unauthorized)
    }

    /// The caller's IP address as Cloudflare reports it.
    pub fn client_ip(&self) -> Option<String> {
        self.header("CF-Connecting-IP")
    }

    /// The device's name for itself (`X-Device-Name`, at most 64 characters).
    ///
    /// # Errors
    /// 422 naming `X-Device-Name` when it is too long or holds control characters.
    pub fn device(&self) -> Result<Option<DeviceName>, AppError> {
        match self.header("X-Device-Name") {
            None => Ok(None),
            Some(raw) => DeviceName::parse(&raw).map_err(|f| AppError::Validation(vec![f])),
        }
    }

    /// What the request says of its client, for the security log.
    ///
    /// # Errors
    /// As [`Ctx::device`].
    pub fn client_meta(&self) -> Result<ClientMeta, AppError> {
        Ok(ClientMeta {
            ip: self.client_ip(),
            device: self.device()?,
        })
    }

    /// The origin links in answers point at: `PUBLIC_BASE_URL`, or the one this request came to.
    pub fn base_url(&self) -> Result<String, AppError> {
        if let Some(url) = &self.app.config().public_base_url {
            return Ok(url.as_str().trim_end_matches('/').to_owned());
        }
        let url = self.req.url().map_err(AppError::internal)?;
        Ok(url.origin().ascii_serialization())
    }

    /// The query pairs of the request URL.
    pub fn query(&self) -> Result<Vec<(String, String)>, AppError> {
        let url = self.req.url().map_err(AppError::internal)?;
        Ok(url.query_pairs().into_owned().collect())
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
