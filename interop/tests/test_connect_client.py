"""`connect-client` (the Rust CLI) against interop/python_server.py, a grpcio (C-core) server."""

import re

import pytest

import certs
import procs

BIG = 100 * 1024


def lines(*items):
    return "".join(f"Response from server: {item}\n" for item in items)


def stream_lines(data, n):
    return lines(*(f"Hello, {data}: server({i}) " for i in range(1, n + 1)))


@pytest.fixture
def client(python_server):
    def run(*args, stdin=None):
        return procs.run_client("--addr", f"http://{python_server.target}", *args, stdin=stdin)

    return run


def ok(result, stdout):
    assert (result.returncode, result.stderr, result.stdout) == (0, "", stdout)


def test_unary(client):
    ok(client("unary"), lines("Hello, People"))
    ok(client("unary", "Grüße, 세계"), lines("Hello, Grüße, 세계"))
    ok(client("unary", ""), lines("Hello, "))


def test_unary_over_64_kib(client):
    big = "y" * BIG
    ok(client("unary", big), lines("Hello, " + big))


def test_server_stream(client):
    ok(client("server-stream"), stream_lines("People", 10))
    ok(client("server-stream", "Ann", "--count", "3"), stream_lines("Ann", 3))
    ok(client("server-stream", "Ann", "--count", "2", "--interval-ms", "50"), stream_lines("Ann", 2))


def test_client_stream(client):
    ok(client("client-stream", "a", "b", "c"), lines("Hello, a, b, c"))
    ok(client("client-stream", stdin="x\ny\n"), lines("Hello, x, y"))
    ok(client("client-stream", stdin=""), lines("Hello, "))


def test_bidi(client):
    ok(client("bidi", stdin="x\ny\nz\n"), lines("Hello, x", "Hello, y", "Hello, z"))
    ok(client("bidi", stdin=""), "")
    parts = [c * BIG for c in "ab"]
    ok(client("bidi", stdin="".join(p + "\n" for p in parts)), lines(*("Hello, " + p for p in parts)))


def test_invalid_argument(client):
    result = client("server-stream", "--count", "1000001")
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines()[0] == "RPC failed: INVALID_ARGUMENT: count must be at most 1000000"


def test_deadline(client):
    """Responses at 0 ms and 600 ms, deadline at 900 ms: two lines, then DEADLINE_EXCEEDED (exit 1)."""
    result = client("--timeout", "900ms", "server-stream", "--count", "3", "--interval-ms", "600")
    assert result.stdout == stream_lines("People", 2)
    assert result.returncode == 1
    assert result.stderr.splitlines()[0] == "RPC failed: DEADLINE_EXCEEDED: Deadline Exceeded"


def test_unreachable_server_exits_3():
    port = procs.free_port()
    result = procs.run_client("--addr", f"http://127.0.0.1:{port}", "--connect-timeout", "2s", "unary")
    assert result.returncode == 3
    assert result.stdout == ""
    assert result.stderr.startswith(f"cannot connect to http://127.0.0.1:{port}: "), result.stderr


def test_headers_sent_and_printed(client):
    result = client("-v", "-H", "x-request-id: interop-cli-1", "unary")
    assert result.returncode == 0, result.stderr
    assert result.stdout == lines("Hello, People")
    # -v prints response headers and trailers on stderr; the server echoed our id.
    assert re.search(r"^.*x-request-id: interop-cli-1$", result.stderr, re.M), result.stderr
    assert re.search(r"^.*x-served-by: python:", result.stderr, re.M), result.stderr


def test_trailers_printed(client):
    result = client("-v", "server-stream", "--count", "3")
    assert result.returncode == 0, result.stderr
    assert result.stdout == stream_lines("People", 3)
    assert re.search(r"^.*x-message-count: 3$", result.stderr, re.M), result.stderr


