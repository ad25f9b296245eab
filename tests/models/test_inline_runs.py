"""Short model runs on Redis's main thread (execution/inline.py): which runs go inline, and that they answer,
store, replicate and count as queued runs do."""

import pytest
import redis

import model_fixtures as mf
from server import start_replica, wait_for

from production.test_faults import run_async

# A bound no run of the tiny model reaches on any machine: these tests are about the rules, not the clock.
ANY_DURATION = ("INLINE_RUN_MAX_US", "60000000")
RUN = ("AI.MODELEXECUTE", "m", "INPUTS", 2, "a", "b", "OUTPUTS", 1, "c")
CREDIT_NEEDED = 16


def _inline_runs(client) -> int:
    return client.info("ai")["ai_runs_inline"]


def _store_inputs(client):
    client.execute_command("AI.TENSORSET", "a", "FLOAT", 2, "VALUES", 2, 3)
    client.execute_command("AI.TENSORSET", "b", "FLOAT", 2, "VALUES", 3, 5)


def _store(client, backend="ONNX", blob=None):
    client.execute_command("AI.MODELSTORE", "m", backend, "CPU", "BLOB", blob or mf.onnx_mul())
    _store_inputs(client)


def test_a_model_whose_runs_were_short_runs_inline(new_server):
    """After CREDIT_NEEDED short runs on the worker, runs of the same input shapes run on the main thread: the
    same reply, outputs, AI.INFO counts, replication and keyspace event as a queued run."""
    master = new_server(module_args=ANY_DURATION, config=("--notify-keyspace-events", "KEA"))
    client = master.client()
    replica = start_replica(new_server, master).client()
    _store(client)
    for _ in range(CREDIT_NEEDED):
        assert client.execute_command(*RUN) == b"OK"
    assert _inline_runs(client) == 0
    events = client.pubsub(ignore_subscribe_messages=True)
    events.subscribe("__keyspace@0__:c")
    client.delete("c")
    for _ in range(4):
        assert client.execute_command(*RUN) == b"OK"
    assert _inline_runs(client) == 4
    assert client.execute_command("AI.TENSORGET", "c", "VALUES") == [b"6", b"15"]
    assert client.execute_command("AI.MODELRUN", "m", "INPUTS", "a", "b", "OUTPUTS", "c") == b"OK"  # the old form too
    assert _inline_runs(client) == 5
    info = client.execute_command("AI.INFO", "m")
    assert info[info.index(b"calls") + 1] == CREDIT_NEEDED + 5 and info[info.index(b"errors") + 1] == 0
    wait_for(lambda: replica.exists("c") and replica.execute_command("AI.TENSORGET", "c", "VALUES") == [b"6", b"15"],
             message="the inline run's output on the replica")
    seen = []
    wait_for(lambda: seen.append(events.get_message(timeout=0.1)) or len([m for m in seen if m]) >= 2,
             message="the keyspace events")
    assert [m["data"] for m in seen if m][:2] == [b"del", b"ai.tensorset"]
    events.close()
    # A key of another type as output: WRONGTYPE, as from the queue, and the key keeps its value.
    client.set("s", "v")
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        client.execute_command("AI.MODELEXECUTE", "m", "INPUTS", 2, "a", "b", "OUTPUTS", 1, "s")
    assert client.get("s") == b"v" and _inline_runs(client) == 6


def test_other_shapes_queue_until_their_own_runs_were_short(new_server):
    client = new_server(module_args=ANY_DURATION).client()
    _store(client)
    for _ in range(CREDIT_NEEDED):
        client.execute_command(*RUN)
    client.execute_command("AI.TENSORSET", "a", "FLOAT", 3, "VALUES", 1, 2, 3)
    client.execute_command("AI.TENSORSET", "b", "FLOAT", 3, "VALUES", 1, 2, 3)
    client.execute_command(*RUN)
    assert _inline_runs(client) == 0


