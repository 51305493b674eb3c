//! The cross-language fixture `clients/fixtures/dcpe-vectors.json`: the same key seed, nonce and
//! vector must give the same key bytes and ciphertext (bit for bit) here, natively, and in the
//! wasm package (`clients/typescript/test/crypto.test.ts` reads the same file); the checksum
//! cases likewise. The file's `recall` section is the Rust figure the client kit's vector test
//! must reproduce through the server.
//!
//! `UPDATE_FIXTURES=1 cargo test -p dcpe-wasm --test fixtures` rewrites the file from this code
//! (a deliberate change of format or algorithm); otherwise it is only read and compared.

use std::path::PathBuf;

use dcpe_wasm::core::{self, ChecksumStream};
use serde_json::{json, Value};

fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
}

fn f32_hex(values: &[f32]) -> String {
    hex::encode(
        values
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect::<Vec<u8>>(),
    )
}

fn to_f64(n: usize) -> f64 {
    f64::from(u32::try_from(n).expect("small"))
}

/// A deterministic, unit-length test vector of `dims` dimensions.
fn unit_vector(dims: usize, phase: f32) -> Vec<f32> {
    let v: Vec<f32> = (0..dims)
        .map(|i| (f32::from(u16::try_from(i).expect("small")) * 0.37 + phase).sin())
        .collect();
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.into_iter().map(|x| x / norm).collect()
}

struct Case {
    name: &'static str,
    seed: [u8; 32],
    scale: f64,
    beta: f64,
    nonce: Vec<u8>,
    plaintext: Vec<f32>,
}

fn cases() -> Vec<Case> {
    let counting: [u8; 32] = std::array::from_fn(|i| u8::try_from(i).expect("small"));
    vec![
        Case {
            name: "four dimensions, default parameters",
            seed: [7; 32],
            scale: 1024.0,
            beta: 0.5,
            nonce: b"known answer".to_vec(),
            plaintext: vec![0.5, -0.25, 0.0, 1.0],
        },
        Case {
            name: "384-dimension unit vector (all-MiniLM-L6-v2 size), 16-byte nonce",
            seed: counting,
            scale: 1024.0,
            beta: 0.5,
            nonce: (0..16u8)
                .map(|i| i.wrapping_mul(37).wrapping_add(11))
                .collect(),
            plaintext: unit_vector(384, 0.0),
        },
        Case {
            name: "1536 dimensions (the server's maximum), small scale, large beta",
            seed: [0xA5; 32],
            scale: 3.5,
            beta: 1.5,
            nonce: vec![0xFF; 24],
            plaintext: unit_vector(1536, 1.25),
        },
        Case {
            name: "beta 0: plain scaling, no noise",
            seed: [1; 32],
            scale: 2.0,
            beta: 0.0,
            nonce: vec![0],
            plaintext: vec![1.0, -2.0, 0.125, 3.0e-3, -7.5],
        },
    ]
}

fn dcpe_section() -> Value {
    let cases: Vec<Value> = cases()
        .into_iter()
        .map(|c| {
            let key = core::generate_key(&c.seed, c.scale, c.beta).expect("valid parameters");
            let ciphertext = core::encrypt(&key, &c.nonce, &c.plaintext).expect("valid input");
            json!({
                "name": c.name,
                "seed_hex": hex::encode(c.seed),
                "scale": c.scale,
                "beta": c.beta,
                "key_hex": hex::encode(&key),
                "nonce_hex": hex::encode(&c.nonce),
                "plaintext_f32le_hex": f32_hex(&c.plaintext),
                "ciphertext_f32le_hex": f32_hex(&ciphertext),
            })
        })
        .collect();
    Value::Array(cases)
}

fn checksum_section() -> Value {
    let inputs: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"abc".to_vec(),
        (0..1000u32)
            .map(|i| u8::try_from(i * 7 % 251).expect("below 251"))
            .collect(),
    ];
    let cases: Vec<Value> = inputs
        .iter()
        .map(|bytes| {
            // The stream in three uneven parts gives the one-shot value.
            let mut stream = ChecksumStream::default();
            let (a, rest) = bytes.split_at(bytes.len() / 3);
            let (b, c) = rest.split_at(rest.len() / 2);
            for part in [a, b, c] {
                stream.update(part);
            }
            let sum = core::checksum(bytes);
            assert_eq!(stream.finish(), sum);
            json!({"bytes_hex": hex::encode(bytes), "checksum": sum})
        })
        .collect();
    Value::Array(cases)
}

/// The vectors of the DCPEEMB1 file `name` in the fixtures directory.
fn read_corpus(name: &str) -> Vec<Vec<f32>> {
    let bytes = std::fs::read(fixtures_dir().join(name)).expect("the corpus fixture");
    assert_eq!(&bytes[..8], b"DCPEEMB1");
    let word = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
    let (count, dims) = (word(8) as usize, word(12) as usize);
    assert_eq!(bytes.len(), 16 + count * dims * 4);
    bytes[16..]
        .chunks_exact(dims * 4)
        .map(|row| {
            row.chunks_exact(4)
                .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes")))
                .collect()
        })
        .collect()
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| f64::from(x) * f64::from(y))
        .sum();
    let norm = |v: &[f32]| v.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>().sqrt();
    dot / (norm(a) * norm(b))
}

