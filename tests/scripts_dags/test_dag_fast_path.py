"""AI.DAGEXECUTE's fast path (module/dagpath.c) answers as the general path (commands/dag.py).

Each DAG is sent twice: as it is, in the fast form where it has one, and with one more op the fast path
never takes (an AI.TENSORSET with VALUES), which sends the whole command down the general parse. The
replies (less that op's OK) and the keys after must be the same, errors included.
"""

import numpy as np
import pytest

import model_fixtures as mf
from resp import Error

GENERAL_OP = ("|>", "AI.TENSORSET", "__general", "FLOAT", 1, "VALUES", 1)
X = np.array([2, 3], np.float32)
Y = np.array([3, 5], np.float32)


def blob(array):
    return array.tobytes()


@pytest.fixture
def keys(raw):
    raw.call("AI.MODELSTORE", "m", "ONNX", "CPU", "BLOB", mf.onnx_mul())
    raw.call("AI.TENSORSET", "x", "FLOAT", 2, "BLOB", blob(X))
    raw.call("AI.TENSORSET", "y", "FLOAT", 2, "BLOB", blob(Y))
    raw.call("SET", "text", "keep")
    return raw


def fast_and_general(raw, *command):
    """The fast form's reply and keys, then the general path's, from the same keyspace."""
    before = raw.keyspace()
    fast = raw.call(*command)
    after_fast = raw.keyspace()
    for name in set(after_fast) - set(before):
        raw.call("DEL", name)
    for name, held in before.items():  # the keys a DAG may have overwritten, back as they were
        if held != after_fast.get(name) and isinstance(held, list):
            raw.call("AI.TENSORSET", name, held[1], *held[3], "BLOB", held[5])
    assert raw.keyspace() == before
    general = raw.call(*command, *GENERAL_OP)
    if isinstance(general, list):
        assert general[-1] in (b"OK", b"NA")  # NA after a failing op
        general = general[:-1]
    return (fast, after_fast), (general, raw.keyspace())


SUCCEEDING = {
    "the bench's DAG": ("AI.DAGEXECUTE", "ROUTING", "a", "|>", "AI.TENSORSET", "a", "FLOAT", 2, "BLOB", blob(X),
                        "|>", "AI.TENSORSET", "b", "FLOAT", 2, "BLOB", blob(Y),
                        "|>", "AI.MODELEXECUTE", "m", "INPUTS", 2, "a", "b", "OUTPUTS", 1, "c",
                        "|>", "AI.TENSORGET", "c", "BLOB"),
    "load, persist, default format": ("AI.DAGEXECUTE", "LOAD", 2, "x", "y", "PERSIST", 1, "c", "|>",
                                      "AI.MODELEXECUTE", "m", "INPUTS", 2, "x", "y", "OUTPUTS", 1, "c",
                                      "|>", "AI.TENSORGET", "c"),
    "a name's latest definition": ("AI.DAGEXECUTE", "PERSIST", 1, "x", "LOAD", 1, "x",
                                   "|>", "AI.TENSORGET", "x", "VALUES",
                                   "|>", "AI.TENSORSET", "x", "FLOAT", 2, "BLOB", blob(Y),
                                   "|>", "AI.MODELEXECUTE", "m", "INPUTS", 2, "x", "x", "OUTPUTS", 1, "x",
                                   "|>", "AI.TENSORGET", "x", "META", "|>", "AI.TENSORGET", "x", "BLOB", "META",
                                   "|>", "AI.TENSORGET", "x", "META", "VALUES"),
    "any case": ("ai.dagexecute", "persist", 1, "c", "timeout", 60000, "|>",
                 "ai.tensorset", "a", "float", 2, "blob", blob(X), "|>",
                 "ai.modelexecute", "m", "inputs", 2, "a", "a", "outputs", 1, "c", "|>", "ai.tensorget", "c", "values"),
    "read-only": ("AI.DAGEXECUTE_RO", "LOAD", 1, "y", "|>", "AI.MODELEXECUTE", "m", "INPUTS", 2, "y", "y",
                  "OUTPUTS", 1, "z", "|>", "AI.TENSORGET", "z", "META", "BLOB"),
    "no model, empty ops skipped": ("AI.DAGEXECUTE", "PERSIST", 2, "a", "x", "LOAD", 1, "x", "|>", "|>",
                                    "AI.TENSORSET", "a", "INT64", 1, 2, "BLOB", np.array([7, 8], np.int64).tobytes(),
                                    "|>", "AI.TENSORGET", "a", "VALUES"),
    "a failing op persists nothing": ("AI.DAGEXECUTE", "PERSIST", 1, "c", "|>",
                                      "AI.TENSORSET", "i", "INT32", 2, "BLOB", np.array([1, 2], np.int32).tobytes(),
                                      "|>", "AI.MODELEXECUTE", "m", "INPUTS", 2, "i", "i", "OUTPUTS", 1, "c",
                                      "|>", "AI.TENSORGET", "c", "VALUES"),
    "a persisted key of another type": ("AI.DAGEXECUTE", "PERSIST", 1, "text", "|>",
                                        "AI.TENSORSET", "text", "FLOAT", 2, "BLOB", blob(X)),
    "BLOBs of 64 KiB and more": ("AI.DAGEXECUTE", "PERSIST", 1, "big", "|>",
                                 "AI.TENSORSET", "big", "FLOAT", 128, 128, "BLOB", blob(np.arange(16384, dtype=np.float32)),
                                 "|>", "AI.TENSORSET", "a", "UINT8", 1 << 20, "BLOB", b"\7" * (1 << 20),
                                 "|>", "AI.TENSORGET", "a", "META"),
}


