"""Hostile ONNX models against a real server (hostile_onnx_fixtures.py): refused at store with an error naming
the offender, no byte of the server's files in any reply (a secret SAVEd into the server's own dump.rdb),
PING answered within 50 ms throughout, other users' keys intact; a hostile model that arrives by RESTORE or
a reload is kept as bytes and never built; runs whose outputs would pass BACKEND_MEMORY_LIMIT are refused
before the copies that got the server OOM-killed; nothing of the model is computed while it is stored."""

import os
import re

import numpy as np
import pytest
import redis

import hostile_onnx_fixtures as ho
import rdb_payloads as payloads
from hostile_watch import PING_BOUND_S, attack_on, plant_bystanders, repeat_under_watch
from resp import Error, RawConnection
from server import RedisServer, wait_for

# Random-looking (LZF would compress a repeated text in dump.rdb, and the test would look for bytes not there).
SECRET = b"onnx-secret-5b1f9e07c2d84a6f93e1b0d7aa42c6e8"
ONNX = 3  # RedisAI's backend code in RDB payloads


@pytest.fixture(scope="module")
def victim(tmp_path_factory):
    """A server of its own whose dir holds the files the models name: dump.rdb with another user's secret
    in it, redis.log, and the AOF."""
    server = RedisServer(tmp_path_factory.mktemp("onnx_victim"), config=("--appendonly", "yes")).start()
    client = server.client()
    client.set("victim:secret", SECRET)
    client.save()
    assert SECRET in (server.dir / ho.DUMP).read_bytes() and (server.dir / ho.LOG).exists()
    wait_for(lambda: (server.dir / "appendonlydir").is_dir(), message="the AOF directory")
    yield server
    server.stop()


def _refused(reply, expected: str) -> None:
    assert isinstance(reply, Error), reply
    assert expected.encode() in reply, reply
    assert SECRET not in reply and SECRET[:12] not in reply, "the refusal quotes the secret"


@pytest.mark.parametrize("name,build,expected", ho.STORE_CASES, ids=[case[0] for case in ho.STORE_CASES])
def test_hostile_onnx_model_is_refused_at_store(victim, name, build, expected):
    blob = build()
    planted = plant_bystanders(victim.port)

    def store():
        with RawConnection(victim.port) as connection:
            return connection.call("AI.MODELSTORE", "m", "ONNX", "CPU", "BLOB", blob)

    _refused(repeat_under_watch(victim, store, planted=planted), expected)
    with RawConnection(victim.port) as connection:
        assert connection.call("EXISTS", "m") == 0
        assert connection.call("GET", "victim:secret") == SECRET


@pytest.mark.parametrize("name", ho.LEAKS_ALONE)
def test_the_fixture_reads_the_file_when_onnxruntime_loads_it_alone(tmp_path, monkeypatch, name):
    """The attack is real: onnxruntime by itself, in a directory laid out as Redis's, returns the file's bytes."""
    import onnxruntime

    marker = b"MARKER-0123456789abcdef-MARKER"
    (tmp_path / "appendonlydir").mkdir()
    for location in (ho.DUMP, ho.LOG, ho.AOF):
        (tmp_path / location).write_bytes(marker)
    monkeypatch.chdir(tmp_path)
    build = next(case[1] for case in ho.STORE_CASES if case[0] == name)
    session = onnxruntime.InferenceSession(build(), providers=["CPUExecutionProvider"])
    feeds = {i.name: np.zeros([2], np.float32) for i in session.get_inputs()}
    assert bytes(session.run(None, feeds)[0].astype(np.uint8)) == marker[:ho.SECRET_BYTES]


@pytest.mark.parametrize("name,build,expected", [case for case in ho.STORE_CASES if case[0] in
                                                 ("ext_function_attribute_default", "nested_functions_18")])
def test_hostile_onnx_model_in_restore_and_reload_is_kept_but_never_built(new_server, name, build, expected):
    blob = build()
    server = new_server()
    client = server.client()
    client.set("victim:secret", SECRET)
    planted = plant_bystanders(server.port)
    client.restore("evil", 0, payloads.model_v4(ONNX, blob))
    repeat_under_watch(server, lambda: _assert_kept_and_refused(client, server, blob, expected), planted=planted)
    client.execute_command("DEBUG", "RELOAD")  # a dump.rdb holding it (and the secret); rebuilt on a worker
    assert SECRET in (server.dir / ho.DUMP).read_bytes()
    repeat_under_watch(server, lambda: _assert_kept_and_refused(client, server, blob, expected), planted=planted)


def _assert_kept_and_refused(client, server, blob: bytes, expected: str) -> None:
    client.execute_command("AI.TENSORSET", "x", "FLOAT", 2, "VALUES", 1, 2)
    with pytest.raises(redis.ResponseError) as refusal:
        client.execute_command("AI.MODELEXECUTE", "evil", "INPUTS", 1, "x", "OUTPUTS", 1, "y")
    assert expected in str(refusal.value) and SECRET.decode() not in str(refusal.value)
    assert client.execute_command("AI.MODELGET", "evil", "BLOB") == blob
    wait_for(lambda: "model 'evil' could not be rebuilt" in server.log(), message="log line naming the key")
    assert client.exists("y") == 0