/// Indices of the `k` most cosine-similar vectors of `index` to `query`, best first.
fn top_k(query: &[f32], index: &[Vec<f32>], k: usize) -> Vec<usize> {
    let mut scored: Vec<(f64, usize)> = index
        .iter()
        .enumerate()
        .map(|(i, v)| (cosine(query, v), i))
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    scored.into_iter().take(k).map(|(_, i)| i).collect()
}

/// The nonce of vector `i` as `shared/benches/dcpe.rs` makes it: `i` as u64 LE, then `tag`
/// (0 for indexed vectors, 1 for queries).
fn bench_nonce(i: usize, tag: u8) -> Vec<u8> {
    let mut nonce = u64::try_from(i).expect("fits").to_le_bytes().to_vec();
    nonce.push(tag);
    nonce
}

/// recall@k of cosine search over DCPE ciphertexts against exact cosine search over the
/// plaintexts, exactly as the bench measures it (queries encrypted too).
fn recall_section() -> Value {
    const CORPUS: &str = "minilm-700.bin";
    const QUERIES: usize = 200;
    const K: usize = 10;
    let (seed, scale, beta) = ([0x5A; 32], 1024.0, 0.5);
    let vectors = read_corpus(CORPUS);
    let (queries, index) = vectors.split_at(QUERIES);
    let key = core::generate_key(&seed, scale, beta).expect("valid parameters");
    let enc_index: Vec<Vec<f32>> = index
        .iter()
        .enumerate()
        .map(|(i, v)| core::encrypt(&key, &bench_nonce(i, 0), v).expect("valid"))
        .collect();
    let mut total = 0.0;
    for (qi, q) in queries.iter().enumerate() {
        let exact = top_k(q, index, K);
        let enc_q = core::encrypt(&key, &bench_nonce(qi, 1), q).expect("valid");
        let got = top_k(&enc_q, &enc_index, K);
        total += to_f64(got.iter().filter(|i| exact.contains(i)).count()) / to_f64(K);
    }
    let recall = (total / to_f64(QUERIES) * 10_000.0).round() / 10_000.0;
    json!({
        "corpus": CORPUS,
        "about": "all-MiniLM-L6-v2 embeddings (384 dims, unit length) of 700 sentences of CPython's documentation, made by scripts/embed-corpus.py --count 700 (texts in minilm-700.texts.jsonl); DCPEEMB1 format",
        "queries": QUERIES,
        "indexed": index.len(),
        "k": K,
        "seed_hex": hex::encode(seed),
        "scale": scale,
        "beta": beta,
        "nonce": "vector i: i as u64 little-endian, then one byte: 0 for indexed vectors, 1 for queries (as shared/benches/dcpe.rs)",
        "recall_at_k": recall,
    })
}

fn fixture() -> Value {
    json!({
        "about": "Cross-language test vectors of the client kit: written by `UPDATE_FIXTURES=1 cargo test -p dcpe-wasm --test fixtures` from shared::dcpe, read by that test and by clients/typescript/test/crypto.test.ts. Vectors are f32 little-endian, hex.",
        "dcpe": dcpe_section(),
        "checksum": checksum_section(),
        "recall": recall_section(),
    })
}

#[test]
fn the_committed_fixture_matches_shared_dcpe_bit_for_bit() {
    let path = fixtures_dir().join("dcpe-vectors.json");
    let expected = fixture();
    if std::env::var_os("UPDATE_FIXTURES").is_some() {
        let mut text = serde_json::to_string_pretty(&expected).expect("serialises");
        text.push('\n');
        std::fs::write(&path, text).expect("writes the fixture");
    }
    let committed: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("the fixture file"))
            .expect("JSON");
    assert_eq!(committed["dcpe"], expected["dcpe"], "DCPE cases drifted");
    assert_eq!(
        committed["checksum"], expected["checksum"],
        "checksums drifted"
    );
    assert_eq!(
        committed["recall"], expected["recall"],
        "the recall figure drifted"
    );
}

#[test]
fn every_fixture_ciphertext_decrypts_to_its_plaintext() {
    for c in cases() {
        let key = core::generate_key(&c.seed, c.scale, c.beta).unwrap();
        let back = core::decrypt(
            &key,
            &c.nonce,
            &core::encrypt(&key, &c.nonce, &c.plaintext).unwrap(),
        )
        .unwrap();
        for (got, want) in back.iter().zip(&c.plaintext) {
            assert!(
                (got - want).abs() <= 1e-5 * want.abs().max(1.0),
                "{}",
                c.name
            );
        }
        assert_eq!(core::key_params(&key).unwrap(), (c.scale, c.beta));
    }
}

#[test]
fn bad_input_is_refused_with_a_message() {
    assert!(core::generate_key(&[0; 31], 1.0, 0.5)
        .unwrap_err()
        .contains("32 bytes"));
    assert!(core::generate_key(&[0; 32], -1.0, 0.5).is_err());
    let key = core::generate_key(&[0; 32], 1.0, 0.5).unwrap();
    assert!(core::encrypt(&key, b"", &[1.0]).is_err());
    assert!(core::encrypt(&key, b"n", &[]).is_err());
    assert!(core::encrypt(&key, b"n", &[f32::NAN]).is_err());
    assert!(core::encrypt(&key[..52], b"n", &[1.0]).is_err());
}
