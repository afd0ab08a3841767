#!/usr/bin/env python3
"""Writes the Grafana dashboards of dashboards/json/ (run: python3 dashboards/generate.py).

The JSON files are checked in (Grafana provisioning reads them as they are); this
script is how they are edited, so the six dashboards share one panel shape, one set of
datasource uids (declared in provisioning/datasources/sightline.yaml) and one style of
template variables. tests/tests/dashboards.rs loads the JSON, not this script.
"""
from __future__ import annotations

import json
import os

PROM = {"type": "prometheus", "uid": "sightline-prometheus"}
LOKI = {"type": "loki", "uid": "sightline-loki"}
TEMPO = {"type": "tempo", "uid": "sightline-tempo"}
HERE = os.path.dirname(os.path.abspath(__file__))


def query_var(name, label, query, ds=PROM, multi=True, regex=""):
    """A `label_values(...)` variable; `All` matches everything (allValue `.*`)."""
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": ds,
        "definition": query,
        "query": {"query": query, "refId": f"{name}-var"} if ds is PROM else query,
        "refresh": 2,
        "includeAll": True,
        "allValue": ".*",
        "multi": multi,
        "sort": 1,
        "regex": regex,
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "options": [],
        "hide": 0,
    }


def custom_var(name, label, options, default):
    return {
        "name": name,
        "label": label,
        "type": "custom",
        "query": ",".join(options),
        "current": {"selected": True, "text": default, "value": default},
        "options": [{"selected": o == default, "text": o, "value": o} for o in options],
        "includeAll": False,
        "multi": False,
        "hide": 0,
    }


def textbox_var(name, label, default=""):
    return {
        "name": name,
        "label": label,
        "type": "textbox",
        "query": default,
        "current": {"selected": False, "text": default, "value": default},
        "options": [{"selected": True, "text": default, "value": default}],
        "hide": 0,
    }


class Board:
    def __init__(self, uid, title, description, tags, variables, time_from="now-6h"):
        self.uid = uid
        self.title = title
        self.description = description
        self.tags = tags
        self.variables = variables
        self.time_from = time_from
        self.panels = []
        self.x = 0
        self.y = 0
        self.row_h = 0

    def _place(self, w, h):
        if self.x + w > 24:
            self.x = 0
            self.y += self.row_h
            self.row_h = 0
        pos = {"x": self.x, "y": self.y, "w": w, "h": h}
        self.x += w
        self.row_h = max(self.row_h, h)
        return pos

    def row(self, title):
        if self.x:
            self.x = 0
            self.y += self.row_h
            self.row_h = 0
        self.panels.append({
            "id": len(self.panels) + 1,
            "type": "row",
            "title": title,
            "collapsed": False,
            "gridPos": {"x": 0, "y": self.y, "w": 24, "h": 1},
            "panels": [],
        })
        self.y += 1

    def panel(self, kind, title, description, targets, unit="short", w=12, h=8, ds=PROM,
              options=None, extra=None):
        refs = "ABCDEFGHIJ"
        tgts = []
        for i, t in enumerate(targets):
            t = dict(t)
            t.setdefault("refId", refs[i])
            t["datasource"] = ds
            tgts.append(t)
        p = {
            "id": len(self.panels) + 1,
            "type": kind,
            "title": title,
            "description": description,
            "datasource": ds,
            "gridPos": self._place(w, h),
            "targets": tgts,
            "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
            "options": options or {},
        }
        if extra:
            p.update(extra)
        self.panels.append(p)

    def prom(self, title, description, exprs, unit="short", kind="timeseries", w=12, h=8,
             instant=False, extra=None):
        targets = []
        for e in exprs:
            expr, legend = e if isinstance(e, tuple) else (e, "")
            t = {"expr": expr, "legendFormat": legend or "__auto", "editorMode": "code",
                 "range": not instant, "instant": instant}
            if instant:
                t["format"] = "table"
            targets.append(t)
        self.panel(kind, title, description, targets, unit=unit, w=w, h=h, extra=extra)

    def loki(self, title, description, exprs, kind="timeseries", unit="short", w=12, h=8,
             instant=False, query_type="range"):
        targets = []
        for e in exprs:
            expr, legend = e if isinstance(e, tuple) else (e, "")
            targets.append({"expr": expr, "legendFormat": legend, "editorMode": "code",
                            "queryType": "instant" if instant else query_type})
        self.panel(kind, title, description, targets, unit=unit, w=w, h=h, ds=LOKI)

    def to_json(self):
        return {
            "uid": self.uid,
            "title": self.title,
            "description": self.description,
            "tags": ["sightline"] + self.tags,
            "timezone": "browser",
            "editable": True,
            "graphTooltip": 1,
            "schemaVersion": 39,
            "version": 1,
            "refresh": "30s",
            "time": {"from": self.time_from, "to": "now"},
            "timepicker": {},
            "fiscalYearStartMonth": 0,
            "liveNow": False,
            "weekStart": "",
            "annotations": {"list": [{
                "builtIn": 1,
                "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                "enable": True,
                "hide": True,
                "iconColor": "rgba(0, 211, 255, 1)",
                "name": "Annotations & Alerts",
                "type": "dashboard",
            }]},
            "links": [{"title": "Sightline", "type": "dashboards", "tags": ["sightline"],
                       "asDropdown": True, "includeVars": True, "keepTime": True}],
            "templating": {"list": self.variables},
            "panels": self.panels,
        }


