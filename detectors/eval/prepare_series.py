#!/usr/bin/env python3
"""Builds the forecasting evaluation set: NAB dev series plus ops series from the
load generator's data set (shared/eval/peers/gen.py), all as NAB-style CSV
(timestamp,value), listed in OUT/series.txt.

Load generator series: gen.py is run with an hourly scrape over 21 days (so the
daily season is 24 samples, which statsforecast's ETS can fit), written as
OpenMetrics, and reduced to per-step values: gauges as they are, counters as
per-second rates (a counter reset counts from zero). Missed scrapes are
interpolated on the nominal grid. Deterministic: fixed --seed and --end.

Usage: prepare_series.py [--out /var/tmp/sl-forecast-eval] [--nab ../shared/data/nab-dev]
                         [--gen ../shared/eval/peers/gen.py] [--python python3]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time

LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+) (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
STEP = 3600


def parse_openmetrics(path, wanted):
    """{(name, frozenset(labels)): [(ts_ms, value)]} for metric names in `wanted`."""
    out = {}
    with open(path) as f:
        for line in f:
            if line.startswith("#"):
                continue
            m = LINE.match(line.rstrip("\n"))
            if not m or m.group(1) not in wanted:
                continue
            labels = dict(LABEL.findall(m.group(2) or ""))
            key = (m.group(1), tuple(sorted(labels.items())))
            out.setdefault(key, []).append((int(round(float(m.group(4)) * 1000)), float(m.group(3))))
    return out


def on_grid(points, start_ms, steps):
    """Values at start + i*STEP (nearest scrape within half a step), gaps interpolated."""
    vals = [None] * steps
    for ts, v in points:
        i = round((ts - start_ms) / (STEP * 1000))
        if 0 <= i < steps:
            vals[i] = v
    known = [i for i, v in enumerate(vals) if v is not None]
    for a, b in zip(known, known[1:]):
        for i in range(a + 1, b):
            vals[i] = vals[a] + (vals[b] - vals[a]) * (i - a) / (b - a)
    return vals[known[0]:known[-1] + 1], known[0]


def rate(vals):
    out = []
    for a, b in zip(vals, vals[1:]):
        d = b - a
        out.append((d if d >= 0 else b) / STEP)  # reset: the counter restarted from 0
    return out


def write_csv(path, start_ms, vals):
    with open(path, "w") as f:
        f.write("timestamp,value\n")
        for i, v in enumerate(vals):
            t = time.gmtime(start_ms / 1000 + i * STEP)
            f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S', t)},{v!r}\n")


def main() -> int:
    here = os.path.dirname(os.path.abspath(__file__))
    repo = os.path.dirname(os.path.dirname(here))
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="/var/tmp/sl-forecast-eval")
    p.add_argument("--nab", default=os.path.join(repo, "..", "shared", "data", "nab-dev"))
    p.add_argument("--gen", default=os.path.join(repo, "..", "shared", "eval", "peers", "gen.py"))
    p.add_argument("--python", default=sys.executable)
    args = p.parse_args()
    if not os.path.exists(args.gen):  # worktrees live next to /work/shared
        args.gen = "/work/shared/eval/peers/gen.py"
    if not os.path.isdir(args.nab):
        args.nab = "/work/shared/data/nab-dev"
    os.makedirs(os.path.join(args.out, "gen"), exist_ok=True)
    listing = []

    # NAB dev: every series (series with a zero MASE scale are dropped by the scorer).
    for root, _, files in sorted(os.walk(os.path.join(args.nab, "data"))):
        for fn in sorted(files):
            if fn.endswith(".csv"):
                listing.append(("nab", os.path.join(root, fn)))

    # Load generator: 3 hosts x 4 containers, hourly for 21 days, fixed end.
    raw = os.path.join(args.out, "gen-raw")
    cmd = [args.python, args.gen, "--out", raw, "--hosts", "3", "--containers", "4", "--span-h", "504",
           "--interval", str(STEP), "--end", "1767225600", "--seed", "1", "--no-remote-write", "--openmetrics"]
    print("+", " ".join(cmd), file=sys.stderr)
    subprocess.run(cmd, check=True)
    with open(os.path.join(raw, "manifest.json")) as f:
        manifest = json.load(f)
    start_ms, steps = manifest["start_ms"] - STEP * 1000, manifest["steps"] + 1
    series = parse_openmetrics(os.path.join(raw, "openmetrics.txt"), {
        "node_memory_MemAvailable_bytes", "container_memory_working_set_bytes",
        "container_cpu_usage_seconds_total", "http_request_duration_seconds_count"})
    leak = next(a for a in manifest["anomalies"] if a["kind"].startswith("memory_leak"))

    def pick(name, **want):
        for (n, labels), pts in sorted(series.items()):
            d = dict(labels)
            if n == name and all(d.get(k) == v for k, v in want.items()):
                return pts
        raise SystemExit(f"prepare_series: no {name} {want}")

    chosen = [
        ("node_mem_available_host00", pick("node_memory_MemAvailable_bytes", node="host-00"), False),
        ("node_mem_available_host01", pick("node_memory_MemAvailable_bytes", node="host-01"), False),
        ("node_mem_available_host02", pick("node_memory_MemAvailable_bytes", node="host-02"), False),
        ("ctr_mem_leak", pick("container_memory_working_set_bytes", node=f"host-{leak['host']:02d}",
                              container=f"app-{leak['container']}"), False),
        ("ctr_mem_host01_app2", pick("container_memory_working_set_bytes", node="host-01", container="app-2"), False),
        ("ctr_cpu_rate_host00_app0", pick("container_cpu_usage_seconds_total", node="host-00", container="app-0"), True),
        ("ctr_cpu_rate_host02_app1", pick("container_cpu_usage_seconds_total", node="host-02", container="app-1"), True),
        ("http_req_rate_host01_app3", pick("http_request_duration_seconds_count", node="host-01", container="app-3"), True),
    ]
    for name, pts, is_counter in chosen:
        vals, first = on_grid(pts, start_ms, steps)
        s0 = start_ms + first * STEP * 1000
        if is_counter:
            vals, s0 = rate(vals), s0 + STEP * 1000
        path = os.path.join(args.out, "gen", f"{name}.csv")
        write_csv(path, s0, vals)
        listing.append(("gen", path))

    with open(os.path.join(args.out, "series.txt"), "w") as f:
        for src, path in listing:
            f.write(f"{src}\t{os.path.abspath(path)}\n")
    print(f"prepare_series: {len(listing)} series listed in {os.path.join(args.out, 'series.txt')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
