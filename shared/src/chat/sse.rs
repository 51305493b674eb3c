//! An incremental Server-Sent Events parser (the `text/event-stream` format of the HTML
//! standard), for streamed LLM answers.
//!
//! Bytes go in as they arrive, split anywhere — inside a UTF-8 character, between `\r` and
//! `\n`, inside a field name — and whole events come out. Lines end with `\n`, `\r\n` or `\r`;
//! several `data:` lines of one event are joined with `\n`; lines starting with `:` are
//! comments; one space after a field's colon is dropped; a leading byte-order mark is ignored.
//! Lines are split on bytes before decoding (the line ends never occur inside a multi-byte
//! character), then decoded as UTF-8, invalid sequences replaced.
//!
//! One event may hold at most [`MAX_EVENT_BYTES`] (configurable): a server that never ends a
//! line or an event cannot make the parser buffer without bound.

use std::mem;

/// Default cap on the bytes of one event (its data and the line being read).
pub const MAX_EVENT_BYTES: usize = 1024 * 1024;

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseEvent {
    /// The `event:` field, if the event had one (the standard's default is `message`).
    pub event: Option<String>,
    /// The `data:` lines joined with `\n`.
    pub data: String,
    /// The last event id seen so far in the stream (`id:` fields persist across events).
    pub id: Option<String>,
}

/// Why the stream cannot be parsed further.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SseError {
    /// One event (or one line) grew past the cap.
    #[error("event larger than {limit} bytes")]
    EventTooLarge {
        /// The cap, in bytes.
        limit: usize,
    },
}

/// The parser's state between chunks.
#[derive(Debug, Clone)]
pub struct SseParser {
    /// Bytes of the line being read (no line end yet).
    line: Vec<u8>,
    /// The data buffer: each `data:` value followed by `\n`.
    data: String,
    /// The `event:` field of the event being read.
    event: Option<String>,
    /// The last event id.
    last_id: Option<String>,
    /// The previous chunk ended with `\r`: a `\n` starting the next one belongs to it.
    after_cr: bool,
    /// No line was completed yet (a byte-order mark may start the first one).
    first_line: bool,
    /// Cap on `line` + `data`.
    max_event_bytes: usize,
    /// Set once the cap was broken; every later call fails the same way.
    failed: Option<SseError>,
}

impl Default for SseParser {
    fn default() -> Self {
        Self::new()
    }
}

impl SseParser {
    /// A parser for a new stream with the default cap ([`MAX_EVENT_BYTES`]).
    pub fn new() -> Self {
        Self::with_max_event_bytes(MAX_EVENT_BYTES)
    }

    /// A parser for a new stream whose events may hold at most `max_event_bytes`.
    pub fn with_max_event_bytes(max_event_bytes: usize) -> Self {
        Self {
            line: Vec::new(),
            data: String::new(),
            event: None,
            last_id: None,
            after_cr: false,
            first_line: true,
            max_event_bytes,
            failed: None,
        }
    }

