#!/usr/bin/env bash
# Agent overhead: sightline-agent vs prometheus-node-exporter, netdata and collectd on
# the same host, in one run, each measured by ../shared/eval/peers/agent_overhead.sh.
#
#   agent/bench/overhead.sh [--duration 120] [--warmup 15] [--containers 100] [--interval 10]
#                           [--only NAME[,NAME...]] [--no-build]
#                           [--agent-config FILE]  (YAML lines appended to the agent's
#                                                   config, after its `logs:` section)
# SIGHTLINE_AGENT_BIN / SIGHTLINE_COLLECTOR_BIN: use these binaries instead of building.
#
# Set-up (undone on exit, also on failure or Ctrl-C):
# - N "containers" as a runtime makes them on cgroup v1: real groups in
#   /sys/fs/cgroup/{cpu,cpuacct,memory,blkio,pids} (below this shell's own group of each
#   controller), half docker-shaped (.../docker/<64 hex>), half kubepods-shaped
#   (.../kubepods/burstable/pod<uid>/<64 hex>), each holding one real process: the docker
#   ones sleep, the kubepods ones append a CRI log line every 5 s to their
#   /var/log/pods-shaped file (<tmp>/pods/<ns>_<pod>_<uid>/app/0.log);
# - a release sightline-collector on 127.0.0.1 (port 0, temp data dir), so the agent's
#   export cost (OTLP/gRPC, zstd) is part of what is measured.
# Agents, each alone for --warmup + --duration seconds, one after the other, at the same
# interval (--interval seconds):
# - sightline-agent  --interval Ns, pushing to the collector, tailing the pod logs;
# - node_exporter    default collectors, scraped every N s (the scraper is not counted);
# - netdata          "update every = N", db mode ram, defaults otherwise (its plugins and
#                    the cgroups plugin are counted: agent_overhead.sh measures the tree);
# - collectd         Interval N: cpu, memory, load, interface, disk, df, cgroups,
#                    write_prometheus scraped every N s.
# Prints a markdown table (CPU % of one core, RSS and PSS averages and maxima); the JSON
# lines of each measurement are kept in <tmp>/results/.
# Needs root, the v1 controllers above, python3, and the Debian packages
# prometheus-node-exporter netdata-core collectd-core libmicrohttpd12.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
PEERS="${SIGHTLINE_PEERS_DIR:-$REPO/../shared/eval/peers}"
DURATION=120
WARMUP=15
N=100
INTERVAL=10
ONLY="sightline-agent,node_exporter,netdata,collectd"
BUILD=1
EXTRA_CONFIG=""

while [[ $# -gt 0 ]]; do
  case "$1" in
    --duration) DURATION="$2"; shift 2 ;;
    --warmup) WARMUP="$2"; shift 2 ;;
    --containers) N="$2"; shift 2 ;;
    --interval) INTERVAL="$2"; shift 2 ;;
    --only) ONLY="$2"; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    --agent-config) EXTRA_CONFIG="$2"; shift 2 ;;
    -h|--help) sed -n '2,31p' "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done

die() { echo "overhead.sh: $*" >&2; exit 1; }
[[ -x "$PEERS/agent_overhead.sh" ]] ||
  die "$PEERS/agent_overhead.sh not found; set SIGHTLINE_PEERS_DIR to shared/eval/peers"
[[ "$(id -u)" -eq 0 ]] || die "needs root (it creates cgroups)"
for c in cpu cpuacct memory blkio pids; do
  [[ -f "/sys/fs/cgroup/$c/cgroup.procs" ]] ||
    die "cgroup v1 controller $c is not mounted at /sys/fs/cgroup/$c"
done
for b in prometheus-node-exporter netdata collectd; do
  command -v "$b" >/dev/null || [[ -x "/usr/sbin/$b" ]] ||
    die "$b missing: apt-get install -y prometheus-node-exporter netdata-core collectd-core libmicrohttpd12"
done