# ---------------------------------------------------------------- node overview
def node_overview():
    sel = 'host_name=~"$node"'
    b = Board("sightline-node", "Sightline / Node overview",
              "Host metrics the Sightline agent reads from /proc and statvfs "
              "(OpenTelemetry hostmetrics names, translated to Prometheus names by the collector).",
              ["node"],
              [query_var("node", "Node", "label_values(system_cpu_time_seconds_total, host_name)")])
    b.row("CPU and load")
    b.prom("CPU utilisation", "Share of CPU time not idle, per node (all CPUs): "
           "1 - rate(idle) / rate(all states) of system_cpu_time_seconds_total.",
           [(f'1 - sum by (host_name) (rate(system_cpu_time_seconds_total{{{sel}, state="idle"}}[$__rate_interval]))'
             f' / sum by (host_name) (rate(system_cpu_time_seconds_total{{{sel}}}[$__rate_interval]))',
             "{{host_name}}")], unit="percentunit", w=8)
    b.prom("CPU time by state", "CPU seconds per second by state (user, system, iowait, ...), "
           "summed over CPUs; idle left out.",
           [(f'sum by (host_name, state) (rate(system_cpu_time_seconds_total{{{sel}, state!="idle"}}[$__rate_interval]))',
             "{{host_name}} {{state}}")], unit="short", w=8)
    b.prom("Load average", "1, 5 and 15 minute load averages (runnable + uninterruptible threads).",
           [(f"system_cpu_load_average_1m{{{sel}}}", "{{host_name}} 1m"),
            (f"system_cpu_load_average_5m{{{sel}}}", "{{host_name}} 5m"),
            (f"system_cpu_load_average_15m{{{sel}}}", "{{host_name}} 15m")], w=8)
    b.row("Memory and processes")
    b.prom("Memory utilisation", "Used memory as a share of the total (system_memory_utilization_ratio, state=used).",
           [(f'sum by (host_name) (system_memory_utilization_ratio{{{sel}, state="used"}})', "{{host_name}}")],
           unit="percentunit", w=8)
    b.prom("Memory by state", "Bytes of memory per state (used, free, cached, buffered, ...).",
           [(f"sum by (host_name, state) (system_memory_usage_bytes{{{sel}}})", "{{host_name}} {{state}}")],
           unit="bytes", w=8)
    b.prom("Processes", "Processes by status (running, blocked, ...) and processes created per second.",
           [(f"sum by (host_name, status) (system_processes_count{{{sel}}})", "{{host_name}} {{status}}"),
            (f"sum by (host_name) (rate(system_processes_created_total{{{sel}}}[$__rate_interval]))",
             "{{host_name}} created/s")], w=8)
    b.row("Disk and filesystems")
    b.prom("Filesystem utilisation", "Used share of each mounted filesystem, fullest first.",
           [(f"max by (host_name, mountpoint) (system_filesystem_utilization_ratio{{{sel}}})",
             "{{host_name}} {{mountpoint}}")], unit="percentunit", w=8)
    b.prom("Disk throughput", "Bytes read and written per second per device.",
           [(f"sum by (host_name, device, direction) (rate(system_disk_io_bytes_total{{{sel}}}[$__rate_interval]))",
             "{{host_name}} {{device}} {{direction}}")], unit="Bps", w=8)
    b.prom("Disk busy", "Share of time each device had I/O in flight (rate of system_disk_io_time_seconds_total).",
           [(f"max by (host_name, device) (rate(system_disk_io_time_seconds_total{{{sel}}}[$__rate_interval]))",
             "{{host_name}} {{device}}")], unit="percentunit", w=8)
    b.row("Network")
    b.prom("Network throughput", "Bytes received and transmitted per second per interface.",
           [(f'sum by (host_name, device, direction) (rate(system_network_io_bytes_total{{{sel}, device!="lo"}}[$__rate_interval]))',
             "{{host_name}} {{device}} {{direction}}")], unit="Bps", w=12)
    b.prom("Network errors and drops", "Interface errors and dropped packets per second; should be 0.",
           [(f"sum by (host_name, device) (rate(system_network_errors_total{{{sel}}}[$__rate_interval]))",
             "{{host_name}} {{device}} errors"),
            (f"sum by (host_name, device) (rate(system_network_dropped_total{{{sel}}}[$__rate_interval]))",
             "{{host_name}} {{device}} dropped")], unit="pps", w=12)
    return b


