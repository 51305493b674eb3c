#!/usr/bin/env bash
# Starts the API locally: `wrangler dev` with local D1/R2/Durable Object state in
# .wrangler/state, migrations applied, settings from .dev.vars (created from
# .dev.vars.example with a random JWT_SECRET on first run). PORT picks the port (default 8787).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
. scripts/setup.sh
export WRANGLER_SEND_METRICS=false

if [ ! -f .dev.vars ]; then
    echo "==> creating .dev.vars from .dev.vars.example with a random JWT_SECRET" >&2
    secret="$(head -c 48 /dev/urandom | base64 | tr -d '\n/+=')"
    sed "s|^JWT_SECRET=.*|JWT_SECRET=$secret|" .dev.vars.example > .dev.vars
fi

sh scripts/build-worker.sh
echo "==> applying D1 migrations to local state" >&2
wrangler d1 migrations apply DB --local
port="${PORT:-8787}"
echo "==> serving on http://127.0.0.1:$port/api/v1/health" >&2
exec wrangler dev --ip 127.0.0.1 --port "$port" --show-interactive-dev-session=false --test-scheduled
