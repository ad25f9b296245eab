import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from resp import RawConnection  # noqa: E402
from server import RedisServer  # noqa: E402


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