@pytest.mark.parametrize("case", ["off", "torch", "batching"])
def test_runs_that_stay_queued(new_server, case):
    """INLINE_RUN_MAX_US 0; TorchScript (a run's time is not set by its shapes); a model that batches."""
    client = new_server(module_args=("INLINE_RUN_MAX_US", "0") if case == "off" else ANY_DURATION).client()
    if case == "torch":
        _store(client, "TORCH", mf.torch_add_mul())
    elif case == "batching":
        client.execute_command("AI.MODELSTORE", "m", "ONNX", "CPU", "BATCHSIZE", 4, "BLOB", mf.onnx_mul())
        _store_inputs(client)
    else:
        _store(client)
    for _ in range(CREDIT_NEEDED + 4):
        assert client.execute_command(*RUN) == b"OK"
    assert _inline_runs(client) == 0


def test_a_run_never_goes_inline_past_a_queued_one(new_server):
    """With a run waiting on the queue, the short model's run queues behind it (and answers after it)."""
    server = new_server(module_args=(*ANY_DURATION, "INTRA_OP_PARALLELISM", "1", "QUEUE_NEWEST_FIRST_AFTER_MS", "0"))
    client = server.client()
    _store(client)
    client.execute_command("AI.MODELSTORE", "slow", "TORCH", "CPU", "BLOB", mf.torch_slow())
    client.execute_command("AI.TENSORSET", "x", "FLOAT", 2, "VALUES", 1, 2)
    for _ in range(CREDIT_NEEDED):
        client.execute_command(*RUN)
    slow = [run_async(server, "AI.MODELEXECUTE", "slow", "INPUTS", 1, "x", "OUTPUTS", 1, f"s{i}") for i in range(2)]
    wait_for(lambda: client.info("ai")["ai_queue_CPU_waiting"] == 1, message="a slow run waiting")
    assert client.execute_command(*RUN) == b"OK"
    assert _inline_runs(client) == 0 and client.exists("s0", "s1") == 2  # answered after both slow runs
    for thread, result in slow:
        thread.join()
        assert result["reply"] == b"OK"


def test_a_dag_of_short_runs_runs_inline(new_server):
    """A DAG whose model ops read tensors it already holds runs on the main thread, with the reply it has
    from the queue; one whose op reads another op's output is queued whole."""
    client = new_server(module_args=ANY_DURATION).client()
    _store(client)
    for _ in range(CREDIT_NEEDED):
        client.execute_command(*RUN)
    dag = ("AI.DAGEXECUTE", "LOAD", 1, "b", "|>", "AI.TENSORSET", "x", "FLOAT", 2, "VALUES", 2, 3,
           "|>", "AI.MODELEXECUTE", "m", "INPUTS", 2, "x", "b", "OUTPUTS", 1, "y", "|>", "AI.TENSORGET", "y", "VALUES")
    assert client.execute_command(*dag) == [b"OK", b"OK", [b"6", b"15"]]  # LOAD has no reply
    assert _inline_runs(client) == 1
    chained = ("AI.DAGEXECUTE", "LOAD", 2, "a", "b", "PERSIST", 1, "z", "|>",
               "AI.MODELEXECUTE", "m", "INPUTS", 2, "a", "b", "OUTPUTS", 1, "y", "|>",
               "AI.MODELEXECUTE", "m", "INPUTS", 2, "y", "b", "OUTPUTS", 1, "z")
    assert client.execute_command(*chained) == [b"OK", b"OK"]
    assert _inline_runs(client) == 1 and client.execute_command("AI.TENSORGET", "z", "VALUES") == [b"18", b"75"]
    # A failing op (wrong input type) stops the DAG as on the queue: its error, then NA.
    bad = ("AI.DAGEXECUTE", "LOAD", 1, "b", "|>", "AI.TENSORSET", "x", "INT32", 2, "VALUES", 2, 3,
           "|>", "AI.MODELEXECUTE", "m", "INPUTS", 2, "x", "b", "OUTPUTS", 1, "y", "|>", "AI.TENSORGET", "y", "VALUES")
    reply = client.execute_command(*bad)
    assert reply[0] == b"OK" and isinstance(reply[1], redis.ResponseError) and reply[2] == b"NA"
