#!/usr/bin/env bash
# cluster-demo.sh: etcd and three wpcdb nodes on loopback; a collection of
# 3 shards × 3 replicas; an ingest in chunks through the nodes, during
# which the leader of shard 0 is killed with SIGKILL; then every
# acknowledged item is looked for (through a surviving node, then through
# the killed node once it has restarted and caught up) and a search runs.
# The nodes compact their Raft logs early (RAFT_COMPACT entries, keeping
# RAFT_KEEP), so the killed node catches up from a snapshot, not the log.
# Exits non-zero on any lost item; the last line is
#   cluster demo: N acknowledged, lost 0
#
# Needs etcd (Debian's etcd-server, installed with apt-get when missing and
# run as root), Go and python3. Ports: etcd 23790/23800, nodes 17001-17003
# (override with BASE_PORT). Everything lives in a temporary folder,
# removed at the end (KEEP=1 keeps it).
set -euo pipefail
cd "$(dirname "$0")/.."

CHUNKS=${CHUNKS:-24}  # ingest calls
PER=${PER:-40}        # items per call
DIM=8
BASE_PORT=${BASE_PORT:-17000}
ETCD_PORT=${ETCD_PORT:-23790}
RAFT_COMPACT=${RAFT_COMPACT:-8}
RAFT_KEEP=${RAFT_KEEP:-2}

if ! command -v etcd >/dev/null; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    apt-get install -y -qq etcd-server >/dev/null
  else
    echo "cluster-demo: etcd not found; install Debian's etcd-server" >&2; exit 1
  fi
fi

tmp="$(mktemp -d)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ "${KEEP:-}" = 1 ]; then echo "cluster-demo: kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT

go build -o "$tmp/wpcdb" ./cmd/wpcdb
W="$tmp/wpcdb"
EP="http://127.0.0.1:$ETCD_PORT"

etcd --name demo --data-dir "$tmp/etcd" \
  --listen-client-urls "$EP" --advertise-client-urls "$EP" \
  --listen-peer-urls "http://127.0.0.1:$((ETCD_PORT + 10))" --initial-advertise-peer-urls "http://127.0.0.1:$((ETCD_PORT + 10))" \
  --initial-cluster "demo=http://127.0.0.1:$((ETCD_PORT + 10))" >"$tmp/etcd.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
  "$W" cluster status --cluster "$EP" >/dev/null 2>&1 && break
  sleep 0.1
done

