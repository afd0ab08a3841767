#!/usr/bin/env python3
"""Rolling-origin forecast accuracy: sightline-detect vs statsforecast AutoETS and
AutoARIMA on the same series, origins and horizons; one table with MASE and time.

For each series (OUT/series.txt from prepare_series.py) and origin
o = n - k*h (k = 1..--origins), every method gets the --max-history values before
o and forecasts h steps. MASE = MAE / in-sample MAE of the seasonal naive
forecast on that training window, with the season m = one day in samples (1 if
the window holds fewer than 2 days); series whose scale is 0 (perfectly
periodic or flat) are skipped. statsforecast gets season_length = m when
m <= 24; its ETS cannot fit longer seasons (m > 24 returns the non-seasonal
model after a much longer fit) and a seasonal ARIMA at m = 288 is infeasible,
so for 5-minute data both get season_length = 1. Time is per forecast, wall
clock and CPU (the machine is shared, so CPU time is the fair comparison): ours
is measured inside sightline-detect around the library call (thread CPU time from
/proc/thread-self/schedstat), statsforecast's around
`model.forecast(y, h, level=[...])` (time.process_time) after one warm-up fit.
Results are cached by (model, series, origin, settings); --retime N re-measures
the CPU time of cached fits recorded before CPU time was.

Usage: forecast_compare.py --bin PATH/sightline-detect [--series /var/tmp/sl-forecast-eval/series.txt]
         [--horizon 48] [--origins 3] [--max-history 4032] [--level 80] [--max-series 30] [--per-series]
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from datetime import datetime, timezone

import numpy as np


def read_series(path):
    ts, vals = [], []
    with open(path) as f:
        r = csv.reader(f)
        next(r, None)
        for row in r:
            if len(row) < 2:
                continue
            try:
                v = float(row[1])
                t = datetime.strptime(row[0].strip()[:19], "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc)
            except ValueError:
                continue
            ts.append(t.timestamp())
            vals.append(v)
    return np.array(ts), np.array(vals, dtype=float)


def day_period(ts):
    step = float(np.median(np.diff(ts)))
    return max(1, int(round(86400 / step))) if step > 0 else 1


def mase_scale(train, m):
    if len(train) <= 2 * m:
        m = 1
    return float(np.mean(np.abs(train[m:] - train[:-m]))), m


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bin", required=True)
    p.add_argument("--series", default="/var/tmp/sl-forecast-eval/series.txt")
    p.add_argument("--horizon", type=int, default=48)
    p.add_argument("--origins", type=int, default=3)
    p.add_argument("--max-history", type=int, default=4032)
    p.add_argument("--level", type=int, default=80)
    p.add_argument("--max-series", type=int, default=30)
    p.add_argument("--per-series", action="store_true")
    p.add_argument("--no-arima", action="store_true")
    p.add_argument("--retime", type=int, default=0,
                   help="re-measure CPU time of cached statsforecast fits that lack it: the first origin of up to N series")
    p.add_argument("--ours-args", default="", help="extra arguments for `sightline-detect forecast eval`")
    p.add_argument("--cache", default="/var/tmp/sl-forecast-eval/statsforecast-cache.json",
                   help="statsforecast results by (series, origin, settings), reused across runs ('' = off)")
    args = p.parse_args()
    warnings.filterwarnings("ignore")
    from statsforecast.models import AutoARIMA, AutoETS

    h, W = args.horizon, args.max_history
    entries = []
    with open(args.series) as f:
        for line in f:
            if line.strip():
                src, path = line.rstrip("\n").split("\t")
                entries.append((src, path))
    # Series and origins; skip zero-scale series.
    jobs, skipped = [], []
    for src, path in entries:
        ts, y = read_series(path)
        m_day = day_period(ts)
        origins = [len(y) - k * h for k in range(1, args.origins + 1) if len(y) - k * h >= 2 * h]
        items = []
        for o in origins:
            train = y[max(0, o - W):o]
            scale, m = mase_scale(train, m_day)
            items.append((o, train, y[o:o + h], scale, m))
        if not items or any(it[3] == 0 for it in items):
            skipped.append(os.path.basename(path))
            continue
        jobs.append((src, path, items))
    jobs = jobs[:args.max_series]

    # Ours: one process, timing measured around each library call.
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "ours.csv")
        cmd = [args.bin, "forecast", "eval", "--horizon", str(h), "--origins", str(args.origins),
               "--max-history", str(W), "--level", str(args.level / 100), "--out", out] + args.ours_args.split() \
            + [j[1] for j in jobs]
        subprocess.run(cmd, check=True)
        ours = {}
        with open(out) as f:
            for row in csv.DictReader(f):
                d = ours.setdefault((row["series"], int(row["origin"])),
                                    {"mean": [], "lo": [], "hi": [], "sec": float(row["seconds"]),
                                     "cpu": float(row["cpu_seconds"]),
                                     "method": row["method"], "period": int(row["period"])})
                d["mean"].append(float(row["mean"]))
                d["lo"].append(float(row["lower"]))
                d["hi"].append(float(row["upper"]))

    # statsforecast, warmed up once per model.
    warm = np.sin(np.arange(200) / 4.0) + 10
    AutoETS(season_length=24).forecast(warm, h=4, level=[args.level])
    if not args.no_arima:
        AutoARIMA(season_length=24).forecast(warm, h=4, level=[args.level])
    methods = ["ours", "AutoETS"] + ([] if args.no_arima else ["AutoARIMA"]) + ["snaive"]
    cache = {}
    if args.cache and os.path.exists(args.cache):
        with open(args.cache) as f:
            cache = json.load(f)
    res = {m: [] for m in methods}  # (src, name, mase, covered, n, seconds, cpu seconds or None)
    retime_left = {"AutoETS": args.retime, "AutoARIMA": args.retime}
    per_series = []
    for src, path, items in jobs:
        name = os.path.basename(path)[:-4]
        row = {m: [] for m in methods}
        for o, train, test, scale, m in items:
            sl = m if m <= 24 else 1
            fc = {}
            d = ours[(path, o)]
            fc["ours"] = (np.array(d["mean"]), np.array(d["lo"]), np.array(d["hi"]), d["sec"])
            cpu = {"ours": d["cpu"]}
            for label, model in (("AutoETS", AutoETS), ("AutoARIMA", AutoARIMA)):
                if label not in methods:
                    continue
                key = f"{label}|{path}|{o}|{h}|{W}|{sl}|{args.level}"
                if key in cache:
                    c = cache[key]
                    fc[label] = (np.array(c["mean"]), np.array(c["lo"]), np.array(c["hi"]), c["sec"])
                    if c.get("cpu") is None and retime_left[label] > 0 and o == items[0][0]:
                        retime_left[label] -= 1
                        c0 = time.process_time()
                        model(season_length=sl).forecast(train, h=h, level=[args.level])
                        c["cpu"] = time.process_time() - c0
                    cpu[label] = c.get("cpu")
                    continue
                t0, c0 = time.perf_counter(), time.process_time()
                try:
                    r = model(season_length=sl).forecast(train, h=h, level=[args.level])
                    fc[label] = (r["mean"], r[f"lo-{args.level}"], r[f"hi-{args.level}"], time.perf_counter() - t0)
                    cpu[label] = time.process_time() - c0
                except Exception as e:  # noqa: BLE001 - reported, scored as a naive forecast
                    print(f"{label} failed on {name}@{o}: {e}", file=sys.stderr)
                    last = np.full(h, train[-1])
                    fc[label] = (last, last, last, time.perf_counter() - t0)
                    cpu[label] = time.process_time() - c0
                mean, lo, hi, sec = fc[label]
                cache[key] = {"mean": list(map(float, mean)), "lo": list(map(float, lo)),
                              "hi": list(map(float, hi)), "sec": sec, "cpu": cpu[label]}
            sn = np.array([train[len(train) - m + j % m] for j in range(h)])
            fc["snaive"] = (sn, sn, sn, 0.0)
            for meth in methods:
                mean, lo, hi, sec = fc[meth]
                mase = float(np.mean(np.abs(np.asarray(mean) - test))) / scale
                cov = int(np.sum((np.asarray(lo) <= test) & (test <= np.asarray(hi))))
                res[meth].append((src, name, mase, cov, h, sec, cpu.get(meth)))
                row[meth].append(mase)
        print(f"{name}: " + " ".join(f"{m}={statistics.mean(v):.3f}" for m, v in row.items()),
              file=sys.stderr, flush=True)
        if args.cache:
            with open(args.cache, "w") as f:
                json.dump(cache, f)
        per_series.append((src, name, ours[(path, items[0][0])]["method"], ours[(path, items[0][0])]["period"],
                           items[0][4], {m: statistics.mean(v) for m, v in row.items()}))

    if args.per_series:
        print("| series | src | m | our method | our period | " + " | ".join(f"MASE {m}" for m in methods) + " |")
        print("|---|---|---:|---|---:|" + "---:|" * len(methods))
        for src, name, meth, per, m, mases in per_series:
            print(f"| {name} | {src} | {m} | {meth} | {per} | " + " | ".join(f"{mases[x]:.3f}" for x in methods) + " |")
        print()

    def summary(rows):
        mases = [r[2] for r in rows]
        cov = sum(r[3] for r in rows) / max(1, sum(r[4] for r in rows))
        secs = [r[5] for r in rows]
        cpus = [r[6] for r in rows if r[6] is not None and not math.isnan(r[6])]
        return (statistics.mean(mases), statistics.median(mases), cov, statistics.mean(secs),
                statistics.mean(cpus) if cpus else float("nan"), len(cpus))

    n_series = len(jobs)
    n_fc = len(res["ours"])
    print(f"forecast_compare: {n_series} series ({sum(1 for j in jobs if j[0] == 'nab')} NAB dev, "
          f"{sum(1 for j in jobs if j[0] == 'gen')} load generator), {n_fc} forecasts, h={h}, "
          f"origins={args.origins}, max history {W}; skipped (zero MASE scale): {', '.join(skipped) or 'none'}")
    print()
    print(f"| method | mean MASE | median MASE | mean MASE NAB | mean MASE gen | {args.level}% interval coverage "
          f"| wall ms / forecast | CPU ms / forecast (n) | CPU time vs ours |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for meth in methods:
        mean, med, cov, wall, cpu, ncpu = summary(res[meth])
        by = {s: [r[2] for r in res[meth] if r[0] == s] for s in ("nab", "gen")}
        g = {s: (f"{statistics.mean(v):.3f}" if v else "-") for s, v in by.items()}
        if meth == "snaive":
            print(f"| {meth} | {mean:.3f} | {med:.3f} | {g['nab']} | {g['gen']} | - | - | - | - |")
            continue
        # CPU ratio on the same forecasts: those where this method's CPU time was measured.
        pairs = [(o[6], r[6]) for o, r in zip(res["ours"], res[meth])
                 if r[6] is not None and o[6] is not None and not math.isnan(o[6])]
        ratio = "1x" if meth == "ours" else (
            f"{sum(p[1] for p in pairs) / sum(p[0] for p in pairs):.0f}x" if pairs else "-")
        print(f"| {meth} | {mean:.3f} | {med:.3f} | {g['nab']} | {g['gen']} | {100 * cov:.1f}% | {wall * 1000:.2f} "
              f"| {cpu * 1000:.2f} ({ncpu}) | {ratio} |")
    wins = sum(1 for _, _, _, _, _, ms in per_series if ms["ours"] <= ms["AutoETS"])
    print()
    print(f"ours <= AutoETS (mean MASE over origins) on {wins}/{n_series} series")
    return 0


if __name__ == "__main__":
    sys.exit(main())
