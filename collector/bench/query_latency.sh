#!/usr/bin/env bash
# Query latency benchmark: the same 6 h data set in sightline-collector and Prometheus,
# then the dashboard queries plus the PromQL differential corpus as range queries over
# the whole 6 h, N repetitions each, p50/p95 per engine side by side.
#
#   collector/bench/query_latency.sh [--reps N] [--step SECONDS] [--limit-corpus N]
#
# Data: ../shared/eval/peers/gen.py's default data set (10 hosts x 10 containers x 6 h,
# 15 s interval, 2,102 series, 3.0 M samples), pushed in time order over remote write
# with ../shared/eval/peers/ingest.py into both (Prometheus 2.42 from the Debian package,
# --web.enable-remote-write-receiver; ingesting in time order from an empty TSDB keeps
# every sample inside the head's window, so no backfill is needed). The collector's
# memtables are flushed to Parquet before querying, as they would be after 6 h.
# SIGHTLINE_BENCH_DATASET=DIR reuses (or creates) a data set there;
# SIGHTLINE_COLLECTOR=PATH picks the binary (default: $CARGO_TARGET_DIR/release).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
shared=${SIGHTLINE_SHARED:-$root/../shared}
peers="$shared/eval/peers"
target=${CARGO_TARGET_DIR:-$root/target}
collector=${SIGHTLINE_COLLECTOR:-$target/release/sightline-collector}
[ -x "$collector" ] || { echo "build it first: cargo build --release -p sightline-collector" >&2; exit 1; }
dpkg -s prometheus >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive apt-get install -y -q prometheus >/dev/null

work=$(mktemp -d /var/tmp/sightline-qbench.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

venv=/var/tmp/sightline-bench-venv
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check -r "$peers/requirements.txt"
py="$venv/bin/python"

dataset=${SIGHTLINE_BENCH_DATASET:-$work/dataset}
if [ ! -f "$dataset/manifest.json" ]; then
  echo "generating data set in $dataset ..." >&2
  "$py" "$peers/gen.py" --out "$dataset" >&2
fi

free_port() { "$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() { for _ in $(seq 1 300); do curl -sf "$1" >/dev/null 2>&1 && return 0; sleep 0.1; done; echo "not ready: $1" >&2; return 1; }

sport=$(free_port)
"$collector" run --data-dir "$work/sightline" --http-addr "127.0.0.1:$sport" \
  --grpc-addr 127.0.0.1:0 --otlp-http-addr 127.0.0.1:0 2>"$work/sightline.log" &
pids+=($!); spid=$!
wait_http "http://127.0.0.1:$sport/-/ready"
"$py" "$peers/ingest.py" --dataset "$dataset" --url "http://127.0.0.1:$sport/api/v1/write" --pid "$spid" \
  --data-dir "$work/sightline" --name sightline --flush none \
  --flush-cmd "curl -sf -X POST http://127.0.0.1:$sport/api/v1/admin/flush" --no-verify >&2

pport=$(free_port)
printf 'global:\n  scrape_interval: 1h\n' >"$work/prometheus.yml"
prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/prometheus" \
  --storage.tsdb.retention.time=100y --web.listen-address="127.0.0.1:$pport" \
  --web.enable-remote-write-receiver --query.max-samples=500000000 2>"$work/prometheus.log" &
pids+=($!); ppid_=$!
wait_http "http://127.0.0.1:$pport/-/ready"
"$py" "$peers/ingest.py" --dataset "$dataset" --url "http://127.0.0.1:$pport/api/v1/write" --pid "$ppid_" \
  --data-dir "$work/prometheus" --name prometheus --flush none --no-verify >&2

"$py" "$here/query_latency.py" --dataset "$dataset" --root "$root" \
  --engine "sightline=http://127.0.0.1:$sport" --engine "prometheus=http://127.0.0.1:$pport" \
  --json-out "$work/query_latency.json" "$@"
echo "raw results: $work/query_latency.json" >&2
