#!/usr/bin/env bash
# Fuzzes the parsers that face untrusted input with cargo-fuzz (libFuzzer, nightly Rust):
#   sse               shared::chat::sse::SseParser (byte chunks; split vs whole differential)
#   stripe_signature  shared::billing::signature::verify (Stripe-Signature header + body)
#   jwt               shared::auth::tokens::AccessTokens::verify (+ issue → verify round trip)
#   chat_frame        durable_objects::chat_session::parse_client_frame, do_protocol decoding,
#                     vector_index::decode_values
#   small_parsers     storage::{Checksum::parse, if_match_allows, if_none_match_hits,
#                     Cursor::decode}, marketplace download::verify, Version::parse,
#                     PluginManifest::from_json
# The targets live in fuzz/ (its own workspace, excluded from the main one). This script is not
# part of CI (.ci/run and scripts/test.sh never call it): the runs take minutes.
#
# It installs cargo-fuzz if missing (pinned), seeds each corpus from the inputs below (only
# into an empty corpus dir; fuzz/corpus is git-ignored and grows across runs), runs every
# target for FUZZ_SECONDS (default 120) seconds, prints per target the runs executed, exec/s,
# coverage (cov = edges, ft = features) and whether it crashed, and exits non-zero if any
# target crashed, timed out or ran out of memory. Reproducers are left in fuzz/artifacts/<t>/.
#
# Usage:
#   bash scripts/fuzz.sh                              # every target, 120 s each
#   FUZZ_SECONDS=600 bash scripts/fuzz.sh sse jwt     # chosen targets, 10 min each
# Rerun one target by hand (from the repository root):
#   cd fuzz && cargo +nightly fuzz run sse -- -max_total_time=120 -rss_limit_mb=2048
# Replay a crash:
#   cd fuzz && cargo +nightly fuzz run sse artifacts/sse/crash-<hash>
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root/fuzz"

CARGO_FUZZ_VERSION=0.13.2
SECONDS_PER_TARGET="${FUZZ_SECONDS:-120}"
ALL_TARGETS=(sse stripe_signature jwt chat_frame small_parsers)
if [ "$#" -gt 0 ]; then TARGETS=("$@"); else TARGETS=("${ALL_TARGETS[@]}"); fi

if ! rustup toolchain list | grep -q '^nightly'; then
  echo "fuzz.sh: needs a nightly toolchain (rustup toolchain install nightly)" >&2
  exit 2
fi
if ! cargo fuzz --version 2>/dev/null | grep -q "$CARGO_FUZZ_VERSION"; then
  echo "==> cargo install cargo-fuzz $CARGO_FUZZ_VERSION" >&2
  cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked
fi

