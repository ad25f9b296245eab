"""AI.TENSORSET's common form takes the shim's fast path (module/fastpath.c): what it stores, replies,
replicates and notifies must be what the general path does, and whatever it does not take (another
form, another type at the key, a wrong length) gets the general path's reply."""

import ml_dtypes
import numpy as np
import pytest
import redis

from server import start_replica, wait_for

FAST_TYPES = {
    "FLOAT": np.float32, "DOUBLE": np.float64, "INT8": np.int8, "INT16": np.int16, "INT32": np.int32,
    "INT64": np.int64, "UINT8": np.uint8, "UINT16": np.uint16, "FLOAT16": np.float16,
    "BFLOAT16": ml_dtypes.bfloat16,
}


@pytest.mark.parametrize("name", sorted(FAST_TYPES))
@pytest.mark.parametrize("shape", [(1,), (3, 5), (2, 1, 4)])
def test_blob_round_trips_for_every_type(r, name, shape):
    rng = np.random.default_rng(len(shape))
    array = rng.integers(0, 100, size=shape).astype(FAST_TYPES[name])
    spelled = name.lower() if len(shape) == 2 else name  # type names are case-insensitive
    assert r.execute_command("AI.TENSORSET", "t", spelled, *shape, "BLOB", array.tobytes()) == b"OK"
    dtype, got_shape, blob = r.execute_command("AI.TENSORGET", "t", "META", "BLOB")[1::2]
    assert (dtype, got_shape, blob) == (name.encode(), list(shape), array.tobytes())


