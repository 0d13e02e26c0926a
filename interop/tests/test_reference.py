"""The ORIGINAL Python system (../shared/reference) against ours, unchanged.

- its clients (unary_client.py, server_stream_client.py) against the Rust
  server on the port they hard-code, localhost:50051: stdout must be exactly
  the original output;
- its server (server.py, fixed on [::]:50051) driven by `connect-client`.

Both need port 50051. When it is taken, these tests are skipped with a loud
notice rather than fighting over the port.
"""

import os
import subprocess
import sys

import pytest

import procs

PORT = 50051

UNARY_OUTPUT = "Response from server: Hello, People\n"
STREAM_OUTPUT = "".join(f"Response from server: Hello, People: server({i}) \n" for i in range(1, 11))


@pytest.fixture(scope="module")
def reference_stubs(tmp_path_factory):
    """The reference's own connect.proto compiled into a scratch dir (the reference dir is read-only)."""
    proto = os.path.join(procs.REFERENCE, "connect.proto")
    if not os.path.isfile(proto):
        pytest.fail(f"the reference system is missing: {proto} (expected ../shared/reference beside the repo)")
    out = tmp_path_factory.mktemp("reference-stubs")
    subprocess.run(
        [procs.PYTHON, "-m", "grpc_tools.protoc", f"-I{procs.REFERENCE}", f"--python_out={out}",
         f"--grpc_python_out={out}", proto],
        check=True,
    )
    return str(out)


BUSY = f"!!! PORT {PORT} IS IN USE: the original reference client/server checks were NOT run !!!"


def skip_busy():
    sys.stderr.write("\n" + BUSY + "\n")
    pytest.skip(BUSY)


@pytest.fixture
def port_50051():
    if not procs.port_is_free(PORT):
        skip_busy()


def start_on_50051(argv, name, **kwargs):
    """Starts a server that binds 50051 itself; a race lost to another process is a skip, not a failure."""
    try:
        return procs.Server(argv, name, **kwargs)
    except RuntimeError as error:
        text = str(error).lower()
        if "already in use" in text or "failed to bind" in text:
            skip_busy()
        raise


def reference_env(stubs):
    # The reference scripts import connect_pb2 from the path; -u keeps their prints unbuffered.
    return procs.clean_env(PYTHONPATH=stubs, PYTHONUNBUFFERED="1")


def run_reference_client(script, stubs):
    return subprocess.run(
        [procs.PYTHON, os.path.join(procs.REFERENCE, script)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
        env=reference_env(stubs),
    )


def test_reference_clients_against_rust_server(port_50051, reference_stubs):
    # No --addr: the Rust server's default, [::]:50051, is the original's address.
    server = start_on_50051([procs.binary("connect-server"), "--shutdown-grace", "1s"], "connect-server")
    try:
        assert server.port == PORT
        unary = run_reference_client("unary_client.py", reference_stubs)
        assert (unary.returncode, unary.stderr) == (0, "")
        assert unary.stdout == UNARY_OUTPUT
        stream = run_reference_client("server_stream_client.py", reference_stubs)
        assert (stream.returncode, stream.stderr) == (0, "")
        assert stream.stdout == STREAM_OUTPUT
    finally:
        server.stop()


def test_connect_client_against_reference_server(port_50051, reference_stubs):
    server = start_on_50051(
        [procs.PYTHON, os.path.join(procs.REFERENCE, "server.py")],
        "reference server.py",
        env=reference_env(reference_stubs),
        cwd=reference_stubs,
    )
    try:
        assert server.port == PORT
        # No --addr: the client's default, http://localhost:50051, is where the original listens.
        unary = procs.run_client("unary")
        assert (unary.returncode, unary.stderr, unary.stdout) == (0, "", UNARY_OUTPUT)
        stream = procs.run_client("server-stream")
        assert (stream.returncode, stream.stderr, stream.stdout) == (0, "", STREAM_OUTPUT)
        # The original ignores fields it does not know (count): still its ten responses.
        counted = procs.run_client("server-stream", "--count", "3")
        assert (counted.returncode, counted.stderr, counted.stdout) == (0, "", STREAM_OUTPUT)
        # The original has no ClientStreamRPC: the Rust client reports UNIMPLEMENTED and exits 1.
        missing = procs.run_client("client-stream", "a")
        assert missing.returncode == 1
        assert missing.stdout == ""
        assert missing.stderr.startswith("RPC failed: UNIMPLEMENTED: "), missing.stderr
    finally:
        server.stop()
