"""The shim's fast paths (module/fastpath.c, module/dagpath.c) against the general path, command for command.

Two servers with the same keys: one as shipped, one with REDISAI_GENERAL_PATH_ONLY=1 in its environment,
where every command takes the Python parse. Generated AI.TENSORSET, AI.TENSORGET, AI.MODELEXECUTE and DAG
commands (fuzz_grammar's, DAGs mostly of the fast form and TENSORSETs of ~64 KiB BLOBs, valid and mutated) go to both; each reply and the keys after each command must be
the same.
"""

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fuzz_grammar
from resp import RawConnection
from server import RedisServer

LONG_TIMEOUT = b"60000"  # a generated TIMEOUT that could pass on one server and not the other, made long


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    servers = [RedisServer(tmp_path_factory.mktemp("fast")).start(),
               RedisServer(tmp_path_factory.mktemp("general"), env={"REDISAI_GENERAL_PATH_ONLY": "1"}).start()]
    connections = [RawConnection(server.port) for server in servers]
    valkey = b"server_name:valkey" in connections[0].call("INFO", "server")
    if not valkey:
        yield connections
    for connection in connections:
        connection.close()
    for server in servers:
        assert "Traceback" not in server.log()
        server.stop()
    if valkey:
        pytest.skip("Valkey hands a module's Python an emptied environment at load, so the second server would "
                    "not see REDISAI_GENERAL_PATH_ONLY and the comparison would be of the fast paths with themselves")


def blob_bytes(rng, length: int) -> bytes:
    """Bytes from a generator seeded by hypothesis's: its own lean to zeros, which fresh memory holds too,
    so a BLOB copied short or not at all could pass unseen."""
    return random.Random(rng.getrandbits(32)).randbytes(length)


def fast_form_dag(grammar) -> list:
    """A DAG mostly of the form module/dagpath.c takes: LOAD, PERSIST, ROUTING, TIMEOUT in any order,
    FLOAT TENSORSET BLOBs, TENSORGETs of any format and ONNX MODELEXECUTEs over names the DAG holds."""
    rng, names = grammar.rng, [b"t1", b"t2"]
    parts = [[b"LOAD", b"2", b"t1", b"t2"], [b"ROUTING", b"t1"], [b"TIMEOUT", LONG_TIMEOUT]]
    persist = rng.choice([b"p", b"t1", b"a"])
    if rng.random() < 0.6:
        parts.append([b"PERSIST", b"1", persist])
    rng.shuffle(parts)
    command = [rng.choice([b"AI.DAGEXECUTE", b"AI.DAGEXECUTE_RO", b"ai.dagexecute"])]
    for part in parts[: rng.randint(1, len(parts))]:
        command += part
    for _ in range(rng.randint(1, 5)):
        kind = rng.random()
        if kind < 0.35:
            name = rng.choice([b"a", b"b", b"t1", b"p"])
            command += [b"|>", b"AI.TENSORSET", name, b"FLOAT", b"2", b"BLOB", blob_bytes(rng, rng.choice([8, 8, 8, 4]))]
            names.append(name)
        elif kind < 0.65:
            command += [b"|>", b"AI.TENSORGET", rng.choice(names + [b"nope"])]
            command += rng.sample([b"META", b"BLOB", b"VALUES", b"meta", b"blob"], rng.randint(0, 2))
        else:
            output = rng.choice([b"c", b"p", b"t1", b"a"])
            command += [b"|>", b"AI.MODELEXECUTE", rng.choice([b"m_onnx", b"m_onnx", b"m_torch", b"t1"]), b"INPUTS",
                        b"2", rng.choice(names), rng.choice(names), b"OUTPUTS", b"1", output]
            names.append(output)
    return command


def large_tensorset(grammar) -> list:
    """AI.TENSORSET of a BLOB around 64 KiB (where arguments start to reach Python as views): the BLOB
    the shape's size, a few bytes off, or a shape whose byte count overflows."""
    rng = grammar.rng
    dtype, itemsize = rng.choice([(b"FLOAT", 4), (b"INT8", 1), (b"UINT16", 2), (b"DOUBLE", 8)])
    rows = rng.choice([1, 2, 16, 256])
    count = rng.randint(65536 - 64, 65536 + 64) // itemsize // rows
    length = count * rows * itemsize + rng.choice([0, 0, 0, -1, 1, itemsize])
    dims = rng.choice([(rows, count), (rows, count), (2**61, 2**61)])
    return [b"AI.TENSORSET", rng.choice([b"a", b"t1"]), dtype, *[str(d).encode() for d in dims],
            b"BLOB", blob_bytes(rng, length)]


def without_short_timeouts(command: list) -> list:
    command = list(command)
    for i, token in enumerate(command[:-1]):
        if token.upper() == b"TIMEOUT" and command[i + 1].isdigit() and 0 < int(command[i + 1]) < int(LONG_TIMEOUT):
            command[i + 1] = LONG_TIMEOUT
    return command


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(rng=st.randoms(use_true_random=False))
def test_fast_paths_answer_as_the_general_path(pair, rng):
    fast, general = pair
    for raw in pair:
        raw.call("FLUSHALL")
        fuzz_grammar.setup(raw.call)
    grammar = fuzz_grammar.Grammar(rng)
    for _ in range(10):
        command = grammar.pick([grammar.tensorset, grammar.tensorget, grammar.modelexecute, grammar.dag,
                                lambda: fast_form_dag(grammar), lambda: fast_form_dag(grammar),
                                lambda: large_tensorset(grammar)])()
        command = without_short_timeouts(grammar.mutate(command) if rng.random() < 0.5 else command)
        assert fast.call(*command) == general.call(*command), command
        assert fast.keyspace() == general.keyspace(), command
