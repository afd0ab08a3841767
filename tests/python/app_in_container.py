"""An instrumented application for tests/tests/agent_apps.rs.

It waits for one line on stdin (the test moves it into a container cgroup first), then
sends one metric export, three log records and one span to the Sightline *agent's*
OTLP/gRPC receiver with the official OpenTelemetry Python SDK, and prints what it sent
as one JSON object. It sets no host or container attributes itself: those must come
from the agent.
"""

import argparse
import json
import sys
import time

from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry._logs import SeverityNumber
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--endpoint", required=True, help="agent OTLP/gRPC address, http://HOST:PORT")
    parser.add_argument("--service", required=True)
    args = parser.parse_args()
    sys.stdin.readline()

    resource = Resource.create({"service.name": args.service, "service.instance.id": "app-1"})
    out = {"service": args.service}

    metric_exporter = OTLPMetricExporter(endpoint=args.endpoint, insecure=True, timeout=10)
    reader = PeriodicExportingMetricReader(metric_exporter, export_interval_millis=3_600_000)
    meters = MeterProvider(resource=resource, metric_readers=[reader])
    counter = meters.get_meter("app").create_counter("app.jobs", unit="1", description="Jobs done")
    counter.add(7, {"queue": "default"})
    if not meters.force_flush(timeout_millis=15_000):
        raise SystemExit("metric export failed")
    meters.shutdown()

    logs = LoggerProvider(resource=resource)
    logs.add_log_record_processor(
        SimpleLogRecordProcessor(OTLPLogExporter(endpoint=args.endpoint, insecure=True, timeout=10))
    )
    logger = logs.get_logger("app")
    now = time.time_ns()
    out["logs"] = []
    for i in range(3):
        body = f"job {i} finished in {20 + i} ms"
        logger.emit(timestamp=now + i * 1_000_000, severity_number=SeverityNumber.INFO, body=body)
        out["logs"].append(body)
    if not logs.force_flush(timeout_millis=15_000):
        raise SystemExit("log export failed")
    logs.shutdown()

    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(
        SimpleSpanProcessor(OTLPSpanExporter(endpoint=args.endpoint, insecure=True, timeout=10))
    )
    span = tracer_provider.get_tracer("app").start_span("handle job")
    span.end()
    if not tracer_provider.force_flush(timeout_millis=15_000):
        raise SystemExit("span export failed")
    tracer_provider.shutdown()
    out["trace_id"] = f"{span.get_span_context().trace_id:032x}"
    out["log_ns"] = now
    json.dump(out, sys.stdout, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
