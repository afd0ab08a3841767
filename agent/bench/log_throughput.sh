#!/usr/bin/env bash
# Log shipping throughput, end to end: files on disk -> sightline-agent -> OTLP/gRPC ->
# sightline-collector (WAL fsync'd before the ack), both release builds.
#
#   agent/bench/log_throughput.sh [--lines 2000000] [--pods 8] [--no-build]
#                                 [--agent-config FILE]   (extra YAML for the agent)
# SIGHTLINE_AGENT_BIN / SIGHTLINE_COLLECTOR_BIN: use these binaries instead of building.
#
# 1. Writes --lines CRI-format lines (timestamps, stdout/stderr, mixed messages of
#    ~100-200 bytes: logfmt, JSON, klog, access logs; 1 % Java stack traces of 4 lines,
#    0.5 % lines split by the runtime into a P + F pair) into --pods
#    /var/log/pods-shaped directories (<tmp>/pods/<ns>_<pod>_<uid>/<container>/0.log),
#    before the agent starts, and computes how many records the agent must deliver
#    (stack traces and P/F pairs become one record each).
# 2. Starts a release collector (port 0, temp data dir), then the release agent with
#    --pod-logs-root on that tree and default log settings.
# 3. Polls the collector's sightline_collector_received_items_total{signal="logs"} until
#    every record is stored, and reads the agent's and the collector's CPU time from
#    /proc/<pid>/stat at that moment.
# Prints a markdown table: lines, records, wall seconds, lines/s, agent CPU seconds,
# lines per agent CPU-second (the figure the target is about), collector CPU seconds.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
LINES=2000000
PODS=8
BUILD=1
EXTRA_CONFIG=""
TIMEOUT=600

while [[ $# -gt 0 ]]; do
  case "$1" in
    --lines) LINES="$2"; shift 2 ;;
    --pods) PODS="$2"; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    --agent-config) EXTRA_CONFIG="$2"; shift 2 ;;
    --timeout) TIMEOUT="$2"; shift 2 ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done

die() { echo "log_throughput.sh: $*" >&2; exit 1; }
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

T="$(mktemp -d /var/tmp/sightline-logbench.XXXXXX)"
AGENT_PID=""
COLLECTOR_PID=""
stop_pid() {
  local p="$1"
  [[ -n "$p" ]] || return 0
  kill -TERM "$p" 2>/dev/null || return 0
  for _ in $(seq 1 60); do kill -0 "$p" 2>/dev/null || return 0; sleep 0.25; done
  kill -KILL "$p" 2>/dev/null || true
}
cleanup() {
  set +e
  stop_pid "$AGENT_PID"
  stop_pid "$COLLECTOR_PID"
  rm -rf "$T"
}
trap cleanup EXIT INT TERM

echo "writing $LINES lines into $PODS pods ..." >&2
EXPECTED="$(python3 - "$T/pods" "$LINES" "$PODS" <<'EOF'
import os, random, sys
root, total, pods = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rnd = random.Random(42)
users = ["alice", "bob", "carol", "dave", "erin", "frank"]
paths = ["/api/v1/users", "/api/v1/orders", "/healthz", "/api/v1/cart/items", "/static/app.js"]
def message(i):
    k = rnd.random()
    if k < 0.35:
        return (f'level=info ts=2026-11-23T18:00:00.{i % 1000:03d}Z caller=handler.go:{rnd.randint(10, 400)} '
                f'msg="request served" method=GET path={rnd.choice(paths)}/{rnd.randint(1, 99999)} '
                f'status=200 duration_ms={rnd.randint(1, 900)} user={rnd.choice(users)}')
    if k < 0.6:
        return ('{"level":"%s","ts":%d.%03d,"logger":"orders","msg":"order %d processed",'
                '"items":%d,"trace_id":"%032x"}' % (rnd.choice(["info", "debug", "warn"]),
                1763920800 + i // 1000, i % 1000, rnd.randint(1, 10**7), rnd.randint(1, 20),
                rnd.getrandbits(128)))
    if k < 0.8:
        return (f'10.{rnd.randint(0,255)}.{rnd.randint(0,255)}.{rnd.randint(1,254)} - - '
                f'[23/Nov/2026:18:00:{i % 60:02d} +0000] "GET {rnd.choice(paths)} HTTP/1.1" 200 '
                f'{rnd.randint(100, 90000)} "-" "Mozilla/5.0 (X11; Linux x86_64)"')
    if k < 0.95:
        return (f'I1123 18:00:{i % 60:02d}.{i % 1000000:06d}       1 controller.go:{rnd.randint(50, 900)}] '
                f'"Reconciling" object="default/web-{rnd.randint(1, 50)}" generation={rnd.randint(1, 9)}')
    return (f'WARN [pool-{rnd.randint(1, 8)}-thread-{rnd.randint(1, 32)}] c.e.svc.Cache - cache miss '
            f'for key session:{rnd.getrandbits(64):016x}, loading from backend')
files = []
for p in range(pods):
    d = os.path.join(root, f"bench_load-{p}_{p:08x}-0000-4000-8000-000000000000", "app")
    os.makedirs(d)
    files.append(open(os.path.join(d, "0.log"), "w", buffering=1 << 20))