# ---------------------------------------------------------------- containers and pods
def containers():
    sel = 'host_name=~"$node", k8s_namespace_name=~"$namespace", k8s_pod_name=~"$pod"'
    b = Board("sightline-containers", "Sightline / Containers and pods",
              "Per-container cgroup metrics from the Sightline agent, named after the "
              "OpenTelemetry container conventions and labelled with Kubernetes metadata "
              "when the container belongs to a pod. Containers outside Kubernetes (Docker, "
              "systemd services) have no namespace/pod labels and show up under All.",
              ["containers", "kubernetes"],
              [query_var("node", "Node", "label_values(container_cpu_time_seconds_total, host_name)"),
               query_var("namespace", "Namespace",
                         'label_values(container_cpu_time_seconds_total{host_name=~"$node"}, k8s_namespace_name)'),
               query_var("pod", "Pod",
                         'label_values(container_cpu_time_seconds_total{host_name=~"$node", k8s_namespace_name=~"$namespace"}, k8s_pod_name)')])
    b.row("Overview")
    b.prom("Running containers", "Containers the agent currently sees running (container_up == 1).",
           [(f"sum(container_up{{{sel}}})", "running")], kind="stat", w=6, h=5)
    b.prom("CPU used", "CPU cores used by the selected containers together.",
           [(f"sum(rate(container_cpu_time_seconds_total{{{sel}}}[$__rate_interval]))", "cores")],
           kind="stat", w=6, h=5)
    b.prom("Memory working set", "Working-set bytes of the selected containers together (what the OOM killer looks at).",
           [(f"sum(container_memory_working_set_bytes{{{sel}}})", "bytes")], unit="bytes", kind="stat", w=6, h=5)
    b.prom("OOM kills", "Out-of-memory kills in the selected containers over the time range.",
           [(f"sum(increase(container_memory_oom_kills_total{{{sel}}}[$__range]))", "kills")],
           kind="stat", w=6, h=5)
    b.row("CPU")
    b.prom("CPU by container", "CPU cores used per container, top 20.",
           [(f"topk(20, sum by (k8s_namespace_name, k8s_pod_name, container_name) "
             f"(rate(container_cpu_time_seconds_total{{{sel}}}[$__rate_interval])))",
             "{{k8s_namespace_name}}/{{k8s_pod_name}} {{container_name}}")], w=12)
    b.prom("CPU throttling", "Share of CFS periods in which the container was throttled (needs a CPU limit).",
           [(f"sum by (container_name) (rate(container_cpu_throttling_data_throttled_periods_total{{{sel}}}[$__rate_interval]))"
             f" / sum by (container_name) (rate(container_cpu_throttling_data_periods_total{{{sel}}}[$__rate_interval]))",
             "{{container_name}}")], unit="percentunit", w=12)
    b.row("Memory")
    b.prom("Memory working set by container", "Working-set bytes per container, top 20.",
           [(f"topk(20, sum by (k8s_namespace_name, k8s_pod_name, container_name) (container_memory_working_set_bytes{{{sel}}}))",
             "{{k8s_namespace_name}}/{{k8s_pod_name}} {{container_name}}")], unit="bytes", w=12)
    b.prom("Memory vs limit", "Working set as a share of the memory limit, for containers that have one.",
           [(f"sum by (container_name) (container_memory_working_set_bytes{{{sel}}})"
             f" / sum by (container_name) (container_memory_usage_limit_bytes{{{sel}}} > 0)",
             "{{container_name}}")], unit="percentunit", w=12)
    b.row("Network and disk")
    b.prom("Network by pod", "Bytes per second received and transmitted per pod (or container outside Kubernetes).",
           [(f"sum by (k8s_pod_name, container_name, direction) (rate(container_network_io_bytes_total{{{sel}}}[$__rate_interval]))",
             "{{k8s_pod_name}}{{container_name}} {{direction}}")], unit="Bps", w=12)
    b.prom("Disk I/O by container", "Bytes per second read and written per container.",
           [(f"sum by (container_name, direction) (rate(container_disk_io_bytes_total{{{sel}}}[$__rate_interval]))",
             "{{container_name}} {{direction}}")], unit="Bps", w=12)
    b.prom("Processes by container", "Processes (pids) per container.",
           [(f"topk(20, sum by (container_name) (container_pids_count{{{sel}}}))", "{{container_name}}")], w=12)
    return b


