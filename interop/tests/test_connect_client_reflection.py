"""`connect-client list`, `describe` and `call` against a server that is not ours and serves reflection v1alpha only.

grpcio-reflection (what a Python `grpcio` server registers) serves only
`grpc.reflection.v1alpha`; interop/python_server.py adds v1 by hand. Here the
same server runs with grpcio-reflection's v1alpha alone (and `--auth-token`),
so the client must fall back from v1 to v1alpha, as grpcurl and `buf curl` do.
"""

import grpc
import pytest
from grpc_reflection.v1alpha import reflection_pb2

import procs

TOKEN = "s3cret"

# python_server.py with only grpcio-reflection's own v1alpha service.
V1ALPHA_ONLY = """
import sys
sys.path.insert(0, {interop!r})
import python_server as server


def v1alpha_only(grpc_server):
    names = [server.SERVICE, server.health.SERVICE_NAME, server.reflection.SERVICE_NAME]
    server.reflection.enable_server_reflection(names, grpc_server)


server.add_reflection = v1alpha_only
server.main()
"""


@pytest.fixture(scope="module")
def v1alpha_server(tmp_path_factory):
    script = tmp_path_factory.mktemp("v1alpha") / "v1alpha_server.py"
    script.write_text(V1ALPHA_ONLY.format(interop=procs.INTEROP))
    server = procs.Server(
        [procs.PYTHON, str(script), "--addr", "127.0.0.1:0", "--auth-token", TOKEN], "v1alpha_server"
    )
    yield server
    server.stop()
    assert "Traceback" not in server.output(), server.output()


@pytest.fixture
def client(v1alpha_server):
    def run(*args, stdin=None):
        return procs.run_client("--addr", f"http://{v1alpha_server.target}", *args, stdin=stdin)

    return run


def ok(result, stdout):
    assert (result.returncode, result.stderr, result.stdout) == (0, "", stdout)


def test_reflection_v1alpha_only_server_has_no_v1(v1alpha_server):
    """The premise: a v1-only client gets UNIMPLEMENTED here, a v1alpha one the services."""
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    with grpc.insecure_channel(v1alpha_server.target) as channel:
        for version, expected in (("v1", grpc.StatusCode.UNIMPLEMENTED), ("v1alpha", None)):
            call = channel.stream_stream(
                f"/grpc.reflection.{version}.ServerReflection/ServerReflectionInfo",
                request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
                response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
            )
            try:
                responses = list(call(iter([request]), timeout=10))
                code = None
            except grpc.RpcError as error:
                code = error.code()
            assert code == expected, version
    assert len(responses) == 1


def test_reflection_v1alpha_list(client):
    ok(client("list"), "ConnectService\ngrpc.health.v1.Health\ngrpc.reflection.v1alpha.ServerReflection\n")


def test_reflection_v1alpha_describe(client):
    connect_service = (
        "service ConnectService\n"
        "  rpc UnaryRPC(RequestMessage) returns (ResponseMessage)\n"
        "  rpc ServerStreamRPC(RequestMessage) returns (stream ResponseMessage)\n"
        "  rpc ClientStreamRPC(stream RequestMessage) returns (ResponseMessage)\n"
        "  rpc BidiStreamRPC(stream RequestMessage) returns (stream ResponseMessage)\n"
    )
    ok(client("describe", "ConnectService"), connect_service)
    ok(
        client("describe", "RequestMessage"),
        "message RequestMessage\n  string request_data = 1\n  uint32 count = 2\n  uint32 interval_ms = 3\n",
    )
    ok(
        client("describe", "ConnectService.ServerStreamRPC"),
        "rpc ServerStreamRPC(RequestMessage) returns (stream ResponseMessage)\n",
    )
    ok(
        client("describe", "grpc.health.v1.HealthCheckResponse.ServingStatus"),
        "enum grpc.health.v1.HealthCheckResponse.ServingStatus\n"
        "  UNKNOWN = 0\n  SERVING = 1\n  NOT_SERVING = 2\n  SERVICE_UNKNOWN = 3\n",
    )
    ok(
        client("describe"),
        connect_service
        + "\nservice grpc.health.v1.Health\n"
        "  rpc Check(grpc.health.v1.HealthCheckRequest) returns (grpc.health.v1.HealthCheckResponse)\n"
        "  rpc List(grpc.health.v1.HealthListRequest) returns (grpc.health.v1.HealthListResponse)\n"
        "  rpc Watch(grpc.health.v1.HealthCheckRequest) returns (stream grpc.health.v1.HealthCheckResponse)\n"
        "\nservice grpc.reflection.v1alpha.ServerReflection\n"
        "  rpc ServerReflectionInfo(stream grpc.reflection.v1alpha.ServerReflectionRequest)"
        " returns (stream grpc.reflection.v1alpha.ServerReflectionResponse)\n",
    )


