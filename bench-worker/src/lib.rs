//! Runs the API's CPU-bound auth paths `n` times inside workerd: `GET /argon2?n=` (one argon2id
//! hash with the production parameters each) and `GET /jwt?n=` (one HS256 verification each),
//! plus `GET /noop`. workerd freezes the clock during synchronous work, so `scripts/bench.sh`
//! times the requests from outside and subtracts the no-op round trip.

use std::hint::black_box;

use shared::auth::passwords;
use shared::auth::tokens::AccessTokens;
use shared::domain::{Tier, UserId};
use worker::{event, Context, Env, Request, Response, Result};

/// Most iterations one request may run.
const MAX_N: u32 = 1_000_000;

#[event(fetch)]
async fn fetch(req: Request, _env: Env, _ctx: Context) -> Result<Response> {
    let url = req.url()?;
    let n = url
        .query_pairs()
        .find(|(k, _)| k == "n")
        .and_then(|(_, v)| v.parse::<u32>().ok())
        .unwrap_or(1);
    if !(1..=MAX_N).contains(&n) {
        return Response::error(format!("n must be from 1 to {MAX_N}"), 422);
    }
    match url.path() {
        "/noop" => {}
        "/argon2" => {
            for i in 0..n {
                let salt = [u8::try_from(i % 256).unwrap_or(0); 16];
                let phc = passwords::hash(black_box(b"correct horse battery"), &salt)
                    .map_err(|e| worker::Error::RustError(e.to_string()))?;
                black_box(phc);
            }
        }
        "/jwt" => {
            let tokens = AccessTokens::new(b"bench-secret-bench-secret-bench-secret-00", 900);
            let now = 1_800_000_000_000;
            let token = tokens
                .issue(
                    UserId(uuid::Uuid::from_u128(7)),
                    Tier::Pro,
                    uuid::Uuid::nil(),
                    uuid::Uuid::nil(),
                    now,
                )
                .map_err(|e| worker::Error::RustError(e.to_string()))?
                .token;
            for _ in 0..n {
                let v = tokens
                    .verify(black_box(&token), now)
                    .map_err(|e| worker::Error::RustError(e.to_string()))?;
                black_box(v);
            }
        }
        _ => return Response::error("unknown benchmark", 404),
    }
    Response::from_json(&serde_json::json!({"path": url.path(), "n": n}))
}
