"""Python grpcio (C-core) client against the Rust server: the four RPCs and their lifecycle.

Every test runs against the Rust server and against interop/python_server.py,
which proves the Python server (used by `connect-client` tests and by the
benchmark) answers exactly like the Rust one.
"""

import threading

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

import connect_pb2 as pb

STREAM_LIMIT = 1_000_000
INTERVAL_LIMIT = 60_000
BIG = 100 * 1024  # over 64 KiB: needs HTTP/2 flow-control window updates both ways


@pytest.fixture(params=["rust", "python"])
def channel(request):
    server = request.getfixturevalue(f"{request.param}_server")
    with grpc.insecure_channel(server.target) as channel:
        yield channel


def req(data, **fields):
    return pb.RequestMessage(request_data=data, **fields)


def stream_items(data, n):
    return [f"Hello, {data}: server({i}) " for i in range(1, n + 1)]


def trailer(call, key):
    values = [v for k, v in (call.trailing_metadata() or ()) if k == key]
    assert len(values) == 1, f"expected one {key} trailer, got {call.trailing_metadata()!r}"
    return values[0]


# --- the four RPCs ---------------------------------------------------------


def test_unary(stub):
    assert stub.UnaryRPC(req("People"), timeout=10).response_data == "Hello, People"


def test_unary_non_ascii(stub):
    assert stub.UnaryRPC(req("Grüße, 세계\t✓"), timeout=10).response_data == "Hello, Grüße, 세계\t✓"


def test_server_stream_default_count_is_ten(stub):
    call = stub.ServerStreamRPC(req("People"), timeout=10)
    assert [r.response_data for r in call] == stream_items("People", 10)
    assert call.code() == grpc.StatusCode.OK
    assert trailer(call, "x-message-count") == "10"


def test_server_stream_count_and_interval(stub):
    call = stub.ServerStreamRPC(req("Ann", count=3, interval_ms=20), timeout=10)
    assert [r.response_data for r in call] == stream_items("Ann", 3)
    assert trailer(call, "x-message-count") == "3"


def test_client_stream(stub):
    response = stub.ClientStreamRPC(iter([req("a"), req("b"), req("c")]), timeout=10)
    assert response.response_data == "Hello, a, b, c"


def test_bidi_all_at_once(stub):
    call = stub.BidiStreamRPC(iter([req("x"), req("y"), req("z")]), timeout=10)
    assert [r.response_data for r in call] == ["Hello, x", "Hello, y", "Hello, z"]
    assert trailer(call, "x-message-count") == "3"


def test_bidi_ping_pong(stub):
    """Each reply arrives before the next request is sent: the server answers per message."""
    sent = threading.Semaphore(0)
    outbox = []

    def requests():
        for i in range(1, 4):
            outbox.append(i)
            yield req(f"ping {i}")
            # Wait for the reply to this message before sending the next one.
            assert sent.acquire(timeout=10), "no reply before the next request"

    call = stub.BidiStreamRPC(requests(), timeout=10)
    replies = []
    for response in call:
        replies.append(response.response_data)
        assert len(outbox) == len(replies), "a reply arrived for a request not yet sent"
        sent.release()
    assert replies == ["Hello, ping 1", "Hello, ping 2", "Hello, ping 3"]
    assert trailer(call, "x-message-count") == "3"


# --- edge cases ------------------------------------------------------------


def test_empty_request_data(stub):
    assert stub.UnaryRPC(req(""), timeout=10).response_data == "Hello, "
    call = stub.ServerStreamRPC(req("", count=2), timeout=10)
    assert [r.response_data for r in call] == ["Hello, : server(1) ", "Hello, : server(2) "]


def test_empty_client_stream(stub):
    assert stub.ClientStreamRPC(iter([]), timeout=10).response_data == "Hello, "


def test_empty_bidi_stream(stub):
    call = stub.BidiStreamRPC(iter([]), timeout=10)
    assert list(call) == []
    assert call.code() == grpc.StatusCode.OK
    assert trailer(call, "x-message-count") == "0"


def test_messages_over_64_kib(stub):
    big = "x" * BIG
    assert stub.UnaryRPC(req(big), timeout=20).response_data == "Hello, " + big
    parts = [c * BIG for c in "abc"]
    assert stub.ClientStreamRPC(iter(req(p) for p in parts), timeout=20).response_data == "Hello, " + ", ".join(parts)
    replies = [r.response_data for r in stub.BidiStreamRPC(iter(req(p) for p in parts), timeout=20)]
    assert replies == ["Hello, " + p for p in parts]
    streamed = [r.response_data for r in stub.ServerStreamRPC(req(big, count=3), timeout=20)]
    assert streamed == stream_items(big, 3)


# --- status ----------------------------------------------------------------