# ---------------------------------------------------------------- logs
def logs():
    # Loki needs one matcher that cannot match the empty string: host_name=~"$node"
    # with All = ".+" (allValue below) satisfies it.
    node = query_var("node", "Node", "label_values(host_name)", ds=LOKI)
    node["allValue"] = ".+"
    ns = query_var("namespace", "Namespace", "label_values(k8s_namespace_name)", ds=LOKI)
    sel = '{host_name=~"$node", k8s_namespace_name=~"$namespace"}'
    b = Board("sightline-logs", "Sightline / Logs and patterns",
              "Logs the Sightline agent tails (pod logs, Docker and plain log files) through "
              "the collector's Loki API; the `pattern` label is the log pattern the agent mined "
              "at the edge.",
              ["logs"], [node, ns, textbox_var("search", "Line contains", "")])
    b.row("Volume")
    b.loki("Log volume by namespace", "Log lines per interval by Kubernetes namespace (empty namespace: host files, Docker).",
           [(f"sum by (k8s_namespace_name) (count_over_time({sel} [$__interval]))", "{{k8s_namespace_name}}")],
           kind="timeseries", w=12)
    b.loki("Error lines", "Lines per interval that mention error, fatal or panic (case-insensitive), by namespace.",
           [(f'sum by (k8s_namespace_name) (count_over_time({sel} |~ "(?i)(error|fatal|panic)" [$__interval]))',
             "{{k8s_namespace_name}}")], w=12)
    b.row("Patterns")
    b.loki("Top patterns", "The 10 most frequent log patterns over the time range (pattern label set by the agent's miner).",
           [("topk(10, sum by (pattern) (count_over_time(" + sel + " [$__range])))", "{{pattern}}")],
           kind="table", w=12, instant=True)
    b.loki("Pattern volume", "Lines per interval for each pattern; a new or surging pattern stands out here.",
           [(f"sum by (pattern) (count_over_time({sel} [$__interval]))", "{{pattern}}")], w=12)
    b.row("Lines")
    b.loki("Bytes per second by node", "Log bytes per second per node.",
           [(f"sum by (host_name) (bytes_rate({sel} [$__rate_interval]))", "{{host_name}}")], unit="Bps", w=24, h=6)
    b.loki("Logs", "Newest log lines of the selection, filtered by the 'Line contains' box.",
           [(f'{sel} |= "$search"', "")], kind="logs", w=24, h=14)
    return b


