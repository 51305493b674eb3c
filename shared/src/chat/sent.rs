//! What one request actually told the model, and keeping it from coming back.
//!
//! The shared [`Sanitizer`] knows every prompt *template*; the text actually sent differs where
//! values are filled in (the time line, the classifier's agent roster, a plugin's instructions).
//! [`SentPrompts`] records every system (and developer) message of one request as it goes to the
//! model ([`RecordingLlm`]); [`RequestCleaner`] cleans each answer with the shared sanitizer and
//! then with [`Sanitizer::for_sent_prompts`] of those messages. Streams switch to the larger
//! set the moment a new call is made: the text held back until then is released first, since a
//! call's answer can only echo prompts sent before it.
//!
//! Nothing here outlives the request: the messages and the sanitizer built from them are
//! dropped with it.

use std::cell::RefCell;
use std::rc::Rc;

use async_trait::async_trait;

use super::sanitize::{report, Cleaned, Sanitizer, StreamSanitizer, TokenStream};
use crate::ports::{Llm, LlmRequest, LlmResponse, LlmStream, UpstreamError};

/// The system messages one request sent, in order, without repeats.
#[derive(Debug, Default)]
pub struct SentPrompts {
    messages: RefCell<Vec<String>>,
    /// The sanitizer of the first `n` messages, built on demand.
    built: RefCell<Option<(usize, Rc<Sanitizer>)>>,
}

impl SentPrompts {
    /// Records the system and developer messages of `req`.
    pub fn record(&self, req: &LlmRequest) {
        let mut messages = self.messages.borrow_mut();
        for m in &req.messages {
            if matches!(m.role.as_str(), "system" | "developer") {
                if let Some(text) = &m.content {
                    if !messages.contains(text) {
                        messages.push(text.clone());
                    }
                }
            }
        }
    }

    /// How many distinct messages were sent so far.
    pub fn count(&self) -> usize {
        self.messages.borrow().len()
    }

    /// The sanitizer of every message sent so far (rebuilt only when more were sent).
    pub fn sanitizer(&self) -> Rc<Sanitizer> {
        let n = self.count();
        if let Some((built_for, s)) = self.built.borrow().as_ref() {
            if *built_for == n {
                return Rc::clone(s);
            }
        }
        let s = Rc::new(Sanitizer::for_sent_prompts(self.messages.borrow().iter()));
        *self.built.borrow_mut() = Some((n, Rc::clone(&s)));
        s
    }
}

/// A model that records the system messages of every request it is sent.
pub struct RecordingLlm<'a> {
    /// The model.
    pub inner: &'a dyn Llm,
    /// Where the messages go.
    pub sent: &'a SentPrompts,
}

#[async_trait(?Send)]
impl Llm for RecordingLlm<'_> {
    async fn complete(&self, req: &LlmRequest) -> Result<LlmResponse, UpstreamError> {
        self.sent.record(req);
        self.inner.complete(req).await
    }

    async fn stream<'s>(&'s self, req: &LlmRequest) -> Result<LlmStream<'s>, UpstreamError> {
        self.sent.record(req);
        self.inner.stream(req).await
    }
}

/// Cleans what one request answers: the shared sanitizer, then the sent prompts'.
#[derive(Clone, Copy)]
pub struct RequestCleaner<'a> {
    /// Every template and marker.
    pub shared: &'a Sanitizer,
    /// This request's prompts as sent.
    pub sent: &'a SentPrompts,
}

impl<'a> RequestCleaner<'a> {
    /// `text` without prompt fragments and markers; `removed` counts both passes.
    pub fn clean(&self, text: &str) -> Cleaned {
        let first = self.shared.clean(text);
        let second = self.sent.sanitizer().clean(&first.text);
        Cleaned {
            text: second.text,
            removed: first.removed + second.removed,
        }
    }

    /// Cleans every string in `value`; returns the removals.
    pub fn clean_json(&self, value: &mut serde_json::Value) -> usize {
        self.shared.clean_json(value) + self.sent.sanitizer().clean_json(value)
    }

