"""Faults during execution: disconnects, deletes, FLUSHALL, SHUTDOWN and runs that never end."""

import re
import socket
import threading
import time

import pytest
import redis

import model_fixtures as mf
from resp import RawConnection
from server import wait_for

SPIN = """
def spin(tensors: List[Tensor], keys: List[str], args: List[str]):
    x = tensors[0]
    while True:
        x = x + 1.0
    return x

def double(tensors: List[Tensor], keys: List[str], args: List[str]):
    return tensors[0] * 2.0
"""


def slow_server(new_server, module_args=("INTRA_OP_PARALLELISM", "1", "MODEL_EXECUTION_TIMEOUT", "120000"), **kwargs):
    server = new_server(module_args=module_args, **kwargs)
    client = server.client()
    client.execute_command("AI.MODELSTORE", "slow", "TORCH", "CPU", "BLOB", mf.torch_slow())
    client.execute_command("AI.MODELSTORE", "fast", "ONNX", "CPU", "BLOB", mf.onnx_mul())
    client.execute_command("AI.TENSORSET", "x", "FLOAT", 2, "VALUES", 1, 2)
    return server, client


def run_async(server, *command):
    result = {}

    def target():
        try:
            result["reply"] = server.client().execute_command(*command)
        except Exception as e:  # noqa: BLE001 - the test inspects it
            result["reply"] = e
    thread = threading.Thread(target=target)
    thread.start()
    return thread, result


def test_client_disconnects_while_queued_and_running(new_server):
    server, client = slow_server(new_server)
    for _ in range(2):  # one disconnects while its run executes, the next while it waits in the queue
        sock = socket.create_connection(("127.0.0.1", server.port))
        command = [b"AI.MODELEXECUTE", b"slow", b"INPUTS", b"1", b"x", b"OUTPUTS", b"1", b"gone"]
        sock.sendall(b"*%d\r\n" % len(command) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in command))
        time.sleep(0.2)
        sock.close()
    assert client.execute_command("AI.MODELEXECUTE", "fast", "INPUTS", 2, "x", "x", "OUTPUTS", 1, "y") == b"OK"
    assert client.execute_command("AI.TENSORGET", "y", "VALUES") == [b"1", b"4"]
    assert "Traceback" not in server.log()


def test_script_and_input_changed_mid_run(new_server):
    server, client = slow_server(new_server)
    client.execute_command("AI.SCRIPTSTORE", "s", "CPU", "ENTRY_POINTS", 1, "double", "SOURCE", SPIN)
    busy, busy_result = run_async(server, "AI.MODELEXECUTE", "slow", "INPUTS", 1, "x", "OUTPUTS", 1, "y")
    time.sleep(0.2)
    queued, queued_result = run_async(server, "AI.SCRIPTEXECUTE", "s", "double", "INPUTS", 1, "x", "OUTPUTS", 1, "z")
    time.sleep(0.2)
    client.delete("s")
    client.execute_command("AI.TENSORSET", "x", "INT8", 1, "VALUES", 9)  # overwritten with another type
    busy.join()
    queued.join()
    assert busy_result["reply"] == b"OK" and queued_result["reply"] == b"OK"
    assert client.execute_command("AI.TENSORGET", "z", "VALUES") == [b"2", b"4"]  # inputs taken at call time


def test_flushall_while_clients_execute(new_server):
    server, client = slow_server(new_server)
    stop, errors = threading.Event(), []

    def work(i):
        c = server.client()
        while not stop.is_set():
            try:
                c.execute_command("AI.MODELEXECUTE", "fast", "INPUTS", 2, "x", "x", "OUTPUTS", 1, f"o{i}")
            except redis.ResponseError as e:
                if "key is empty" not in str(e):
                    errors.append(str(e))
                c.execute_command("AI.TENSORSET", "x", "FLOAT", 2, "VALUES", 1, 2)
                c.execute_command("AI.MODELSTORE", "fast", "ONNX", "CPU", "BLOB", mf.onnx_mul())

    workers = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for w in workers:
        w.start()
    for _ in range(20):
        client.flushall()
        time.sleep(0.05)
    stop.set()
    for w in workers:
        w.join()
    assert not errors and client.ping() and "Traceback" not in server.log()


