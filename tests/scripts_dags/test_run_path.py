"""The one run path (commands/runs.py, module/outcome.c): every run command's outputs are written,
replicated as `AI.TENSORSET key TYPE dims... BLOB data` and announced the same way, whichever command and
whichever way its outcome is applied (prepared by the worker, or at once on the main thread); TENSORSET is
replicated as sent."""

from __future__ import annotations

import numpy as np
import pytest
import redis

import model_fixtures as mf
from server import wait_for

SCRIPT = """
def double(tensors: List[Tensor], keys: List[str], args: List[str]):
    return tensors[0] * 2.0
"""
LEGACY_SCRIPT = "def twice(a):\n    return a * 2\n"
FLOATS = np.array([2, 3], np.float32)


def _resp_commands(data: bytes) -> list[list[bytes]]:
    """The commands of an AOF (RESP arrays of bulk strings)."""
    commands, i = [], 0
    while i < len(data):
        assert data[i:i + 1] == b"*", data[i:i + 40]
        end = data.index(b"\r\n", i)
        count, i = int(data[i + 1:end]), end + 2
        command = []
        for _ in range(count):
            end = data.index(b"\r\n", i)
            length = int(data[i + 1:end])
            command.append(data[end + 2:end + 2 + length])
            i = end + 2 + length + 2
        commands.append(command)
    return commands


def _written(server) -> list[list[bytes]]:
    """AI.TENSORSET commands the AOF received (what replicas receive too)."""
    aof = b"".join(path.read_bytes() for path in sorted((server.dir / "appendonlydir").glob("*.incr.aof")))
    return [c for c in _resp_commands(aof) if c[0].upper() == b"AI.TENSORSET"]


def test_every_run_writes_replicates_and_announces_the_same_way(new_server):
    server = new_server(config=("--appendonly", "yes", "--notify-keyspace-events", "Ed"))
    r = server.client()
    pubsub = r.pubsub()
    pubsub.subscribe("__keyevent@0__:ai.tensorset")
    pubsub.get_message(timeout=5)
    r.execute_command("AI.MODELSTORE", "m", "ONNX", "CPU", "BLOB", mf.onnx_mul())
    r.execute_command("AI.SCRIPTSTORE", "s", "CPU", "ENTRY_POINTS", 1, "double", "SOURCE", SCRIPT)
    r.execute_command("AI.SCRIPTSET", "legacy", "CPU", "SOURCE", LEGACY_SCRIPT)
    big = np.arange(1 << 19, dtype=np.float32)  # a DAG reply over 1 MiB: applied on the main thread
    sent = {
        "a": ("AI.TENSORSET", "a", "FLOAT", 2, "VALUES", 2, 3),  # the general parse
        "b": ("AI.TENSORSET", "b", "FLOAT", 2, "BLOB", FLOATS.tobytes()),  # module/fastpath.c
        "big": ("AI.TENSORSET", "big", "FLOAT", big.size, "BLOB", big.tobytes()),
    }
    for command in sent.values():
        assert r.execute_command(*command) == b"OK"
    runs = {
        "o1": (("AI.MODELEXECUTE", "m", "INPUTS", 2, "a", "b", "OUTPUTS", 1, "o1"), b"OK", FLOATS * FLOATS),
        "o2": (("AI.MODELEXECUTE", "m", "INPUTS", 2, "a", "b", "OUTPUTS", 1, "o2", "TIMEOUT", 60000), b"OK",
               FLOATS * FLOATS),
        "o3": (("AI.MODELRUN", "m", "INPUTS", "a", "b", "OUTPUTS", "o3"), b"OK", FLOATS * FLOATS),
        "o4": (("AI.SCRIPTEXECUTE", "s", "double", "INPUTS", 1, "a", "OUTPUTS", 1, "o4"), b"OK", FLOATS * 2),
        "o5": (("AI.SCRIPTRUN", "legacy", "twice", "INPUTS", "a", "OUTPUTS", "o5"), b"OK", FLOATS * 2),
        "o6": (("AI.DAGEXECUTE", "LOAD", 1, "a", "PERSIST", 1, "o6", "|>",
                "AI.MODELEXECUTE", "m", "INPUTS", 2, "a", "a", "OUTPUTS", 1, "o6"), [b"OK"], FLOATS * FLOATS),
        "o7": (("AI.DAGEXECUTE", "PERSIST", 1, "o7", "|>", "AI.TENSORSET", "o7", "FLOAT", 2, "VALUES", 2, 3),
               [b"OK"], FLOATS),  # no worker: applied at once
        "o8": (("AI.DAGRUN", "LOAD", 1, "big", "PERSIST", 1, "o8", "|>",
                "AI.MODELRUN", "m", "INPUTS", "big", "big", "OUTPUTS", "o8", "|>", "AI.TENSORGET", "o8", "BLOB"),
               None, big * big),
    }
    for key, (command, expected, _) in runs.items():
        answer = r.execute_command(*command)
        if expected is not None:
            assert answer == expected, key
        else:
            assert answer[0] == b"OK" and np.array_equal(np.frombuffer(answer[1], np.float32), big * big)
    for key, (_, _, data) in runs.items():
        assert np.array_equal(np.frombuffer(r.execute_command("AI.TENSORGET", key, "BLOB"), np.float32), data), key

    events = []
    wait_for(lambda: (events.extend(m["data"] for m in iter(lambda: pubsub.get_message(timeout=0.1), None)
                                    if m["type"] == "message") or True) and len(events) >= len(sent) + len(runs),
             message="ai.tensorset events")
    pubsub.close()
    assert sorted(events) == sorted(k.encode() for k in [*sent, *runs])

    wait_for(lambda: len(_written(server)) >= len(sent) + len(runs), message="the AOF's AI.TENSORSETs")
    written = {c[1].decode(): c for c in _written(server)}
    for key, command in sent.items():  # as sent
        assert written[key] == [str(arg).encode() if not isinstance(arg, bytes) else arg for arg in command], key
    for key, (_, _, data) in runs.items():  # as the output's value
        assert written[key] == [b"AI.TENSORSET", key.encode(), b"FLOAT", b"%d" % data.size, b"BLOB", data.tobytes()]


