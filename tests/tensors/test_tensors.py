"""AI.TENSORSET / AI.TENSORGET against a real redis-server."""

import re
import subprocess

import numpy as np
import pytest

from resp import Error

NUMERIC = {
    "FLOAT": np.float32, "DOUBLE": np.float64, "INT8": np.int8, "INT16": np.int16, "INT32": np.int32,
    "INT64": np.int64, "UINT8": np.uint8, "UINT16": np.uint16, "BOOL": np.bool_,
}
SHAPES = [(1,), (5,), (2, 3), (2, 3, 4), (1, 1, 1, 7)]


def random_array(dtype, shape, rng):
    if dtype == np.bool_:
        return rng.integers(0, 2, size=shape).astype(np.bool_)
    if np.issubdtype(dtype, np.floating):
        return rng.standard_normal(shape).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dtype)


def test_seed_walkthrough_with_redis_cli(server, r):
    def cli(*args):
        return subprocess.run(["redis-cli", "-p", str(server.port), *args], capture_output=True, text=True,
                              check=True).stdout.splitlines()

    assert cli("AI.TENSORSET", "tA", "FLOAT", "2", "VALUES", "2", "3") == ["OK"]
    assert cli("EXISTS", "tA") == ["1"]
    assert cli("TYPE", "tA") == ["AI_TENSOR"]
    assert cli("AI.TENSORGET", "tA", "META", "VALUES") == ["dtype", "FLOAT", "shape", "2", "values", "2", "3"]


@pytest.mark.parametrize("type_name", NUMERIC)
@pytest.mark.parametrize("shape", SHAPES)
def test_blob_round_trip(r, type_name, shape):
    rng = np.random.default_rng(abs(hash((type_name, shape))) % 2**32)
    array = random_array(NUMERIC[type_name], shape, rng)
    assert r.execute_command("AI.TENSORSET", "t", type_name, *shape, "BLOB", array.tobytes()) == b"OK"
    blob = r.execute_command("AI.TENSORGET", "t", "BLOB")
    np.testing.assert_array_equal(np.frombuffer(blob, dtype=NUMERIC[type_name]).reshape(shape), array)
    meta = r.execute_command("AI.TENSORGET", "t", "META")
    assert meta == [b"dtype", type_name.encode(), b"shape", list(shape)]
    default = r.execute_command("AI.TENSORGET", "t")
    assert default[:4] == meta and default[4] == b"blob" and default[5] == blob


@pytest.mark.parametrize("type_name", NUMERIC)
@pytest.mark.parametrize("shape", SHAPES[:4])
def test_values_round_trip(r, type_name, shape):
    rng = np.random.default_rng(7)
    array = random_array(NUMERIC[type_name], shape, rng)
    values = [repr(float(v)) if type_name in ("FLOAT", "DOUBLE") else int(v) for v in array.flat]
    assert r.execute_command("AI.TENSORSET", "t", type_name.lower(), *shape, "VALUES", *values) == b"OK"
    reply = r.execute_command("AI.TENSORGET", "t", "META", "VALUES")
    assert reply[:4] == [b"dtype", type_name.encode(), b"shape", list(shape)]
    assert reply[4] == b"values"
    parse = float if type_name in ("FLOAT", "DOUBLE") else int
    got = np.array([parse(v) for v in reply[5]]).astype(NUMERIC[type_name]).reshape(shape)
    np.testing.assert_array_equal(got, array)
    blob = r.execute_command("AI.TENSORGET", "t", "BLOB")
    np.testing.assert_array_equal(np.frombuffer(blob, dtype=NUMERIC[type_name]).reshape(shape), array)


def test_integer_values_replied_as_integers_and_floats_as_strings(r):
    r.execute_command("AI.TENSORSET", "i", "INT32", 2, "VALUES", 1, -2)
    assert r.execute_command("AI.TENSORGET", "i", "VALUES") == [1, -2]
    r.execute_command("AI.TENSORSET", "f", "FLOAT", 2, "VALUES", 1, 2.5)
    assert r.execute_command("AI.TENSORGET", "f", "VALUES") == [b"1", b"2.5"]


