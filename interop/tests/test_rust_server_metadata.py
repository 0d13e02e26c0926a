"""Python grpcio client against the Rust server: request id and server id metadata (issue 3)."""

import re

import grpc

import connect_pb2 as pb
import connect_pb2_grpc
import procs


UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def header(metadata, key):
    values = [v for k, v in (metadata or ()) if k == key]
    assert len(values) == 1, f"expected one {key} header, got {metadata!r}"
    return values[0]


def test_request_id_is_echoed_on_every_rpc_kind(stub):
    metadata = (("x-request-id", "interop-42"),)
    _, call = stub.UnaryRPC.with_call(pb.RequestMessage(request_data="a"), metadata=metadata, timeout=10)
    assert header(call.initial_metadata(), "x-request-id") == "interop-42"

    stream = stub.ServerStreamRPC(pb.RequestMessage(request_data="a", count=2), metadata=metadata, timeout=10)
    assert header(stream.initial_metadata(), "x-request-id") == "interop-42"
    assert len(list(stream)) == 2

    _, call = stub.ClientStreamRPC.with_call(iter([pb.RequestMessage(request_data="a")]), metadata=metadata, timeout=10)
    assert header(call.initial_metadata(), "x-request-id") == "interop-42"

    bidi = stub.BidiStreamRPC(iter([pb.RequestMessage(request_data="a")]), metadata=metadata, timeout=10)
    assert header(bidi.initial_metadata(), "x-request-id") == "interop-42"
    assert [r.response_data for r in bidi] == ["Hello, a"]


def test_request_id_is_made_when_absent(stub):
    _, first = stub.UnaryRPC.with_call(pb.RequestMessage(request_data="a"), timeout=10)
    _, second = stub.UnaryRPC.with_call(pb.RequestMessage(request_data="a"), timeout=10)
    first_id = header(first.initial_metadata(), "x-request-id")
    second_id = header(second.initial_metadata(), "x-request-id")
    assert UUID.match(first_id), first_id
    assert UUID.match(second_id), second_id
    assert first_id != second_id


def test_served_by_defaults_to_host_and_port(stub, rust_server):
    _, call = stub.UnaryRPC.with_call(pb.RequestMessage(request_data="a"), timeout=10)
    served_by = header(call.initial_metadata(), "x-served-by")
    host, _, port = served_by.rpartition(":")
    assert host, served_by
    assert port == str(rust_server.port)


def test_served_by_is_the_server_id():
    server = procs.rust_server("--server-id", "interop-7")
    try:
        with grpc.insecure_channel(server.target) as channel:
            stub = connect_pb2_grpc.ConnectServiceStub(channel)
            _, call = stub.UnaryRPC.with_call(pb.RequestMessage(request_data="a"), timeout=10)
            assert header(call.initial_metadata(), "x-served-by") == "interop-7"
    finally:
        server.stop()


def test_request_id_is_in_the_server_log():
    server = procs.rust_server("--server-id", "interop-log")
    try:
        with grpc.insecure_channel(server.target) as channel:
            stub = connect_pb2_grpc.ConnectServiceStub(channel)
            stub.UnaryRPC(pb.RequestMessage(request_data="a"), metadata=(("x-request-id", "log-me-1234"),), timeout=10)
        line = server.wait_for(re.compile(r"log-me-1234"), timeout=10).string
        assert "UnaryRPC" in line, line
    finally:
        server.stop()
