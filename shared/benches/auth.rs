//! CPU cost of the auth hot paths, natively: one argon2id hash (m=19 MiB, t=2, p=1) and one
//! HS256 access-token verification. `scripts/bench.sh` prints these next to the same figures
//! measured in wasm under workerd.

use std::hint::black_box;
use std::time::Instant;

use shared::auth::passwords;
use shared::auth::tokens::AccessTokens;
use shared::domain::{Tier, UserId};

fn main() {
    let hashes = 20u32;
    let started = Instant::now();
    for i in 0..hashes {
        let salt = [u8::try_from(i).unwrap_or(0); 16];
        black_box(passwords::hash(black_box(b"correct horse battery"), &salt).unwrap());
    }
    let per_hash = started.elapsed().as_secs_f64() * 1e3 / f64::from(hashes);

    let tokens = AccessTokens::new(b"0123456789abcdef0123456789abcdef", 900);
    let now = 1_800_000_000_000;
    let token = tokens
        .issue(
            UserId(uuid::Uuid::from_u128(7)),
            Tier::Pro,
            uuid::Uuid::nil(),
            uuid::Uuid::nil(),
            now,
        )
        .unwrap()
        .token;
    let verifies = 50_000u32;
    let started = Instant::now();
    for _ in 0..verifies {
        black_box(tokens.verify(black_box(&token), now).unwrap());
    }
    let per_verify = started.elapsed().as_secs_f64() * 1e6 / f64::from(verifies);

    println!("native argon2id hash (m=19456 KiB, t=2, p=1): {per_hash:.1} ms/op ({hashes} ops)");
    println!(
        "native JWT HS256 verify:                      {per_verify:.2} µs/op ({verifies} ops)"
    );
}
