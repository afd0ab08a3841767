#!/usr/bin/env python3
"""Range-query latency of several Prometheus-API engines on the same data (driven by
query_latency.sh, which loads the data).

Query sets, each run as /api/v1/query_range over the data set's whole time range:
  dashboards  every Prometheus target of dashboards/json/*.json, variables at All
              (their allValue), $__interval = step, $__rate_interval = max(step + 15 s, 60 s),
              $__range = the whole range. They read the agent's metric names, which the
              gen.py data set does not have, so they measure selection + planning on
              non-matching selectors.
  dash-gen    the same dashboard shapes (utilisation ratios, rate by label, topk,
              histogram_quantile of summed rates, ratios of sums) over the gen.py names
              (node_*, container_*, http_request_duration_seconds_*), i.e. with data.
  corpus      every expression of collector/promql/tests/golden/queries.txt (the
              differential corpus; most of its metric names are absent from gen.py data,
              node_memory_* and a few others match).
Every query runs --reps times per engine, engines alternating, one request at a time
over a kept-alive connection. Prints p50/p95 per set and engine as a Markdown table and
counts queries whose outcome (error or number of series) differs between engines.
"""
from __future__ import annotations

import argparse
import glob
import http.client
import json
import os
import statistics
import sys
import time
import urllib.parse

DASH_GEN = [
    '1 - sum by (instance) (rate(node_cpu_seconds_total{mode="idle"}[$__rate_interval])) / sum by (instance) (rate(node_cpu_seconds_total[$__rate_interval]))',
    'sum by (instance, mode) (rate(node_cpu_seconds_total{mode!="idle"}[$__rate_interval]))',
    '1 - node_memory_MemAvailable_bytes{job="node"} / node_memory_MemTotal_bytes{job="node"}',
    'node_memory_Cached_bytes + node_memory_Buffers_bytes',
    'topk(20, sum by (namespace, pod) (rate(container_cpu_usage_seconds_total[$__rate_interval])))',
    'sum by (namespace) (container_memory_working_set_bytes)',
    'topk(20, sum by (namespace, pod) (container_memory_working_set_bytes))',
    'sum by (namespace, pod) (rate(container_network_receive_bytes_total[$__rate_interval]))',
    'sum by (namespace) (rate(http_request_duration_seconds_count[$__rate_interval]))',
    'histogram_quantile(0.95, sum by (le, namespace) (rate(http_request_duration_seconds_bucket[$__rate_interval])))',
    'histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{namespace=~".*"}[$__rate_interval])))',
    'sum by (namespace) (rate(http_request_duration_seconds_sum[$__rate_interval])) / sum by (namespace) (rate(http_request_duration_seconds_count[$__rate_interval]))',
    'sum by (namespace) (increase(http_request_duration_seconds_count[$__range]))',
    'count by (node) (container_memory_working_set_bytes)',
    'avg_over_time(node_memory_MemFree_bytes[10m])',
    'max by (instance) (max_over_time(node_memory_MemFree_bytes[$__rate_interval]))',
]


def dashboard_queries(root: str) -> list[str]:
    out = []
    for path in sorted(glob.glob(os.path.join(root, "dashboards/json/*.json"))):
        d = json.load(open(path))
        values = {}
        for v in d.get("templating", {}).get("list", []):
            if v.get("type") == "query":
                values[v["name"]] = v.get("allValue") or ".*"
            else:
                cur = v.get("current", {}).get("value", "")
                values[v["name"]] = cur if isinstance(cur, str) else ".*"
        stack = list(d.get("panels", []))
        while stack:
            p = stack.pop(0)
            stack.extend(p.get("panels", []))
            for t in p.get("targets", []):
                ds = (t.get("datasource") or p.get("datasource") or {}).get("type")
                if ds != "prometheus" or "expr" not in t:
                    continue
                e = t["expr"]
                for k in sorted(values, key=len, reverse=True):
                    e = e.replace("${%s}" % k, values[k]).replace("$" + k, values[k])
                out.append(e)
    return out


def corpus_queries(root: str) -> list[str]:
    seen, out = set(), []
    for line in open(os.path.join(root, "collector/promql/tests/golden/queries.txt")):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(None, 4) if line.startswith("range") else line.split(None, 2)
        expr = parts[-1]
        if expr not in seen:
            seen.add(expr)
            out.append(expr)
    return out


