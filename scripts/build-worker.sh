#!/usr/bin/env sh
# Builds the worker into build/ (wrangler's [build] command). Skips the build when nothing it
# depends on changed since the last one (the served contract/openapi.json included), so
# restarting `wrangler dev` is instant.
# worker-build would download esbuild, wasm-opt and wasm-bindgen; point it at local ones.
set -eu
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
export PATH="$root/node_modules/.bin:$HOME/.cargo/bin:$PATH"
stamp=build/.stamp
if [ -f "$stamp" ] && [ -f build/index.js ] && [ -z "${FORCE_BUILD:-}" ] \
    && [ -z "$(find Cargo.toml Cargo.lock shared durable-objects workers contract -newer "$stamp" -not -path '*/target/*' -not -path 'workers/build*' | head -n 1)" ]; then
    echo "==> worker build is up to date" >&2
    exit 0
fi
echo "==> building the worker (release wasm)" >&2
export ESBUILD_BIN="$root/node_modules/.bin/esbuild"
export WASM_OPT_BIN="$root/node_modules/.bin/wasm-opt"
WASM_BINDGEN_BIN="$(command -v wasm-bindgen)"
export WASM_BINDGEN_BIN
cd workers
worker-build --release
cd "$root"
# worker-build writes next to the crate; wrangler.toml's `main` reads build/ at the root.
rm -rf build
mv workers/build build
touch "$stamp"
ls -l build/index_bg.wasm 2>/dev/null | awk '{print "==> wasm: " $5 " bytes"}' >&2 || true
