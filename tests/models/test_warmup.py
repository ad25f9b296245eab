"""Warm-up: a model is run on generated inputs after it is built, before it serves (execution/warmup.py)."""

import threading

import pytest
import redis

import model_fixtures as mf
from server import start_replica, wait_for


def _warmup(client) -> dict:
    info = client.info("ai")
    return {name[len("ai_warmup_"):]: value for name, value in info.items() if name.startswith("ai_warmup_")}


def _calls(client, key: str) -> int:
    info = client.execute_command("AI.INFO", key)
    return info[info.index(b"calls") + 1]


def _warm(client) -> None:
    wait_for(lambda: _warmup(client)["pending"] == 0, timeout=120, message="every model built and warm")


def test_declared_inputs_warm_a_model_before_store_answers(r):
    before = _warmup(r)
    r.execute_command("AI.MODELSTORE", "wu_mlp", "ONNX", "CPU", "BLOB", mf.onnx_mlp())
    r.execute_command("AI.MODELSTORE", "wu_lite", "TFLITE", "CPU", "BLOB", mf.tflite_mul())
    after = _warmup(r)
    assert after["done"] == before["done"] + 2 and after["pending"] == 0
    assert _calls(r, "wu_mlp") == 0  # warm-up runs are not the client's: AI.INFO counts none
    r.execute_command("AI.TENSORSET", "x", "FLOAT", 1, 4, "VALUES", 1, 2, 3, 4)
    assert r.execute_command("AI.MODELEXECUTE", "wu_mlp", "INPUTS", 1, "x", "OUTPUTS", 1, "y") == b"OK"


def test_torchscript_warms_on_the_shapes_named_at_store(new_server):
    r = new_server().client()  # its own: no earlier run of these bytes whose shapes would warm them
    before = _warmup(r)
    r.execute_command("AI.MODELSTORE", "wu_cold", "TORCH", "CPU", "BLOB", mf.torch_add_mul())
    assert _warmup(r)["skipped"] == before["skipped"] + 1  # no declared shapes, none named
    r.execute_command("AI.MODELSTORE", "wu_named", "TORCH", "CPU", "TAG", "v1", "WARMUP", 2, "FLOAT", "1,4",
                      "FLOAT", "1,4", "BLOB", mf.torch_add_mul())
    assert _warmup(r)["done"] == before["done"] + 1
    r.execute_command("AI.TENSORSET", "a", "FLOAT", 1, 4, "VALUES", 1, 2, 3, 4)
    assert r.execute_command("AI.MODELEXECUTE", "wu_named", "INPUTS", 2, "a", "a", "OUTPUTS", 1, "b") == b"OK"
    assert r.execute_command("AI.TENSORGET", "b", "VALUES") == [b"2", b"6", b"12", b"20"]
    meta = r.execute_command("AI.MODELGET", "wu_named", "META")
    assert meta[meta.index(b"tag") + 1] == b"v1"  # RedisAI's reply, field for field


@pytest.mark.parametrize("words, message", [
    (["WARMUP"], "Invalid argument for WARMUP count"),
    (["WARMUP", "x"], "Invalid argument for WARMUP count"),
    (["WARMUP", 3, "FLOAT", "1,4"], "number of WARMUP inputs does not match the number of given arguments"),
    (["WARMUP", 1, "COMPLEX", "1"], "invalid data type"),
    (["WARMUP", 1, "STRING", "1"], "WARMUP inputs cannot be STRING tensors"),
    (["WARMUP", 1, "FLOAT", "1,0"], "Invalid WARMUP shape 1,0: positive dimensions separated by commas, e.g. 1,64"),
    (["WARMUP", 1, "FLOAT", "4,a"], "Invalid WARMUP shape 4,a: positive dimensions separated by commas, e.g. 1,64"),
    (["WARMUP", 1, "DOUBLE", "100000,100000"], "WARMUP inputs larger than 268435456 bytes"),
])
def test_a_bad_warmup_is_refused_and_stores_nothing(r, words, message):
    with pytest.raises(redis.ResponseError, match=f"^{message}$"):
        r.execute_command("AI.MODELSTORE", "wu_bad", "TORCH", "CPU", *words, "BLOB", mf.torch_add_mul())
    assert not r.exists("wu_bad")


def test_a_failed_warmup_leaves_a_served_model(r):
    before = _warmup(r)
    # One input named where the model has two: the warm-up run fails, the model is stored and serves.
    r.execute_command("AI.MODELSTORE", "wu_wrong", "ONNX", "CPU", "WARMUP", 1, "FLOAT", "3", "BLOB", mf.onnx_mul())
    assert _warmup(r)["failed"] == before["failed"] + 1
    r.execute_command("AI.TENSORSET", "a", "FLOAT", 2, "VALUES", 2, 3)
    assert r.execute_command("AI.MODELEXECUTE", "wu_wrong", "INPUTS", 2, "a", "a", "OUTPUTS", 1, "c") == b"OK"


