"""Packs: runs waiting on a queue go to the executor in one request (queues.DeviceQueue._pack,
executors.run_pack), and each still ends as if it ran alone: its own outputs, its own error, its own deadline.
A run that brings the executor down answers the cause; the runs packed with it are sent again to the new
executor and answer their own outputs.

Each test holds the queue's one worker with a run that never ends (TIMEOUT 1000: answered TIMEDOUT at 1 s,
its executor killed just after), queues the runs under test behind it until INFO shows them all waiting,
and so gets them taken as one pack when the worker is free again."""

import threading

import numpy as np
import pytest
import redis

import model_fixtures as mf
from resp import Error, RawConnection
from server import wait_for

UNCHECKED = {"REDISAI_TEST_SKIP_ALLOWLISTS": "1"}  # the allow-lists off: the TF abort reaches TensorFlow


def _executor_restarts(client, cause: str) -> int:
    return client.info("ai")[f"ai_executors_restarts_{cause}"]


def _queue(client, field: str) -> int:
    return client.info("ai")[f"ai_queue_CPU_{field}"]


def _packed_behind_a_busy_worker(server, client, runs: list[tuple]) -> list:
    """Sends `runs` (command tuples), each on its own connection, while the worker is held; the replies."""
    client.execute_command("AI.TENSORSET", "x0", "FLOAT", 1, "VALUES", 0)
    holder = RawConnection(server.port)
    holder.send("AI.MODELEXECUTE", "forever", "INPUTS", 1, "x0", "OUTPUTS", 1, "never", "TIMEOUT", 1000)
    wait_for(lambda: _queue(client, "running") == 1, message="the worker held")
    connections = [RawConnection(server.port) for _ in runs]
    try:
        for connection, run in zip(connections, runs):
            connection.send(*run)
        wait_for(lambda: _queue(client, "waiting") == len(runs), message="the runs queued behind it")
        assert holder.read() == b"TIMEDOUT"
        return [connection.read() for connection in connections]
    finally:
        for connection in [holder, *connections]:
            connection.close()


def _store_forever(client) -> None:
    client.execute_command("AI.MODELSTORE", "forever", "TORCH", "CPU", "BLOB", mf.torch_forever())


def test_packed_runs_each_answer_their_own_outputs(new_server):
    server = new_server()
    client = server.client()
    _store_forever(client)
    client.execute_command("AI.MODELSTORE", "mul", "ONNX", "CPU", "BLOB", mf.onnx_mul())
    client.execute_command("AI.MODELSTORE", "add", "TORCH", "CPU", "BLOB", mf.torch_add_mul())
    runs = []
    for i in range(6):
        client.execute_command("AI.TENSORSET", f"in{i}", "FLOAT", 2, "VALUES", i, i + 1)
        model = "mul" if i % 2 == 0 else "add"
        runs.append(("AI.MODELEXECUTE", model, "INPUTS", 2, f"in{i}", f"in{i}", "OUTPUTS", 1, f"out{i}"))
    packed_before = _queue(client, "packed")
    assert _packed_behind_a_busy_worker(server, client, runs) == [b"OK"] * 6
    assert _queue(client, "packed") - packed_before == 6
    for i in range(6):
        values = [float(v) for v in client.execute_command("AI.TENSORGET", f"out{i}", "VALUES")]
        expected = [x * x + (0 if i % 2 == 0 else x) for x in (i, i + 1)]  # mul: x*x; add: x*x + x
        assert values == expected, (i, values)
    assert client.info("ai")["ai_executors_restarts_deadline"] == 1  # the holder's, and nothing else


def test_a_crash_in_a_pack_answers_its_own_run_and_the_others_run_again(new_server):
    import hostile_tf_fixtures as htf

    server = new_server(env=UNCHECKED)
    client = server.client()
    _store_forever(client)
    client.execute_command("AI.MODELSTORE", "mul", "ONNX", "CPU", "BLOB", mf.onnx_mul())
    client.execute_command("AI.MODELSTORE", "abort", "TF", "CPU", "INPUTS", 1, "x", "OUTPUTS", 1, "y",
                           "BLOB", htf.lrn_grad())
    client.execute_command("AI.TENSORSET", "x", "FLOAT", 9, "VALUES", *range(9))
    client.execute_command("AI.TENSORSET", "a", "FLOAT", 2, "VALUES", 2, 3)
    mul = ("AI.MODELEXECUTE", "mul", "INPUTS", 2, "a", "a", "OUTPUTS", 1)
    replies = _packed_behind_a_busy_worker(server, client, [
        (*mul, "before"), ("AI.MODELEXECUTE", "abort", "INPUTS", 1, "x", "OUTPUTS", 1, "y"), (*mul, "after")])
    assert replies[0] == b"OK" and replies[2] == b"OK", replies
    assert isinstance(replies[1], Error) and b"crashed its executor (SIGABRT)" in replies[1], replies[1]
    for key in ("before", "after"):
        assert client.execute_command("AI.TENSORGET", key, "VALUES") == [b"4", b"9"]
    assert client.exists("y") == 0
    assert _executor_restarts(client, "crash") == 1
    assert client.info("ai")["ai_executors_quarantined"] == 0


