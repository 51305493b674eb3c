//! `shared::billing::signature::verify`: the `Stripe-Signature` header of a webhook is
//! attacker-controlled (anyone can POST to the endpoint), and so is the body.
//!
//! Input layout: byte 0 picks the mode, then NUL-separated fields.
//! - Mode even: `header \0 payload \0 secret` with `now`/`tolerance` from two more bytes.
//!   Never panics; when it accepts, the header really holds `v1=<HMAC of t.payload>` for its
//!   (last) `t`, and `t` is within the tolerance (independent re-parse).
//! - Mode odd: `payload \0 secret \0 extra items`: a header made with the right secret
//!   (`t=…,v1=…`, with the extra non-`t` items mixed in) must verify; the same header with
//!   another secret must be refused with `Mismatch`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shared::billing::signature::{sign, verify, SignatureError, DEFAULT_TOLERANCE_SECS};

const NOW: i64 = 1_800_000_000;

fn fields(data: &[u8]) -> Vec<&[u8]> {
    data.split(|&b| b == 0).collect()
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let f = fields(rest);
    let field = |i: usize| f.get(i).copied().unwrap_or_default();
    let text = |i: usize| String::from_utf8_lossy(field(i)).into_owned();
    if mode % 2 == 0 {
        let (header, payload, secret) = (text(0), field(1), text(2));
        // Realistic clocks: `now` and the tolerance come from the system, not the request.
        let now = NOW + i64::from(mode) * 1000;
        let tolerance = if mode & 2 == 0 {
            DEFAULT_TOLERANCE_SECS
        } else {
            0
        };
        let got = verify(payload, &header, &secret, now, tolerance);
        if got.is_ok() {
            // Independent oracle: the last `t=` item, and a matching `v1=` item.
            let mut t = None;
            for item in header.split(',') {
                if let Some(v) = item.strip_prefix("t=") {
                    t = Some(v.parse::<i64>().expect("accepted with a bad t"));
                }
            }
            let t = t.expect("accepted without t");
            let want = format!("v1={}", sign(payload, &secret, t));
            assert!(
                header.split(',').any(|item| item == want),
                "accepted without a matching v1: {header:?}"
            );
            assert!(t >= now - tolerance, "accepted a stale timestamp");
        }
    } else {
        let (payload, secret) = (field(0), text(1));
        let t = NOW - i64::from(mode % 64);
        let sig = sign(payload, &secret, t);
        let extras: Vec<String> = f
            .iter()
            .skip(2)
            .map(|x| String::from_utf8_lossy(x).replace(',', ""))
            .filter(|x| x.split_once('=').is_none_or(|(k, _)| k != "t"))
            .collect();
        let mut items = vec![format!("t={t}"), format!("v1={sig}")];
        for (i, x) in extras.into_iter().enumerate() {
            items.insert(i % (items.len() + 1), x);
        }
        let header = items.join(",");
        assert_eq!(
            verify(payload, &header, &secret, NOW, DEFAULT_TOLERANCE_SECS),
            Ok(()),
            "{header:?}"
        );
        let other = format!("{secret}x");
        assert_eq!(
            verify(payload, &header, &other, NOW, DEFAULT_TOLERANCE_SECS),
            Err(SignatureError::Mismatch),
            "{header:?}"
        );
    }
});