class Engine:
    def __init__(self, name: str, url: str):
        self.name = name
        u = urllib.parse.urlparse(url)
        self.host, self.port = u.hostname, u.port
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=300)

    def query_range(self, expr: str, start: int, end: int, step: int):
        body = urllib.parse.urlencode({"query": expr, "start": start, "end": end, "step": step})
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        t0 = time.perf_counter()
        try:
            self.conn.request("POST", "/api/v1/query_range", body, headers)
            resp = self.conn.getresponse()
            data = resp.read()
        except (http.client.HTTPException, OSError):
            self.conn.close()
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=300)
            self.conn.request("POST", "/api/v1/query_range", body, headers)
            resp = self.conn.getresponse()
            data = resp.read()
        elapsed = time.perf_counter() - t0
        try:
            j = json.loads(data)
        except ValueError:
            return elapsed, ("error", f"HTTP {resp.status}")
        if j.get("status") != "success":
            return elapsed, ("error", j.get("errorType", "?"))
        return elapsed, ("ok", len(j["data"]["result"]))


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = (len(xs) - 1) * q
    f = int(k)
    c = min(f + 1, len(xs) - 1)
    return xs[f] + (xs[c] - xs[f]) * (k - f)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--root", required=True, help="repository root")
    ap.add_argument("--engine", action="append", required=True, help="name=http://host:port")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--step", type=int, default=30, help="range query step, seconds")
    ap.add_argument("--limit-corpus", type=int, default=0, help="only the first N corpus queries")
    ap.add_argument("--json-out", default=None)
    args = ap.parse_args()

    m = json.load(open(os.path.join(args.dataset, "manifest.json")))
    end = m["end_ms"] // 1000
    start = m["start_ms"] // 1000
    span = end - start
    step = args.step
    rate_iv = f"{max(step + 15, 60)}s"
    fill = {"$__rate_interval": rate_iv, "$__interval": f"{step}s", "$__range": f"{span}s"}

    def expand(e: str) -> str:
        for k, v in fill.items():
            e = e.replace(k, v)
        return e

    corpus = corpus_queries(args.root)
    if args.limit_corpus:
        corpus = corpus[: args.limit_corpus]
    sets = {
        "dashboards": [expand(e) for e in dashboard_queries(args.root)],
        "dash-gen": [expand(e) for e in DASH_GEN],
        "corpus": corpus,
    }
    engines = [Engine(*e.split("=", 1)) for e in args.engine]
    # warm-up: one pass of everything, not measured (caches, page cache, JIT-free but fair)
    for qs in sets.values():
        for q in qs:
            for eng in engines:
                eng.query_range(q, start, end, step)
    times = {s: {e.name: [] for e in engines} for s in sets}
    per_query = {}
    mismatches = {s: 0 for s in sets}
    errors = {s: {e.name: 0 for e in engines} for s in sets}
    for rep in range(args.reps):
        for s, qs in sets.items():
            for q in qs:
                order = engines if rep % 2 == 0 else list(reversed(engines))
                outcomes = {}
                for eng in order:
                    dt, outcome = eng.query_range(q, start, end, step)
                    times[s][eng.name].append(dt)
                    per_query.setdefault((s, q), {}).setdefault(eng.name, []).append(dt)
                    outcomes[eng.name] = outcome
                    if rep == 0 and outcome[0] == "error":
                        errors[s][eng.name] += 1
                if rep == 0 and len(set(outcomes.values())) > 1:
                    mismatches[s] += 1
                    print(f"outcome differs: {q}: {outcomes}", file=sys.stderr)
        print(f"rep {rep + 1}/{args.reps} done", file=sys.stderr)

    names = [e.name for e in engines]
    print(f"data set: {m['series']} series, {m['samples']} samples, {span / 3600:.1f} h; "
          f"range queries over the whole {span / 3600:.1f} h, step {step}s, {args.reps} reps")
    head = "| query set | queries | " + " | ".join(f"{n} p50 ms | {n} p95 ms" for n in names)
    if len(names) == 2:
        head += f" | p50 {names[0]}/{names[1]} |"
    else:
        head += " |"
    print(head)
    print("|---|---:|" + "---:|---:|" * len(names) + ("---:|" if len(names) == 2 else ""))
    result = {"sets": {}, "params": {"step": step, "reps": args.reps, "span_s": span}}
    all_t = {n: [] for n in names}
    for s, qs in sets.items():
        row = f"| {s} | {len(qs)} | "
        cells = []
        for n in names:
            xs = times[s][n]
            all_t[n].extend(xs)
            cells.append(f"{pct(xs, 0.5) * 1000:.1f} | {pct(xs, 0.95) * 1000:.1f}")
        row += " | ".join(cells)
        if len(names) == 2:
            row += f" | {pct(times[s][names[0]], 0.5) / pct(times[s][names[1]], 0.5):.2f} |"
        print(row)
        result["sets"][s] = {n: {"p50": pct(times[s][n], 0.5), "p95": pct(times[s][n], 0.95),
                                 "errors": errors[s][n]} for n in names}
        result["sets"][s]["mismatches"] = mismatches[s]
    row = f"| all | {sum(len(q) for q in sets.values())} | " + " | ".join(
        f"{pct(all_t[n], 0.5) * 1000:.1f} | {pct(all_t[n], 0.95) * 1000:.1f}" for n in names)
    if len(names) == 2:
        row += f" | {pct(all_t[names[0]], 0.5) / pct(all_t[names[1]], 0.5):.2f} |"
    print(row)
    print("errors (first rep): " + "; ".join(
        f"{s}: " + ", ".join(f"{n} {errors[s][n]}" for n in names) for s in sets)
        + "; outcome differs (error vs not, or series count): "
        + ", ".join(f"{s} {mismatches[s]}" for s in sets))
    if len(names) == 2:
        worst = sorted(per_query.items(),
                       key=lambda kv: -statistics.median(kv[1][names[0]]) / max(statistics.median(kv[1][names[1]]), 1e-6))
        print(f"\nslowest relative to {names[1]} (median ms {names[0]} / {names[1]}):")
        for (s, q), d in worst[:8]:
            a, b = statistics.median(d[names[0]]) * 1000, statistics.median(d[names[1]]) * 1000
            print(f"  {a:8.1f} / {b:8.1f}  [{s}] {q[:110]}")
    if args.json_out:
        result["per_query"] = [{"set": s, "query": q, **{n: d[n] for n in names}} for (s, q), d in per_query.items()]
        json.dump(result, open(args.json_out, "w"), indent=1)


if __name__ == "__main__":
    main()
