#!/usr/bin/env bash
# cluster-bench.sh: `wpcdb bench --workload load` against one plain node,
# then three cluster nodes with 1 replica per shard, then with 3, all on
# this machine (etcd from Debian's etcd-server). For each: requests/s and
# p50/p99 latency as bench reports them, and the CPU seconds every server
# process used during the fill and the run (from /proc).
#
# On one machine this is not a scaling figure: the three nodes share its
# cores, so a cluster does at least the work of one node plus routing
# (and with 3 replicas, every write three times). It measures the
# overhead of sharding and replication.
#
# Usage: scripts/cluster-bench.sh [--write-fraction F] (env: N items,
# default 10000; DURATION, default 10s; CLIENTS, default 8).
set -euo pipefail
cd "$(dirname "$0")/.."

WF=0
if [ "${1:-}" = --write-fraction ]; then WF=$2; fi
N=${N:-10000}
DURATION=${DURATION:-10s}
CLIENTS=${CLIENTS:-8}
BASE_PORT=${BASE_PORT:-17100}
ETCD_PORT=${ETCD_PORT:-23890}
command -v etcd >/dev/null || { echo "cluster-bench: etcd not found; install Debian's etcd-server" >&2; exit 1; }

tmp="$(mktemp -d)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
go build -o "$tmp/wpcdb" ./cmd/wpcdb
W="$tmp/wpcdb"

# cpu PID...: the user+system CPU seconds of the processes so far.
cpu() {
  local tck total=0 p f
  tck=$(getconf CLK_TCK)
  for p in "$@"; do
    read -ra f <"/proc/$p/stat"
    total=$((total + f[13] + f[14]))
  done
  echo "scale=2; $total / $tck" | bc
}

wait_port() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }

# run LABEL ADDR PID...: the load workload through ADDR; the servers' CPU.
run() {
  local label=$1 addr=$2; shift 2
  local before after
  before=$(cpu "$@")
  "$W" --json bench --workload load --addr "$addr" --n "$N" --clients "$CLIENTS" --duration "$DURATION" --write-fraction "$WF" >"$tmp/$label.json"
  after=$(cpu "$@")
  python3 - "$label" "$tmp/$label.json" "$before" "$after" <<'EOF'
import json, sys
label, path, before, after = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
r = json.load(open(path))
print(f"{label:12} fill {r['fill_items_per_s']:7.0f} items/s | run {r['qps']:7.1f} req/s, p50 {r['p50_ms']:6.2f} ms, p99 {r['p99_ms']:7.2f} ms, "
      f"errors {r['errors']} | servers' CPU {after - before:6.1f} s (fill + run)")
EOF
}

# One plain node (ingest of N items included before the timed run).
"$W" --data "$tmp/one" serve --listen "127.0.0.1:$BASE_PORT" --metrics-listen "" >"$tmp/one.log" 2>&1 &
one=$!; pids+=($one)
wait_port "$BASE_PORT"
run one-node "127.0.0.1:$BASE_PORT" "$one"
kill "$one"; wait "$one" 2>/dev/null || true

EP="http://127.0.0.1:$ETCD_PORT"
for R in 1 3; do
  rm -rf "$tmp/etcd"
  etcd --name b --data-dir "$tmp/etcd" --listen-client-urls "$EP" --advertise-client-urls "$EP" \
    --listen-peer-urls "http://127.0.0.1:$((ETCD_PORT + 10))" --initial-advertise-peer-urls "http://127.0.0.1:$((ETCD_PORT + 10))" \
    --initial-cluster "b=http://127.0.0.1:$((ETCD_PORT + 10))" >"$tmp/etcd-$R.log" 2>&1 &
  etcd_pid=$!; pids+=($etcd_pid)
  wait_port "$ETCD_PORT"
  nodes=()
  for i in 1 2 3; do
    "$W" --data "$tmp/r$R-n$i" serve --listen "127.0.0.1:$((BASE_PORT + i))" --metrics-listen "" --cluster "$EP" --node-id "n$i" --replicas "$R" >"$tmp/r$R-n$i.log" 2>&1 &
    nodes+=($!); pids+=($!)
    wait_port $((BASE_PORT + i))
  done
  for _ in $(seq 100); do
    [ "$("$W" --json cluster status --cluster "$EP" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["nodes"] or []))')" = 3 ] && break
    sleep 0.1
  done
  run "3-nodes-R$R" "127.0.0.1:$((BASE_PORT + 1))" "${nodes[@]}"
  kill "${nodes[@]}" "$etcd_pid"; wait "${nodes[@]}" "$etcd_pid" 2>/dev/null || true
done
