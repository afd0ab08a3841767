"""Send deterministic metrics, logs and spans to a Sightline collector over OTLP/gRPC.

Used by tests/tests/otel_python_sdk.rs. The official OpenTelemetry Python SDK is the
client: one export per signal, each forced with force_flush(). Everything the script
sent is printed to stdout as one JSON object, so the Rust test compares what it reads
back through the collector's Prometheus, Loki and Tempo APIs with what was sent.

Metric points get their timestamps from the SDK at collection time; the script prints
the wall-clock window around the metric export ("collect_start_ns", "collect_end_ns").
Log and span timestamps are set explicitly from --base-ns.
"""

import argparse
import json
import sys
import time

from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.metrics.view import (
    ExplicitBucketHistogramAggregation,
    ExponentialBucketHistogramAggregation,
    View,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry._logs import SeverityNumber
from opentelemetry.trace import SpanKind, set_span_in_context

SERVICE = "e2e-python"
INSTANCE = "e2e-python-1"
TRACE_ID = 0x5B8EFFF798038103D269B633813FC60C


EXPORTS = []


def recording(cls):
    """The exporter `cls`, recording the result of every export in EXPORTS."""

    class Recording(cls):
        def export(self, *args, **kwargs):
            result = super().export(*args, **kwargs)
            EXPORTS.append((cls.__name__, getattr(result, "name", str(result))))
            return result

    return Recording


def check_exported(exporter_name):
    results = [r for name, r in EXPORTS if name == exporter_name]
    if not results or any(r != "SUCCESS" for r in results):
        raise SystemExit(f"{exporter_name}: export results {results}, expected only SUCCESS")


class FixedIds(IdGenerator):
    """One fixed trace id, span ids 1, 2, 3, ... so the test knows them up front."""

    def __init__(self):
        self._next_span = 0

    def generate_span_id(self) -> int:
        self._next_span += 1
        return 0x1000 + self._next_span

    def generate_trace_id(self) -> int:
        return TRACE_ID


def send_metrics(endpoint, resource, out):
    exporter = recording(OTLPMetricExporter)(endpoint=endpoint, insecure=True, timeout=10)
    # A long interval: the only export is the explicit force_flush below.
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    views = [
        View(
            instrument_name="http.server.duration",
            aggregation=ExplicitBucketHistogramAggregation(boundaries=[0.1, 0.5, 1.0]),
        ),
        View(
            instrument_name="rpc.client.latency",
            aggregation=ExponentialBucketHistogramAggregation(max_size=20, max_scale=3),
        ),
    ]
    provider = MeterProvider(resource=resource, metric_readers=[reader], views=views)
    meter = provider.get_meter("sightline.e2e", "1.0.0")

    requests = meter.create_counter("http.requests", unit="1", description="Requests served")
    requests.add(3, {"http.method": "GET", "http.status_code": "200"})
    requests.add(2, {"http.method": "GET", "http.status_code": "200"})
    requests.add(4, {"http.method": "POST", "http.status_code": "500"})

    queue = meter.create_up_down_counter("queue.size", unit="{items}", description="Queued jobs")
    queue.add(10, {"queue": "emails"})
    queue.add(-3, {"queue": "emails"})

    duration = meter.create_histogram("http.server.duration", unit="s", description="Server latency")
    duration_values = [0.05, 0.2, 0.3, 0.7, 2.0]
    for v in duration_values:
        duration.record(v, {"http.route": "/checkout"})

    latency = meter.create_histogram("rpc.client.latency", unit="ms", description="RPC latency")
    latency_values = [1.0, 2.0, 4.0, 8.0]
    for v in latency_values:
        latency.record(v, {"rpc.method": "Get"})

    def memory_callback(_options: CallbackOptions):
        yield Observation(123456, {"memory.kind": "heap"})

    meter.create_observable_gauge(
        "process.memory.used", callbacks=[memory_callback], unit="By", description="Memory in use"
    )

    # Keep the collection time well apart from the cumulative start time, so a
    # collector that stored start_time_unix_nano instead of time_unix_nano is caught.
    time.sleep(1.5)
    out["collect_start_ns"] = time.time_ns()
    ok = provider.force_flush(timeout_millis=15_000)
    out["collect_end_ns"] = time.time_ns()
    provider.shutdown()
    if not ok:
        raise SystemExit("metric export failed")
    check_exported("OTLPMetricExporter")
    out["metrics"] = {
        "http.requests": [
            {"attributes": {"http.method": "GET", "http.status_code": "200"}, "value": 5},
            {"attributes": {"http.method": "POST", "http.status_code": "500"}, "value": 4},
        ],
        "queue.size": [{"attributes": {"queue": "emails"}, "value": 7}],
        "http.server.duration": {
            "attributes": {"http.route": "/checkout"},
            "boundaries": [0.1, 0.5, 1.0],
            "values": duration_values,
        },
        "rpc.client.latency": {"attributes": {"rpc.method": "Get"}, "values": latency_values},
        "process.memory.used": [{"attributes": {"memory.kind": "heap"}, "value": 123456}],
    }


def send_logs(endpoint, resource, base_ns, out):
    provider = LoggerProvider(resource=resource)
    exporter = recording(OTLPLogExporter)(endpoint=endpoint, insecure=True, timeout=10)
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    logger = provider.get_logger("sightline.e2e.logs", "1.0.0")
    sent = []
    for i in range(5):
        ts = base_ns + i * 1_000_000  # 1 ms apart
        body = f"order {i} processed in {10 + i} ms"
        severity = SeverityNumber.WARN if i == 3 else SeverityNumber.INFO
        logger.emit(
            timestamp=ts,
            observed_timestamp=ts + 500,
            severity_number=severity,
            severity_text=severity.name,
            body=body,
            attributes={"order.id": f"o-{i}"},
        )
        sent.append({"timestamp_ns": ts, "body": body, "severity": severity.name})
    ok = provider.force_flush(timeout_millis=15_000)
    provider.shutdown()
    if not ok:
        raise SystemExit("log export failed")
    check_exported("OTLPLogExporter")
    out["logs"] = sent


def send_spans(endpoint, resource, base_ns, out):
    provider = TracerProvider(resource=resource, id_generator=FixedIds())
    exporter = recording(OTLPSpanExporter)(endpoint=endpoint, insecure=True, timeout=10)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("sightline.e2e.traces", "1.0.0")
    start = base_ns
    parent = tracer.start_span(
        "GET /checkout", kind=SpanKind.SERVER, start_time=start, attributes={"http.route": "/checkout"}
    )
    child = tracer.start_span(
        "SELECT orders",
        context=set_span_in_context(parent),
        kind=SpanKind.CLIENT,
        start_time=start + 2_000_000,
        attributes={"db.system": "postgresql", "db.rows": 3},
    )
    child.end(end_time=start + 7_000_000)
    parent.end(end_time=start + 10_000_000)
    ok = provider.force_flush(timeout_millis=15_000)
    provider.shutdown()
    if not ok:
        raise SystemExit("span export failed")
    check_exported("OTLPSpanExporter")
    out["trace_id"] = f"{TRACE_ID:032x}"
    out["spans"] = [
        {
            "name": "GET /checkout",
            "span_id": f"{parent.get_span_context().span_id:016x}",
            "parent_span_id": "",
            "kind": "SERVER",
            "start_ns": start,
            "end_ns": start + 10_000_000,
            "attributes": {"http.route": "/checkout"},
        },
        {
            "name": "SELECT orders",
            "span_id": f"{child.get_span_context().span_id:016x}",
            "parent_span_id": f"{parent.get_span_context().span_id:016x}",
            "kind": "CLIENT",
            "start_ns": start + 2_000_000,
            "end_ns": start + 7_000_000,
            "attributes": {"db.system": "postgresql", "db.rows": 3},
        },
    ]


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--endpoint", required=True, help="collector OTLP/gRPC address, http://HOST:PORT")
    parser.add_argument("--base-ns", type=int, required=True, help="timestamp of the first log record and span")
    args = parser.parse_args()

    resource = Resource.create(
        {
            "service.name": SERVICE,
            "service.instance.id": INSTANCE,
            "deployment.environment": "e2e",
        }
    )
    out = {"service_name": SERVICE, "service_instance_id": INSTANCE}
    send_metrics(args.endpoint, resource, out)
    send_logs(args.endpoint, resource, args.base_ns, out)
    send_spans(args.endpoint, resource, args.base_ns, out)
    json.dump(out, sys.stdout, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