def test_reflection_v1alpha_call(client, tmp_path):
    auth = ("--token", TOKEN)
    ok(client(*auth, "call", "ConnectService/UnaryRPC", "-d", '{"requestData":"x"}'), '{"responseData":"Hello, x"}\n')
    ok(
        client(*auth, "call", "ConnectService/ServerStreamRPC", "-d", '{"requestData":"x","count":2}'),
        '{"responseData":"Hello, x: server(1) "}\n{"responseData":"Hello, x: server(2) "}\n',
    )
    requests = '{"requestData":"a"}\n{"request_data":"b"}\n'
    ok(
        client(*auth, "call", "ConnectService/ClientStreamRPC", "-d", "@-", stdin=requests),
        '{"responseData":"Hello, a, b"}\n',
    )
    ok(
        client(*auth, "call", "ConnectService/BidiStreamRPC", "-d", "@-", stdin=requests),
        '{"responseData":"Hello, a"}\n{"responseData":"Hello, b"}\n',
    )
    request_file = tmp_path / "request.json"
    request_file.write_text('{\n  "requestData": "from a file"\n}\n')
    ok(
        client(*auth, "call", "ConnectService/UnaryRPC", "-d", f"@{request_file}"),
        '{"responseData":"Hello, from a file"}\n',
    )
    ok(client("call", "grpc.health.v1.Health/Check", "-d", '{"service":"ConnectService"}'), '{"status":"SERVING"}\n')


def test_reflection_v1alpha_call_headers_token_and_deadline(client):
    result = client("--token", TOKEN, "-v", "-H", "x-request-id: dyn-1", "call", "ConnectService/UnaryRPC")
    assert (result.returncode, result.stdout) == (0, '{"responseData":"Hello, "}\n')
    assert "header x-request-id: dyn-1" in result.stderr.splitlines(), result.stderr
    assert "trailer grpc-status: 0" in result.stderr.splitlines(), result.stderr

    result = client("call", "ConnectService/UnaryRPC", "-d", '{"requestData":"x"}')
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr.splitlines()[0].startswith("RPC failed: UNAUTHENTICATED"), result.stderr

    result = client(
        "--token", TOKEN, "--timeout", "900ms",
        "call", "ConnectService/ServerStreamRPC", "-d", '{"count":3,"intervalMs":600}',
    )
    assert result.stdout == '{"responseData":"Hello, : server(1) "}\n{"responseData":"Hello, : server(2) "}\n'
    assert result.returncode == 1
    assert result.stderr.splitlines()[0] == "RPC failed: DEADLINE_EXCEEDED: Deadline Exceeded"


def test_reflection_v1alpha_call_bad_json(client):
    result = client("--token", TOKEN, "call", "ConnectService/UnaryRPC", "-d", '{"requestData":1}')
    assert (result.returncode, result.stdout, result.stderr) == (
        4,
        "",
        "invalid JSON for RequestMessage: invalid type: integer `1`, expected a string at line 1 column 16\n",
    )