@pytest.mark.parametrize("case", SUCCEEDING)
def test_dag_fast_path_answers_as_the_general_path(keys, case):
    fast, general = fast_and_general(keys, *SUCCEEDING[case])
    assert fast == general
    reply = fast[0]
    assert isinstance(reply, Error) or len(reply) >= 1


def test_dag_fast_path_results(keys):
    """What the fast form computes, not only that it agrees."""
    reply = keys.call(*SUCCEEDING["a name's latest definition"])
    assert reply[0] == [b"2", b"3"] and reply[1:3] == [b"OK", b"OK"]
    assert reply[3] == [b"dtype", b"FLOAT", b"shape", [2]]
    assert np.array_equal(np.frombuffer(reply[4][5], np.float32), Y * Y)
    assert reply[5][-1] == [b"9", b"25"]
    assert keys.call("AI.TENSORGET", "x", "VALUES") == [b"9", b"25"]
    failing = keys.call(*SUCCEEDING["a failing op persists nothing"])
    assert failing[0] == b"OK" and isinstance(failing[1], Error) and failing[2] == b"NA"
    assert keys.call("EXISTS", "c") == 0
    wrongtype = keys.call(*SUCCEEDING["a persisted key of another type"])
    assert wrongtype == Error(b"WRONGTYPE Operation against a key holding the wrong kind of value")
    assert keys.call("GET", "text") == b"keep"


