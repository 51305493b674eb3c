//! Compresses the committed OpenAPI document at build time, so the worker carries ~22 KB of
//! gzip instead of ~210 KB of JSON in its wasm (the document is the largest piece of data in it).

use std::io::Write;
use std::path::PathBuf;

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let source = manifest.join("../contract/openapi.json");
    println!("cargo:rerun-if-changed={}", source.display());
    let json = std::fs::read(&source).expect("contract/openapi.json is readable");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&json).expect("gzip in memory");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets it"));
    std::fs::write(
        out.join("openapi.json.gz"),
        gz.finish().expect("gzip in memory"),
    )
    .expect("OUT_DIR is writable");
}
