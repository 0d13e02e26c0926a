#!/usr/bin/env python3
"""An OTLP/gRPC trace sink for benchmarks: accepts every export, counts the
spans, prints the count when stopped (SIGTERM/SIGINT).

    interop/.venv/bin/python bench/otlp_sink.py --port 4317

Uses the interop venv (grpcio and opentelemetry-proto, pinned in
interop/requirements.txt; `interop/setup` makes it).
"""

import argparse
import signal
import threading
from concurrent import futures

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc


class Sink(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self):
        self.spans = 0
        self.lock = threading.Lock()

    def Export(self, request, context):
        count = sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)
        with self.lock:
            self.spans += count
        return trace_service_pb2.ExportTraceServiceResponse()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=4317)
    args = parser.parse_args()
    sink = Sink()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(sink, server)
    server.add_insecure_port(f"127.0.0.1:{args.port}")
    server.start()
    print(f"otlp sink on 127.0.0.1:{args.port}", flush=True)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    server.stop(grace=None)
    print(f"spans received: {sink.spans}", flush=True)


if __name__ == "__main__":
    main()
