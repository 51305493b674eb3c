#!/usr/bin/env bash
# Deploys the API to staging or production: `scripts/deploy.sh --env staging|production`.
#
# 1. checks the configurations offline (scripts/check-deploy.sh) and refuses an environment
#    whose D1 database_id is still the placeholder of wrangler.toml;
# 2. applies the D1 migrations to that environment's remote database (before the code that
#    needs them: every migration only adds tables, columns and indexes, so the running version
#    keeps working on the new schema);
# 3. deploys the Worker (wrangler fails the deploy while a secret of `secrets.required` is not
#    set: `wrangler secret put NAME --env ENV`).
#
# Needs `wrangler login` (or CLOUDFLARE_API_TOKEN and CLOUDFLARE_ACCOUNT_ID). Not run by tests.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

usage() { echo "usage: $0 --env staging|production" >&2; exit 2; }
env=""
while [ $# -gt 0 ]; do
    case "$1" in
        --env) env="${2:-}"; shift 2 || usage ;;
        --env=*) env="${1#--env=}"; shift ;;
        *) usage ;;
    esac
done
case "$env" in staging|production) ;; *) usage ;; esac

. scripts/setup.sh >/dev/null
export WRANGLER_SEND_METRICS=false

bash scripts/check-deploy.sh
db_id="$(python3 -c 'import sys, tomllib; print(tomllib.load(open("wrangler.toml", "rb"))["env"][sys.argv[1]]["d1_databases"][0]["database_id"])' "$env")"
if [ "$db_id" = "00000000-0000-0000-0000-000000000000" ]; then
    echo "[env.$env] still has the placeholder D1 database_id: create the database" \
        "(wrangler d1 create) and put its id in wrangler.toml" >&2
    exit 1
fi

echo "==> applying D1 migrations to the $env database (remote)" >&2
wrangler d1 migrations apply DB --remote --env "$env"
echo "==> deploying the $env Worker" >&2
wrangler deploy --env "$env"
