"""Python grpcio client against the Rust server: health, reflection, TLS, mTLS and auth (issue 4)."""

import grpc
import pytest
from google.protobuf import descriptor_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2

import certs
import connect_pb2 as pb
import connect_pb2_grpc
import procs


SERVING = health_pb2.HealthCheckResponse.SERVING
METHODS = ["UnaryRPC", "ServerStreamRPC", "ClientStreamRPC", "BidiStreamRPC"]


def hello(channel, metadata=None):
    stub = connect_pb2_grpc.ConnectServiceStub(channel)
    return stub.UnaryRPC(pb.RequestMessage(request_data="People"), metadata=metadata, timeout=10).response_data


# --- health ----------------------------------------------------------------


@pytest.mark.parametrize("service", ["", "ConnectService"])
def test_health_serving(channel, service):
    health = health_pb2_grpc.HealthStub(channel)
    response = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
    assert response.status == SERVING


def test_health_unknown_service_is_not_found(channel):
    health = health_pb2_grpc.HealthStub(channel)
    with pytest.raises(grpc.RpcError) as caught:
        health.Check(health_pb2.HealthCheckRequest(service="NoSuchService"), timeout=10)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


# --- reflection ------------------------------------------------------------


def reflect(channel, version, request):
    """One reflection exchange over `grpc.reflection.{version}`.

    grpcio-reflection ships only v1alpha stubs; v1's messages are the same on
    the wire (same fields and numbers, only the package differs), so the
    v1alpha message classes serve both paths.
    """
    call = channel.stream_stream(
        f"/grpc.reflection.{version}.ServerReflection/ServerReflectionInfo",
        request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
        response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
    )
    responses = list(call(iter([request]), timeout=10))
    assert len(responses) == 1, responses
    response = responses[0]
    assert not response.HasField("error_response"), response.error_response
    return response


@pytest.mark.parametrize("version", ["v1", "v1alpha"])
def test_reflection_lists_connect_service(channel, version):
    response = reflect(channel, version, reflection_pb2.ServerReflectionRequest(list_services=""))
    names = [s.name for s in response.list_services_response.service]
    assert "ConnectService" in names, names


@pytest.mark.parametrize("version", ["v1", "v1alpha"])
def test_reflection_describes_the_four_methods(channel, version):
    response = reflect(channel, version, reflection_pb2.ServerReflectionRequest(file_containing_symbol="ConnectService"))
    files = [descriptor_pb2.FileDescriptorProto.FromString(b) for b in response.file_descriptor_response.file_descriptor_proto]
    services = [s for f in files for s in f.service if s.name == "ConnectService"]
    assert len(services) == 1, [f.name for f in files]
    service = services[0]
    assert [m.name for m in service.method] == METHODS
    streaming = [(m.client_streaming, m.server_streaming) for m in service.method]
    assert streaming == [(False, False), (False, True), (True, False), (True, True)]


# --- TLS and mTLS ----------------------------------------------------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return certs.make_pki(tmp_path_factory.mktemp("pki"))


def secure_channel(server, pki, client_cert=False):
    kwargs = {"root_certificates": pki["ca_pem"]}
    if client_cert:
        kwargs.update(private_key=pki["client_key_pem"], certificate_chain=pki["client_cert_pem"])
    return grpc.secure_channel(f"localhost:{server.port}", grpc.ssl_channel_credentials(**kwargs))


def test_tls(pki):
    server = procs.rust_server("--tls-cert", pki["server_cert"], "--tls-key", pki["server_key"])
    try:
        with secure_channel(server, pki) as channel:
            assert hello(channel) == "Hello, People"
            stub = connect_pb2_grpc.ConnectServiceStub(channel)
            items = [r.response_data for r in stub.ServerStreamRPC(pb.RequestMessage(request_data="T", count=2), timeout=10)]
            assert items == ["Hello, T: server(1) ", "Hello, T: server(2) "]
        # Plaintext to a TLS port is refused.
        with grpc.insecure_channel(server.target) as channel:
            with pytest.raises(grpc.RpcError) as caught:
                hello(channel)
            assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        # A client that does not trust the server's CA is refused.
        with grpc.secure_channel(f"localhost:{server.port}", grpc.ssl_channel_credentials()) as channel:
            with pytest.raises(grpc.RpcError) as caught:
                hello(channel)
            assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        server.stop()


def test_mtls(pki):
    server = procs.rust_server(
        "--tls-cert", pki["server_cert"], "--tls-key", pki["server_key"], "--tls-client-ca", pki["ca"]
    )
    try:
        with secure_channel(server, pki, client_cert=False) as channel:
            with pytest.raises(grpc.RpcError) as caught:
                hello(channel)
            assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        with secure_channel(server, pki, client_cert=True) as channel:
            assert hello(channel) == "Hello, People"
    finally:
        server.stop()


# --- bearer-token auth -----------------------------------------------------


@pytest.fixture(scope="module")
def auth_server():
    server = procs.rust_server("--auth-token", "interop-s3cret")
    yield server
    server.stop()


@pytest.mark.parametrize(
    "metadata",
    [None, (("authorization", "Bearer wrong-token"),), (("authorization", "interop-s3cret"),)],
    ids=["missing", "wrong", "no-bearer-scheme"],
)
def test_auth_refused(auth_server, metadata):
    with grpc.insecure_channel(auth_server.target) as channel:
        with pytest.raises(grpc.RpcError) as caught:
            hello(channel, metadata)
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
        # The refusal never echoes the token.
        assert "interop-s3cret" not in (caught.value.details() or "")


def test_auth_accepted(auth_server):
    metadata = (("authorization", "Bearer interop-s3cret"),)
    with grpc.insecure_channel(auth_server.target) as channel:
        assert hello(channel, metadata) == "Hello, People"
        stub = connect_pb2_grpc.ConnectServiceStub(channel)
        replies = [r.response_data for r in stub.BidiStreamRPC(iter([pb.RequestMessage(request_data="b")]), metadata=metadata, timeout=10)]
        assert replies == ["Hello, b"]


def test_auth_leaves_health_open(auth_server):
    with grpc.insecure_channel(auth_server.target) as channel:
        response = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=10)
        assert response.status == SERVING
    assert "interop-s3cret" not in auth_server.output()