# --- Seed corpora (written only into empty corpus dirs) -----------------------------------
# Byte 0 of every input selects the mode/parser of the target; see fuzz/fuzz_targets/*.rs.
seed() { # seed <target> <name> <printf format>
  printf "$3" >"corpus/$1/seed-$2"
}
seed_corpus() {
  local t="$1"
  mkdir -p "corpus/$t"
  if [ -n "$(ls -A "corpus/$t")" ]; then return; fi
  case "$t" in
    sse)
      seed sse openai '\x00\x00: keep-alive\n\ndata: {"choices":[{"delta":{"content":"Caf\xc3\xa9 \xf0\x9f\xa6\x80"}}]}\n\ndata: [DONE]\n\n'
      seed sse fields '\x00\x03\x02\x00\x09\x00\x11\x00\xef\xbb\xbfevent: e\r\nid: 7\r\ndata: a\r\ndata:b\r\n\r\nretry: 1\r:c\rdata\r\r'
      seed sse capped '\x90\x02\x05\x00\x0a\x00data: 0123456789\n\ndata: 0123456789\ndata: 0123456789\n\n'
      seed sse open '\x00\x01\x04\x00data: [DONE]'
      ;;
    stripe_signature)
      seed stripe_signature header '\x00t=1800000000,v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd,v0=6ffbb59b2300aae63f272406069a9788598b792a944a07aba816edb039989a39\x00{"id":"evt_1","type":"invoice.paid"}\x00whsec_test'
      seed stripe_signature signed '\x01{"id":"evt_1","object":"event"}\x00whsec_test\x00v0=abc\x00v1=00\x00x'
      ;;
    jwt)
      seed jwt token '\x00eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIwMDAwMDAwMC0wMDAwLTAwMDAtMDAwMC0wMDAwMDAwMDAwMmEiLCJ0aWVyIjoicHJvIiwianRpIjoiaiIsImlhdCI6MTgwMDAwMDAwMCwiZXhwIjoxODAwMDAwOTAwfQ.c2lnbmF0dXJl'
      seed jwt claims '\x01{"alg":"HS256","typ":"JWT"}\x00{"sub":"00000000-0000-0000-0000-00000000002a","tier":"pro","jti":"j","iat":1800000000,"exp":1800000900}'
      seed jwt none '\x01{"alg":"none"}\x00{"sub":"00000000-0000-0000-0000-00000000002a","tier":"team","jti":"j","exp":1.8e9}'
      seed jwt issue '\x02\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f\x01\x84\x03\x00\x00\x00\x00\x00\x00\x00'
      ;;
    chat_frame)
      seed chat_frame chat '\x00{"message":"plan my week","context":{"user_profile":{"name":"Ana","utc_offset_minutes":60},"relevant_documents":["doc"],"recent_tasks":[{"id":"t1","title":"x","due_date":"2026-01-01"}],"projects":null},"execution_mode":"plan"}'
      seed chat_frame resume '\x01{"type":"resume","request_id":"3f2c0a9e-1b7d-4c1e-9a55-0d6f1b2c3d4e","after":3.0}'
      seed chat_frame cancel '\x02{"type":"cancel","request_id":null}'
      seed chat_frame ping '\x03{"type":"ping"}'
      seed chat_frame upsert '\x04{"entries":[{"id":"a","values":[1.0,0.5,-2e-3],"blob":"YmxvYg=="}]}'
      seed chat_frame rate '\x05{"bucket":"requests","rule":{"limit":10,"window_ms":60000},"op":"penalize"}'
      seed chat_frame delete '\x06{"ids":["a","b"]}'
      seed chat_frame values '\x07\x00\x00\x80\x3f\x00\x00\xc0\x7f\x01\x00\x80\xff'
      ;;
    small_parsers)
      seed small_parsers checksum '\x00 E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855 '
      seed small_parsers etag '\x01W/"3.e3b0c44298fc1c14", "4.aa"\x00"3.e3b0c44298fc1c14"'
      seed small_parsers cursor '\x021800000000000.3f2c0a9e-1b7d-4c1e-9a55-0d6f1b2c3d4e'
      seed small_parsers download '\x03\x00YWJjfDEuMi4zfHh8MTg.AAAA'
      seed small_parsers sign '\x03\x01\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f1.2.3-rc.1'
      seed small_parsers version '\x041.0.0-alpha.1\x001.0.0-alpha.beta'
      seed small_parsers manifest '\x05{"name":" Focus ","description":"Timer.\\n\\tTabs","version":"1.2.0-rc.1","author":"Ana","permissions":["tasks:read","network"],"category":"productivity","price_cents":499.0}'
      ;;
  esac
}

# --- Build once, then run every target -----------------------------------------------------
echo "==> cargo +nightly fuzz build" >&2
cargo +nightly fuzz build

failed=()
summary=()
for t in "${TARGETS[@]}"; do
  seed_corpus "$t"
  log="$(mktemp "${TMPDIR:-/tmp}/fuzz-$t.XXXXXX.log")"
  echo "==> $t: ${SECONDS_PER_TARGET}s (log: $log)" >&2
  status=0
  cargo +nightly fuzz run "$t" -- \
    -max_total_time="$SECONDS_PER_TARGET" -rss_limit_mb=2048 -timeout=10 \
    -print_final_stats=1 >"$log" 2>&1 || status=$?
  runs="$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' | tail -1)"
  eps="$(grep -oE 'stat::average_exec_per_sec: *[0-9]+' "$log" | grep -oE '[0-9]+$' | tail -1)"
  # The last status line of libFuzzer: `#N  DONE/pulse/NEW ... cov: E ft: F corp: C/S ...`.
  cov="$(grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+/[0-9]+[a-zA-Z]*' "$log" | tail -1)"
  if [ "$status" -eq 0 ]; then
    result="ok"
  else
    result="CRASHED (exit $status)"
    failed+=("$t")
    grep -E '^(==[0-9]+==ERROR|thread .* panicked|SUMMARY|artifact_prefix|Test unit written)' "$log" | head -8 >&2 || true
    tail -n 30 "$log" >&2
  fi
  summary+=("$(printf '%-17s runs=%-10s exec/s=%-7s %-40s %s' "$t" "${runs:-?}" "${eps:-?}" "${cov:-cov: ?}" "$result")")
done

echo
echo "==> fuzz summary (${SECONDS_PER_TARGET}s per target)"
printf '%s\n' "${summary[@]}"
if [ "${#failed[@]}" -gt 0 ]; then
  echo "==> crashed: ${failed[*]} (reproducers in fuzz/artifacts/<target>/)" >&2
  exit 1
fi
