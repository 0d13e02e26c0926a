"""A grpcio client of grpc.testing.TestService: gRPC's interop cases, one per run.

    python_client.py --server_host 127.0.0.1 --server_port 8080 --test_case large_unary
    python_client.py ... --use_tls true --ca_file ca.pem --server_host_override foo.test.google.fr

Prints "OK: <case>" and exits 0 when the case passes; exits 1 with what it saw
otherwise. Run by interop/grpc-testing/run under interop/.venv, with the stubs
it generates from proto/src/proto/grpc/testing/*.proto on the import path.
"""

import argparse
import queue
import sys

import grpc

from src.proto.grpc.testing import empty_pb2, messages_pb2, test_pb2_grpc

INITIAL_KEY = "x-grpc-test-echo-initial"
TRAILING_KEY = "x-grpc-test-echo-trailing-bin"
INITIAL_VALUE = "test_initial_metadata_value"
TRAILING_VALUE = b"\xab\xab\xab"
INPUT_SIZES = [27182, 8, 1828, 45904]
OUTPUT_SIZES = [31415, 9, 2653, 58979]


class Failed(Exception):
    """A case saw something other than what the interop descriptions ask for."""


def check(condition, what):
    if not condition:
        raise Failed(what)


def zeros(size):
    return messages_pb2.Payload(type=messages_pb2.COMPRESSABLE, body=b"\0" * size)


def check_payload(payload, size, what):
    check(payload.type == messages_pb2.COMPRESSABLE, f"{what}: payload type {payload.type}")
    check(len(payload.body) == size, f"{what}: payload of {len(payload.body)} bytes, expected {size}")
    check(payload.body == b"\0" * size, f"{what}: payload is not all zeros")


def large_request(**fields):
    return messages_pb2.SimpleRequest(
        response_type=messages_pb2.COMPRESSABLE, response_size=314159, payload=zeros(271828), **fields
    )


def streaming_request(request_size, response_size, **fields):
    return messages_pb2.StreamingOutputCallRequest(
        response_type=messages_pb2.COMPRESSABLE,
        response_parameters=[messages_pb2.ResponseParameters(size=response_size)],
        payload=zeros(request_size),
        **fields,
    )


def expect_error(call, code, what):
    try:
        call()
    except grpc.RpcError as error:
        check(error.code() == code, f"{what}: expected {code}, got {error.code()}: {error.details()!r}")
        return error
    raise Failed(f"{what}: expected {code}, the call succeeded")


def empty_unary(stub, channel):
    check(stub.EmptyCall(empty_pb2.Empty()) == empty_pb2.Empty(), "empty_unary: response not empty")


def large_unary(stub, channel):
    check_payload(stub.UnaryCall(large_request()).payload, 314159, "large_unary")


def client_streaming(stub, channel):
    requests = (messages_pb2.StreamingInputCallRequest(payload=zeros(size)) for size in INPUT_SIZES)
    size = stub.StreamingInputCall(requests).aggregated_payload_size
    check(size == 74922, f"client_streaming: aggregated size {size}")


def server_streaming(stub, channel):
    request = messages_pb2.StreamingOutputCallRequest(
        response_type=messages_pb2.COMPRESSABLE,
        response_parameters=[messages_pb2.ResponseParameters(size=size) for size in OUTPUT_SIZES],
    )
    responses = list(stub.StreamingOutputCall(request))
    check(len(responses) == len(OUTPUT_SIZES), f"server_streaming: {len(responses)} responses")
    for index, (response, size) in enumerate(zip(responses, OUTPUT_SIZES)):
        check_payload(response.payload, size, f"server_streaming response {index}")


class Pings:
    """A request iterator the case feeds one request at a time."""

    def __init__(self):
        self.queue = queue.Queue()

    def send(self, request):
        self.queue.put(request)

    def close(self):
        self.queue.put(None)

    def __iter__(self):
        return self

    def __next__(self):
        request = self.queue.get(timeout=30)
        if request is None:
            raise StopIteration
        return request


def ping_pong(stub, channel):
    pings = Pings()
    responses = stub.FullDuplexCall(pings)
    for index, (request_size, response_size) in enumerate(zip(INPUT_SIZES, OUTPUT_SIZES)):
        pings.send(streaming_request(request_size, response_size))
        check_payload(next(responses).payload, response_size, f"ping_pong {index}")
    pings.close()
    check(next(responses, None) is None, "ping_pong: a response after the last ping")


def empty_stream(stub, channel):
    check(list(stub.FullDuplexCall(iter([]))) == [], "empty_stream: a response to no request")


def cancel_after_begin(stub, channel):
    pings = Pings()
    call = stub.StreamingInputCall.future(pings)
    check(call.cancel(), "cancel_after_begin: the call could not be cancelled")
    pings.close()
    check(call.code() == grpc.StatusCode.CANCELLED, f"cancel_after_begin: status {call.code()}")
    empty_unary(stub, channel)


