"""Starting the servers and clients under test as subprocesses, with bounded waits."""

import os
import re
import signal
import socket
import subprocess
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
INTEROP = os.path.dirname(HERE)
ROOT = os.path.dirname(INTEROP)
# `../shared` beside the repository root, as the project lays it out.
REFERENCE = os.path.join(os.path.dirname(ROOT), "shared", "reference")
PYTHON = os.path.join(INTEROP, ".venv", "bin", "python")

READY = re.compile(r"Server listening on (\S+)")
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0


def binary(name):
    """Path of a Rust binary, as given by interop/run (INTEROP_SERVER_BIN / INTEROP_CLIENT_BIN)."""
    var = {"connect-server": "INTEROP_SERVER_BIN", "connect-client": "INTEROP_CLIENT_BIN"}[name]
    path = os.environ.get(var)
    if not path:
        target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
        path = os.path.join(target, "debug", name)
    if not os.access(path, os.X_OK):
        raise RuntimeError(f"{name} not found at {path}: run interop/run (it builds it) or set {var}")
    return path


def clean_env(**extra):
    """The environment minus every CONNECT_* variable, so the caller's settings cannot leak in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONNECT_")}
    # Several servers run at once here; none must try to own the default metrics port.
    env["CONNECT_METRICS_ADDR"] = "off"
    env.setdefault("RUST_LOG", "info")
    env.update(extra)
    return env


class Process:
    """A child process whose combined output is collected line by line."""

    def __init__(self, argv, name, env=None, cwd=None):
        self.name = name
        self.argv = argv
        self.lines = []
        self._cond = threading.Condition()
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env if env is not None else clean_env(),
            cwd=cwd,
            start_new_session=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.proc.stdout:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def output(self):
        with self._cond:
            return "\n".join(self.lines)

    def wait_for(self, pattern, timeout=START_TIMEOUT):
        """The first match of `pattern` in the output; fails if the process exits or time runs out."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in self.lines:
                    match = pattern.search(line)
                    if match:
                        return match
                remaining = deadline - time.monotonic()
                if self.proc.poll() is not None and not self._reader.is_alive():
                    raise RuntimeError(
                        f"{self.name} exited with {self.proc.returncode} before printing "
                        f"{pattern.pattern!r}; argv={self.argv}\n--- output ---\n" + "\n".join(self.lines)
                    )
                if remaining <= 0:
                    raise RuntimeError(
                        f"{self.name} did not print {pattern.pattern!r} within {timeout}s; argv={self.argv}"
                        "\n--- output ---\n" + "\n".join(self.lines)
                    )
                self._cond.wait(min(remaining, 0.5))

    def stop(self):
        """SIGTERM, then SIGKILL if it has not exited within STOP_TIMEOUT."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(STOP_TIMEOUT)
        self._reader.join(STOP_TIMEOUT)


class Server(Process):
    """A server process that is ready once it prints `Server listening on ADDR`."""

    def __init__(self, argv, name, env=None, cwd=None):
        super().__init__(argv, name, env=env, cwd=cwd)
        try:
            listening = self.wait_for(READY).group(1)
        except Exception:
            self.stop()
            raise
        self.port = int(listening.rsplit(":", 1)[1])
        # The servers here listen on loopback; a client reaches them there.
        self.target = f"127.0.0.1:{self.port}"


def rust_server(*args, env=None):
    """`connect-server` on a free loopback port with extra `args`."""
    argv = [binary("connect-server"), "--addr", "127.0.0.1:0", "--shutdown-grace", "1s", *args]
    return Server(argv, "connect-server", env=env)


def python_server(*args):
    """interop/python_server.py on a free loopback port."""
    return Server([PYTHON, os.path.join(INTEROP, "python_server.py"), "--addr", "127.0.0.1:0", *args], "python_server")


def run_client(*args, stdin=None, timeout=60, env=None):
    """Runs `connect-client ARGS` to completion; returns the CompletedProcess (text)."""
    return subprocess.run(
        [binary("connect-client"), *args],
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env if env is not None else clean_env(),
    )


def port_is_free(port):
    """Whether `port` can be bound on every address (IPv6 dual-stack and IPv4) right now."""
    for family, host in ((socket.AF_INET6, "::"), (socket.AF_INET, "0.0.0.0")):
        try:
            sock = socket.socket(family, socket.SOCK_STREAM)
        except OSError:
            continue  # no IPv6 on this machine: nothing can hold the port there
        with sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((host, port))
            except OSError:
                return False
    return True


def free_port():
    """A loopback port nothing listens on (bound, read, released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