def test_health(client):
    ok(client("health"), "SERVING\n")
    ok(client("health", "ConnectService"), "SERVING\n")
    result = client("health", "NoSuchService")
    assert result.returncode == 1
    assert result.stdout == ""
    # grpcio's health servicer aborts with NOT_FOUND and no message.
    assert result.stderr.splitlines()[0] == "RPC failed: NOT_FOUND: ", result.stderr


def test_list(client):
    ok(
        client("list"),
        "ConnectService\ngrpc.health.v1.Health\ngrpc.reflection.v1.ServerReflection\n"
        "grpc.reflection.v1alpha.ServerReflection\n",
    )


# --- TLS, mTLS and auth: the Rust client against grpcio's TLS stack and a Python token check ---


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return certs.make_pki(tmp_path_factory.mktemp("pki"))


def test_tls(pki):
    server = procs.python_server("--tls-cert", pki["server_cert"], "--tls-key", pki["server_key"])
    try:
        addr = f"https://localhost:{server.port}"
        ok(procs.run_client("--addr", addr, "--ca", pki["ca"], "unary"), lines("Hello, People"))
        ok(procs.run_client("--addr", addr, "--ca", pki["ca"], "server-stream", "--count", "2"), stream_lines("People", 2))
        # No CA to trust: the handshake fails, so the server is unreachable (exit 3).
        untrusted = procs.run_client("--addr", addr, "unary")
        assert (untrusted.returncode, untrusted.stdout) == (3, "")
        assert untrusted.stderr.startswith(f"cannot connect to {addr}: "), untrusted.stderr
    finally:
        server.stop()


def test_mtls(pki):
    server = procs.python_server(
        "--tls-cert", pki["server_cert"], "--tls-key", pki["server_key"], "--tls-client-ca", pki["ca"]
    )
    try:
        addr = f"https://localhost:{server.port}"
        with_cert = procs.run_client(
            "--addr", addr, "--ca", pki["ca"], "--cert", pki["client_cert"], "--key", pki["client_key"], "unary"
        )
        ok(with_cert, lines("Hello, People"))
        # Refused without a client certificate. With TLS 1.3 the client finishes its side of the
        # handshake before the server checks its certificate, so the refusal may surface at connect
        # (exit 3) or on the first call (exit 1, UNAVAILABLE as in grpcio).
        without = procs.run_client("--addr", addr, "--ca", pki["ca"], "unary")
        assert without.stdout == ""
        first_line = without.stderr.splitlines()[0]
        if without.returncode == 1:
            assert re.match(r"^RPC failed: UNAVAILABLE: .+$", first_line), without
        else:
            assert without.returncode == 3, without
            assert first_line.startswith(f"cannot connect to {addr}: "), without
    finally:
        server.stop()


def test_token(python_server):
    auth = procs.python_server("--auth-token", "py-s3cret")
    try:
        addr = f"http://{auth.target}"
        missing = procs.run_client("--addr", addr, "unary")
        assert (missing.returncode, missing.stdout) == (1, "")
        assert missing.stderr.splitlines()[0] == "RPC failed: UNAUTHENTICATED: missing bearer token"
        wrong = procs.run_client("--addr", addr, "--token", "nope", "unary")
        assert (wrong.returncode, wrong.stdout) == (1, "")
        assert wrong.stderr.splitlines()[0] == "RPC failed: UNAUTHENTICATED: invalid bearer token"
        ok(procs.run_client("--addr", addr, "--token", "py-s3cret", "unary"), lines("Hello, People"))
        ok(procs.run_client("--addr", addr, "--token", "py-s3cret", "bidi", stdin="q\n"), lines("Hello, q"))
        from_env = procs.run_client("--addr", addr, "unary", env=procs.clean_env(CONNECT_AUTH_TOKEN="py-s3cret"))
        ok(from_env, lines("Hello, People"))
        # Probes carry no token: health stays open.
        ok(procs.run_client("--addr", addr, "health"), "SERVING\n")
    finally:
        auth.stop()