def test_warmup_survives_the_aof_and_reaches_replicas(new_server):
    master = new_server("master", config=("--appendonly", "yes", "--aof-use-rdb-preamble", "no"))
    client = master.client()
    replica = start_replica(new_server, master)
    client.execute_command("AI.MODELSTORE", "m", "TORCH", "CPU", "WARMUP", 2, "FLOAT", "1,4", "FLOAT", "1,4",
                           "BLOB", mf.torch_add_mul())
    replica_client = replica.client()
    wait_for(lambda: replica_client.exists("m"), message="the model on the replica")
    _warm(replica_client)
    assert _warmup(replica_client)["done"] == 1  # the replica warmed it from the replicated WARMUP
    client.execute_command("BGREWRITEAOF")
    wait_for(lambda: not client.info("persistence")["aof_rewrite_in_progress"]
             and not client.info("persistence").get("aof_rewrite_scheduled", 0), message="the AOF rewrite")
    master.restart(save=False)
    client = master.client()
    _warm(client)
    assert _warmup(client) == {"pending": 0, "done": 1, "failed": 0, "skipped": 0}


def test_shapes_of_earlier_runs_warm_a_reloaded_model(r):
    r.execute_command("AI.MODELSTORE", "wu_seen", "TORCH", "CPU", "BLOB", mf.torch_two_outputs())
    r.execute_command("AI.TENSORSET", "a", "FLOAT", 2, 3, "VALUES", 1, 2, 3, 4, 5, 6)
    r.execute_command("AI.MODELEXECUTE", "wu_seen", "INPUTS", 1, "a", "OUTPUTS", 2, "b", "c")
    before = _warmup(r)
    r.execute_command("DEBUG", "RELOAD")
    _warm(r)
    after = _warmup(r)
    assert after["done"] == before["done"] + 1 and after["skipped"] == before["skipped"]


def test_a_run_sent_during_the_warmup_waits_for_it(new_server):
    """After a reload, a model is rebuilt and warmed on a worker (~2 s a run here): a run sent meanwhile
    waits for it and answers, never fails. MODEL_EXECUTION_TIMEOUT far above the run: on a busy machine
    one run of the slow model can take longer than the default 5 s."""
    server = new_server(module_args=("INTRA_OP_PARALLELISM", "1", "MODEL_EXECUTION_TIMEOUT", "120000"))
    client = server.client()
    client.execute_command("AI.MODELSTORE", "slow", "ONNX", "CPU", "BLOB", mf.onnx_slow())
    client.execute_command("AI.TENSORSET", "x", "FLOAT", 2, "VALUES", 1, 2)
    client.execute_command("DEBUG", "RELOAD")
    assert _warmup(client)["pending"] == 1
    assert client.execute_command("AI.MODELEXECUTE", "slow", "INPUTS", 1, "x", "OUTPUTS", 1, "y") == b"OK"
    assert _warmup(client)["done"] == 2 and _calls(client, "slow") == 1


def test_a_model_stored_in_multi_is_warmed_on_its_queue(r):
    before = _warmup(r)
    pipe = r.pipeline(transaction=True)
    pipe.execute_command("AI.MODELSTORE", "wu_multi", "ONNX", "CPU", "BLOB", mf.onnx_mlp())
    assert pipe.execute() == [b"OK"]
    wait_for(lambda: _warmup(r)["done"] == before["done"] + 1, message="the warm-up after MULTI")
    r.execute_command("AI.TENSORSET", "x", "FLOAT", 1, 4, "VALUES", 1, 2, 3, 4)
    assert r.execute_command("AI.MODELEXECUTE", "wu_multi", "INPUTS", 1, "x", "OUTPUTS", 1, "y") == b"OK"


def test_warmup_runs_zero_turns_it_off(new_server):
    client = new_server(module_args=("WARMUP_RUNS", "0")).client()
    client.execute_command("AI.MODELSTORE", "m", "ONNX", "CPU", "BLOB", mf.onnx_mlp())
    assert _warmup(client) == {"pending": 0, "done": 0, "failed": 0, "skipped": 0}


def test_runs_sent_together_with_a_store_all_answer(r):
    """Clients running a model while it is stored again (its build and warm-up on the same queue)."""
    r.execute_command("AI.MODELSTORE", "wu_busy", "ONNX", "CPU", "BLOB", mf.onnx_mlp())
    r.execute_command("AI.TENSORSET", "x", "FLOAT", 1, 4, "VALUES", 1, 2, 3, 4)
    replies, server = [], r.connection_pool.connection_kwargs["port"]

    def run():
        client = redis.Redis(port=server)
        replies.extend(client.execute_command("AI.MODELEXECUTE", "wu_busy", "INPUTS", 1, "x", "OUTPUTS", 1, "y")
                       for _ in range(20))

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for _ in range(3):
        r.execute_command("AI.MODELSTORE", "wu_busy", "ONNX", "CPU", "BLOB", mf.onnx_mlp())
    for thread in threads:
        thread.join()
    assert replies == [b"OK"] * 60