FAILING = {
    "BLOB of another size": ("AI.DAGEXECUTE", "ROUTING", "a", "|>", "AI.TENSORSET", "a", "FLOAT", 3, "BLOB", blob(X)),
    "an input not in the DAG": ("AI.DAGEXECUTE", "ROUTING", "a", "|>",
                                "AI.MODELEXECUTE", "m", "INPUTS", 2, "a", "a", "OUTPUTS", 1, "c"),
    "a TENSORGET not in the DAG": ("AI.DAGEXECUTE", "LOAD", 1, "x", "|>", "AI.TENSORGET", "nope", "BLOB"),
    "a PERSIST key not in the DAG": ("AI.DAGEXECUTE", "PERSIST", 1, "nope", "LOAD", 1, "x", "|>",
                                     "AI.TENSORGET", "x", "BLOB"),
    "an empty model key": ("AI.DAGEXECUTE", "LOAD", 1, "x", "|>",
                           "AI.MODELEXECUTE", "nomodel", "INPUTS", 2, "x", "x", "OUTPUTS", 1, "c"),
    "a model key holding a tensor": ("AI.DAGEXECUTE", "LOAD", 1, "x", "|>",
                                     "AI.MODELEXECUTE", "x", "INPUTS", 2, "x", "x", "OUTPUTS", 1, "c"),
    "a LOAD key of another type": ("AI.DAGEXECUTE", "LOAD", 1, "text", "|>", "AI.TENSORGET", "text", "BLOB"),
    "an empty LOAD key": ("AI.DAGEXECUTE", "LOAD", 1, "nope", "|>", "AI.TENSORGET", "nope", "BLOB"),
    "counts the model does not take": ("AI.DAGEXECUTE", "LOAD", 1, "x", "|>",
                                       "AI.MODELEXECUTE", "m", "INPUTS", 1, "x", "OUTPUTS", 1, "c"),
    "TIMEOUT in a model op": ("AI.DAGEXECUTE", "LOAD", 1, "x", "|>",
                              "AI.MODELEXECUTE", "m", "INPUTS", 2, "x", "x", "OUTPUTS", 1, "c", "TIMEOUT", 5),
    "a keyword twice": ("AI.DAGEXECUTE", "LOAD", 1, "x", "LOAD", 1, "y", "|>", "AI.TENSORGET", "x", "BLOB"),
    "PERSIST in a read-only DAG": ("AI.DAGEXECUTE_RO", "PERSIST", 1, "a", "|>",
                                   "AI.TENSORSET", "a", "FLOAT", 2, "BLOB", blob(X)),
    "BLOB and VALUES": ("AI.DAGEXECUTE", "LOAD", 1, "x", "|>", "AI.TENSORGET", "x", "BLOB", "VALUES"),
    "no LOAD, PERSIST or ROUTING": ("AI.DAGEXECUTE", "TIMEOUT", 5, "|>",
                                    "AI.TENSORSET", "a", "FLOAT", 2, "BLOB", blob(X), "|>", "AI.TENSORGET", "a"),
    "a zero TIMEOUT": ("AI.DAGEXECUTE", "ROUTING", "a", "TIMEOUT", 0, "|>",
                       "AI.TENSORSET", "a", "FLOAT", 2, "BLOB", blob(X)),
    "a dim of 0": ("AI.DAGEXECUTE", "ROUTING", "a", "|>", "AI.TENSORSET", "a", "FLOAT", 0, "BLOB", b""),
    "a shape whose bytes overflow": ("AI.DAGEXECUTE", "ROUTING", "a", "|>",
                                     "AI.TENSORSET", "a", "INT64", 2**61, 2**61, "BLOB", b"\0" * 8),
    "trailing tokens after the outputs": ("AI.DAGEXECUTE", "LOAD", 1, "x", "|>",
                                          "AI.MODELEXECUTE", "m", "INPUTS", 2, "x", "x", "OUTPUTS", 1, "c", "extra"),
}


@pytest.mark.parametrize("case", FAILING)
def test_dag_fast_path_declines_to_the_general_errors(keys, case):
    before = keys.keyspace()
    (fast, after_fast), (general, after_general) = fast_and_general(keys, *FAILING[case])
    assert isinstance(fast, Error) and fast == general
    assert after_fast == after_general == before


def test_dag_fast_path_in_multi_and_lua(keys):
    keys.call("MULTI")
    assert keys.call(*SUCCEEDING["the bench's DAG"]) == b"QUEUED"
    assert keys.call("EXEC") == [Error(b"ERR Cannot run RedisAI command within a transaction or a LUA script")]
