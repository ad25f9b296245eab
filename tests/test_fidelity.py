"""Behaviours RedisAI's own flow tests showed we differed on (issue 13), each in our own test."""

import pytest
import redis

import model_fixtures as mf


def meta(client, key):
    reply = client.execute_command("AI.MODELGET", key, "META")
    return dict(zip(reply[::2], reply[1::2]))


def test_modelget_meta_right_after_restore_names_inputs_and_outputs(new_server):
    """A restored model is built on a worker; MODELGET META waits for it, as RedisAI built it first."""
    source = new_server("source")
    client = source.client()
    client.execute_command("AI.MODELSTORE", "t", "TORCH", "CPU", "TAG", "v1", "BLOB", mf.torch_add_mul())
    client.execute_command("AI.MODELSTORE", "o", "ONNX", "CPU", "BLOB", mf.onnx_mul())
    dumps = {key: client.dump(key) for key in ("t", "o")}
    fresh = new_server("fresh").client()  # no framework imported yet: the builds take a while
    for key, payload in dumps.items():
        fresh.restore(key, 0, payload)
    assert meta(fresh, "t")[b"inputs"] == [b"a", b"b"] and meta(fresh, "t")[b"outputs"] == [b""]
    assert meta(fresh, "o")[b"inputs"] == [b"a", b"b"] and meta(fresh, "o")[b"outputs"] == [b"c"]
    assert meta(fresh, "t")[b"tag"] == b"v1"


def test_modelget_meta_after_aof_rewrite_and_reload(new_server):
    server = new_server(config=("--appendonly", "yes", "--aof-use-rdb-preamble", "no"))
    client = server.client()
    client.execute_command("AI.MODELSTORE", "t", "TORCH", "CPU", "BLOB", mf.torch_add_mul())
    assert client.execute_command("BGREWRITEAOF")
    from server import wait_for_persistence
    wait_for_persistence(client)
    server.restart(save=False)
    assert meta(server.client(), "t")[b"inputs"] == [b"a", b"b"]
