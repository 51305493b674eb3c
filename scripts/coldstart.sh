#!/usr/bin/env bash
# Cold start of the worker, two ways, printed as figures (only 127.0.0.1 is contacted):
#  1. compiling the release wasm in V8 (Node, the engine workerd embeds), fresh each time:
#     the part of an isolate's start that grows with the binary;
#  2. under `wrangler dev` with fresh state: the latency of the first request after the
#     runtime accepts connections (isolate creation, wasm compile and instantiate, config
#     parse) against the steady-state latency of the same route in the same run.
# Usage: scripts/coldstart.sh [runs]   (default 3 wrangler starts; ~1 minute)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
. scripts/setup.sh
export WRANGLER_SEND_METRICS=false
runs="${1:-3}"

sh scripts/build-worker.sh >/dev/null
wasm="build/index_bg.wasm"
raw=$(wc -c <"$wasm")
gz=$(gzip -9c "$wasm" | wc -c)
echo "worker wasm: $raw bytes raw, $gz bytes gzip -9"

node --experimental-wasm-exnref - "$wasm" <<'JS'
const fs = require("fs");
const bytes = fs.readFileSync(process.argv[2]);
const times = [];
for (let i = 0; i < 15; i++) {
  // A distinct custom section each time, so V8 cannot reuse an earlier compile.
  const fresh = Buffer.concat([bytes, Buffer.from([0, 3, 2, 0x63, i])]);
  const t = process.hrtime.bigint();
  new WebAssembly.Module(fresh); // synchronous compile
  times.push(Number(process.hrtime.bigint() - t) / 1e6);
}
times.sort((a, b) => a - b);
const pct = (p) => times[Math.min(times.length - 1, Math.floor(p * times.length))];
console.log(`V8 compile of the wasm (Node ${process.version}): p50 ${pct(0.5).toFixed(1)} ms, max ${times[times.length - 1].toFixed(1)} ms over ${times.length} fresh compiles`);
JS

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
for i in $(seq 1 "$runs"); do
    state="$(mktemp -d)"
    port="$(free_port)"
    wrangler d1 migrations apply DB --local --persist-to "$state" >/dev/null 2>&1
    cat >"$state/vars" <<EOF
JWT_SECRET=coldstart-coldstart-coldstart-coldstart-0123
EOF
    setsid wrangler dev --ip 127.0.0.1 --port "$port" --persist-to "$state" --env-file "$state/vars" \
        --show-interactive-dev-session=false >"$state/wrangler.log" 2>&1 &
    pid=$!
    python3 - "$port" <<'PY'
import socket, sys, time, urllib.request
port = int(sys.argv[1])
deadline = time.time() + 120
while time.time() < deadline:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        break
    except OSError:
        time.sleep(0.02)
url = f"http://127.0.0.1:{port}/api/v1/health"
def get():
    t = time.perf_counter()
    with urllib.request.urlopen(url, timeout=60) as r:
        assert r.status == 200, r.status
        r.read()
    return (time.perf_counter() - t) * 1e3
first = get()
warm = sorted(get() for _ in range(30))
print(f"first request after the port opened: {first:.0f} ms; then p50 {warm[15]:.1f} ms, p99 {warm[-1]:.1f} ms")
PY
    kill -- -"$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    rm -rf "$state"
done
