//! The scripted HTTP client.

use std::cell::RefCell;
use std::collections::VecDeque;

use async_trait::async_trait;

use crate::ports::{HttpClient, HttpError, HttpRequest, HttpResponse};

/// An HTTP client that answers from a script, recording requests and sleeps.
#[derive(Debug, Default)]
pub struct ScriptedHttp {
    /// Answers, in order.
    pub script: RefCell<VecDeque<Result<HttpResponse, HttpError>>>,
    /// Requests sent.
    pub requests: RefCell<Vec<HttpRequest>>,
    /// Backoff sleeps (ms).
    pub slept: RefCell<Vec<u64>>,
}

impl ScriptedHttp {
    /// A client answering `script` in order (then network errors).
    pub fn with(script: Vec<Result<HttpResponse, HttpError>>) -> Self {
        Self {
            script: RefCell::new(script.into()),
            ..Self::default()
        }
    }
}

#[async_trait(?Send)]
impl HttpClient for ScriptedHttp {
    async fn send(&self, req: HttpRequest) -> Result<HttpResponse, HttpError> {
        self.requests.borrow_mut().push(req);
        self.script
            .borrow_mut()
            .pop_front()
            .unwrap_or_else(|| Err(HttpError::Network("script exhausted".into())))
    }
    async fn sleep(&self, ms: u64) {
        self.slept.borrow_mut().push(ms);
    }
}