def test_a_run_past_its_deadline_in_a_pack_is_stopped_and_the_others_run_again(new_server):
    server = new_server(module_args=("MODEL_EXECUTION_TIMEOUT", "1000"))
    client = server.client()
    _store_forever(client)
    client.execute_command("AI.MODELSTORE", "mul", "ONNX", "CPU", "BLOB", mf.onnx_mul())
    client.execute_command("AI.TENSORSET", "a", "FLOAT", 2, "VALUES", 2, 3)
    mul = ("AI.MODELEXECUTE", "mul", "INPUTS", 2, "a", "a", "OUTPUTS", 1)
    replies = _packed_behind_a_busy_worker(server, client, [
        (*mul, "before"), ("AI.MODELEXECUTE", "forever", "INPUTS", 1, "a", "OUTPUTS", 1, "z"), (*mul, "after")])
    assert replies[0] == b"OK" and replies[2] == b"OK", replies
    assert isinstance(replies[1], Error) and b"stopped at its deadline (MODEL_EXECUTION_TIMEOUT 1000 ms)" \
        in replies[1], replies[1]
    for key in ("before", "after"):
        assert client.execute_command("AI.TENSORGET", key, "VALUES") == [b"4", b"9"]
    assert _executor_restarts(client, "deadline") == 2  # the holder's and the packed endless run's


def test_packed_outputs_larger_than_the_arena_are_answered_over_several_requests(new_server):
    """Three runs of 600 KB outputs each: the executor's 1 MiB output arena holds one at a time, so the pack
    is answered in parts (the rest sent again), and every run gets its own values."""
    server = new_server()
    client = server.client()
    _store_forever(client)
    client.execute_command("AI.MODELSTORE", "mul", "ONNX", "CPU", "BLOB", mf.onnx_mul())
    size = 150_000
    runs = []
    for i in range(3):
        values = np.arange(size, dtype=np.float32) + i
        client.execute_command("AI.TENSORSET", f"big{i}", "FLOAT", size, "BLOB", values.tobytes())
        runs.append(("AI.MODELEXECUTE", "mul", "INPUTS", 2, f"big{i}", f"big{i}", "OUTPUTS", 1, f"square{i}"))
    assert _packed_behind_a_busy_worker(server, client, runs) == [b"OK"] * 3
    for i in range(3):
        values = np.arange(size, dtype=np.float32) + i
        got = np.frombuffer(client.execute_command("AI.TENSORGET", f"square{i}", "BLOB"), np.float32)
        assert np.array_equal(got, values * values), i


@pytest.mark.parametrize("clients", [8])
def test_concurrent_clients_get_their_own_outputs(new_server, clients):
    """Many clients at once (packs of whatever is waiting): every reply is the client's own product."""
    server = new_server()
    client = server.client()
    client.execute_command("AI.MODELSTORE", "mul", "ONNX", "CPU", "BLOB", mf.onnx_mul())
    failures = []

    def work(index: int) -> None:
        db = redis.Redis(port=server.port)
        for round_ in range(40):
            value = index * 100 + round_
            db.execute_command("AI.TENSORSET", f"in{index}", "FLOAT", 1, "VALUES", value)
            db.execute_command("AI.MODELEXECUTE", "mul", "INPUTS", 2, f"in{index}", f"in{index}",
                               "OUTPUTS", 1, f"out{index}")
            got = float(db.execute_command("AI.TENSORGET", f"out{index}", "VALUES")[0])
            if got != float(np.float32(value) * np.float32(value)):
                failures.append((index, value, got))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures[:5]


def test_a_run_whose_timeout_passes_in_its_pack_is_not_started_and_nothing_is_killed(new_server):
    """A run packed behind a slow one whose client's TIMEOUT passes before the executor reaches it is answered
    NOT_STARTED by the executor, as a queued run past its TIMEOUT is never started: no kill, no restart, and
    its model not counted towards quarantine (a run that merely started late brought nothing down)."""
    server = new_server(module_args=("QUEUE_NEWEST_FIRST_AFTER_MS", "0"))  # the pack in arrival order
    client = server.client()
    _store_forever(client)
    client.execute_command("AI.MODELSTORE", "slow", "ONNX", "CPU", "BLOB", mf.onnx_slow())
    client.execute_command("AI.MODELSTORE", "mul", "ONNX", "CPU", "BLOB", mf.onnx_mul())
    client.execute_command("AI.TENSORSET", "a", "FLOAT", 2, "VALUES", 2, 3)
    skipped_before = client.info("ai")["ai_runs_skipped_deadline"]
    packed_before = _queue(client, "packed")
    # Taken as one pack when the holder's TIMEOUT ends it (~1.1 s after they are sent), before the last one's
    # 2.5 s TIMEOUT; the executor reaches that one after the holder's executor is replaced and the two slow
    # runs (1.6-2 s each), past it.
    slow = ("AI.MODELEXECUTE", "slow", "INPUTS", 1, "a", "OUTPUTS", 1)
    replies = _packed_behind_a_busy_worker(server, client, [
        (*slow, "slow1"), (*slow, "slow2"),
        ("AI.MODELEXECUTE", "mul", "INPUTS", 2, "a", "a", "OUTPUTS", 1, "late", "TIMEOUT", 2500)])
    assert replies == [b"OK", b"OK", b"TIMEDOUT"], replies
    assert client.exists("late") == 0
    info = client.info("ai")
    assert info["ai_queue_CPU_packed"] - packed_before == 3
    assert info["ai_runs_skipped_deadline"] == skipped_before + 1
    assert info["ai_executors_restarts_deadline"] == 1  # the holder's, and nothing else
    assert info["ai_executors_quarantined"] == 0
    assert client.execute_command("AI.MODELEXECUTE", "mul", "INPUTS", 2, "a", "a", "OUTPUTS", 1, "late") == b"OK"
