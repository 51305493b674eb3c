//! Search quality of DCPE: recall@10 of top-10 **cosine** search over DCPE-encrypted vectors
//! against exact cosine search over the plaintext vectors, for a grid of β at
//! `s = DEFAULT_SCALE`, plus the cost of one encryption.
//!
//! Data: real sentence embeddings (all-MiniLM-L6-v2, 384 dims, unit length) of sentences of
//! CPython's own documentation, made offline by `python3 scripts/embed-corpus.py` into
//! `target/dcpe-corpus/minilm-embeddings.bin` (or the file named by `DCPE_CORPUS`). The first
//! 200 vectors are the queries, the other 10,000 the index. Without that file the bench
//! says so and falls back to a synthetic clustered data set, clearly labelled.
//!
//! Queries are encrypted too (each vector under its own nonce), as the app does.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Instant;

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use shared::dcpe::{encrypt_vector, DcpeKey, DEFAULT_BETA, DEFAULT_SCALE};

const QUERIES: usize = 200;
const K: usize = 10;
const BETAS: [f64; 10] = [0.0, 0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0];

struct Dataset {
    label: String,
    dims: usize,
    vectors: Vec<Vec<f32>>,
}

fn main() {
    let data = load_corpus().unwrap_or_else(synthetic);
    let (queries, index) = data.vectors.split_at(QUERIES);
    println!("DCPE recall@{K}, cosine search over ciphertexts vs exact cosine over plaintexts");
    println!("data: {}", data.label);
    println!(
        "{} queries, {} indexed vectors, {} dims, s = {DEFAULT_SCALE}, DEFAULT_BETA = {DEFAULT_BETA}",
        queries.len(),
        index.len(),
        data.dims
    );

    let started = Instant::now();
    let exact: Vec<Vec<usize>> = queries.iter().map(|q| top_k(q, index)).collect();
    let search_ms = started.elapsed().as_secs_f64() * 1e3 / to_f64(queries.len());

    println!();
    println!("| β | max noise / ‖s·m‖ | recall@10 (cosine) | recall@1 (cosine) | recall@10 (Euclidean) | min query recall@10 |");
    println!("| --- | --- | --- | --- | --- | --- |");
    for beta in BETAS {
        let key = DcpeKey::generate([0x5A; 32], DEFAULT_SCALE, beta).expect("valid parameters");
        let encrypt_all = |vectors: &[Vec<f32>], tag: u8| -> Vec<Vec<f32>> {
            vectors
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    let mut nonce = (i as u64).to_le_bytes().to_vec();
                    nonce.push(tag);
                    encrypt_vector(&key, &nonce, v).expect("valid vector")
                })
                .collect()
        };
        let enc_index = encrypt_all(index, 0);
        let enc_queries = encrypt_all(queries, 1);
        let unit_index: Vec<Vec<f32>> = enc_index.iter().map(|v| normalised(v)).collect();

        let (mut recall, mut recall1, mut recall_l2, mut worst) = (0.0, 0.0, 0.0, 1.0f64);
        for (qi, q) in enc_queries.iter().enumerate() {
            let got = top_k(&normalised(q), &unit_index);
            let r = overlap(&exact[qi], &got);
            recall += r;
            worst = worst.min(r);
            recall1 += if got[0] == exact[qi][0] { 1.0 } else { 0.0 };
            recall_l2 += overlap(&exact[qi], &top_k_euclidean(q, &enc_index));
        }
        let n = to_f64(queries.len());
        println!(
            "| {beta} | {:.4} | {:.3} | {:.3} | {:.3} | {worst:.1} |",
            beta / 4.0,
            recall / n,
            recall1 / n,
            recall_l2 / n
        );
    }

    let key = DcpeKey::generate([1; 32], DEFAULT_SCALE, DEFAULT_BETA).expect("valid parameters");
    let rounds = 2000u32;
    let started = Instant::now();
    for i in 0..rounds {
        black_box(encrypt_vector(&key, &i.to_le_bytes(), black_box(&queries[0])).unwrap());
    }
    let per_encrypt = started.elapsed().as_secs_f64() * 1e6 / f64::from(rounds);
    println!();
    println!(
        "native encrypt_vector ({} dims): {per_encrypt:.1} µs/op ({rounds} ops)",
        data.dims
    );
    println!(
        "native exact top-{K} scan of {} vectors: {search_ms:.2} ms/query",
        index.len()
    );
}