def test_full_integer_ranges_accepted(r):
    # RedisAI rejected every negative VALUES element; we accept each type's whole range.
    r.execute_command("AI.TENSORSET", "t", "INT8", 2, "VALUES", -128, 127)
    assert r.execute_command("AI.TENSORGET", "t", "VALUES") == [-128, 127]
    r.execute_command("AI.TENSORSET", "t", "INT64", 2, "VALUES", -(2**63), 2**63 - 1)
    assert r.execute_command("AI.TENSORGET", "t", "VALUES") == [-(2**63), 2**63 - 1]
    r.execute_command("AI.TENSORSET", "t", "UINT16", 2, "VALUES", 0, 65535)
    assert r.execute_command("AI.TENSORGET", "t", "VALUES") == [0, 65535]


def test_string_tensors(r):
    assert r.execute_command("AI.TENSORSET", "s", "STRING", 2, "VALUES", "str_val1", "str_val2\0") == b"OK"
    assert r.execute_command("AI.TENSORGET", "s", "VALUES") == [b"str_val1", b"str_val2"]
    assert r.execute_command("AI.TENSORGET", "s", "BLOB") == b"str_val1\0str_val2\0"
    r.execute_command("AI.TENSORSET", "s2", "STRING", 1, 3, "BLOB", b"a\0\0bc\0")
    assert r.execute_command("AI.TENSORGET", "s2", "META", "VALUES") == [
        b"dtype", b"STRING", b"shape", [1, 3], b"values", [b"a", b"", b"bc"]]


def test_no_data_means_zeros(r):
    r.execute_command("AI.TENSORSET", "z", "INT16", 2, 2)
    assert r.execute_command("AI.TENSORGET", "z", "VALUES") == [0, 0, 0, 0]
    r.execute_command("AI.TENSORSET", "z", "STRING", 2)
    assert r.execute_command("AI.TENSORGET", "z", "VALUES") == [b"", b""]


def test_scalar_without_dims(r):
    r.execute_command("AI.TENSORSET", "s", "FLOAT", "VALUES", 5)
    assert r.execute_command("AI.TENSORGET", "s", "META", "VALUES") == [b"dtype", b"FLOAT", b"shape", [], b"values", [b"5"]]


def test_overwrite_and_keywords_case_insensitive(r):
    r.execute_command("AI.TENSORSET", "t", "FLOAT", 1, "values", 1)
    r.execute_command("ai.tensorset", "t", "double", 2, "blob", np.array([3, 4], np.float64).tobytes())
    assert r.execute_command("AI.TENSORGET", "t", "meta", "values") == [
        b"dtype", b"DOUBLE", b"shape", [2], b"values", [b"3", b"4"]]