    /// Feeds the next bytes of the stream; returns the events they complete, in order.
    ///
    /// # Errors
    /// [`SseError::EventTooLarge`] when an event or a line outgrows the cap. The stream is then
    /// unusable: this and every later call fail, and events completed by the same chunk are
    /// dropped.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<SseEvent>, SseError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let mut out = Vec::new();
        let mut rest = bytes;
        while let Some((&first, tail)) = rest.split_first() {
            if mem::take(&mut self.after_cr) && first == b'\n' {
                rest = tail;
                continue;
            }
            let Some(end) = rest.iter().position(|&b| b == b'\n' || b == b'\r') else {
                self.line.extend_from_slice(rest);
                self.check_size()?;
                break;
            };
            self.line.extend_from_slice(&rest[..end]);
            self.check_size()?;
            self.after_cr = rest[end] == b'\r';
            rest = &rest[end + 1..];
            if let Some(event) = self.end_line() {
                out.push(event);
            }
        }
        Ok(out)
    }

    /// Ends the stream. A last line without a line end is read as a line; then the event still
    /// open (data read, but no blank line dispatched it) is returned, if there is one.
    ///
    /// The standard discards such an event: strict callers ignore it, lenient ones use it.
    /// Afterwards the parser is ready for a new stream (the last event id persists).
    pub fn finish(&mut self) -> Option<SseEvent> {
        if self.failed.is_some() {
            return None;
        }
        self.after_cr = false;
        let open = if self.line.is_empty() {
            None
        } else {
            // A non-empty line never dispatches.
            self.end_line()
        };
        let event = open.or_else(|| self.dispatch());
        self.first_line = true;
        event
    }

    fn check_size(&mut self) -> Result<(), SseError> {
        if self.line.len() + self.data.len() > self.max_event_bytes {
            let e = SseError::EventTooLarge {
                limit: self.max_event_bytes,
            };
            self.failed = Some(e.clone());
            self.line = Vec::new();
            self.data = String::new();
            return Err(e);
        }
        Ok(())
    }

    /// Processes the completed line in `self.line`; a blank line dispatches.
    fn end_line(&mut self) -> Option<SseEvent> {
        let mut bytes: &[u8] = &self.line;
        if mem::take(&mut self.first_line) {
            bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        }
        if bytes.is_empty() {
            self.line.clear();
            return self.dispatch();
        }
        let line = String::from_utf8_lossy(bytes);
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line.as_ref(), ""),
        };
        match field {
            "event" => self.event = Some(value.to_owned()),
            "data" => {
                self.data.push_str(value);
                self.data.push('\n');
            }
            "id" if !value.contains('\0') => self.last_id = Some(value.to_owned()),
            // Comments (an empty field name: keep-alives), `retry` and unknown fields.
            _ => {}
        }
        self.line.clear();
        None
    }

    /// Ends the event being read: returns it if it has data, and resets the buffers.
    fn dispatch(&mut self) -> Option<SseEvent> {
        let event = self.event.take();
        if self.data.is_empty() {
            return None;
        }
        let mut data = mem::take(&mut self.data);
        data.pop(); // the `\n` after the last data line
        Some(SseEvent {
            event,
            data,
            id: self.last_id.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn data(d: &str) -> SseEvent {
        SseEvent {
            data: d.to_owned(),
            ..SseEvent::default()
        }
    }

    fn parse_whole(input: &[u8]) -> Vec<SseEvent> {
        let mut p = SseParser::new();
        let mut out = p.push(input).unwrap();
        out.extend(p.finish());
        out
    }

    fn parse_in_pieces<'a>(pieces: impl IntoIterator<Item = &'a [u8]>) -> Vec<SseEvent> {
        let mut p = SseParser::new();
        let mut out = Vec::new();
        for piece in pieces {
            out.extend(p.push(piece).unwrap());
        }
        out.extend(p.finish());
        out
    }

    /// What OpenAI sends for a short streamed answer with a tool call and usage, with a comment
    /// and multi-byte characters (é, 🦀, 日本) thrown in.
    const OPENAI_STREAM: &str = concat!(
        ": keep-alive\n\n",
        "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n",
        "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Café \"},\"finish_reason\":null}]}\n\n",
        "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"🦀 日本\"},\"finish_reason\":null}]}\n\n",
        "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"add_task\",\"arguments\":\"\"}}]},\"finish_reason\":null}]}\n\n",
        "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"title\\\":\\\"é\\\"}\"}}]},\"finish_reason\":null}]}\n\n",
        "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\n",
        "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":7,\"total_tokens\":19}}\n\n",
        "data: [DONE]\n\n",
    );

    #[test]
    fn a_realistic_openai_stream_fed_one_byte_at_a_time_equals_it_fed_whole() {
        let whole = parse_whole(OPENAI_STREAM.as_bytes());
        assert_eq!(whole.len(), 8);
        assert_eq!(whole.last().unwrap(), &data("[DONE]"));
        assert!(whole[1].data.contains("Café "));
        assert!(whole[2].data.contains("🦀 日本"));
        for event in &whole[..7] {
            serde_json::from_str::<serde_json::Value>(&event.data).unwrap();
        }
        let bytewise = parse_in_pieces(OPENAI_STREAM.as_bytes().chunks(1));
        assert_eq!(bytewise, whole);
    }

    #[test]
    fn the_same_stream_with_crlf_or_cr_line_ends_gives_the_same_events() {
        let whole = parse_whole(OPENAI_STREAM.as_bytes());
        for end in ["\r\n", "\r"] {
            let converted = OPENAI_STREAM.replace('\n', end);
            assert_eq!(parse_whole(converted.as_bytes()), whole, "{end:?}");
            assert_eq!(
                parse_in_pieces(converted.as_bytes().chunks(1)),
                whole,
                "{end:?}"
            );
        }
    }

    #[test]
    fn a_crlf_split_between_chunks_is_one_line_end() {
        // Had the `\n` counted as a second line end, the blank line would dispatch "a" alone.
        let events = parse_in_pieces([&b"data: a\r"[..], b"\ndata: b\r", b"\n\r", b"\n"]);
        assert_eq!(events, vec![data("a\nb")]);
    }

    #[test]
    fn a_lone_cr_followed_by_another_chunk_ends_the_line() {
        let events = parse_in_pieces([&b"data: a\r"[..], b"\r", b"data: b\r\r"]);
        assert_eq!(events, vec![data("a"), data("b")]);
    }

    #[test]
    fn multi_line_data_is_joined_with_newlines() {
        let events = parse_whole(b"data: one\ndata: two\ndata:\ndata: three\n\n");
        assert_eq!(events, vec![data("one\ntwo\n\nthree")]);
    }

    #[test]
    fn only_one_space_after_the_colon_is_dropped() {
        let events = parse_whole(b"data:no space\n\ndata:  two spaces\n\ndata: a: b\n\n");
        assert_eq!(
            events,
            vec![data("no space"), data(" two spaces"), data("a: b")]
        );
    }

    #[test]
    fn comments_and_unknown_fields_are_ignored() {
        let events = parse_whole(b": ping\n:\nretry: 1000\nfoo: bar\ndata: x\n\n: bye\n\n");
        assert_eq!(events, vec![data("x")]);
    }

    #[test]
    fn the_event_field_names_the_event_and_applies_to_that_event_only() {
        let events = parse_whole(b"event: error\ndata: {}\n\ndata: next\n\n");
        assert_eq!(
            events,
            vec![
                SseEvent {
                    event: Some("error".into()),
                    data: "{}".into(),
                    id: None
                },
                data("next"),
            ]
        );
    }

    #[test]
    fn an_event_without_data_is_not_dispatched_and_forgets_its_name() {
        let events = parse_whole(b"event: ping\n\ndata: x\n\n");
        assert_eq!(events, vec![data("x")]);
    }

    #[test]
    fn an_empty_data_line_dispatches_an_empty_event() {
        assert_eq!(parse_whole(b"data\n\n"), vec![data("")]);
        assert_eq!(parse_whole(b"data:\n\n"), vec![data("")]);
    }

    #[test]
    fn ids_persist_across_events() {
        let events = parse_whole(b"id: 7\ndata: a\n\ndata: b\n\n");
        assert_eq!(events[0].id.as_deref(), Some("7"));
        assert_eq!(events[1].id.as_deref(), Some("7"));
    }

    #[test]
    fn a_multi_byte_character_split_across_chunks_survives() {
        let bytes = "data: 🦀é\n\n".as_bytes();
        for cut in 0..bytes.len() {
            let events = parse_in_pieces([&bytes[..cut], &bytes[cut..]]);
            assert_eq!(events, vec![data("🦀é")], "cut at {cut}");
        }
    }

    #[test]
    fn a_leading_byte_order_mark_is_ignored_even_when_split() {
        let bytes = b"\xEF\xBB\xBFdata: x\n\n";
        assert_eq!(parse_whole(bytes), vec![data("x")]);
        assert_eq!(parse_in_pieces(bytes.chunks(1)), vec![data("x")]);
    }

    #[test]
    fn invalid_utf8_is_replaced_not_fatal() {
        assert_eq!(parse_whole(b"data: a\xFFb\n\n"), vec![data("a\u{FFFD}b")]);
    }

    #[test]
    fn finish_returns_an_event_missing_its_blank_line() {
        let mut p = SseParser::new();
        assert!(p.push(b"data: [DONE]").unwrap().is_empty());
        assert_eq!(p.finish(), Some(data("[DONE]")));

        let mut p = SseParser::new();
        assert!(p.push(b"data: a\n").unwrap().is_empty());
        assert_eq!(p.finish(), Some(data("a")));

        let mut p = SseParser::new();
        assert_eq!(p.push(b"data: a\n\n").unwrap(), vec![data("a")]);
        assert_eq!(p.finish(), None);
    }

    #[test]
    fn an_event_over_the_cap_is_an_error_and_the_parser_stays_failed() {
        let mut p = SseParser::with_max_event_bytes(16);
        assert_eq!(p.push(b"data: 0123456789\n\n").unwrap().len(), 1);
        let e = p.push(b"data: 0123456789\ndata: 0123456789\n").unwrap_err();
        assert_eq!(e, SseError::EventTooLarge { limit: 16 });
        assert_eq!(p.push(b"\n").unwrap_err(), e);
        assert_eq!(p.finish(), None);
    }

    #[test]
    fn a_line_that_never_ends_hits_the_cap() {
        let mut p = SseParser::with_max_event_bytes(1024);
        let chunk = [b'a'; 100];
        let mut result = Ok(Vec::new());
        for _ in 0..20 {
            result = p.push(&chunk);
            if result.is_err() {
                break;
            }
        }
        assert_eq!(result, Err(SseError::EventTooLarge { limit: 1024 }));
    }

    #[test]
    fn the_default_cap_is_one_mebibyte() {
        let mut p = SseParser::new();
        let big = "x".repeat(MAX_EVENT_BYTES - 10);
        let events = p.push(format!("data: {big}\n\n").as_bytes()).unwrap();
        assert_eq!(events[0].data.len(), big.len());
        let too_big = "x".repeat(MAX_EVENT_BYTES + 1);
        assert!(p.push(format!("data: {too_big}\n\n").as_bytes()).is_err());
    }

    fn split_at_points(bytes: &[u8], mut cuts: Vec<usize>) -> Vec<&[u8]> {
        for c in &mut cuts {
            *c %= bytes.len() + 1;
        }
        cuts.sort_unstable();
        let mut pieces = Vec::new();
        let mut start = 0;
        for cut in cuts {
            pieces.push(&bytes[start..cut]);
            start = cut;
        }
        pieces.push(&bytes[start..]);
        pieces
    }

    proptest! {
        #[test]
        fn splitting_the_openai_stream_anywhere_changes_nothing(
            cuts in proptest::collection::vec(any::<usize>(), 0..40),
            line_end in prop_oneof![Just("\n"), Just("\r\n"), Just("\r")],
        ) {
            let input = OPENAI_STREAM.replace('\n', line_end);
            let expected = parse_whole(OPENAI_STREAM.as_bytes());
            let pieces = split_at_points(input.as_bytes(), cuts);
            prop_assert_eq!(parse_in_pieces(pieces), expected);
        }

        #[test]
        fn splitting_any_input_anywhere_changes_nothing(
            input in proptest::collection::vec(
                prop_oneof![
                    Just(b'\n'), Just(b'\r'), Just(b':'), Just(b' '),
                    Just(b'd'), Just(b'a'), Just(b't'), Just(0xC3), Just(0xA9), any::<u8>(),
                ],
                0..200,
            ),
            cuts in proptest::collection::vec(any::<usize>(), 0..20),
        ) {
            let mut prefixed = b"data: x\n".to_vec();
            prefixed.extend_from_slice(&input);
            let expected = parse_whole(&prefixed);
            let pieces = split_at_points(&prefixed, cuts);
            prop_assert_eq!(parse_in_pieces(pieces), expected);
        }
    }
}
