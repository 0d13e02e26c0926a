"""connect-python (PyPI `connectrpc`) clients against connect-server.

Usage: .venv/bin/python py-clients.py http://127.0.0.1:PORT
Prints one PASS/FAIL line per check; exits 1 if any check failed.
Stubs come from gen/py (buf generate with protoc-gen-py and protoc-gen-connectrpc).
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "gen" / "py"))

from stubs.connect_connect import ConnectServiceClientSync  # noqa: E402
from stubs.connect_pb import RequestMessage  # noqa: E402
from connectrpc.code import Code  # noqa: E402
from connectrpc.codec import proto_json_codec  # noqa: E402
from connectrpc.errors import ConnectError  # noqa: E402
from connectrpc.protocol import ProtocolType  # noqa: E402
from pyqwest import HTTPVersion, SyncClient, SyncHTTPTransport  # noqa: E402

base_url = sys.argv[1]
failed = 0


def check(name, expected, fn):
    global failed
    try:
        actual = fn()
    except Exception as e:  # noqa: BLE001 - any exception is a failed check
        actual = {"raised": f"{type(e).__name__}: {e}"}
    if actual == expected:
        print(f"PASS python {name}")
    else:
        failed += 1
        print(f"FAIL python {name}\n  expected: {json.dumps(expected)}\n  actual:   {json.dumps(actual)}")


def stream_items(data, n):
    return [f"Hello, {data}: server({i}) " for i in range(1, n + 1)]


def error_of(fn):
    try:
        fn()
    except ConnectError as e:
        return {"code": e.code.name, "message": e.message}
    return {"unexpected": "no error"}


configs = [
    # name, protocol, codec (None: binary protobuf), HTTP version
    ("connect json http/1.1", ProtocolType.CONNECT, proto_json_codec(), HTTPVersion.HTTP1),
    ("connect proto http/1.1", ProtocolType.CONNECT, None, HTTPVersion.HTTP1),
    ("connect json http/2", ProtocolType.CONNECT, proto_json_codec(), HTTPVersion.HTTP2),
    ("connect proto http/2", ProtocolType.CONNECT, None, HTTPVersion.HTTP2),
    ("grpc-web proto http/1.1", ProtocolType.GRPC_WEB, None, HTTPVersion.HTTP1),
    ("grpc-web proto http/2", ProtocolType.GRPC_WEB, None, HTTPVersion.HTTP2),
    ("grpc http/2", ProtocolType.GRPC, None, HTTPVersion.HTTP2),
]

for name, protocol, codec, version in configs:
    transport = SyncHTTPTransport(http_version=version, timeout=10.0, enable_otel=False)
    http = SyncClient(transport)
    with ConnectServiceClientSync(
        base_url, protocol=protocol, codec=codec, http_client=http, timeout_ms=10000
    ) as client:
        check(f"{name} unary", "Hello, python",
              lambda: client.unary_rpc(RequestMessage(request_data="python")).response_data)
        check(f"{name} server stream of 3", stream_items("python", 3),
              lambda: [m.response_data for m in
                       client.server_stream_rpc(RequestMessage(request_data="python", count=3))])
        check(f"{name} count 5000000 is INVALID_ARGUMENT",
              {"code": Code.INVALID_ARGUMENT.name, "message": "count must be at most 1000000"},
              lambda: error_of(lambda: list(
                  client.server_stream_rpc(RequestMessage(request_data="x", count=5000000)))))
        if version == HTTPVersion.HTTP2:
            def reqs(*items):
                yield from (RequestMessage(request_data=d) for d in items)
            check(f"{name} client stream", "Hello, a, b",
                  lambda: client.client_stream_rpc(reqs("a", "b")).response_data)
            check(f"{name} bidi stream", ["Hello, a", "Hello, b"],
                  lambda: [m.response_data for m in client.bidi_stream_rpc(reqs("a", "b"))])

sys.exit(1 if failed else 0)
