#!/usr/bin/env python3
"""Makes the seed corpus of the `http2_connection` fuzz target.

Each seed is the bytes a client sends on one HTTP/2 connection AFTER the
24-byte preface (the target sends the preface itself).

- Captured: a real client (Python `grpcio`, from interop/.venv) calls a real
  `connect-server` through a TCP proxy on 127.0.0.1 that records what the
  client sends, one fresh channel (so one connection) per seed: one per RPC
  kind, a unary call with a deadline, and a cancel (a server stream cancelled
  after its first response: `RST_STREAM(CANCEL)`).
- Hand-built: floods that no polite client sends (many PINGs, many SETTINGS,
  HEADERS + RST_STREAM "rapid reset"), with HPACK literal header fields
  without indexing.

Usage (from the repository root; needs `interop/setup` to have run and a built
server, `cargo build --release -p connect-server` or a debug build):

    interop/.venv/bin/python fuzz/seeds/capture_http2.py [path/to/connect-server]

It rewrites the files it makes under fuzz/seeds/http2_connection/ and leaves
any other file there (minimised crashes, for instance) alone.
"""

import os
import socket
import struct
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
OUT = os.path.join(HERE, "http2_connection")
sys.path.insert(0, os.path.join(ROOT, "interop", "gen"))

import grpc  # noqa: E402
import connect_pb2  # noqa: E402
import connect_pb2_grpc  # noqa: E402

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Recorder:
    """A TCP proxy for one connection at a time; keeps what the client sent."""

    def __init__(self, upstream):
        self.upstream = upstream
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(8)
        self.port = self.listener.getsockname()[1]
        self.sessions = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            client, _ = self.listener.accept()
            server = socket.create_connection(self.upstream)
            record = bytearray()
            done = threading.Event()
            self.sessions.append((record, done))
            threading.Thread(target=self._pump, args=(client, server, record, done), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, None, None), daemon=True).start()

    @staticmethod
    def _pump(src, dst, record, done):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if record is not None:
                    record.extend(data)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (dst,):
                try:
                    sock.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
            if done is not None:
                done.set()

    def capture(self, call):
        """Runs `call(stub)` on a fresh channel through the proxy; the client's bytes."""
        before = len(self.sessions)
        options = [("grpc.enable_http_proxy", 0), ("grpc.use_local_subchannel_pool", 1)]
        channel = grpc.insecure_channel(f"127.0.0.1:{self.port}", options=options)
        call(connect_pb2_grpc.ConnectServiceStub(channel))
        channel.close()
        deadline = time.time() + 5
        while len(self.sessions) <= before and time.time() < deadline:
            time.sleep(0.01)
        assert len(self.sessions) == before + 1, "one connection per capture"
        record, done = self.sessions[before]
        assert done.wait(5), "the client closed its connection"
        data = bytes(record)
        assert data.startswith(PREFACE), data[:24]
        return data[len(PREFACE):]


def req(data, count=0, interval_ms=0):
    return connect_pb2.RequestMessage(request_data=data, count=count, interval_ms=interval_ms)


def unary(stub):
    assert stub.UnaryRPC(req("People"), timeout=5).response_data == "Hello, People"


def unary_deadline(stub):
    # A short deadline: grpcio sends it as `grpc-timeout`.
    assert stub.UnaryRPC(req("Deadline"), timeout=0.5).response_data == "Hello, Deadline"


def server_stream(stub):
    got = [r.response_data for r in stub.ServerStreamRPC(req("Rust", count=3), timeout=5)]
    assert len(got) == 3, got


def client_stream(stub):
    reply = stub.ClientStreamRPC(iter([req("Ann"), req("Bob"), req("Cy")]), timeout=5)
    assert reply.response_data == "Hello, Ann, Bob, Cy", reply


def bidi(stub):
    got = [r.response_data for r in stub.BidiStreamRPC(iter([req("ping"), req("pong")]), timeout=5)]
    assert got == ["Hello, ping", "Hello, pong"], got


