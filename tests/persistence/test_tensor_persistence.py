"""Tensors survive DEBUG RELOAD, restarts from RDB and AOF, DUMP/RESTORE, and reach replicas."""

import numpy as np
import pytest

import rdb_payloads
from server import start_replica, wait_for_persistence

# The payload RedisAI 1.2 produced for an INT32 tensor of shape [2, 1] holding 1 and 2.
REDISAI_INT32_PAYLOAD = bytes.fromhex(
    "07 81 008fd310d48e4404 0200 0220 0202 0202 0201 0508 0100000002000000 00 0900 566979ab34bedd82".replace(" ", ""))


def fill(client):
    """One tensor of every dtype, with digests to compare later."""
    rng = np.random.default_rng(3)
    client.execute_command("AI.TENSORSET", "f", "FLOAT", 2, 3, "BLOB", rng.standard_normal((2, 3)).astype(np.float32).tobytes())
    client.execute_command("AI.TENSORSET", "d", "DOUBLE", 4, "BLOB", rng.standard_normal(4).tobytes())
    for name in ("INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16"):
        client.execute_command("AI.TENSORSET", name.lower(), name, 2, 2, "VALUES", 1, 2, 3, 4)
    client.execute_command("AI.TENSORSET", "b", "BOOL", 3, "VALUES", 1, 0, 1)
    client.execute_command("AI.TENSORSET", "s", "STRING", 2, "VALUES", "hello", "world")
    client.execute_command("AI.TENSORSET", "big", "FLOAT", 512, 512)
    return snapshot(client)


def snapshot(client):
    keys = sorted(client.keys())
    return {key: (client.execute_command("DEBUG", "DIGEST-VALUE", key)[0],
                  client.execute_command("AI.TENSORGET", key, "META", "BLOB")) for key in keys}


def test_debug_reload(r):
    before = fill(r)
    assert r.execute_command("DEBUG", "RELOAD") == b"OK"
    assert snapshot(r) == before


def test_restart_from_rdb(new_server):
    server = new_server()
    before = fill(server.client())
    server.restart(save=True)
    assert snapshot(server.client()) == before


@pytest.mark.parametrize("preamble", ["yes", "no"])
def test_restart_from_aof_after_rewrite(new_server, preamble):
    server = new_server(config=("--appendonly", "yes", "--aof-use-rdb-preamble", preamble))
    client = server.client()
    fill(client)
    client.bgrewriteaof()
    wait_for_persistence(client)
    client.execute_command("AI.TENSORSET", "after", "INT32", 1, "VALUES", 7)  # in the incremental AOF
    before = snapshot(client)
    server.restart(save=False)
    assert snapshot(server.client()) == before


def test_dump_restore_round_trip(r):
    before = fill(r)
    for key in list(before):
        payload = r.dump(key)
        r.restore(key + b"_copy", 0, payload)
        assert r.execute_command("DEBUG", "DIGEST-VALUE", key + b"_copy")[0] == before[key][0]


def test_dump_writes_redisai_layout_4(r):
    r.execute_command("AI.TENSORSET", "t", "INT32", 2, 1, "VALUES", 1, 2)
    ours = r.dump("t")
    # Same bytes as RedisAI up to the RDB version and CRC that Redis appends.
    assert ours[:-10] == REDISAI_INT32_PAYLOAD[:-10]


def test_crc_helper_matches_redisai_payload():
    assert rdb_payloads.tensor_v4(0, 32, [2, 1], b"\x01\0\0\0\x02\0\0\0") == REDISAI_INT32_PAYLOAD


def test_restore_redisai_payloads(r):
    r.restore("v4", 0, REDISAI_INT32_PAYLOAD)
    assert r.execute_command("AI.TENSORGET", "v4", "META", "VALUES") == [
        b"dtype", b"INT32", b"shape", [2, 1], b"values", [1, 2]]
    data = np.array([[1.5, 2.5, 3.5]], dtype=np.float32).tobytes()
    for encver in range(4):
        r.restore(f"v{encver}", 0, rdb_payloads.tensor_v0(2, 32, [1, 3], data, encver=encver), replace=True)
        assert r.execute_command("AI.TENSORGET", f"v{encver}", "META", "VALUES") == [
            b"dtype", b"FLOAT", b"shape", [1, 3], b"values", [b"1.5", b"2.5", b"3.5"]]
    strings = rdb_payloads.tensor_v4(7, 8, [2], b"str_val1\0str_val2\0", offsets=[0, 9])
    r.restore("s", 0, strings)
    assert r.execute_command("AI.TENSORGET", "s", "META", "VALUES") == [
        b"dtype", b"STRING", b"shape", [2], b"values", [b"str_val1", b"str_val2"]]
    r.execute_command("AI.TENSORSET", "s2", "STRING", 2, "VALUES", "str_val1", "str_val2")
    assert r.dump("s2")[:-10] == strings[:-10]


def test_restore_of_bad_payloads_fails_cleanly(r):
    data = b"\x01\0\0\0"
    newer = rdb_payloads.payload("AI_TENSOR", 5, rdb_payloads.unsigned(0) + rdb_payloads.unsigned(32)
                                 + rdb_payloads.unsigned(1) + rdb_payloads.unsigned(1) + rdb_payloads.buffer(data))
    short = rdb_payloads.payload("AI_TENSOR", 4, rdb_payloads.unsigned(0) + rdb_payloads.unsigned(32))
    mismatched = rdb_payloads.tensor_v4(0, 32, [3], data)
    unknown_type = rdb_payloads.tensor_v4(9, 8, [1], b"\0")
    for payload in (newer, short, mismatched, unknown_type):
        with pytest.raises(Exception, match="Bad data format"):
            r.restore("bad", 0, payload)
        assert r.ping() and not r.exists("bad")


def test_replica_holds_the_same_tensors(new_server):
    master = new_server("master")
    client = master.client()
    client.execute_command("AI.TENSORSET", "early", "FLOAT", 2, "VALUES", 1, 2)  # reaches it by full sync
    replica = start_replica(new_server, master)
    replica_client = replica.client()
    before = fill(client)  # reaches it by the replication stream
    client.execute_command("AI.TENSORSET", "early", "FLOAT", 2, "VALUES", 3, 4)
    assert client.wait(1, 10000) == 1
    assert snapshot(replica_client) == snapshot(client)
    assert client.execute_command("DEBUG", "DIGEST") == replica_client.execute_command("DEBUG", "DIGEST")
    assert len(before) > 5
