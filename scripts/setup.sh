#!/usr/bin/env bash
# Installs what building and running the worker needs, idempotently; fast when all is there.
#   - the wasm32-unknown-unknown Rust target
#   - wasm-bindgen-cli at exactly the wasm-bindgen version in Cargo.lock
#   - worker-build at exactly the `worker` version in Cargo.lock
#   - the npm packages of package-lock.json (wrangler, node 24, binaryen, esbuild,
#     openapi-typescript, typescript)
#   - the client kit's npm packages (clients/typescript/package-lock.json: openapi-fetch, ws,
#     typescript, openapi-typescript)
#   - with SETUP_BROWSER=1: Debian's chromium (apt, as root or with sudo) and the browser
#     tests' npm packages (tests/browser/package-lock.json: playwright-core, which drives the
#     system's chromium: no browser download)
#   - with SETUP_PYTHON=1: a .venv with tests/requirements.txt (schemathesis,
#     openapi-spec-validator) for the contract checks of scripts/test.sh
# Source it (`. scripts/setup.sh`) to also get node_modules/.bin first on PATH.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export PATH="$root/node_modules/.bin:$HOME/.cargo/bin:$PATH"
step() { printf '==> %s\n' "$*" >&2; }

locked_version() { # the version of crate $1 in Cargo.lock
    awk -v n="$1" '$0 == "name = \"" n "\"" { getline; gsub(/"/, "", $3); print $3; exit }' Cargo.lock
}

if [ ! -f Cargo.lock ]; then
    step "resolving Cargo.lock"
    cargo generate-lockfile
fi

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    step "adding the wasm32-unknown-unknown target"
    rustup target add wasm32-unknown-unknown
fi

want="$(locked_version wasm-bindgen)"
have="$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)"
if [ "$have" != "$want" ]; then
    step "installing wasm-bindgen-cli $want (takes a few minutes once)"
    # No --locked: the registry mirror lacks some of its locked dependency versions.
    cargo install wasm-bindgen-cli --version "$want" --force
fi

want="$(locked_version worker)"
have="$(worker-build --version 2>/dev/null || true)"
if [ "$have" != "$want" ]; then
    step "installing worker-build $want"
    cargo install worker-build --version "$want" --force
fi

lock_sum="$(sha256sum package-lock.json | cut -d' ' -f1)"
if [ "$(cat node_modules/.installed-lock-sha256 2>/dev/null || true)" != "$lock_sum" ] \
    || [ ! -x node_modules/.bin/wrangler ]; then
    step "installing npm packages (wrangler, node 24, binaryen, esbuild)"
    npm ci --no-audit --no-fund --loglevel=error
    echo "$lock_sum" > node_modules/.installed-lock-sha256
fi
kit=clients/typescript
kit_sum="$(sha256sum "$kit/package-lock.json" | cut -d' ' -f1)"
if [ "$(cat "$kit/node_modules/.installed-lock-sha256" 2>/dev/null || true)" != "$kit_sum" ]; then
    step "installing the client kit's npm packages ($kit)"
    (cd "$kit" && npm ci --no-audit --no-fund --loglevel=error)
    echo "$kit_sum" > "$kit/node_modules/.installed-lock-sha256"
fi
if [ "${SETUP_BROWSER:-0}" = 1 ]; then
    if ! command -v chromium >/dev/null 2>&1; then
        step "installing Debian's chromium for the browser tests"
        sudo_if_needed() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
        export DEBIAN_FRONTEND=noninteractive
        sudo_if_needed apt-get install -y --no-install-recommends chromium fonts-liberation >/dev/null \
            || { sudo_if_needed apt-get update >/dev/null \
                && sudo_if_needed apt-get install -y --no-install-recommends chromium fonts-liberation >/dev/null; }
    fi
    browser=tests/browser
    browser_sum="$(sha256sum "$browser/package-lock.json" | cut -d' ' -f1)"
    if [ "$(cat "$browser/node_modules/.installed-lock-sha256" 2>/dev/null || true)" != "$browser_sum" ]; then
        step "installing the browser tests' npm packages ($browser)"
        (cd "$browser" && npm ci --no-audit --no-fund --loglevel=error)
        echo "$browser_sum" > "$browser/node_modules/.installed-lock-sha256"
    fi
fi
if [ "${SETUP_PYTHON:-0}" = 1 ]; then
    req_sum="$(sha256sum tests/requirements.txt | cut -d' ' -f1)"
    if [ "$(cat .venv/.installed-req-sha256 2>/dev/null || true)" != "$req_sum" ]; then
        step "installing Python test tools into .venv (schemathesis, openapi-spec-validator)"
        python3 -m venv .venv
        .venv/bin/pip install --quiet --disable-pip-version-check -r tests/requirements.txt
        echo "$req_sum" > .venv/.installed-req-sha256
    fi
fi
step "toolchain ready: $(wasm-bindgen --version), worker-build $(worker-build --version), wrangler $(wrangler --version 2>/dev/null | tail -n 1), node $(node --version)"