def cancel(stub):
    # A long paced stream, cancelled after its first response.
    call = stub.ServerStreamRPC(req("Cancel", count=1000, interval_ms=100), timeout=10)
    first = next(call)
    assert first.response_data.startswith("Hello, Cancel"), first
    call.cancel()


# Hand-built frames.

def frame(kind, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


def literal(name, value):
    """An HPACK literal header field without indexing, new name, no Huffman."""
    name, value = name.encode(), value.encode()
    assert len(name) < 127 and len(value) < 127
    return b"\x00" + bytes([len(name)]) + name + bytes([len(value)]) + value


def request_headers(path):
    return b"".join(
        literal(n, v)
        for n, v in [
            (":method", "POST"),
            (":scheme", "http"),
            (":path", path),
            (":authority", "fuzz"),
            ("content-type", "application/grpc"),
            ("te", "trailers"),
        ]
    )


SETTINGS, PING, HEADERS, RST_STREAM, DATA, WINDOW_UPDATE = 4, 6, 1, 3, 0, 8
END_STREAM, END_HEADERS, ACK = 0x1, 0x4, 0x1


def ping_flood():
    out = frame(SETTINGS, 0, 0)
    for i in range(500):
        out += frame(PING, 0, 0, struct.pack(">Q", i))
    return out


def settings_flood():
    out = b""
    for i in range(500):
        # INITIAL_WINDOW_SIZE (4) and MAX_FRAME_SIZE (5), changing each time.
        out += frame(SETTINGS, 0, 0, struct.pack(">HIHI", 4, 65535 + i, 5, 16384 + i))
    return out


def rapid_reset():
    out = frame(SETTINGS, 0, 0)
    block = request_headers("/ConnectService/ServerStreamRPC")
    for i in range(200):
        stream = 2 * i + 1
        out += frame(HEADERS, END_HEADERS, stream, block)
        out += frame(RST_STREAM, 0, stream, struct.pack(">I", 8))  # CANCEL
    return out


def hand_unary():
    """A unary call built by hand, the HEADERS split over a CONTINUATION."""
    block = request_headers("/ConnectService/UnaryRPC")
    message = b"\x0a\x01x"  # request_data = "x"
    body = b"\x00" + struct.pack(">I", len(message)) + message
    return (
        frame(SETTINGS, 0, 0)
        + frame(HEADERS, 0, 1, block[:20])
        + frame(9, END_HEADERS, 1, block[20:])  # CONTINUATION
        + frame(DATA, END_STREAM, 1, body)
        + frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 1 << 20))
        + frame(SETTINGS, ACK, 0)
    )


CAPTURED = {
    "unary": unary,
    "unary_deadline": unary_deadline,
    "server_stream": server_stream,
    "client_stream": client_stream,
    "bidi": bidi,
    "cancel_server_stream": cancel,
}
BUILT = {
    "flood_ping": ping_flood,
    "flood_settings": settings_flood,
    "flood_rapid_reset": rapid_reset,
    "hand_unary_continuation": hand_unary,
}


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "target", "release", "connect-server")
    port = free_port()
    server = subprocess.Popen(
        [binary, "--addr", f"127.0.0.1:{port}", "--metrics-addr", "off", "--stats-interval", "0", "--workers", "1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.time() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.05)
        recorder = Recorder(("127.0.0.1", port))
        os.makedirs(OUT, exist_ok=True)
        for name, call in CAPTURED.items():
            data = recorder.capture(call)
            with open(os.path.join(OUT, name), "wb") as f:
                f.write(data)
            print(f"{name}: {len(data)} bytes captured")
        for name, build in BUILT.items():
            data = build()
            with open(os.path.join(OUT, name), "wb") as f:
                f.write(data)
            print(f"{name}: {len(data)} bytes built")
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