def test_shutdown_with_runs_in_flight(new_server):
    server, client = slow_server(new_server)
    threads = [run_async(server, "AI.MODELEXECUTE", "slow", "INPUTS", 1, "x", "OUTPUTS", 1, f"y{i}")[0]
               for i in range(3)]
    time.sleep(0.3)
    try:
        client.shutdown(save=True)
    except redis.ConnectionError:
        pass
    assert server.process.wait(timeout=60) == 0
    for t in threads:
        t.join()
    assert "DB saved on disk" in server.log()
    server.process = None
    server.start()
    assert server.client().execute_command("AI.MODELGET", "slow", "BLOB") == mf.torch_slow()


def test_a_script_that_never_ends_meets_its_timeout(new_server):
    server = new_server()
    client = server.client()
    client.execute_command("AI.SCRIPTSTORE", "spin", "CPU:7", "ENTRY_POINTS", 2, "spin", "double", "SOURCE", SPIN)
    client.execute_command("AI.TENSORSET", "x", "FLOAT", 1, "VALUES", 1)
    start = time.perf_counter()
    assert client.execute_command("AI.SCRIPTEXECUTE", "spin", "spin", "INPUTS", 1, "x", "OUTPUTS", 1, "y",
                                  "TIMEOUT", 500) == b"TIMEDOUT"
    assert time.perf_counter() - start < 5
    # the looping worker holds only its own device queue; everything else is served
    with RawConnection(server.port) as raw:
        assert raw.call("PING") == b"PONG"
    client.execute_command("AI.SCRIPTSTORE", "d", "CPU", "ENTRY_POINTS", 1, "double", "SOURCE", SPIN)
    assert client.execute_command("AI.SCRIPTEXECUTE", "d", "double", "INPUTS", 1, "x", "OUTPUTS", 1, "z") == b"OK"
    assert client.execute_command("AI.DAGEXECUTE", "LOAD", 1, "x", "TIMEOUT", 300, "|>", "AI.SCRIPTEXECUTE",
                                  "spin", "double", "INPUTS", 1, "x", "OUTPUTS", 1, "w") == b"TIMEDOUT"
    assert not client.exists("y")
    server.stop(save=True)
    assert "DB saved on disk" in server.log()


LOOP = """
def loop(tensors: List[Tensor], keys: List[str], args: List[str]):
    x = tensors[0]
    for _ in range(int(args[0])):
        x = x + 1.0
    return x
"""


def test_runs_ending_around_their_deadline_always_get_a_reply(new_server):
    """Outcome and deadline race for the one unblock: every run answers OK or TIMEDOUT, never nothing
    (Redis 7.0 itself drops a reply when the unblock lands between its deadline and its timeout check)."""
    server = new_server(module_args=("INTRA_OP_PARALLELISM", "1"))
    client = server.client(socket_timeout=20)
    client.execute_command("AI.SCRIPTSTORE", "s", "CPU", "ENTRY_POINTS", 1, "loop", "SOURCE", LOOP)
    client.execute_command("AI.TENSORSET", "x", "FLOAT", 1, "VALUES", 1)
    start = time.perf_counter()
    client.execute_command("AI.SCRIPTEXECUTE", "s", "loop", "INPUTS", 1, "x", "ARGS", 1, 20000, "OUTPUTS", 1, "y")
    run_ms = max(1, int((time.perf_counter() - start) * 1000))
    outcomes = []
    for i in range(24):
        timeout = max(1, run_ms * (i % 8 + 4) // 8)  # from half to above the run's time
        dag = client.execute_command("AI.DAGEXECUTE", "LOAD", 1, "x", "TIMEOUT", timeout, "|>",
                                     "AI.SCRIPTEXECUTE", "s", "loop", "INPUTS", 1, "x", "ARGS", 1, 20000,
                                     "OUTPUTS", 1, "y", "|>", "AI.TENSORGET", "y", "META")
        outcomes.append("TIMEDOUT" if dag == b"TIMEDOUT" else "OK" if dag[0] == b"OK" else repr(dag))
        run = client.execute_command("AI.SCRIPTEXECUTE", "s", "loop", "INPUTS", 1, "x", "ARGS", 1, 20000,
                                     "OUTPUTS", 1, "y", "TIMEOUT", timeout)
        outcomes.append(run.decode())
    assert set(outcomes) <= {"OK", "TIMEDOUT"}, outcomes
    assert client.ping()


def _send_and_leave(port: int, *command) -> None:
    """Sends one command on a fresh connection and disconnects without reading the reply."""
    words = [w if isinstance(w, bytes) else str(w).encode() for w in command]
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"*%d\r\n" % len(words) + b"".join(b"$%d\r\n%s\r\n" % (len(w), w) for w in words))


