//! `shared::chat::sse::SseParser` fed untrusted bytes (an LLM provider's stream).
//!
//! Input layout: byte 0 picks the cap (`>= 0x80`: a small cap, so the size limit is reached;
//! else the default), byte 1 the number of cut points (0–31), then 2 bytes per cut, then the
//! stream. Properties:
//! - never panics;
//! - splitting the stream at arbitrary points gives exactly the events of one chunk, and an
//!   error (cap exceeded) happens split iff it happens whole (differential);
//! - under a small cap, the events delivered before the error are a prefix of the uncapped
//!   events;
//! - no event name, data line or id contains a line end; ids contain no NUL.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shared::chat::sse::{SseError, SseEvent, SseParser, MAX_EVENT_BYTES};

/// Events of every chunk, then `finish()`'s; the first error stops the run.
fn run(cap: usize, pieces: &[&[u8]]) -> (Vec<SseEvent>, Option<SseError>) {
    let mut p = SseParser::with_max_event_bytes(cap);
    let mut out = Vec::new();
    for piece in pieces {
        match p.push(piece) {
            Ok(events) => out.extend(events),
            Err(e) => {
                // The parser stays failed.
                assert_eq!(p.push(b"data: x\n\n"), Err(e.clone()));
                assert_eq!(p.finish(), None);
                return (out, Some(e));
            }
        }
    }
    out.extend(p.finish());
    (out, None)
}

fn check_event(e: &SseEvent) {
    if let Some(name) = &e.event {
        assert!(
            !name.contains(['\r', '\n']),
            "event name with a line end: {e:?}"
        );
    }
    assert!(!e.data.contains('\r'), "data with a CR: {e:?}");
    if let Some(id) = &e.id {
        assert!(!id.contains(['\r', '\n', '\0']), "bad id: {e:?}");
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let cap = if data[0] >= 0x80 {
        usize::from(data[0] & 0x7f)
    } else {
        MAX_EVENT_BYTES
    };
    let ncuts = usize::from(data[1] % 32);
    let rest = &data[2..];
    if rest.len() < 2 * ncuts {
        return;
    }
    let (cut_bytes, input) = rest.split_at(2 * ncuts);
    let mut cuts: Vec<usize> = cut_bytes
        .chunks_exact(2)
        .map(|c| usize::from(u16::from_le_bytes([c[0], c[1]])) % (input.len() + 1))
        .collect();
    cuts.sort_unstable();
    let mut pieces = Vec::with_capacity(cuts.len() + 1);
    let mut start = 0;
    for cut in cuts {
        pieces.push(&input[start..cut]);
        start = cut;
    }
    pieces.push(&input[start..]);

    let (whole, whole_err) = run(cap, &[input]);
    let (split, split_err) = run(cap, &pieces);
    assert_eq!(whole_err, split_err, "cap error whole vs split differ");
    if whole_err.is_none() {
        assert_eq!(whole, split, "events whole vs split differ");
    } else {
        // A failing chunk drops the events it completed: whole gives none.
        assert!(whole.is_empty());
    }
    // One byte at a time, too (the harshest split).
    let bytewise: Vec<&[u8]> = input.chunks(1).collect();
    let (bytes_events, bytes_err) = run(cap, &bytewise);
    assert_eq!(bytes_err, whole_err, "cap error whole vs bytewise differ");
    if whole_err.is_none() {
        assert_eq!(bytes_events, whole, "events whole vs bytewise differ");
    }
    for e in whole.iter().chain(&split) {
        check_event(e);
    }
    if cap != MAX_EVENT_BYTES {
        let (uncapped, err) = run(MAX_EVENT_BYTES, &[input]);
        assert!(err.is_none());
        assert!(
            uncapped.starts_with(&split),
            "capped events are not a prefix of the uncapped ones"
        );
    }
});