# ---------------------------------------------------------------- service RED
def red():
    sel = 'service=~"$service", span_kind=~"$span_kind"'
    b = Board("sightline-red", "Sightline / Services (RED from spans)",
              "Rate, errors and duration of every service, computed by the collector from "
              "ingested spans (traces_spanmetrics_*, Tempo metrics-generator names), plus "
              "trace search through the Tempo datasource.",
              ["traces", "red"],
              [query_var("service", "Service", "label_values(traces_spanmetrics_calls_total, service)"),
               custom_var("span_kind", "Span kind",
                          ["SPAN_KIND_SERVER", "SPAN_KIND_CONSUMER", "SPAN_KIND_CLIENT",
                           "SPAN_KIND_PRODUCER", "SPAN_KIND_INTERNAL", "SPAN_KIND_UNSPECIFIED"],
                          "SPAN_KIND_SERVER")])
    b.row("Rate, errors, duration")
    b.prom("Requests per second", "Spans per second by service (span kind from the variable).",
           [(f"sum by (service) (rate(traces_spanmetrics_calls_total{{{sel}}}[$__rate_interval]))", "{{service}}")],
           unit="reqps", w=8)
    b.prom("Error ratio", "Share of spans with status ERROR, by service.",
           [(f'sum by (service) (rate(traces_spanmetrics_calls_total{{{sel}, status_code="STATUS_CODE_ERROR"}}[$__rate_interval]))'
             f" / sum by (service) (rate(traces_spanmetrics_calls_total{{{sel}}}[$__rate_interval]))", "{{service}}")],
           unit="percentunit", w=8)
    b.prom("Duration p50 / p95 / p99", "Span duration quantiles from the latency histogram, by service.",
           [(f"histogram_quantile({q}, sum by (le, service) (rate(traces_spanmetrics_latency_bucket{{{sel}}}[$__rate_interval])))",
             f"{{{{service}}}} p{int(q * 100)}") for q in (0.5, 0.95, 0.99)], unit="s", w=8)
    b.row("Operations")
    b.prom("Top operations", "The 20 busiest span names over the time range with their rate, error ratio and mean duration.",
           [(f"topk(20, sum by (service, span_name) (rate(traces_spanmetrics_calls_total{{{sel}}}[$__range])))", "rate"),
            (f'sum by (service, span_name) (rate(traces_spanmetrics_calls_total{{{sel}, status_code="STATUS_CODE_ERROR"}}[$__range]))'
             f" / sum by (service, span_name) (rate(traces_spanmetrics_calls_total{{{sel}}}[$__range]))", "errors"),
            (f"sum by (service, span_name) (rate(traces_spanmetrics_latency_sum{{{sel}}}[$__range]))"
             f" / sum by (service, span_name) (rate(traces_spanmetrics_latency_count{{{sel}}}[$__range]))", "mean")],
           kind="table", w=24, h=8, instant=True)
    b.prom("Mean duration by operation", "Mean span duration per operation (sum / count of the latency histogram).",
           [(f"sum by (service, span_name) (rate(traces_spanmetrics_latency_sum{{{sel}}}[$__rate_interval]))"
             f" / sum by (service, span_name) (rate(traces_spanmetrics_latency_count{{{sel}}}[$__rate_interval]))",
             "{{service}} {{span_name}}")], unit="s", w=24)
    b.row("Traces")
    b.panel("table", "Recent traces", "Trace search (Tempo API) for the selected services; click a trace id to open it.",
            [{"queryType": "traceqlSearch", "limit": 20, "tableType": "traces",
              "query": '{resource.service.name=~"$service"}',
              "filters": [{"id": "service-name", "tag": "service.name", "operator": "=~",
                           "scope": "resource", "value": ["$service"], "valueType": "string"}]}],
            ds=TEMPO, w=24, h=10)
    return b