@pytest.mark.parametrize("command", [
    ("AI.MODELEXECUTE", "m", "INPUTS", 2, "a", "a", "OUTPUTS", 1, "text"),
    ("AI.MODELEXECUTE", "two", "INPUTS", 1, "a", "OUTPUTS", 2, "fresh", "text"),
    ("AI.SCRIPTEXECUTE", "s", "double", "INPUTS", 1, "a", "OUTPUTS", 1, "text"),
    ("AI.DAGEXECUTE", "PERSIST", 2, "fresh", "text", "|>", "AI.TENSORSET", "fresh", "FLOAT", 1, "VALUES", 1, "|>",
     "AI.TENSORSET", "text", "FLOAT", 1, "VALUES", 1),
])
def test_an_output_key_of_another_type_writes_nothing(r, command):
    """WRONGTYPE, answered where the outcome is applied (module/outcome.c), and no key written."""
    r.delete("fresh")
    r.execute_command("AI.MODELSTORE", "m", "ONNX", "CPU", "BLOB", mf.onnx_mul())
    r.execute_command("AI.MODELSTORE", "two", "TORCH", "CPU", "BLOB", mf.torch_two_outputs())
    r.execute_command("AI.SCRIPTSTORE", "s", "CPU", "ENTRY_POINTS", 1, "double", "SOURCE", SCRIPT)
    r.execute_command("AI.TENSORSET", "a", "FLOAT", 2, "VALUES", 2, 3)
    r.set("text", "keep")
    with pytest.raises(redis.ResponseError, match="^WRONGTYPE Operation against a key holding the wrong kind of value"):
        r.execute_command(*command)
    assert r.get("text") == b"keep" and not r.exists("fresh")
