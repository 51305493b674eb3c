#!/usr/bin/env bash
# Checks the deployable configurations offline (no network, no login): for staging and
# production, `wrangler deploy --dry-run` must bundle the worker and validate the environment
# without a single warning (wrangler only warns about unknown or misplaced keys), and the
# environments must keep what a deploy relies on: a Worker name of their own, a custom domain,
# `secrets.required` naming every secret the configuration reads, traces with a sampling rate,
# the Vectorize binding and VECTOR_BACKEND=vectorize.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export PATH="$root/node_modules/.bin:$PATH"
export WRANGLER_SEND_METRICS=false

# The secrets shared/src/config.rs reads: every `r.get("KEY").map(SecretString::from)`, plus
# JWT_SECRET (read by `jwt_secret`) and LLM_PROVIDERS (its entries hold API keys).
secrets="$( { grep -ho 'r\.get("[A-Z_]*")\.map(SecretString::from)' shared/src/config.rs shared/src/config/*.rs \
    | sed 's/r\.get("\([A-Z_]*\)").*/\1/'; echo JWT_SECRET; echo LLM_PROVIDERS; } | sort -u | tr '\n' ' ')"

python3 - "$secrets" <<'PY'
import sys, tomllib
cfg = tomllib.load(open("wrangler.toml", "rb"))
secrets = set(sys.argv[1].split())
problems = []
names = {"top level": cfg["name"]}
for env, domain in (("staging", "api.staging.adiuva.app"), ("production", "api.adiuva.app")):
    e = cfg.get("env", {}).get(env)
    if e is None:
        problems.append(f"[env.{env}] is missing")
        continue
    names[env] = e.get("name")
    routes = e.get("routes", [])
    if {"pattern": domain, "custom_domain": True} not in routes:
        problems.append(f"[env.{env}] needs the custom domain {domain}")
    required = set(e.get("secrets", {}).get("required", []))
    if missing := sorted(secrets - required):
        problems.append(f"[env.{env}.secrets] required lacks {missing}")
    if extra := sorted(required - secrets):
        problems.append(f"[env.{env}.secrets] required names {extra}, which the config never reads")
    traces = e.get("observability", {}).get("traces", {})
    if not traces.get("enabled") or not 0 < traces.get("head_sampling_rate", 0) <= 1:
        problems.append(f"[env.{env}.observability.traces] must be enabled with a head_sampling_rate in (0, 1]")
    if e.get("vars", {}).get("ENV") != "prod" or e.get("vars", {}).get("VECTOR_BACKEND") != "vectorize":
        problems.append(f"[env.{env}.vars] must set ENV=prod and VECTOR_BACKEND=vectorize")
    if not any(v.get("binding") == "VECTORIZE" for v in e.get("vectorize", [])):
        problems.append(f"[env.{env}] must bind VECTORIZE")
    top = {b["binding"] for k in ("d1_databases", "r2_buckets") for b in cfg.get(k, [])}
    top |= {b["name"] for b in cfg.get("durable_objects", {}).get("bindings", [])}
    mine = {b["binding"] for k in ("d1_databases", "r2_buckets") for b in e.get(k, [])}
    mine |= {b["name"] for b in e.get("durable_objects", {}).get("bindings", [])}
    if lacking := sorted(top - mine):
        problems.append(f"[env.{env}] lacks the bindings {lacking} (bindings are not inherited)")
if len(set(names.values())) != len(names):
    problems.append(f"Worker names must differ: {names}")
for p in problems:
    print("wrangler.toml:", p, file=sys.stderr)
sys.exit(1 if problems else 0)
PY

out_dir="$(mktemp -d)"
trap 'rm -rf "$out_dir"' EXIT
for env in staging production; do
    echo "==> wrangler deploy --dry-run --env $env" >&2
    log="$out_dir/$env.log"
    if ! wrangler deploy --dry-run --env "$env" --outdir "$out_dir/$env" >"$log" 2>&1; then
        cat "$log" >&2
        echo "wrangler deploy --dry-run --env $env failed" >&2
        exit 1
    fi
    if grep -q 'WARNING' "$log"; then
        cat "$log" >&2
        echo "wrangler deploy --dry-run --env $env warned (a config problem)" >&2
        exit 1
    fi
    grep -E 'env\.(VECTORIZE|DB|USER_HOME)' "$log" >&2 || true
done
echo "==> both deploy configurations are valid" >&2