def _calls(client, key: str) -> int:
    info = client.execute_command("AI.INFO", key)
    return info[info.index(b"calls") + 1]


def test_runs_queued_for_clients_that_left_never_start(new_server):
    """A queued run whose client disconnected is skipped (counted in INFO), and the queue empties."""
    server, client = slow_server(new_server)
    busy, _ = run_async(server, "AI.MODELEXECUTE", "slow", "INPUTS", 1, "x", "OUTPUTS", 1, "busy")
    wait_for(lambda: client.info("ai")["ai_queue_CPU_length"] == 1, message="the slow run started")
    for i in range(3):
        _send_and_leave(server.port, "AI.MODELEXECUTE", "fast", "INPUTS", 2, "x", "x", "OUTPUTS", 1, f"gone{i}")
    wait_for(lambda: client.info("ai")["ai_queue_CPU_length"] == 4, message="three runs queued")
    busy.join()
    wait_for(lambda: client.info("ai")["ai_queue_CPU_length"] == 0, timeout=60, message="the queue empty")
    assert client.info("ai")["ai_runs_skipped_client_gone"] == 3
    assert _calls(client, "fast") == 0 and not client.exists("gone0", "gone1", "gone2")
    assert client.execute_command("AI.MODELEXECUTE", "fast", "INPUTS", 2, "x", "x", "OUTPUTS", 1, "y") == b"OK"


def test_a_dag_whose_client_left_starts_no_further_op(new_server):
    """The client leaves while the DAG's first op (~1.5 s) is queued or running: the second never runs."""
    server, client = slow_server(new_server)
    words = [w.encode() if isinstance(w, str) else str(w).encode() for w in (
        "AI.DAGEXECUTE", "LOAD", 1, "x", "PERSIST", 1, "out", "|>",
        "AI.MODELEXECUTE", "slow", "INPUTS", 1, "x", "OUTPUTS", 1, "mid", "|>",
        "AI.MODELEXECUTE", "fast", "INPUTS", 2, "mid", "mid", "OUTPUTS", 1, "out")]
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(b"*%d\r\n" % len(words) + b"".join(b"$%d\r\n%s\r\n" % (len(w), w) for w in words))
        wait_for(lambda: client.info("ai")["ai_queue_CPU_length"] == 1, message="the first op queued")
    wait_for(lambda: client.info("ai")["ai_queue_CPU_length"] == 0, timeout=60, message="the queue empty")
    assert _calls(client, "slow") <= 1 and _calls(client, "fast") == 0 and not client.exists("out")


def test_a_full_queue_refuses_at_once(new_server):
    """QUEUE_MAX_LENGTH: beyond it a run (or a DAG) is refused before its client blocks, and counted."""
    server = new_server(module_args=("INTRA_OP_PARALLELISM", "1", "QUEUE_MAX_LENGTH", "2",
                                     "MODEL_EXECUTION_TIMEOUT", "120000"))
    client = server.client()
    client.execute_command("AI.MODELSTORE", "slow", "TORCH", "CPU", "BLOB", mf.torch_slow())
    client.execute_command("AI.MODELSTORE", "fast", "ONNX", "CPU", "BLOB", mf.onnx_mul())
    client.execute_command("AI.TENSORSET", "x", "FLOAT", 2, "VALUES", 1, 2)
    waiting = [run_async(server, "AI.MODELEXECUTE", "slow", "INPUTS", 1, "x", "OUTPUTS", 1, f"s{i}")[0] for i in range(2)]
    wait_for(lambda: client.info("ai")["ai_queue_CPU_length"] == 2, message="two runs queued")
    started = time.monotonic()
    full = re.escape("queue full: the CPU queue holds QUEUE_MAX_LENGTH (2) runs, retry later")
    with pytest.raises(redis.ResponseError, match=full):
        client.execute_command("AI.MODELEXECUTE", "fast", "INPUTS", 2, "x", "x", "OUTPUTS", 1, "y")
    with pytest.raises(redis.ResponseError, match=full):
        client.execute_command("AI.DAGEXECUTE", "LOAD", 1, "x", "|>", "AI.MODELEXECUTE", "fast", "INPUTS", 2, "x", "x",
                               "OUTPUTS", 1, "y", "|>", "AI.TENSORGET", "y", "VALUES")
    assert time.monotonic() - started < 5  # at once, not after the queue
    assert client.info("ai")["ai_runs_refused_queue_full"] == 2 and not client.exists("y")
    for thread in waiting:
        thread.join()
    assert client.execute_command("AI.MODELEXECUTE", "fast", "INPUTS", 2, "x", "x", "OUTPUTS", 1, "y") == b"OK"


