//! The scripted LLM.

use std::cell::RefCell;
use std::collections::VecDeque;

use async_trait::async_trait;

use crate::ports::{Llm, LlmDelta, LlmRequest, LlmResponse, LlmStream, UpstreamError};

/// An LLM that answers from a script, recording every request.
#[derive(Debug, Default)]
pub struct ScriptedLlm {
    /// Answers, in order.
    pub script: RefCell<VecDeque<Result<LlmResponse, UpstreamError>>>,
    /// Requests received.
    pub requests: RefCell<Vec<LlmRequest>>,
}

#[async_trait(?Send)]
impl Llm for ScriptedLlm {
    async fn complete(&self, req: &LlmRequest) -> Result<LlmResponse, UpstreamError> {
        self.requests.borrow_mut().push(req.clone());
        self.script
            .borrow_mut()
            .pop_front()
            .unwrap_or_else(|| Err(UpstreamError::Unavailable("script exhausted".into())))
    }
    async fn stream<'a>(&'a self, req: &LlmRequest) -> Result<LlmStream<'a>, UpstreamError> {
        let done = self.complete(req).await?;
        let text = done.message.content.clone().unwrap_or_default();
        // Two-character pieces, so stream consumers see fragments split anywhere.
        let chars: Vec<char> = text.chars().collect();
        let mut events: Vec<Result<LlmDelta, UpstreamError>> = chars
            .chunks(2)
            .map(|c| Ok(LlmDelta::Text(c.iter().collect())))
            .collect();
        events.push(Ok(LlmDelta::Done(done)));
        Ok(Box::pin(futures_util::stream::iter(events)))
    }
}
