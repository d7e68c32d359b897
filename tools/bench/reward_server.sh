#!/usr/bin/env bash
# Reward server throughput: math verifications/s and sandboxed code executions/s, scored in
# this process (RewardRunner threads) against the same inputs scored on 1 and 2
# `aha serve rewards` servers over loopback. One line per figure with the ratio to local.
#   bash tools/bench/reward_server.sh [BUILD_DIR]   (default: build; needs aha and bench/bench_reward_server)
# On one machine every server shares the same cores with the others, so the ratio is the cost
# of HTTP/JSON and chunking, not what more machines would add.
set -euo pipefail
build=${1:-build}
aha=$build/aha
bench=$build/bench/bench_reward_server
for f in "$aha" "$bench"; do [ -x "$f" ] || { echo "missing $f: build the aha and bench_reward_server targets" >&2; exit 1; }; done
logs=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$logs"; }
trap cleanup EXIT

# Starts `aha serve rewards --rewards SPEC` on a free port; prints HOST:PORT.
start_server() {
  local spec=$1 log=$logs/server-$RANDOM.log
  "$aha" serve rewards --rewards "$spec" --port 0 > "$log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do
    if grep -q "http://" "$log"; then sed -n 's|.* at http://\([^/]*\)/.*|\1|p' "$log"; return; fi
    sleep 0.1
  done
  echo "aha serve rewards did not start:" >&2; cat "$log" >&2; exit 1
}

for kind in math code; do
  if [ "$kind" = math ]; then spec=math_accuracy; else spec='[{"name": "code", "kind": "code"}]'; fi
  first=$(start_server "$spec")
  second=$(start_server "$spec")
  echo "== $kind"
  "$bench" --kind "$kind" --servers "$first"
  "$bench" --kind "$kind" --servers "$first,$second" | tail -1
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  pids=()
done
