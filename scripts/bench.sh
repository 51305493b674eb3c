#!/usr/bin/env bash
# Prints the CPU cost of one argon2id hash and one JWT verification, natively and in wasm under
# workerd (wrangler dev). Targets: hash <= 50 ms, JWT verify <= 0.2 ms in wasm.
# The wasm figures are (time of n ops - time of a no-op round trip) / n, best of 3.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
. scripts/setup.sh
export WRANGLER_SEND_METRICS=false

echo "==> native (release)" >&2
cargo bench -q -p shared --bench auth 2>/dev/null

echo "==> building the benchmark worker (bench-worker/)" >&2
(
    cd bench-worker
    ESBUILD_BIN="$root/node_modules/.bin/esbuild" WASM_OPT_BIN="$root/node_modules/.bin/wasm-opt" \
        WASM_BINDGEN_BIN="$(command -v wasm-bindgen)" worker-build --release >/dev/null 2>&1
)
state="$(mktemp -d)"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
inspector="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
setsid wrangler dev -c bench-worker/wrangler.toml --ip 127.0.0.1 --port "$port" \
    --inspector-port "$inspector" --persist-to "$state" --show-interactive-dev-session=false \
    > "$state/wrangler.log" 2>&1 &
pid=$!
trap 'kill -- -$pid 2>/dev/null || true; rm -rf "$state"' EXIT
for _ in $(seq 1 120); do
    curl -sf "http://127.0.0.1:$port/noop" >/dev/null && break
    sleep 0.5
done

python3 - "$port" <<'PY'
import sys, time, urllib.request
base = f"http://127.0.0.1:{sys.argv[1]}"
def timed(op, n):
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        with urllib.request.urlopen(f"{base}/{op}?n={n}") as r:
            assert r.status == 200, r.status
            r.read()
        best = min(best, time.perf_counter() - t)
    return best
timed("noop", 1)  # warm the isolate
noop = timed("noop", 1)
n_hash, n_jwt = 10, 20000
hash_ms = (timed("argon2", n_hash) - noop) * 1e3 / n_hash
jwt_us = (timed("jwt", n_jwt) - noop) * 1e6 / n_jwt
print(f"wasm (workerd) argon2id hash (m=19456 KiB, t=2, p=1): {hash_ms:.1f} ms/op  (target <= 50 ms)")
print(f"wasm (workerd) JWT HS256 verify:                      {jwt_us:.2f} µs/op  (target <= 200 µs)")
PY
kill -- -$pid 2>/dev/null || true

echo "==> rate limiter cost under wrangler dev" >&2
cargo bench -q -p tests --bench limiter 2>/dev/null

echo "==> storage throughput and memory under wrangler dev" >&2
cargo bench -q -p tests --bench storage 2>/dev/null

echo "==> chat round-trip overhead under wrangler dev" >&2
cargo bench -q -p tests --bench chat 2>/dev/null

echo "==> streaming chat: time to first token and throughput under wrangler dev" >&2
cargo bench -q -p tests --bench stream 2>/dev/null

echo "==> vector search latency under wrangler dev" >&2
cargo bench -q -p tests --bench vectors 2>/dev/null

echo "==> load: per-route throughput and p50/p99 against GET /health under wrangler dev (~2.5 min)" >&2
cargo bench -q -p tests --bench load 2>/dev/null

echo "==> DCPE recall (real embeddings: python3 scripts/embed-corpus.py first; synthetic otherwise)" >&2
cargo bench -q -p shared --bench dcpe 2>/dev/null

echo "==> cold start: wasm size, V8 compile, first request under a fresh wrangler dev" >&2
bash scripts/coldstart.sh 3
