"""OpenTelemetry across processes: the Python OpenTelemetry SDK with its gRPC
instrumentation calls the Rust server, which continues the client's trace and
exports its span over OTLP/gRPC to a receiver built from the official
opentelemetry-proto messages (issue 23)."""

from concurrent import futures

import grpc
from opentelemetry import trace
from opentelemetry.instrumentation.grpc import GrpcInstrumentorClient
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import connect_pb2 as pb
import connect_pb2_grpc
import procs


class Receiver(trace_service_pb2_grpc.TraceServiceServicer):
    """An OTLP trace receiver that keeps what it is sent."""

    def __init__(self):
        self.requests = []

    def Export(self, request, context):
        self.requests.append(request)
        return trace_service_pb2.ExportTraceServiceResponse()


def attributes(span):
    def value(any_value):
        kind = any_value.WhichOneof("value")
        return getattr(any_value, kind)

    return {kv.key: value(kv.value) for kv in span.attributes}


def test_the_server_continues_the_python_sdks_trace():
    receiver = Receiver()
    collector = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(receiver, collector)
    port = collector.add_insecure_port("127.0.0.1:0")
    collector.start()

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrumentor = GrpcInstrumentorClient()
    instrumentor.instrument(tracer_provider=provider)
    env = procs.clean_env(OTEL_SERVICE_NAME="interop-server")
    server = procs.rust_server("--otlp-endpoint", f"http://127.0.0.1:{port}", env=env)
    try:
        with grpc.insecure_channel(server.target) as channel:
            stub = connect_pb2_grpc.ConnectServiceStub(channel)
            reply = stub.UnaryRPC(pb.RequestMessage(request_data="traced"), timeout=10)
        assert reply.response_data == "Hello, traced"
    finally:
        instrumentor.uninstrument()
        # The server flushes its batch when it stops.
        server.stop()
        collector.stop(grace=None)

    (client_span,) = exporter.get_finished_spans()
    assert client_span.kind == trace.SpanKind.CLIENT
    resource_spans = [rs for request in receiver.requests for rs in request.resource_spans]
    spans = [span for rs in resource_spans for ss in rs.scope_spans for span in ss.spans]
    assert len(spans) == 1, spans
    (span,) = spans
    assert span.trace_id == client_span.context.trace_id.to_bytes(16, "big")
    assert span.parent_span_id == client_span.context.span_id.to_bytes(8, "big")
    assert span.name == "ConnectService/UnaryRPC"
    assert span.kind == span.SPAN_KIND_SERVER
    got = attributes(span)
    assert got["rpc.system.name"] == "grpc"
    assert got["rpc.method"] == "ConnectService/UnaryRPC"
    assert got["rpc.response.status_code"] == "OK"
    assert got["network.peer.address"] == "127.0.0.1"
    resource = {kv.key: kv.value.string_value for kv in resource_spans[0].resource.attributes}
    assert resource["service.name"] == "interop-server"
    # The trace id is in the server's access-log line too.
    trace_id = client_span.context.trace_id.to_bytes(16, "big").hex()
    assert any(f"trace_id={trace_id}" in line for line in server.output()), server.output()
