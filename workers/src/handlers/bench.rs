//! `GET /api/v1/_bench/{op}?n=` — dev only (404 when `ENV=prod`): runs an operation `n` times
//! so `scripts/bench.sh` can time it from outside. Inside a request workerd freezes the clock
//! during synchronous work, so CPU time cannot be measured from within; the script subtracts
//! the round trip of `op=noop` instead.

use std::hint::black_box;

use shared::auth::passwords;
use shared::config::Environment;
use shared::domain::{Tier, UserId};
use shared::{AppError, AppResult};
use worker::Response;

use crate::http::{access_tokens, json, Ctx};

/// Most iterations one call may run.
const MAX_N: u32 = 1_000_000;

/// Runs the named operation `n` times.
pub async fn run(ctx: Ctx) -> AppResult<Response> {
    if ctx.shared.config.env != Environment::Dev {
        return Err(AppError::NotFound);
    }
    let op = ctx
        .params
        .iter()
        .find(|(k, _)| k == "op")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let n = ctx
        .req
        .url()
        .ok()
        .and_then(|u| {
            u.query_pairs()
                .find(|(k, _)| k == "n")
                .map(|(_, v)| v.into_owned())
        })
        .map_or(Ok(1), |v| v.parse::<u32>())
        .ok()
        .filter(|n| (1..=MAX_N).contains(n))
        .ok_or_else(|| AppError::field("n", format!("must be a whole number from 1 to {MAX_N}")))?;
    match op.as_str() {
        "noop" => {}
        "argon2" => {
            for i in 0..n {
                let salt = [u8::try_from(i % 256).unwrap_or(0); 16];
                black_box(passwords::hash(black_box(b"correct horse battery"), &salt)?);
            }
        }
        "jwt" => {
            let tokens = access_tokens(&ctx);
            let now = 1_800_000_000_000;
            let token = tokens
                .issue(
                    UserId(uuid::Uuid::from_u128(7)),
                    Tier::Pro,
                    uuid::Uuid::nil(),
                    now,
                )?
                .token;
            for _ in 0..n {
                black_box(tokens.verify(black_box(&token), now)?);
            }
        }
        _ => return Err(AppError::field("op", "must be noop, argon2 or jwt")),
    }
    json(200, &serde_json::json!({"op": op, "n": n}))
}
