#!/usr/bin/env bash
# Ingest benchmark: the same remote-write data set pushed at full speed into
# sightline-collector, Prometheus and VictoriaMetrics, one after the other on this
# machine, with ../shared/eval/peers/ingest.py. Prints one table.
#
#   collector/bench/ingest_peers.sh [gen.py options, default: 10 hosts x 10 containers x 6 h]
#
# SIGHTLINE_BENCH_DATASET=DIR reuses (or creates) a gen.py data set there.
# Needs: the release collector binary (cargo build --release -p sightline-collector),
# Debian packages prometheus and victoria-metrics (installed if missing), python3.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
shared=${SIGHTLINE_SHARED:-$root/../shared}
peers="$shared/eval/peers"
target=${CARGO_TARGET_DIR:-$root/target}
collector="$target/release/sightline-collector"
[ -x "$collector" ] || { echo "build it first: cargo build --release -p sightline-collector" >&2; exit 1; }
for pkg in prometheus victoria-metrics; do
  dpkg -s "$pkg" >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$pkg" >/dev/null
done

work=$(mktemp -d /var/tmp/sightline-bench.XXXXXX)
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
  "$py" "$peers/gen.py" --out "$dataset" "$@" >&2
fi

free_port() { "$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() { for _ in $(seq 1 300); do curl -sf "$1" >/dev/null 2>&1 && return 0; sleep 0.1; done; echo "not ready: $1" >&2; return 1; }

run_ingest() { # name url pid data_dir [extra ingest.py args]
  local name=$1 url=$2 pid=$3 dir=$4; shift 4
  "$py" "$peers/ingest.py" --dataset "$dataset" --url "$url" --pid "$pid" --data-dir "$dir" \
    --name "$name" --json-out "$work/$name.json" "$@" >&2
}

# sightline
port=$(free_port)
"$collector" run --data-dir "$work/sightline" --http-addr "127.0.0.1:$port" \
  --grpc-addr 127.0.0.1:0 --otlp-http-addr 127.0.0.1:0 2>"$work/sightline.log" &
pids+=($!); pid=$!
wait_http "http://127.0.0.1:$port/-/ready"
run_ingest sightline "http://127.0.0.1:$port/api/v1/write" "$pid" "$work/sightline" \
  --flush none --flush-cmd "curl -sf -X POST http://127.0.0.1:$port/api/v1/admin/flush" --no-verify
kill "$pid"; wait "$pid" 2>/dev/null || true

# Prometheus
port=$(free_port)
printf 'global:\n  scrape_interval: 1h\n' >"$work/prometheus.yml"
prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/prometheus" \
  --web.listen-address="127.0.0.1:$port" --web.enable-remote-write-receiver --web.enable-admin-api \
  2>"$work/prometheus.log" &
pids+=($!); pid=$!
wait_http "http://127.0.0.1:$port/-/ready"
run_ingest prometheus "http://127.0.0.1:$port/api/v1/write" "$pid" "$work/prometheus" --no-verify
kill "$pid"; wait "$pid" 2>/dev/null || true

# VictoriaMetrics
port=$(free_port)
victoria-metrics -storageDataPath="$work/victoriametrics" -httpListenAddr="127.0.0.1:$port" \
  -retentionPeriod=100y 2>"$work/victoriametrics.log" &
pids+=($!); pid=$!
wait_http "http://127.0.0.1:$port/health"
run_ingest victoriametrics "http://127.0.0.1:$port/api/v1/write" "$pid" "$work/victoriametrics" --no-verify
kill "$pid"; wait "$pid" 2>/dev/null || true

"$py" - "$work" <<'PY'
import json, sys, os
work = sys.argv[1]
rows = [json.load(open(os.path.join(work, f"{n}.json"))) for n in ("sightline", "prometheus", "victoriametrics")]
print(f"data set: {rows[0]['dataset']['series']} series, {rows[0]['samples_total']} samples")
print("| target | samples/s | CPU-s per 1M samples | peak RSS MiB | bytes/sample on disk | rejected |")
print("|---|---:|---:|---:|---:|---:|")
for r in rows:
    print(f"| {r['name']} | {r['samples_per_s']:,} | {r['cpu_s_per_million']} | {r['peak_rss_kb'] / 1024:.0f} "
          f"| {r['persistent_bytes_per_sample']} | {r['samples_rejected']} |")
PY
echo "raw results: $work/*.json" >&2
