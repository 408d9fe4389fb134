"""Starts a real `wpcdb serve` in a temporary directory for the tests.

The binary is $WPCDB_BIN, or built from this repository with `go build`."""

import os
import shutil
import socket
import subprocess
import sys
import time

import grpc
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # clients/python: the wpcdb package
REPO = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
TOKEN = "test-token"


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def wpcdb_bin(tmp_path_factory):
    path = os.environ.get("WPCDB_BIN")
    if path:
        return path
    path = str(tmp_path_factory.mktemp("bin") / "wpcdb")
    subprocess.run(["go", "build", "-o", path, "./cmd/wpcdb"], cwd=REPO, check=True)
    return path


@pytest.fixture(scope="session")
def server_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("server")


@pytest.fixture(scope="session")
def server_snapshots(server_dir):
    """Where the server writes snapshots: <data>/snapshots."""
    return str(server_dir / "data" / "snapshots")


@pytest.fixture(scope="session")
def server(wpcdb_bin, server_dir):
    """The address of a running server that wants TOKEN."""
    d = server_dir
    token_file = d / "token"
    token_file.write_text(TOKEN + "\n")
    addr = f"127.0.0.1:{_free_port()}"
    proc = subprocess.Popen([wpcdb_bin, "serve", "--data", str(d / "data"), "--listen", addr,
                             "--metrics-listen", "", "--token-file", str(token_file)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        ch = grpc.insecure_channel(addr)
        grpc.channel_ready_future(ch).result(timeout=60)
        ch.close()
    except Exception:
        proc.kill()
        raise RuntimeError("wpcdb serve did not start: " + proc.stderr.read().decode())
    yield addr
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
