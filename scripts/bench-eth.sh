#!/usr/bin/env bash
# Coco's Ethereum app against anvil, as recorded in docs/BENCHMARKS.md: the same
# pre-signed ERC-20 workload (`coco bench eth`) against a fresh release sandbox, then
# against a fresh anvil (npm @foundry-rs/anvil 1.7.1, pinned in scripts/anvil), in turns.
# Usage: scripts/bench-eth.sh [rounds] [extra `coco bench eth` flags...]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
rounds=${1:-3}
shift || true
cargo build --release --bin coco
coco=target/release/coco
(cd scripts/anvil && npm ci --silent --no-audit --no-fund)
anvil=scripts/anvil/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil
dir=$(mktemp -d)
pids=()
stop() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; done
  pids=()
}
trap 'stop; rm -rf "$dir"' EXIT
wait_for() { for _ in $(seq 100); do grep -q "$2" "$1" 2>/dev/null && return; sleep 0.1; done; }
for round in $(seq "$rounds"); do
  port=$((20000 + RANDOM % 20000))
  rm -rf "$dir/sandbox"
  "$coco" sandbox --dir "$dir/sandbox" --port "$port" >"$dir/coco.out" 2>"$dir/coco.err" &
  pids=($!)
  wait_for "$dir/coco.out" running
  echo "round $round, Coco (1 node):"
  "$coco" bench eth --target "127.0.0.1:$port" --dir "$dir/sandbox" "$@"
  stop
  anvil_port=$((port + 1))
  "$anvil" --port "$anvil_port" --chain-id 31337 --block-time 1 --gas-limit 300000000 \
    --hardfork prague >"$dir/anvil.out" 2>&1 &
  pids=($!)
  wait_for "$dir/anvil.out" "Listening on"
  echo "round $round, anvil:"
  "$coco" bench eth --target "http://127.0.0.1:$anvil_port" "$@"
  stop
done