ORIGINAL = ("FLOAT", 2, "VALUES", 1, 2)
SET_ERRORS = [
    (("k", "FLOAT"), b"ERR wrong number of arguments for 'AI.TENSORSET' command"),
    (("k", "COMPLEX64", 2), b"ERR invalid data type"),  # FLOAT16 and BFLOAT16 are types (ours)
    (("k", "FLOAT", 0), b"ERR invalid or negative value found in tensor shape"),
    (("k", "FLOAT", -2), b"ERR invalid or negative value found in tensor shape"),
    (("k", "FLOAT", "two"), b"ERR invalid or negative value found in tensor shape"),
    (("k", "FLOAT", "1.5"), b"ERR invalid or negative value found in tensor shape"),
    (("k", "FLOAT", 2, "BLOB"), b"ERR a single binary string should come after the BLOB argument in 'AI.TENSORSET' command"),
    (("k", "FLOAT", 1, "BLOB", b"\0" * 4, b"x"), b"ERR a single binary string should come after the BLOB argument in 'AI.TENSORSET' command"),
    (("k", "FLOAT", 2, "VALUES", 1), b"ERR wrong number of values was given in 'AI.TENSORSET' command"),
    (("k", "FLOAT", 2, "VALUES"), b"ERR wrong number of values was given in 'AI.TENSORSET' command"),
    (("k", "FLOAT", 2, "VALUES", 1, 2, 3), b"ERR wrong number of values was given in 'AI.TENSORSET' command"),
    (("k", "FLOAT", 2, "VALUES", 1, "x"), b"ERR invalid value"),
    (("k", "FLOAT", 1, "VALUES", "nan"), b"ERR invalid value"),
    (("k", "INT32", 1, "VALUES", "1.87"), b"ERR invalid value"),
    (("k", "INT8", 1, "VALUES", 128), b"ERR invalid value"),
    (("k", "INT8", 1, "VALUES", -129), b"ERR invalid value"),
    (("k", "UINT8", 1, "VALUES", -1), b"ERR invalid value"),
    (("k", "UINT16", 1, "VALUES", 65536), b"ERR invalid value"),
    (("k", "BOOL", 1, "VALUES", 2), b"ERR invalid value"),
    (("k", "INT64", 1, "VALUES", 2**63), b"ERR invalid value"),
    (("k", "FLOAT", 2, "BLOB", b"\0" * 7), b"ERR data length does not match tensor shape and type"),
    (("k", "INT64", 2, "BLOB", b"\0" * 9), b"ERR data length does not match tensor shape and type"),
    (("k", "BOOL", 2, "BLOB", b"\x01\x02"), b"ERR BOOL tensor elements must be 0 or 1"),
    (("k", "STRING", 2, "BLOB", b"a\0b"), b"ERR Number of string elements in data blob does not match tensor length"),
    (("k", "STRING", 2, "BLOB", b"a\0b\0c\0"), b"ERR Number of string elements in data blob does not match tensor length"),
    (("k", "STRING", 1, "VALUES", b"a\0b"), b"ERR C-string value contains null character"),
    (("k", "FLOAT", 2**40, 2**40), b"ERR invalid or negative value found in tensor shape"),
]


@pytest.mark.parametrize("args, error", SET_ERRORS, ids=[e.decode()[4:40] + str(i) for i, (_, e) in enumerate(SET_ERRORS)])
def test_tensorset_errors_leave_key_unchanged(raw, args, error):
    assert raw.call("AI.TENSORSET", "k", *ORIGINAL) == b"OK"
    before = raw.call("AI.TENSORGET", "k", "META", "BLOB")
    assert raw.call("AI.TENSORSET", *args) == Error(error)
    assert raw.call("AI.TENSORGET", "k", "META", "BLOB") == before
    assert raw.call("PING") == b"PONG"


def test_wrongtype(raw):
    raw.call("SET", "str", "v")
    wrongtype = Error(b"WRONGTYPE Operation against a key holding the wrong kind of value")
    assert raw.call("AI.TENSORSET", "str", "FLOAT", 1, "VALUES", 1) == wrongtype
    assert raw.call("AI.TENSORSET", "str", "BOGUS", 1) == wrongtype  # before any parse error
    assert raw.call("AI.TENSORSET", "str", "FLOAT", 2, "BLOB", "x") == wrongtype
    # zeros from a shape alone: the key's type is checked before 400 MB would be allocated
    raw.call("CONFIG", "RESETSTAT")  # the memory peak too
    assert raw.call("AI.TENSORSET", "str", "FLOAT", 10000, 10000) == wrongtype
    peak = int(re.search(rb"used_memory_peak:(\d+)", raw.call("INFO", "memory")).group(1))
    assert peak < 300 * 1024 * 1024
    assert raw.call("GET", "str") == b"v"
    assert raw.call("AI.TENSORGET", "str") == wrongtype


GET_ERRORS = [
    (("AI.TENSORGET",), b"ERR wrong number of arguments for 'AI.TENSORGET' command"),
    (("AI.TENSORGET", "t", "META", "BLOB", "VALUES"), b"ERR wrong number of arguments for 'AI.TENSORGET' command"),
    (("AI.TENSORGET", "missing"), b"ERR tensor key is empty or in a different shard"),
    (("AI.TENSORGET", "t", "JSON"), b"ERR unsupported data format"),
    (("AI.TENSORGET", "t", "BLOB", "VALUES"), b"ERR both BLOB and VALUES specified"),
]