/// Reads the corpus written by `scripts/embed-corpus.py`, or says why it cannot.
fn load_corpus() -> Option<Dataset> {
    let path = std::env::var_os("DCPE_CORPUS").map_or_else(
        || {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../target/dcpe-corpus/minilm-embeddings.bin")
        },
        PathBuf::from,
    );
    let path = path.canonicalize().unwrap_or(path);
    let Ok(bytes) = std::fs::read(&path) else {
        println!("NOTE: no real embeddings at {}.", path.display());
        println!("      Run `python3 scripts/embed-corpus.py` (offline, ~5 min) for real ones.");
        println!("      Falling back to SYNTHETIC data; these figures are not from text.");
        println!();
        return None;
    };
    let word = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
    assert!(
        bytes.len() >= 16 && &bytes[..8] == b"DCPEEMB1",
        "{} is not a DCPEEMB1 file",
        path.display()
    );
    let (count, dims) = (word(8) as usize, word(12) as usize);
    assert_eq!(
        bytes.len(),
        16 + count * dims * 4,
        "truncated {}",
        path.display()
    );
    let vectors: Vec<Vec<f32>> = bytes[16..]
        .chunks_exact(dims * 4)
        .map(|row| {
            row.chunks_exact(4)
                .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes")))
                .collect()
        })
        .collect();
    assert!(
        count > QUERIES + K,
        "need more than {} vectors",
        QUERIES + K
    );
    Some(Dataset {
        label: format!(
            "REAL text embeddings: all-MiniLM-L6-v2 (unit length) of CPython documentation sentences ({})",
            path.display()
        ),
        dims,
        vectors,
    })
}

/// 10,200 unit vectors of 384 dims scattered around 300 random cluster centres, mimicking the
/// clustered geometry of sentence embeddings (typical nearest-neighbour cosine 0.6–0.8).
fn synthetic() -> Dataset {
    let dims = 384;
    let mut rng = ChaCha20Rng::from_seed([3; 32]);
    let mut gaussian = move || {
        let u1 = (to_f64_bits(rng.next_u64()) + 0.5) / 9_007_199_254_740_992.0;
        let u2 = (to_f64_bits(rng.next_u64()) + 0.5) / 9_007_199_254_740_992.0;
        to_f32((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos())
    };
    let centres: Vec<Vec<f32>> = (0..300)
        .map(|_| normalised(&(0..dims).map(|_| gaussian()).collect::<Vec<_>>()))
        .collect();
    let spread = 0.045;
    let vectors = (0..QUERIES + 10_000)
        .map(|i| {
            let c = &centres[(i * 7919) % centres.len()];
            let v: Vec<f32> = c.iter().map(|x| x + spread * gaussian()).collect();
            normalised(&v)
        })
        .collect();
    Dataset {
        label: "SYNTHETIC (no text): unit vectors around 300 cluster centres".into(),
        dims,
        vectors,
    }
}

fn top_k(query: &[f32], index: &[Vec<f32>]) -> Vec<usize> {
    best(index.iter().map(|v| dot(query, v)))
}

fn top_k_euclidean(query: &[f32], index: &[Vec<f32>]) -> Vec<usize> {
    best(index.iter().map(|v| {
        -v.iter()
            .zip(query)
            .map(|(a, b)| (a - b) * (a - b))
            .sum::<f32>()
    }))
}

/// Indices of the K highest scores, best first.
fn best(scores: impl Iterator<Item = f32>) -> Vec<usize> {
    let mut scored: Vec<(f32, usize)> = scores.enumerate().map(|(i, s)| (s, i)).collect();
    scored.select_nth_unstable_by(K, |a, b| b.0.total_cmp(&a.0));
    scored.truncate(K);
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    scored.into_iter().map(|(_, i)| i).collect()
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for lane in 0..8 {
            acc[lane] += x[lane] * y[lane];
        }
    }
    acc.iter().sum::<f32>() + tail
}

fn normalised(v: &[f32]) -> Vec<f32> {
    let norm = dot(v, v).sqrt();
    v.iter().map(|x| x / norm).collect()
}

fn overlap(exact: &[usize], got: &[usize]) -> f64 {
    to_f64(got.iter().filter(|i| exact.contains(i)).count()) / to_f64(K)
}

fn to_f64(n: usize) -> f64 {
    f64::from(u32::try_from(n).expect("small count"))
}

#[allow(clippy::cast_precision_loss)]
fn to_f64_bits(bits: u64) -> f64 {
    (bits >> 11) as f64
}

#[allow(clippy::cast_possible_truncation)]
fn to_f32(x: f64) -> f32 {
    x as f32
}
