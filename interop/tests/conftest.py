"""Shared fixtures of the interop suite, and the strict/lenient handling of feature tests.

Tests marked `@pytest.mark.feature("lifecycle")` or `("production")` exercise
features built on other branches. A strict run (the default, `INTEROP_STRICT=1`)
requires them like any other test. A lenient run (`INTEROP_STRICT=0`, or
`interop/run --lenient`) runs them too but reports their failures as XFAIL
with the feature's name instead of failing the suite.
"""

import collections
import os
import sys

import grpc
import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "gen"))

import procs  # noqa: E402

STRICT = os.environ.get("INTEROP_STRICT", "1") != "0"
_feature_results = collections.defaultdict(lambda: collections.Counter())


def _feature(item):
    marker = item.get_closest_marker("feature")
    return marker.args[0] if marker else None


def pytest_collection_modifyitems(config, items):
    if STRICT:
        return
    for item in items:
        name = _feature(item)
        if name:
            item.add_marker(pytest.mark.xfail(reason=f"feature '{name}' not merged yet (lenient run)", strict=False))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    name = _feature(item)
    if name and report.when in ("setup", "call"):
        if hasattr(report, "wasxfail") and not report.passed:
            _feature_results[name]["missing or failing (xfail)"] += 1
            _feature_results[name + ":tests"][item.nodeid] += 1
        elif report.failed:
            _feature_results[name]["FAILED"] += 1
            _feature_results[name + ":tests"][item.nodeid] += 1
        elif report.when == "call" and hasattr(report, "wasxfail"):
            _feature_results[name]["passed (xpass)"] += 1
        elif report.when == "call" and report.passed:
            _feature_results[name]["passed"] += 1
    return report


def pytest_terminal_summary(terminalreporter):
    features = sorted(k for k in _feature_results if ":" not in k)
    if not features:
        return
    mode = "strict" if STRICT else "LENIENT (feature failures reported as XFAIL)"
    terminalreporter.section(f"features from other branches, {mode}")
    for name in features:
        counts = ", ".join(f"{n} {what}" for what, n in sorted(_feature_results[name].items()))
        terminalreporter.write_line(f"{name}: {counts}")
        for nodeid in sorted(_feature_results[name + ":tests"]):
            terminalreporter.write_line(f"    missing or failing: {nodeid}")


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