@pytest.mark.parametrize("args, error", GET_ERRORS)
def test_tensorget_errors(raw, args, error):
    raw.call("AI.TENSORSET", "t", *ORIGINAL)
    assert raw.call(*args) == Error(error)


def test_tensorget_reply_shapes(raw):
    raw.call("AI.TENSORSET", "t", "INT8", 2, "VALUES", 1, 2)
    assert raw.call("AI.TENSORGET", "t", "META") == [b"dtype", b"INT8", b"shape", [2]]
    assert raw.call("AI.TENSORGET", "t", "BLOB") == b"\x01\x02"
    assert raw.call("AI.TENSORGET", "t", "VALUES") == [1, 2]
    assert raw.call("AI.TENSORGET", "t", "BLOB", "META") == [b"dtype", b"INT8", b"shape", [2], b"blob", b"\x01\x02"]


def test_generic_key_commands(r):
    r.execute_command("AI.TENSORSET", "a", "FLOAT", 2, "VALUES", 1, 2)
    assert r.copy("a", "b")
    assert r.execute_command("AI.TENSORGET", "b", "VALUES") == [b"1", b"2"]
    r.rename("b", "c")
    assert r.execute_command("AI.TENSORGET", "c", "VALUES") == [b"1", b"2"] and not r.exists("b")
    r.execute_command("AI.TENSORSET", "a", "FLOAT", 1, "VALUES", 9)  # the copy is independent
    assert r.execute_command("AI.TENSORGET", "c", "VALUES") == [b"1", b"2"]
    assert r.pexpire("c", 50)
    r.execute_command("AI.TENSORSET", "big", "FLOAT", 1024, 256)
    assert r.memory_usage("big") >= 1024 * 256 * 4
    assert r.unlink("big") == 1 and r.delete("a") == 1
    import time
    time.sleep(0.2)
    assert not r.exists("c")
    assert r.dbsize() == 0


def test_overwriting_a_tensor_drops_its_ttl_and_frees_the_old_value(r):
    """Like SET (and RedisAI's SetValue): a new value has no TTL; the old one is freed at once."""
    r.execute_command("AI.TENSORSET", "t", "FLOAT", 1024, 1024)
    assert r.expire("t", 100) and r.ttl("t") > 0
    used = r.info("memory")["used_memory"]
    r.execute_command("AI.TENSORSET", "t", "INT8", 2, "VALUES", 1, 2)
    assert r.ttl("t") == -1
    assert r.info("memory")["used_memory"] < used - 3 * 2**20
    assert r.execute_command("AI.TENSORGET", "t", "VALUES") == [1, 2]
    r.execute_command("AI.TENSORSET", "t", "INT8", 1, "VALUES", 3)  # no TTL to drop
    assert r.ttl("t") == -1 and r.execute_command("AI.TENSORGET", "t", "VALUES") == [3]


def test_keyspace_notification(server, r):
    r.config_set("notify-keyspace-events", "Kd")
    pubsub = r.pubsub()
    pubsub.psubscribe("__keyspace@0__:*")
    pubsub.get_message(timeout=1)
    r.execute_command("AI.TENSORSET", "n", "FLOAT", 1, "VALUES", 1)
    message = pubsub.get_message(timeout=5)
    r.config_set("notify-keyspace-events", "")
    pubsub.close()
    assert message["channel"] == b"__keyspace@0__:n" and message["data"] == b"ai.tensorset"


def test_resp3_floats_are_doubles(server, r):
    client = server.client(protocol=3)
    client.execute_command("AI.TENSORSET", "f", "FLOAT", 2, "VALUES", 1, 2.5)
    assert client.execute_command("AI.TENSORGET", "f", "VALUES") == [1.0, 2.5]
    client.close()
