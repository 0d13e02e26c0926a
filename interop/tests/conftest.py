"""Shared fixtures of the interop suite: the servers under test, started once a session."""

import os
import sys

import grpc
import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "gen"))

import procs  # noqa: E402


def _stop_clean(server, bad):
    """Stops `server` and fails if its output shows `bad` (a panic or a traceback) at any point."""
    server.stop()
    output = server.output()
    assert bad not in output, f"{server.name} reported an error while serving:\n{output}"


@pytest.fixture(scope="session")
def rust_server():
    server = procs.rust_server()
    yield server
    _stop_clean(server, "panicked")


@pytest.fixture(scope="session")
def python_server():
    server = procs.python_server()
    yield server
    _stop_clean(server, "Traceback")


@pytest.fixture
def channel(rust_server):
    with grpc.insecure_channel(rust_server.target) as channel:
        yield channel


@pytest.fixture
def stub(channel):
    import connect_pb2_grpc

    return connect_pb2_grpc.ConnectServiceStub(channel)