def _queue_behind_a_slow_run(server, client, commands):
    """Starts the slow run, then queues `commands` one after another (each from its own client) behind it;
    returns the threads, the last one the slow run's."""
    threads = [run_async(server, "AI.MODELEXECUTE", "slow", "INPUTS", 1, "x", "OUTPUTS", 1, "busy")]
    wait_for(lambda: client.info("ai")["ai_queue_CPU_running"] == 1, message="the slow run started")
    for i, command in enumerate(commands, start=1):
        threads.insert(0, run_async(server, *command))
        wait_for(lambda i=i: client.info("ai")["ai_queue_CPU_waiting"] == i, message=f"{i} runs queued")
    return threads


@pytest.mark.parametrize("after_ms, newest_first", [("50", 2), ("0", 0)])
def test_newest_first_while_the_oldest_waited_past_the_bound(new_server, after_ms, newest_first):
    """QUEUE_NEWEST_FIRST_AFTER_MS: three runs queued behind a slow one, the oldest past the bound when the
    worker is free: the newest two start newest first (the last one left is the oldest); 0 keeps FIFO."""
    server, client = slow_server(new_server, module_args=("INTRA_OP_PARALLELISM", "1", "MODEL_EXECUTION_TIMEOUT",
                                                          "120000", "QUEUE_NEWEST_FIRST_AFTER_MS", after_ms))
    started = client.info("ai")["ai_queue_CPU_started"]
    threads = _queue_behind_a_slow_run(server, client, [
        ("AI.MODELEXECUTE", "fast", "INPUTS", 2, "x", "x", "OUTPUTS", 1, f"y{i}") for i in range(3)])
    for thread, result in threads:
        thread.join()
        assert result["reply"] == b"OK"
    info = client.info("ai")
    assert info["ai_queue_CPU_started_newest_first"] == newest_first
    assert info["ai_queue_CPU_started"] - started == 4 and info["ai_queue_CPU_waiting"] == 0


def test_queue_metrics_count_waits_and_timeouts(new_server):
    """INFO ai's queue figures: runs started, their queue wait (p50/p99, us), TIMEDOUT answers, deadline skips."""
    server, client = slow_server(new_server)
    threads = _queue_behind_a_slow_run(server, client, [
        ("AI.MODELEXECUTE", "fast", "INPUTS", 2, "x", "x", "OUTPUTS", 1, "y", "TIMEOUT", 1),
        ("AI.MODELEXECUTE", "fast", "INPUTS", 2, "x", "x", "OUTPUTS", 1, "z")])
    waited = time.monotonic()
    for thread, _ in threads:
        thread.join()
    waited = time.monotonic() - waited  # at least: the run queued last waited for the slow run's end
    results = [result["reply"] for _, result in threads]
    assert results == [b"OK", b"TIMEDOUT", b"OK"], results
    info = client.info("ai")
    assert info["ai_runs_timed_out"] == 1 and info["ai_runs_skipped_deadline"] == 1
    assert info["ai_queue_CPU_wait_p99_us"] >= waited * 1e6 * 0.5 > 0
    assert info["ai_queue_CPU_wait_p50_us"] <= info["ai_queue_CPU_wait_p99_us"]
    assert info["ai_queue_CPU_length"] == info["ai_queue_CPU_running"] == info["ai_queue_CPU_waiting"] == 0