def bad_request_violations(error):
    status = rpc_status.from_call(error)
    assert status is not None, "no grpc-status-details-bin on the error"
    assert status.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert status.message == error.details()
    violations = []
    for detail in status.details:
        assert detail.Is(error_details_pb2.BadRequest.DESCRIPTOR), f"unexpected detail {detail.type_url}"
        bad = error_details_pb2.BadRequest()
        detail.Unpack(bad)
        violations += [(v.field, v.description) for v in bad.field_violations]
    return violations


def test_count_over_limit_is_invalid_argument_with_bad_request(stub):
    with pytest.raises(grpc.RpcError) as caught:
        list(stub.ServerStreamRPC(req("People", count=STREAM_LIMIT + 1), timeout=10))
    error = caught.value
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == f"count must be at most {STREAM_LIMIT}"
    assert bad_request_violations(error) == [("count", f"count must be at most {STREAM_LIMIT}")]


def test_interval_over_limit_is_invalid_argument_with_bad_request(stub):
    with pytest.raises(grpc.RpcError) as caught:
        list(stub.ServerStreamRPC(req("People", interval_ms=INTERVAL_LIMIT + 1), timeout=10))
    error = caught.value
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == f"interval_ms must be at most {INTERVAL_LIMIT}"
    assert bad_request_violations(error) == [("interval_ms", f"interval_ms must be at most {INTERVAL_LIMIT}")]


def test_count_at_limit_is_accepted(stub):
    # Only the first responses are read; closing the call cancels the rest.
    call = stub.ServerStreamRPC(req("People", count=STREAM_LIMIT), timeout=10)
    assert next(call).response_data == "Hello, People: server(1) "
    call.cancel()


@pytest.mark.parametrize("path", ["/ConnectService/NoSuchRPC", "/NoSuchService/UnaryRPC"])
def test_unknown_method_is_unimplemented(channel, path):
    call = channel.unary_unary(
        path, request_serializer=pb.RequestMessage.SerializeToString, response_deserializer=pb.ResponseMessage.FromString
    )
    with pytest.raises(grpc.RpcError) as caught:
        call(req("People"), timeout=10)
    assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED


# --- deadlines -------------------------------------------------------------


def test_server_stream_deadline(stub):
    """Responses at 0 ms and 600 ms, the deadline at 900 ms: two arrive, then DEADLINE_EXCEEDED."""
    received = []
    with pytest.raises(grpc.RpcError) as caught:
        for response in stub.ServerStreamRPC(req("People", count=3, interval_ms=600), timeout=0.9):
            received.append(response.response_data)
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert received == stream_items("People", 2)


def test_client_stream_deadline(stub):
    """A client stream that never half-closes ends with DEADLINE_EXCEEDED at the deadline."""
    release = threading.Event()

    def requests():
        yield req("a")
        release.wait(10)

    with pytest.raises(grpc.RpcError) as caught:
        stub.ClientStreamRPC(requests(), timeout=0.5)
    release.set()
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED


def test_bidi_deadline(stub):
    release = threading.Event()

    def requests():
        yield req("a")
        release.wait(10)

    received = []
    with pytest.raises(grpc.RpcError) as caught:
        for response in stub.BidiStreamRPC(requests(), timeout=0.5):
            received.append(response.response_data)
    release.set()
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert received == ["Hello, a"]


# --- cancellation ----------------------------------------------------------


def test_cancel_after_begin(stub):
    """The interop suite's cancel_after_begin: a client stream cancelled before any message."""
    release = threading.Event()

    def requests():
        release.wait(10)
        return
        yield  # a generator that sends nothing until released

    future = stub.ClientStreamRPC.future(requests(), timeout=10)
    assert future.cancel()
    release.set()
    assert future.cancelled()
    assert future.code() == grpc.StatusCode.CANCELLED
    # The server is unharmed.
    assert stub.UnaryRPC(req("after"), timeout=10).response_data == "Hello, after"


def test_cancel_after_first_response(stub):
    """The interop suite's cancel_after_first_response, on a long server stream and on bidi."""
    call = stub.ServerStreamRPC(req("People", count=1000, interval_ms=50), timeout=30)
    assert next(call).response_data == "Hello, People: server(1) "
    call.cancel()
    with pytest.raises(grpc.RpcError) as caught:
        next(call)
    assert caught.value.code() == grpc.StatusCode.CANCELLED
    assert call.code() == grpc.StatusCode.CANCELLED

    release = threading.Event()

    def requests():
        yield req("first")
        release.wait(10)

    bidi = stub.BidiStreamRPC(requests(), timeout=30)
    assert next(bidi).response_data == "Hello, first"
    bidi.cancel()
    release.set()
    assert bidi.code() == grpc.StatusCode.CANCELLED
    assert stub.UnaryRPC(req("after"), timeout=10).response_data == "Hello, after"