def cancel_after_first_response(stub, channel):
    pings = Pings()
    responses = stub.FullDuplexCall(pings)
    pings.send(streaming_request(27182, 31415))
    check_payload(next(responses).payload, 31415, "cancel_after_first_response")
    responses.cancel()
    pings.close()
    expect_error(lambda: next(responses), grpc.StatusCode.CANCELLED, "cancel_after_first_response")
    empty_unary(stub, channel)


def timeout_on_sleeping_server(stub, channel):
    pings = Pings()
    responses = stub.FullDuplexCall(pings, timeout=0.001)
    pings.send(streaming_request(27182, 0))
    expect_error(lambda: list(responses), grpc.StatusCode.DEADLINE_EXCEEDED, "timeout_on_sleeping_server")
    pings.close()


def custom_metadata(stub, channel):
    metadata = ((INITIAL_KEY, INITIAL_VALUE), (TRAILING_KEY, TRAILING_VALUE))

    def check_echo(initial, trailing, what):
        check((INITIAL_KEY, INITIAL_VALUE) in initial, f"{what}: initial metadata {initial}")
        check((TRAILING_KEY, TRAILING_VALUE) in trailing, f"{what}: trailing metadata {trailing}")

    response, call = stub.UnaryCall.with_call(large_request(), metadata=metadata)
    check_payload(response.payload, 314159, "custom_metadata unary")
    check_echo(call.initial_metadata(), call.trailing_metadata(), "unary")

    responses = stub.FullDuplexCall(iter([streaming_request(271828, 314159)]), metadata=metadata)
    received = list(responses)
    check(len(received) == 1, f"custom_metadata full duplex: {len(received)} responses")
    check_payload(received[0].payload, 314159, "custom_metadata full duplex")
    check_echo(responses.initial_metadata(), responses.trailing_metadata(), "full duplex")


def expect_echo(stub, message):
    status = messages_pb2.EchoStatus(code=2, message=message)
    error = expect_error(
        lambda: stub.UnaryCall(large_request(response_status=status)), grpc.StatusCode.UNKNOWN, "unary"
    )
    check(error.details() == message, f"unary: message {error.details()!r}")
    duplex = streaming_request(1, 1, response_status=status)
    error = expect_error(
        lambda: list(stub.FullDuplexCall(iter([duplex]))), grpc.StatusCode.UNKNOWN, "full duplex"
    )
    check(error.details() == message, f"full duplex: message {error.details()!r}")


def status_code_and_message(stub, channel):
    expect_echo(stub, "test status message")


def special_status_message(stub, channel):
    expect_echo(stub, "\t\ntest with whitespace\r\nand Unicode BMP \u263a and non-BMP \U0001f608\t\n")


def unimplemented_method(stub, channel):
    expect_error(lambda: stub.UnimplementedCall(empty_pb2.Empty()), grpc.StatusCode.UNIMPLEMENTED, "method")


def unimplemented_service(stub, channel):
    unimplemented = test_pb2_grpc.UnimplementedServiceStub(channel)
    expect_error(
        lambda: unimplemented.UnimplementedCall(empty_pb2.Empty()), grpc.StatusCode.UNIMPLEMENTED, "service"
    )


CASES = {
    case.__name__: case
    for case in [
        empty_unary,
        large_unary,
        client_streaming,
        server_streaming,
        ping_pong,
        empty_stream,
        cancel_after_begin,
        cancel_after_first_response,
        timeout_on_sleeping_server,
        custom_metadata,
        status_code_and_message,
        special_status_message,
        unimplemented_method,
        unimplemented_service,
    ]
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server_host", default="localhost")
    parser.add_argument("--server_port", type=int, required=True)
    parser.add_argument("--test_case", choices=sorted(CASES), required=True)
    parser.add_argument("--use_tls", choices=["true", "false"], default="false")
    parser.add_argument("--ca_file", help="the CA certificate (PEM) to trust")
    parser.add_argument("--server_host_override", default="")
    args = parser.parse_args()

    address = f"{args.server_host}:{args.server_port}"
    if args.use_tls == "true":
        with open(args.ca_file, "rb") as ca:
            credentials = grpc.ssl_channel_credentials(root_certificates=ca.read())
        options = [("grpc.ssl_target_name_override", args.server_host_override)] if args.server_host_override else []
        channel = grpc.secure_channel(address, credentials, options=options)
    else:
        channel = grpc.insecure_channel(address)
    with channel:
        try:
            CASES[args.test_case](test_pb2_grpc.TestServiceStub(channel), channel)
        except (Failed, grpc.RpcError) as error:
            print(f"FAILED: {args.test_case}: {error}", file=sys.stderr)
            return 1
    print(f"OK: {args.test_case}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
