#!/usr/bin/env bash
# Load runs of one Coco node, as recorded in docs/BENCHMARKS.md. Starts a release sandbox
# in a temporary directory on loopback, runs `coco bench` in several shapes, stops it.
# Usage: scripts/bench-node.sh [seconds per run] [extra cargo build flags...]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
duration=${1:-10}
shift || true
cargo build --release --bin coco "$@"
coco=target/release/coco
dir=$(mktemp -d)
port=$((20000 + RANDOM % 20000))
"$coco" sandbox --dir "$dir" --port "$port" >"$dir/sandbox.out" 2>"$dir/sandbox.err" &
node=$!
trap 'kill $node 2>/dev/null; wait $node 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 100); do grep -q "running" "$dir/sandbox.out" 2>/dev/null && break; sleep 0.1; done
run() {
  echo "\$ coco bench $*"
  "$coco" bench --dir "$dir" --address "127.0.0.1:$port" --duration "$duration" "$@"
  echo
}
run --protocol h2 --connections 32 --depth 16
run --protocol h1 --connections 32 --depth 16
run --protocol h2 --connections 1 --depth 1
run --protocol h2 --connections 64 --depth 1 --path /app/log/blocking/private
run --protocol h2 --connections 32 --depth 16 --value-bytes 1024
