#!/usr/bin/env bash
# Three Coco nodes against a three-member etcd cluster, both on loopback, driven by the
# same tool (`coco bench`) at the same concurrency and value size; see docs/BENCHMARKS.md.
# Needs etcd (Debian: apt-get install etcd-server; 3.4.23 measured).
# Usage: scripts/bench-cluster.sh [seconds per run] [connections for the big runs]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
duration=${1:-10}
clients=${2:-1000}
command -v etcd >/dev/null || { echo "etcd not found (apt-get install etcd-server)" >&2; exit 1; }
cargo build --release --bin coco
coco=target/release/coco
dir=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
base=$((20000 + RANDOM % 20000))

# etcd: three members, default durability (fsync per batch).
cluster=""
for i in 0 1 2; do cluster+="e$i=http://127.0.0.1:$((base + 10 + i)),"; done
for i in 0 1 2; do
  etcd --name "e$i" --data-dir "$dir/e$i" \
    --listen-client-urls "http://127.0.0.1:$((base + i))" \
    --advertise-client-urls "http://127.0.0.1:$((base + i))" \
    --listen-peer-urls "http://127.0.0.1:$((base + 10 + i))" \
    --initial-advertise-peer-urls "http://127.0.0.1:$((base + 10 + i))" \
    --initial-cluster "${cluster%,}" --initial-cluster-state new \
    --log-level error >"$dir/e$i.log" 2>&1 &
  pids+=($!)
done
endpoints="127.0.0.1:$base,127.0.0.1:$((base + 1)),127.0.0.1:$((base + 2))"
for _ in $(seq 100); do
  curl -s "http://127.0.0.1:$base/health" | grep -q true && break
  sleep 0.1
done

# Coco: the sandbox's three nodes.
port=$((base + 100))
"$coco" sandbox --nodes 3 --dir "$dir/coco" --port "$port" >"$dir/coco.out" 2>"$dir/coco.err" &
pids+=($!)
for _ in $(seq 600); do grep -q "node2:" "$dir/coco.out" 2>/dev/null && break; sleep 0.1; done

run() {
  echo "\$ coco bench $*"
  "$coco" bench "$@" --duration "$duration"
  echo
}
for connections in "$clients" 1; do
  run --etcd "$endpoints" --connections "$connections"
  run --dir "$dir/coco" --address "127.0.0.1:$port" --protocol h2 --connections "$connections" \
    --depth 1 --path /app/log/blocking/private
done
run --dir "$dir/coco" --address "127.0.0.1:$port" --protocol h2 --connections 32 --depth 16