declare -A node_pid
start_node() { # ID
  local id=$1 port=$((BASE_PORT + ${1#n}))
  "$W" --data "$tmp/$id" serve --listen "127.0.0.1:$port" --metrics-listen "" --cluster "$EP" --node-id "$id" \
    --raft-compact-entries "$RAFT_COMPACT" --raft-keep-entries "$RAFT_KEEP" >>"$tmp/$id.log" 2>&1 &
  node_pid[$id]=$!
  pids+=($!)
}
addr() { echo "127.0.0.1:$((BASE_PORT + ${1#n}))"; }
live_nodes() { "$W" --json cluster status --cluster "$EP" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["nodes"] or []))'; }
wait_nodes() { # N
  for _ in $(seq 200); do [ "$(live_nodes)" = "$1" ] && return 0; sleep 0.1; done
  echo "cluster-demo: $1 nodes did not register" >&2; exit 1
}
for id in n1 n2 n3; do start_node $id; done
wait_nodes 3

"$W" collection create demo --dim $DIM --cluster "$EP" --shards 3 --replicas 3 >/dev/null
leader0() { "$W" --json cluster status --cluster "$EP" | python3 -c '
import json,sys
m=[c for c in json.load(sys.stdin)["collections"] if c["name"]=="demo"][0]
s=m["shards"][0]
print(s["leader"] if s.get("term",0)>0 else "")'; }
victim=""
for _ in $(seq 200); do victim="$(leader0)"; [ -n "$victim" ] && break; sleep 0.1; done
[ -n "$victim" ] || { echo "cluster-demo: no leader elected for shard 0" >&2; exit 1; }
survivors=()
for id in n1 n2 n3; do [ "$id" != "$victim" ] && survivors+=("$id"); done
echo "cluster-demo: shard 0's leader is $victim; it is killed during chunk $((CHUNKS / 3)) of $CHUNKS"

python3 - "$tmp" "$CHUNKS" "$PER" "$DIM" <<'EOF'
import json, random, sys
tmp, chunks, per, dim = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rng = random.Random(19)
def cloud():
    m = rng.randint(2, 8)
    return {"weights": [rng.random() + 0.1 for _ in range(m)], "points": [[rng.gauss(0, 1) for _ in range(dim)] for _ in range(m)]}
for c in range(chunks):
    with open(f"{tmp}/chunk{c}.jsonl", "w") as f:
        for i in range(per):
            f.write(json.dumps({"id": f"item-{c:03d}-{i:03d}", **cloud(), "attrs": {"chunk": c}}) + "\n")
with open(f"{tmp}/query.json", "w") as f:
    json.dump(cloud(), f)
EOF

: >"$tmp/acked.txt"
failed=0
for c in $(seq 0 $((CHUNKS - 1))); do
  via=${survivors[$((c % 2))]}
  if [ "$c" = $((CHUNKS / 3)) ]; then
    (sleep 0.2; kill -9 "${node_pid[$victim]}") &
  fi
  if "$W" --addr "$(addr "$via")" ingest demo --input "$tmp/chunk$c.jsonl" --batch 10 >>"$tmp/ingest.log" 2>&1; then
    python3 -c 'import json,sys; [print(json.loads(l)["id"]) for l in open(sys.argv[1])]' "$tmp/chunk$c.jsonl" >>"$tmp/acked.txt"
  else
    failed=$((failed + 1))
    echo "cluster-demo: chunk $c through $via not acknowledged (see $tmp/ingest.log)"
  fi
done
{ wait "${node_pid[$victim]}"; } 2>/dev/null || true
acked=$(wc -l <"$tmp/acked.txt")
echo "cluster-demo: $acked items acknowledged in $((CHUNKS - failed)) of $CHUNKS chunks"
"$W" cluster status --cluster "$EP"

# lost ADDR: how many acknowledged items ADDR cannot find.
lost() {
  { xargs -n 200 "$W" --addr "$1" --json get demo <"$tmp/acked.txt" 2>>"$tmp/get.log" || true; } |
    python3 -c '
import json,sys
found=set()
for l in sys.stdin:
    l=l.strip()
    if l: found.add(json.loads(l)["id"])
acked=[l.strip() for l in open(sys.argv[1]) if l.strip()]
print(sum(1 for i in acked if i not in found))' "$tmp/acked.txt"
}
lost1=$(lost "$(addr "${survivors[0]}")")
echo "cluster-demo: through ${survivors[0]} with $victim down: $lost1 acknowledged items missing"
"$W" --addr "$(addr "${survivors[1]}")" search demo --query "$tmp/query.json" -k 3

start_node "$victim"
wait_nodes 3
# The restarted node catches up from the log: wait (at most 60 s) until
# its local copy of every shard counts what the survivors' copies count;
# then it alone must hold everything: kill the two others and ask it.
count_local() { "$W" --addr "$(addr "$1")" count "demo.s$2" 2>/dev/null || echo "?"; }
caught_up=0
for _ in $(seq 600); do
  caught_up=1
  for k in 0 1 2; do
    a=$(count_local "$victim" $k); b=$(count_local "${survivors[0]}" $k); c=$(count_local "${survivors[1]}" $k)
    if [ "$a" = "?" ] || [ "$a" != "$b" ] || [ "$a" != "$c" ]; then caught_up=0; fi
  done
  [ "$caught_up" = 1 ] && break
  sleep 0.1
done
echo "cluster-demo: restarted $victim caught up: $([ "$caught_up" = 1 ] && echo yes || echo "NO (within 60 s)"), installing $(grep -c "installed a snapshot" "$tmp/$victim.log" || true) snapshots"
for id in "${survivors[@]}"; do kill -9 "${node_pid[$id]}"; { wait "${node_pid[$id]}"; } 2>/dev/null || true; done
lost2=$(lost "$(addr "$victim")")
echo "cluster-demo: through the restarted $victim alone: $lost2 acknowledged items missing"
"$W" --addr "$(addr "$victim")" search demo --query "$tmp/query.json" -k 3

total=$((lost1 > lost2 ? lost1 : lost2))
echo "cluster demo: $acked acknowledged, lost $total"
[ "$total" = 0 ] && [ "$acked" -gt 0 ]