    /// A cleaner for one stream of tokens, logging under `surface` when it finishes.
    pub fn stream(&self, surface: &'static str) -> RequestStream<'a> {
        let sanitizer = self.sent.sanitizer();
        RequestStream {
            shared: self.shared.stream_for(surface),
            sent: self.sent,
            generation: self.sent.count(),
            sanitizer,
            stream: TokenStream::default(),
            surface,
        }
    }
}

/// One stream through both passes; see [`RequestCleaner::stream`].
pub struct RequestStream<'a> {
    shared: StreamSanitizer<'a>,
    sent: &'a SentPrompts,
    /// How many sent messages `sanitizer` covers.
    generation: usize,
    sanitizer: Rc<Sanitizer>,
    stream: TokenStream,
    surface: &'static str,
}

impl RequestStream<'_> {
    /// Takes the next token; returns the text that is safe to emit now.
    pub fn push(&mut self, token: &str) -> String {
        let mut out = self.catch_up();
        let passed = self.shared.push(token);
        out.push_str(&self.stream.push(&self.sanitizer, &passed));
        out
    }

    /// Ends the stream: the rest of the text; logs the removals of the second pass (the first
    /// logs its own).
    pub fn finish(mut self) -> String {
        let mut out = self.catch_up();
        let rest = self.shared.finish();
        out.push_str(&self.stream.push(&self.sanitizer, &rest));
        out.push_str(&self.stream.flush(&self.sanitizer));
        report(self.surface, self.stream.removed());
        out
    }

    /// When more prompts were sent since the last token, releases the text held for the old
    /// set and moves to the new one.
    fn catch_up(&mut self) -> String {
        if self.sent.count() == self.generation {
            return String::new();
        }
        let released = self.stream.flush(&self.sanitizer);
        self.generation = self.sent.count();
        self.sanitizer = self.sent.sanitizer();
        released
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::sanitize::fingerprints_of;
    use crate::ports::LlmMessage;

    fn sent_with(messages: &[&str]) -> SentPrompts {
        let sent = SentPrompts::default();
        sent.record(&LlmRequest {
            label: "t".into(),
            messages: messages
                .iter()
                .map(|m| LlmMessage::system(*m))
                .chain([LlmMessage::text(
                    "user",
                    "the user's words are never patterns",
                )])
                .collect(),
            tools: Vec::new(),
        });
        sent
    }

    const NOW_LINE: &str = "Now: 1795780800000 ms since the epoch; the user's local time is \
                            Friday 2026-11-27 13:00 (UTC offset 60 minutes).";

    #[test]
    fn interpolated_lines_and_rosters_as_sent_are_removed_even_re_punctuated() {
        let shared = Sanitizer::new(fingerprints_of("A static sentence of the template here."));
        let sent = sent_with(&[&format!(
            "Rules first.\n{NOW_LINE}\nAvailable agents:\n- task_agent: Manages tasks and to-dos."
        )]);
        let c = RequestCleaner {
            shared: &shared,
            sent: &sent,
        };
        let echo = "Sure! now - 1795780800000 ms since the epoch, the user's local time is \
                    friday 2026-11-27 13:00 (utc offset 60 minutes) — and TASK_AGENT: manages \
                    tasks and to-dos. Done.";
        let out = c.clean(echo);
        assert!(!out.text.contains("1795780800000"), "{}", out.text);
        assert!(
            !out.text.to_lowercase().contains("manages tasks"),
            "{}",
            out.text
        );
        assert!(out.text.starts_with("Sure!"), "{}", out.text);
        assert!(out.text.ends_with("Done."), "{}", out.text);
        assert_eq!(out.removed, 2);
        // The user's own message was not a pattern.
        assert_eq!(
            c.clean("the user's words are never patterns").text,
            "the user's words are never patterns"
        );
    }

    #[test]
    fn a_stream_catches_a_prompt_sent_after_it_started_and_split_across_tokens() {
        let shared = Sanitizer::new(Vec::<String>::new());
        let sent = SentPrompts::default();
        let c = RequestCleaner {
            shared: &shared,
            sent: &sent,
        };
        let mut stream = c.stream("test");
        let mut out = stream.push("Before any call. ");
        // A call is made: its system message is recorded, then its tokens arrive.
        sent.record(&LlmRequest::plain("a", NOW_LINE.to_owned(), "u".into()));
        let echo = format!("{NOW_LINE} After.");
        for chunk in echo.as_bytes().chunks(3) {
            out.push_str(&stream.push(std::str::from_utf8(chunk).unwrap()));
        }
        out.push_str(&stream.finish());
        // Punctuation around a removal may stay (it is no prompt text); the words are gone.
        assert_eq!(out, "Before any call. ). After.");
    }
}