@pytest.mark.parametrize("size", [65535, 65536, 1 << 20, 3 << 20])
def test_large_blobs_round_trip(r, size):
    """BLOBs from 64 KiB reach Python as views on the general path; the fast path takes them as well."""
    data = np.random.default_rng(size).integers(0, 256, size, dtype=np.uint8).tobytes()
    assert r.execute_command("AI.TENSORSET", "t", "UINT8", size // 4, 4, "BLOB", data[: size // 4 * 4]) == b"OK"
    assert r.execute_command("AI.TENSORGET", "t", "BLOB") == data[: size // 4 * 4]


def test_overwriting_frees_the_old_value(r):
    r.execute_command("AI.TENSORSET", "warm", "FLOAT", 1024, "BLOB", b"\0" * 4096)
    r.delete("warm")
    before = r.info("memory")["used_memory"]
    for i in range(2000):
        r.execute_command("AI.TENSORSET", "t", "FLOAT", 1024, "BLOB", bytes([i % 251]) * 4096)
    assert r.execute_command("AI.TENSORGET", "t", "BLOB") == bytes([1999 % 251]) * 4096
    # 2000 tensors of 4 KiB kept would be 8 MB: only the last is
    assert r.info("memory")["used_memory"] - before < 1_000_000
    assert r.dbsize() == 1


def test_overwriting_large_tensors_frees_each_at_once(r):
    """The value a large BLOB replaces is not parked with the small ones' (up to 32 of them wait for the
    next turn of the event loop; a transaction runs in one): the overwrites in one never hold more than a
    few."""
    size = 4 << 20
    r.execute_command("AI.TENSORSET", "t", "UINT8", size, "BLOB", b"\0" * size)
    with r.pipeline(transaction=True) as pipe:  # its queued commands' BLOBs are held until it ends
        for i in range(40):
            pipe.execute_command("AI.TENSORSET", "t", "UINT8", size, "BLOB", bytes([i]) * size)
            pipe.info("memory")
        replies = pipe.execute()
    assert replies[::2] == [b"OK"] * 40
    used = [info["used_memory"] for info in replies[1::2]]
    assert max(used) - used[0] < 3 * size
    assert r.execute_command("AI.TENSORGET", "t", "BLOB") == bytes([39]) * size


def test_key_of_another_type_is_untouched(r):
    r.set("s", "text")
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        r.execute_command("AI.TENSORSET", "s", "FLOAT", 2, "BLOB", b"\0" * 8)
    assert r.get("s") == b"text"


@pytest.mark.parametrize("args, message", [
    (("FLOAT", 2, "BLOB", b"\0" * 7), "data length does not match tensor shape and type"),
    (("INT8", 70000, "BLOB", b"\0" * 70001), "data length does not match tensor shape and type"),
    (("INT64", 2**61, 2**61, "BLOB", b"\0" * 8), "invalid or negative value found in tensor shape"),
    (("UINT8", 2**63 - 1, "BLOB", b"\0"), "invalid or negative value found in tensor shape"),
    (("FLOAT", 0, "BLOB", b""), "invalid or negative value found in tensor shape"),
    (("FLOAT", -1, "BLOB", b"\0" * 4), "invalid or negative value found in tensor shape"),
    (("FLOAT", "02", "BLOB", b"\0" * 8), "invalid or negative value found in tensor shape"),
    (("FLOT", 2, "BLOB", b"\0" * 8), "invalid data type"),
    (("BOOL", 2, "BLOB", b"\0\2"), "BOOL tensor elements must be 0 or 1"),
])
def test_what_the_fast_path_leaves_gets_the_general_reply(r, args, message):
    with pytest.raises(redis.ResponseError, match=message):
        r.execute_command("AI.TENSORSET", "t", *args)
    assert not r.exists("t")


def test_replicated_notified_and_in_transactions(new_server):
    master = new_server("master")
    replica = start_replica(new_server, master)
    client = master.client()
    client.config_set("notify-keyspace-events", "Kd")  # keyspace events of module types
    pubsub = client.pubsub()
    pubsub.subscribe("__keyspace@0__:t")
    wait_for(lambda: pubsub.get_message(timeout=1) is not None, message="subscribed")
    blob = np.arange(6, dtype=np.float32).tobytes()
    client.execute_command("AI.TENSORSET", "t", "FLOAT", 2, 3, "BLOB", blob)
    with client.pipeline(transaction=True) as pipe:
        pipe.execute_command("AI.TENSORSET", "u", "INT8", 2, "BLOB", b"\1\2")
        pipe.execute_command("AI.TENSORGET", "u", "BLOB")
        assert pipe.execute() == [b"OK", b"\1\2"]
    events = []

    def event_seen() -> bool:
        message = pubsub.get_message(timeout=1)
        if message and message["type"] == "message":
            events.append(message["data"])
        return bool(events)

    wait_for(event_seen, message="the keyspace event")
    assert events == [b"ai.tensorset"]
    assert client.wait(1, 10000) == 1
    replica_client = replica.client()
    assert replica_client.execute_command("AI.TENSORGET", "t", "META", "BLOB") == \
        client.execute_command("AI.TENSORGET", "t", "META", "BLOB")
    assert replica_client.execute_command("AI.TENSORGET", "u", "BLOB") == b"\1\2"
    pubsub.close()


@pytest.mark.parametrize("name", sorted(FAST_TYPES) + ["BOOL"])
def test_tensorget_blob_sends_the_stored_bytes(r, name):
    array = (np.arange(12) % 2).astype(FAST_TYPES.get(name, np.bool_)).reshape(3, 4)
    r.execute_command("AI.TENSORSET", "t", name, 3, 4, "BLOB", array.tobytes())
    assert r.execute_command("AI.TENSORGET", "t", "BLOB") == array.tobytes()
    assert r.execute_command("AI.TENSORGET", "t", "blob") == array.tobytes()


def test_tensorget_blob_of_strings_empty_tensors_and_other_keys(r):
    r.execute_command("AI.TENSORSET", "s", "STRING", 2, "VALUES", "ab", "c")
    assert r.execute_command("AI.TENSORGET", "s", "BLOB") == b"ab\0c\0"
    with pytest.raises(redis.ResponseError, match="tensor key is empty or in a different shard"):
        r.execute_command("AI.TENSORGET", "missing", "BLOB")
    r.set("text", "x")
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        r.execute_command("AI.TENSORGET", "text", "BLOB")