records = 0
written = 0
i = 0
base = 1763920800
while written < total:
    f = files[i % pods]
    stream = "stderr" if i % 7 == 0 else "stdout"
    ts = f"2026-11-23T18:{(i // 60_000_000) % 60:02d}:{(i // 1_000_000) % 60:02d}.{i % 1_000_000:06d}000Z"
    k = rnd.random()
    if k < 0.01 and total - written >= 4:
        f.write(f"{ts} {stream} F ERROR java.lang.IllegalStateException: request {i} failed\n")
        f.write(f"{ts} {stream} F \tat com.example.svc.Handler.handle(Handler.java:{rnd.randint(1, 900)})\n")
        f.write(f"{ts} {stream} F \tat com.example.svc.Server.dispatch(Server.java:{rnd.randint(1, 900)})\n")
        f.write(f"{ts} {stream} F \tat java.base/java.lang.Thread.run(Thread.java:833)\n")
        written += 4
    elif k < 0.015 and total - written >= 2:
        m = message(i)
        f.write(f"{ts} {stream} P {m[:60]}\n")
        f.write(f"{ts} {stream} F {m[60:]}\n")
        written += 2
    else:
        f.write(f"{ts} {stream} F {message(i)}\n")
        written += 1
    records += 1
    i += 1
for f in files:
    f.close()
print(records)
EOF
)"
BYTES="$(du -sb "$T/pods" | cut -f1)"
echo "$LINES lines, $EXPECTED records, $BYTES bytes" >&2

"$COLLECTOR" --data-dir "$T/collector" --grpc-addr 127.0.0.1:0 --otlp-http-addr 127.0.0.1:0 \
  --http-addr 127.0.0.1:0 --listen-file "$T/collector.json" >"$T/collector.log" 2>&1 &
COLLECTOR_PID=$!
for _ in $(seq 1 100); do [[ -s "$T/collector.json" ]] && break; sleep 0.1; done
[[ -s "$T/collector.json" ]] || die "collector did not start: $(tail -5 "$T/collector.log")"
GRPC="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["grpc"])' "$T/collector.json")"
HTTP="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["http"])' "$T/collector.json")"

{
  echo 'interval: 10s'
  echo 'logs:'
  echo '  docker_root: ""'
  [[ -n "$EXTRA_CONFIG" ]] && cat "$EXTRA_CONFIG"
} >"$T/agent.yaml"

cpu_s() { # utime + stime of PID in seconds
  python3 -c 'import os,sys; f=open(f"/proc/{sys.argv[1]}/stat").read().rsplit(")",1)[1].split(); print((int(f[11])+int(f[12]))/os.sysconf("SC_CLK_TCK"))' "$1"
}
stored() {
  curl -s "http://$HTTP/metrics" |
    awk '/^sightline_collector_received_items_total/ && /signal="logs"/ { s += $NF } END { printf "%d\n", s }'
}

collector_cpu0="$(cpu_s "$COLLECTOR_PID")"
start_ns="$(date +%s%N)"
"$AGENT" --config "$T/agent.yaml" --endpoint "http://$GRPC" --data-dir "$T/agent-data" \
  --pod-logs-root "$T/pods" --http-addr 127.0.0.1:0 --listen-file "$T/agent.addr" \
  >"$T/agent.log" 2>&1 &
AGENT_PID=$!

n=0
while :; do
  n="$(stored)"
  [[ "$n" -ge "$EXPECTED" ]] && break
  kill -0 "$AGENT_PID" 2>/dev/null || die "agent exited: $(tail -5 "$T/agent.log")"
  (( ($(date +%s%N) - start_ns) / 1000000000 < TIMEOUT )) ||
    die "only $n of $EXPECTED records stored after ${TIMEOUT}s"
  sleep 0.05
done
end_ns="$(date +%s%N)"
agent_cpu="$(cpu_s "$AGENT_PID")"
collector_cpu1="$(cpu_s "$COLLECTOR_PID")"
agent_rss="$(awk '/^VmHWM/ { print $2 }' "/proc/$AGENT_PID/status")"
agent_addr="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["http"])' "$T/agent.addr" 2>/dev/null || true)"
read_lines="$(curl -s "http://$agent_addr/metrics" | awk '/^sightline_agent_log_lines_read_total/ { print $NF }')"

python3 - "$LINES" "$EXPECTED" "$n" "$BYTES" "$start_ns" "$end_ns" "$agent_cpu" \
  "$collector_cpu0" "$collector_cpu1" "$agent_rss" "${read_lines:-?}" <<'EOF'
import sys
lines, expected, stored, nbytes = map(int, sys.argv[1:5])
start, end = int(sys.argv[5]), int(sys.argv[6])
agent_cpu, c0, c1 = float(sys.argv[7]), float(sys.argv[8]), float(sys.argv[9])
rss_kib, read_lines = int(sys.argv[10]), sys.argv[11]
wall = (end - start) / 1e9
print(f"{lines} lines ({nbytes / 1e6:.0f} MB) in {expected} records; agent read {read_lines} lines; "
      f"collector stored {stored} records\n")
print("| lines | MB | wall s | lines/s | agent CPU s | lines per agent CPU-second | agent peak RSS MiB | collector CPU s |")
print("|---:|---:|---:|---:|---:|---:|---:|---:|")
print(f"| {lines} | {nbytes / 1e6:.0f} | {wall:.2f} | {lines / wall:,.0f} | {agent_cpu:.2f} | "
      f"{lines / agent_cpu:,.0f} | {rss_kib / 1024:.1f} | {c1 - c0:.2f} |")
EOF