# ---------------------------------------------------------------- self-monitoring
def self_monitoring():
    b = Board("sightline-self", "Sightline / Self-monitoring",
              "The collector's and agents' own counters (their /metrics), which the collector "
              "writes into its store under tenant `default` every self_monitoring.interval "
              "(job=sightline-collector; job=sightline-agent for scrape targets such as the "
              "agent started by `sightline-collector up`).",
              ["self"],
              [query_var("instance", "Collector", 'label_values(sightline_collector_requests_total, instance)')])
    c = 'instance=~"$instance"'
    b.row("Collector ingest")
    b.prom("Items received", "Samples, log records and spans accepted into the store per second, by signal and protocol.",
           [(f"sum by (signal, protocol) (rate(sightline_collector_received_items_total{{{c}}}[$__rate_interval]))",
             "{{signal}} {{protocol}}")], unit="short", w=8)
    b.prom("Rejected", "Rejected requests and items per second by reason (bad input, out of order, series limit, auth).",
           [(f"sum by (reason) (rate(sightline_collector_rejected_total{{{c}}}[$__rate_interval]))", "{{reason}}")], w=8)
    b.prom("Requests by status", "Requests answered per second by protocol and status code.",
           [(f"sum by (protocol, code) (rate(sightline_collector_requests_total{{{c}}}[$__rate_interval]))",
             "{{protocol}} {{code}}")], unit="reqps", w=8)
    b.prom("Request latency p99", "99th percentile time to answer a request, by protocol.",
           [(f"histogram_quantile(0.99, sum by (le, protocol) (rate(sightline_collector_request_duration_seconds_bucket{{{c}}}[$__rate_interval])))",
             "{{protocol}}")], unit="s", w=8)
    b.row("Store")
    b.prom("WAL", "WAL records and fsyncs per second; records per fsync shows group commit at work.",
           [(f"sum(rate(sightline_store_wal_records_total{{{c}}}[$__rate_interval]))", "records/s"),
            (f"sum(rate(sightline_store_wal_fsyncs_total{{{c}}}[$__rate_interval]))", "fsyncs/s")], w=8)
    b.prom("Series and parts", "Series in the index and Parquet parts on disk.",
           [(f"sum(sightline_store_series{{{c}}})", "series"), (f"sum(sightline_store_parts{{{c}}})", "parts")], w=8)
    b.prom("Queries", "PromQL queries per second and query errors by type.",
           [(f"sum(rate(sightline_promql_queries_total{{{c}}}[$__rate_interval]))", "queries/s"),
            (f"sum by (reason) (rate(sightline_promql_query_errors_total{{{c}}}[$__rate_interval]))", "errors {{reason}}")],
           w=8)
    b.prom("Span metrics", "Spans counted into span metrics per second, label sets tracked, spans folded into overflow.",
           [(f"sum(rate(sightline_spanmetrics_spans_total{{{c}}}[$__rate_interval]))", "spans/s"),
            (f"sum(sightline_spanmetrics_series{{{c}}})", "series"),
            (f"sum(rate(sightline_spanmetrics_overflow_total{{{c}}}[$__rate_interval]))", "overflow/s")], w=8)
    b.row("Agents")
    b.prom("Agent export", "Points per second agents exported and export requests by outcome.",
           [("sum by (instance) (rate(sightline_agent_exported_points_total{}[$__rate_interval]))", "{{instance}} points/s"),
            ("sum by (outcome) (rate(sightline_agent_export_requests_total{}[$__rate_interval]))", "requests {{outcome}}")],
           w=8)
    b.prom("Agent queue", "Batches waiting in each agent's queue against its capacity.",
           [("sum by (instance) (sightline_agent_queue_length{})", "{{instance}} length"),
            ("sum by (instance) (sightline_agent_queue_capacity{})", "{{instance}} capacity")], w=8)
    b.prom("Agent drops", "Points agents dropped per second, by reason (queue full, rejected, retries exhausted).",
           [("sum by (reason) (rate(sightline_agent_dropped_points_total{}[$__rate_interval]))", "{{reason}}")], w=8)
    return b


