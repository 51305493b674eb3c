#!/usr/bin/env bash
# Runs every test: formatting and lints (native and wasm32), the API contract (drift of
# contract/openapi.json and contract/api-types.ts, an independent OpenAPI validator, tsc), the
# native unit tests, the desktop app's client kit (clients/typescript: its types checked against
# the contract, its wasm crypto built from clients/dcpe-wasm, compiled and type-checked), then the
# end-to-end suite against the real worker under `wrangler dev` (the harness in tests/api starts
# wrangler with a throwaway state dir and scripted upstreams, fuzzes it with schemathesis from the
# contract, runs the client kit's node tests and the admin console's browser tests (Debian's
# chromium driven by playwright-core, tests/browser) against it, and stops it after).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
SETUP_PYTHON=1 SETUP_BROWSER=1 . scripts/setup.sh
export WRANGLER_SEND_METRICS=false

echo "==> cargo fmt --check" >&2
cargo fmt --all -- --check
echo "==> cargo clippy (native)" >&2
cargo clippy --workspace --exclude workers --exclude bench-worker --all-targets --features tests/e2e -q -- -D warnings
echo "==> cargo clippy (wasm32)" >&2
cargo clippy -p workers -p durable-objects -p bench-worker -p dcpe-wasm --target wasm32-unknown-unknown -q -- -D warnings
echo "==> cargo doc: no broken or private links (the workers cdylib documents its private items)" >&2
RUSTDOCFLAGS="-D warnings" cargo doc -q --no-deps -p shared -p durable-objects
RUSTDOCFLAGS="-D warnings" cargo doc -q --no-deps -p workers --document-private-items \
    --target wasm32-unknown-unknown
echo "==> shared/ stays platform-free" >&2
if cargo tree -p shared -e normal --prefix none | grep -Eq '^(worker|wasm-bindgen|js-sys) '; then
    echo "shared depends on a platform crate:" >&2
    cargo tree -p shared -e normal -i worker >&2 || true
    exit 1
fi

echo "==> API contract: up to date, valid OpenAPI 3.1, TypeScript types compile" >&2
bash scripts/gen-contract.sh --check
.venv/bin/openapi-spec-validator contract/openapi.json
tsc --noEmit --strict --target es2022 --module esnext --moduleResolution bundler \
    contract/api-types.ts contract/check.ts

echo "==> unit tests (native; dcpe-wasm checks the cross-language fixture)" >&2
cargo test -p shared -p durable-objects -p dcpe-wasm

echo "==> client kit: types match the contract, wasm crypto, build, type-check, compile tests" >&2
(cd clients/typescript && npm run --silent build && npm run --silent typecheck && npm run --silent pretest)

echo "==> building the worker" >&2
sh scripts/build-worker.sh
echo "==> deploy configurations (staging, production): dry runs, offline" >&2
bash scripts/check-deploy.sh
echo "==> end-to-end tests against wrangler dev" >&2
cargo test -p tests --features e2e