TARGET="${CARGO_TARGET_DIR:-$REPO/target}"
AGENT="${SIGHTLINE_AGENT_BIN:-$TARGET/release/sightline-agent}"
COLLECTOR="${SIGHTLINE_COLLECTOR_BIN:-$TARGET/release/sightline-collector}"
if [[ "$BUILD" -eq 1 ]]; then
  pkgs=()
  [[ -n "${SIGHTLINE_AGENT_BIN:-}" ]] || pkgs+=(-p sightline-agent)
  [[ -n "${SIGHTLINE_COLLECTOR_BIN:-}" ]] || pkgs+=(-p sightline-collector)
  [[ ${#pkgs[@]} -eq 0 ]] || (cd "$REPO" && cargo build --release -q "${pkgs[@]}")
fi
[[ -x "$AGENT" && -x "$COLLECTOR" ]] || die "release binaries missing in $TARGET/release"

T="$(mktemp -d /var/tmp/sightline-overhead.XXXXXX)"
mkdir -p "$T/results" "$T/pods"
TAG="sightline-bench-$$"
PIDS=()
DIRS=()
COLLECTOR_PID=""

cleanup() {
  set +e
  # the writers' `sleep` children first (by parent PID), so the groups empty at once
  for p in "${PIDS[@]}"; do pkill -TERM -P "$p" 2>/dev/null; kill "$p" 2>/dev/null; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done 2>/dev/null
  if [[ -n "$COLLECTOR_PID" ]]; then
    kill -TERM "$COLLECTOR_PID" 2>/dev/null
    for _ in $(seq 1 40); do kill -0 "$COLLECTOR_PID" 2>/dev/null || break; sleep 0.25; done
    kill -KILL "$COLLECTOR_PID" 2>/dev/null
  fi
  # deepest first; the kernel releases a killed task's membership shortly after it exits
  for ((i = ${#DIRS[@]} - 1; i >= 0; i--)); do
    for _ in $(seq 1 120); do
      rmdir "${DIRS[$i]}" 2>/dev/null || [[ ! -d "${DIRS[$i]}" ]] && break
      sleep 0.05
    done
  done
  left=0
  for d in "${DIRS[@]}"; do [[ -d "$d" ]] && left=$((left + 1)); done
  [[ "$left" -gt 0 ]] && echo "overhead.sh: $left cgroup dirs could not be removed (${TAG})" >&2
  rm -rf "$T"
}
trap cleanup EXIT INT TERM

own_cgroup() { # this shell's path in controller $1's v1 hierarchy
  awk -F: -v c="$1" '{ n = split($2, a, ","); for (i = 1; i <= n; i++) if (a[i] == c) print $3 }' /proc/self/cgroup
}

make_group() { # make_group REL -> prints nothing; records created dirs in DIRS
  local rel="$1" c base dir part
  for c in cpu cpuacct memory blkio pids; do
    base="/sys/fs/cgroup/$c$(own_cgroup "$c")"
    base="${base%/}"
    dir="$base"
    IFS=/ read -ra parts <<<"$rel"
    for part in "${parts[@]}"; do
      dir="$dir/$part"
      if [[ ! -d "$dir" ]]; then
        mkdir "$dir"
        DIRS+=("$dir")
      fi
    done
  done
}

join_group() { # join_group REL PID
  local c
  for c in cpu cpuacct memory blkio pids; do
    local base="/sys/fs/cgroup/$c$(own_cgroup "$c")"
    echo "$2" >"${base%/}/$1/cgroup.procs"
  done
}

echo "setting up $N containers (cgroup v1, $TAG) ..." >&2
for ((i = 0; i < N; i++)); do
  id="$(printf '%056x%08x' $$ "$i")"
  if ((i % 2 == 0)); then
    rel="$TAG/docker/$id"
    make_group "$rel"
    sleep 1000000 &
    pid=$!
  else
    uid="$(printf '%08x-0000-4000-8000-%012x' $$ "$i")"
    rel="$TAG/kubepods/burstable/pod$uid/$id"
    make_group "$rel"
    logdir="$T/pods/bench_pod-${i}_${uid}/app"
    mkdir -p "$logdir"
    # one CRI line every 5 s, shell builtins + sleep
    sh -c 'n=0; while :; do n=$((n+1)); printf "%s stdout F level=info msg=\"tick %d from %s\" user=alice latency_ms=12\n" "$(date -u +%Y-%m-%dT%H:%M:%S.000000000Z)" "$n" "$2" >>"$1"; sleep 5; done' \
      writer "$logdir/0.log" "pod-$i" &
    pid=$!
  fi
  PIDS+=("$pid")
  join_group "$rel" "$pid"
done

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

echo "starting the collector ..." >&2
"$COLLECTOR" --data-dir "$T/collector" --grpc-addr 127.0.0.1:0 --otlp-http-addr 127.0.0.1:0 \
  --http-addr 127.0.0.1:0 --listen-file "$T/collector.json" >"$T/collector.log" 2>&1 &
COLLECTOR_PID=$!
for _ in $(seq 1 100); do [[ -s "$T/collector.json" ]] && break; sleep 0.1; done
[[ -s "$T/collector.json" ]] || die "collector did not start: $(tail -5 "$T/collector.log")"
GRPC="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["grpc"])' "$T/collector.json")"
HTTP="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["http"])' "$T/collector.json")"

measure() { # measure NAME [agent_overhead options] -- CMD...
  local name="$1"
  shift
  [[ ",$ONLY," == *",$name,"* ]] || return 0
  echo "measuring $name for ${WARMUP}s + ${DURATION}s ..." >&2
  "$PEERS/agent_overhead.sh" --duration "$DURATION" --warmup "$WARMUP" --name "$name" \
    --log "$T/results/$name.log" --json-out "$T/results/$name.json" "$@" >/dev/null ||
    die "$name failed: $(tail -5 "$T/results/$name.log")"
}

# --- sightline-agent ----------------------------------------------------------------------
{
  echo 'logs:'
  echo '  docker_root: ""'
  [[ -n "$EXTRA_CONFIG" ]] && cat "$EXTRA_CONFIG"
} >"$T/agent.yaml"
measure sightline-agent -- "$AGENT" --config "$T/agent.yaml" --endpoint "http://$GRPC" \
  --interval "${INTERVAL}s" --data-dir "$T/agent-data" --pod-logs-root "$T/pods" \
  --cgroup-root /sys/fs/cgroup --http-addr 127.0.0.1:0

if [[ ",$ONLY," == *",sightline-agent,"* ]]; then
  q='count(count by (container_id) (container_cpu_time_seconds_total{container_id=~"'"$(printf '%056x' $$)"'.*"}))'
  SEEN="$(curl -s -G "http://$HTTP/api/v1/query" --data-urlencode "query=$q" |
    python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else 0)')"
  echo "the collector has CPU series of $SEEN of the $N bench containers" >&2
fi

# --- node_exporter ------------------------------------------------------------------------
port="$(free_port)"
measure node_exporter --scrape-url "http://127.0.0.1:$port/metrics" --scrape-interval "$INTERVAL" \
  -- prometheus-node-exporter --web.listen-address="127.0.0.1:$port"

# --- netdata ------------------------------------------------------------------------------
port="$(free_port)"
mkdir -p "$T/netdata"/{cache,lib,log,lock,run}
cat >"$T/netdata/netdata.conf" <<EOF
[global]
  run as user = root
  update every = $INTERVAL
  error log = $T/netdata/log/error.log
  access log = none
  debug log = none
[db]
  mode = ram
[directories]
  cache = $T/netdata/cache
  lib = $T/netdata/lib
  log = $T/netdata/log
  lock = $T/netdata/lock
[web]
  bind to = 127.0.0.1:$port
[ml]
  enabled = no
EOF
DO_NOT_TRACK=1 measure netdata -- netdata -D -c "$T/netdata/netdata.conf" -P "$T/netdata/run/netdata.pid"

# --- collectd -----------------------------------------------------------------------------
port="$(free_port)"
mkdir -p "$T/collectd"
cat >"$T/collectd/collectd.conf" <<EOF
Interval $INTERVAL
BaseDir "$T/collectd"
PIDFile "$T/collectd/collectd.pid"
PluginDir "/usr/lib/collectd"
TypesDB "/usr/share/collectd/types.db"
LoadPlugin cpu
LoadPlugin memory
LoadPlugin load
LoadPlugin interface
LoadPlugin disk
LoadPlugin df
LoadPlugin cgroups
LoadPlugin write_prometheus
<Plugin write_prometheus>
  Host "127.0.0.1"
  Port "$port"
</Plugin>
EOF
measure collectd --scrape-url "http://127.0.0.1:$port/metrics" --scrape-interval "$INTERVAL" \
  -- "$(command -v collectd || echo /usr/sbin/collectd)" -f -C "$T/collectd/collectd.conf"

# --- did the agent's data arrive? ------------------------------------------------------------
stored="$(curl -s "http://$HTTP/metrics" | awk '/^sightline_collector_received_items_total/ { s += $NF } END { print s + 0 }')"

# --- table --------------------------------------------------------------------------------
python3 - "$T/results" "$N" "$INTERVAL" "$DURATION" "$stored" "${SEEN:-?}" <<'EOF'
import json, os, sys
results, n, interval, duration, stored, seen = sys.argv[1:7]
rows = []
for name in ["sightline-agent", "node_exporter", "netdata", "collectd"]:
    p = os.path.join(results, name + ".json")
    if os.path.exists(p):
        rows.append(json.load(open(p)))
print(f"{n} containers, {interval} s interval, {duration} s measured per agent; "
      f"collector received {stored} items from sightline-agent, with CPU series of {seen} "
      f"bench containers\n")
print("| agent | CPU % of one core | CPU s | RSS avg MiB | RSS max MiB | PSS avg MiB | PSS max MiB | processes |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
for r in rows:
    print(f"| {r['name']} | {r['cpu_pct']:.2f} | {r['cpu_s']:.2f} | {r['rss_avg_mib']} | "
          f"{r['rss_max_mib']} | {r['pss_avg_mib']} | {r['pss_max_mib']} | {r['procs_max']} |")
EOF