# ---------------------------------------------------------------- AIOps
def aiops():
    b = Board("sightline-aiops", "Sightline / AIOps",
              "Anomaly scores, forecasts and incidents of the collector's detectors and "
              "incident engine. The metric names are the contract in dashboards/README.md; "
              "panels stay empty until those parts write them.",
              ["aiops"],
              [query_var("series_name", "Metric", "label_values(sightline_anomaly_score, metric)")])
    m = 'metric=~"$series_name"'
    b.row("Anomalies")
    b.prom("Anomaly score", "Detector score per series (0 normal, 1 certainly anomalous), top 10.",
           [(f"topk(10, max by (metric, detector, series) (sightline_anomaly_score{{{m}}}))",
             "{{metric}} {{series}} ({{detector}})")], w=12)
    b.prom("Series above threshold", "Series whose anomaly score is at or above 0.9 right now.",
           [(f"count(sightline_anomaly_score{{{m}}} >= 0.9)", "anomalous")], kind="stat", w=6)
    b.prom("Anomalies detected", "Anomalies detected over the time range.",
           [("sum(increase(sightline_anomalies_detected_total{}[$__range]))", "detected")], kind="stat", w=6)
    b.row("Forecasts")
    b.prom("Forecast vs actual", "Forecast value with its lower/upper bands (sightline_forecast_value{bound}).",
           [(f'sightline_forecast_value{{{m}, bound="mean"}}', "{{metric}} forecast"),
            (f'sightline_forecast_value{{{m}, bound="lower"}}', "{{metric}} lower"),
            (f'sightline_forecast_value{{{m}, bound="upper"}}', "{{metric}} upper")], w=12)
    b.prom("Time to exhaustion", "Forecast seconds until a resource reaches its limit, soonest first.",
           [(f"bottomk(10, sightline_forecast_exhaustion_seconds{{{m}}})", "{{metric}} {{series}}")],
           unit="s", w=12)
    b.row("Incidents")
    b.prom("Open incidents", "Open incidents by severity.",
           [("sum by (severity) (sightline_incidents_open{})", "{{severity}}")], kind="stat", w=8)
    b.prom("Incidents over time", "Open incidents by severity over time.",
           [("sum by (severity) (sightline_incidents_open{})", "{{severity}}")], w=8)
    b.prom("Notifications", "Notifications sent per second by receiver and outcome.",
           [("sum by (receiver, outcome) (rate(sightline_notifications_total{}[$__rate_interval]))",
             "{{receiver}} {{outcome}}")], w=8)
    return b


def main():
    out = os.path.join(HERE, "json")
    os.makedirs(out, exist_ok=True)
    for name, build in [("node-overview", node_overview), ("containers", containers), ("logs", logs),
                        ("service-red", red), ("sightline-self", self_monitoring), ("aiops", aiops)]:
        with open(os.path.join(out, f"{name}.json"), "w") as f:
            json.dump(build().to_json(), f, indent=2)
            f.write("\n")
        print(f"wrote json/{name}.json")


if __name__ == "__main__":
    main()