def test_a_model_with_nested_functions_within_the_rules_is_served(r):
    """Three levels of functions, a number passed by reference: stored, and gives onnxruntime's result."""
    assert r.execute_command("AI.MODELSTORE", "m", "ONNX", "CPU", "BLOB", ho.legit_functions()) == b"OK"
    r.execute_command("AI.TENSORSET", "x", "FLOAT", 2, "VALUES", 1, -2)
    r.execute_command("AI.MODELEXECUTE", "m", "INPUTS", 1, "x", "OUTPUTS", 1, "y")
    assert [float(v) for v in r.execute_command("AI.TENSORGET", "y", "VALUES")] == [6.0, 0.0]


def test_a_protobuf_of_many_empty_messages_under_the_bound_keeps_ping_fast(victim):
    """Just under MAX_FIELDS: parsed (by protobuf, holding the GIL, then by onnxruntime), and PING answers."""
    blob = ho.field_bomb(1_900_000)
    planted = plant_bystanders(victim.port)

    def store():
        with RawConnection(victim.port) as connection:
            return connection.call("AI.MODELSTORE", "m2", "ONNX", "CPU", "WARMUP", 0, "BLOB", blob)

    repeat_under_watch(victim, store, planted=planted)
    with RawConnection(victim.port) as connection:
        connection.call("DEL", "m2")


# ---------------------------------------------------------------- memory: outputs, and nothing computed at store


def _peak_rss(server) -> int:
    """The server's peak resident memory (VmHWM), bytes."""
    with open(f"/proc/{server.process.pid}/status") as status:
        line = next(line for line in status if line.startswith("VmHWM:"))
    return int(line.split()[1]) * 1024


LIMIT_MB = 300


def test_a_run_whose_outputs_would_pass_the_limit_is_refused_before_any_copy(new_server):
    """160 MB of output under a 300 MB limit: in the arena, in Redis, in the replicated AI.TENSORSET, 480 MB.
    Refused once computed, before it is copied: the server's peak grows by the arena's 160 MB, not 480."""
    server = new_server(module_args=("BACKEND_MEMORY_LIMIT", str(LIMIT_MB)))
    client = server.client()
    planted = plant_bystanders(server.port)
    assert client.execute_command("AI.MODELSTORE", "big", "ONNX", "CPU", "WARMUP", 0, "BLOB", ho.big_output()) == b"OK"
    output_bytes = 160 * 10**6
    client.execute_command("AI.TENSORSET", "shape", "INT64", 1, "VALUES", output_bytes // 4)
    before = _peak_rss(server)

    def run():
        with RawConnection(server.port) as connection:
            return connection.call("AI.MODELEXECUTE", "big", "INPUTS", 1, "shape", "OUTPUTS", 1, "y")

    reply = repeat_under_watch(server, run, planted=planted)
    assert reply == Error(b"ERR Onnxruntime memory limit exceeded, memory allocation failed.")
    assert _peak_rss(server) - before < 2 * output_bytes, "the output was copied"
    assert client.info("ai")["ai_onnx_refused"] >= 1 and client.exists("y") == 0
    # an output that fits, three times over, is stored
    client.execute_command("AI.TENSORSET", "shape", "INT64", 1, "VALUES", 1000)
    client.execute_command("AI.MODELEXECUTE", "big", "INPUTS", 1, "shape", "OUTPUTS", 1, "y")
    assert client.execute_command("AI.TENSORGET", "y", "META")[-1] == [1000]


def test_nothing_of_the_model_is_computed_while_it_is_stored(new_server):
    """A Tile of constants (2 GB): onnxruntime's constant folding would compute it while the session is made,
    outside the capped arena and the kill switch. Stored without it; its run is refused by the arena."""
    server = new_server(module_args=("BACKEND_MEMORY_LIMIT", str(LIMIT_MB)))
    client = server.client()
    before = _peak_rss(server)
    with attack_on(server) as watch:
        stored = client.execute_command("AI.MODELSTORE", "folded", "ONNX", "CPU", "WARMUP", 0, "BLOB",
                                        ho.folded_at_load())
    assert stored == b"OK" and watch.worst < PING_BOUND_S
    assert _peak_rss(server) - before < LIMIT_MB * 10**6
    client.execute_command("AI.TENSORSET", "x", "FLOAT", 2, "VALUES", 1, 2)
    with pytest.raises(redis.ResponseError, match="^Onnxruntime memory limit exceeded"):
        client.execute_command("AI.MODELEXECUTE", "folded", "INPUTS", 1, "x", "OUTPUTS", 1, "y")
    assert _peak_rss(server) - before < LIMIT_MB * 10**6 and server.alive()


def test_session_options_in_the_models_metadata_are_never_read(new_server):
    """With ORT_LOAD_CONFIG_FROM_MODEL=1 in the server's environment, onnxruntime would enable the profiling
    that `ort_config` asks for and write onnxruntime_profile_*.json into Redis's dir."""
    server = new_server(env={"ORT_LOAD_CONFIG_FROM_MODEL": "1"})
    client = server.client()
    assert client.execute_command("AI.MODELSTORE", "m", "ONNX", "CPU", "BLOB", ho.config_from_metadata()) == b"OK"
    client.execute_command("AI.TENSORSET", "x", "FLOAT", 2, "VALUES", 1, 2)
    client.execute_command("AI.MODELEXECUTE", "m", "INPUTS", 1, "x", "OUTPUTS", 1, "y")
    assert client.execute_command("AI.TENSORGET", "y", "VALUES") == [1, 2]
    written = [name for name in os.listdir(server.dir) if re.match(r"onnxruntime_profile", name)]
    assert written == [], written
