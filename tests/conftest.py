import sys
from pathlib import Path

import subprocess

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from resp import RawConnection  # noqa: E402
from server import RedisServer, free_cluster_port, wait_for  # noqa: E402


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """One server per test worker, shared by every test that does not need its own."""
    instance = RedisServer(tmp_path_factory.mktemp("shared")).start()
    yield instance
    instance.stop()


@pytest.fixture
def r(server):
    client = server.client()
    client.flushall()
    yield client
    client.close()


@pytest.fixture
def raw(server, r):
    with RawConnection(server.port) as connection:
        yield connection


@pytest.fixture
def new_server(tmp_path):
    """Starts servers of the test's own (restart, replication, config); all stopped at the end."""
    started = []

    def start(name: str = "server", **kwargs) -> RedisServer:
        instance = RedisServer(tmp_path / name, **kwargs).start()
        started.append(instance)
        return instance

    yield start
    for instance in started:
        instance.stop()


@pytest.fixture
def cluster(tmp_path):
    """Three masters with the module loaded, joined by redis-cli --cluster create."""
    nodes = [RedisServer(tmp_path / f"node{i}", config=("--cluster-enabled", "yes", "--cluster-node-timeout", "5000",
                                                       "--cluster-config-file", "nodes.conf"),
                         port=free_cluster_port()).start()
             for i in range(3)]
    try:
        subprocess.run(["redis-cli", "--cluster", "create", *(f"127.0.0.1:{n.port}" for n in nodes), "--cluster-yes"],
                       check=True, capture_output=True, timeout=60)
        for node in nodes:
            wait_for(lambda n=node: n.client().cluster("info")["cluster_state"] == "ok", timeout=60, message="cluster ok")
        yield nodes
    finally:
        for node in nodes:
            node.stop()


