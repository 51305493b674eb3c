//! The chat WebSocket's client frames (`durable_objects::chat_session::parse_client_frame`),
//! the worker → Durable Object messages of `shared::do_protocol` as the objects decode them
//! (`shared::input::parse_json`), and the vector index's stored-bytes decoder
//! (`durable_objects::vector_index::decode_values`).
//!
//! Byte 0 picks the parser (mostly the client frame, which is what users send); the rest is the
//! input. Properties:
//! - never panics;
//! - a refused frame always yields a well-formed JSON `error` frame (never the fallback);
//! - an accepted chat request passes `validate()`, and serialising it and parsing that again
//!   gives the same request; accepted `resume`/`cancel` ids are non-blank and at most 128
//!   characters;
//! - an upsert that passes `validate_upsert` survives a JSON round trip;
//! - `decode_values` is the inverse of `encode_values` (bit for bit).
#![no_main]

use durable_objects::chat_session::{parse_client_frame, ClientFrame, ServerFrame};
use durable_objects::vector_index::{decode_values, encode_values, validate_upsert};
use libfuzzer_sys::fuzz_target;
use shared::do_protocol::{RateCheck, VectorDelete, VectorQuery, VectorUpsert};
use shared::input::parse_json;

const JSON: Option<&str> = Some("application/json");

fn check_request_id(id: &str) {
    assert!(!id.trim().is_empty(), "blank request id accepted");
    assert!(id.chars().count() <= 128, "long request id accepted");
}

fn client_frame(text: &str) {
    match parse_client_frame(text) {
        Err(e) => {
            let frame = ServerFrame::error(&e, None).to_text();
            let v: serde_json::Value = serde_json::from_str(&frame).expect("error frame not JSON");
            assert_eq!(v["type"], "error");
            assert!(v["code"].as_str().is_some_and(|c| !c.is_empty()), "{frame}");
            assert_ne!(
                v["code"], "internal",
                "a frame caused an internal error: {frame}"
            );
        }
        Ok(ClientFrame::Chat(req)) => {
            req.validate().expect("accepted an invalid chat request");
            let again = serde_json::to_string(&*req).expect("serialize chat request");
            match parse_client_frame(&again) {
                Ok(ClientFrame::Chat(back)) => assert_eq!(back, req, "chat round trip: {again}"),
                other => panic!("chat round trip refused: {again} → {other:?}"),
            }
        }
        Ok(ClientFrame::Cancel { request_id }) => {
            if let Some(id) = request_id {
                check_request_id(&id);
            }
        }
        Ok(ClientFrame::Resume { request_id, .. }) => check_request_id(&request_id),
        Ok(ClientFrame::Ping) => {}
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    match selector % 8 {
        0..=3 => {
            // Frames arrive as text: the runtime hands the object a valid UTF-8 string.
            let text = String::from_utf8_lossy(rest);
            client_frame(&text);
        }
        4 => {
            if let Ok(msg) = parse_json::<VectorUpsert>(JSON, rest) {
                if validate_upsert::<()>(&msg).is_ok() {
                    let json = serde_json::to_vec(&msg).unwrap();
                    let back: VectorUpsert = parse_json(JSON, &json).expect("upsert round trip");
                    assert_eq!(back, msg);
                }
            }
        }
        5 => {
            let _ = parse_json::<RateCheck>(JSON, rest);
            let _ = parse_json::<VectorQuery>(JSON, rest);
        }
        6 => {
            let _ = parse_json::<VectorDelete>(JSON, rest);
        }
        _ => {
            if let Some(values) = decode_values(rest) {
                assert_eq!(encode_values(&values), rest, "decode/encode round trip");
            } else {
                assert_ne!(rest.len() % 4, 0);
            }
        }
    }
});
