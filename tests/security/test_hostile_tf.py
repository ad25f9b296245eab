"""TensorFlow and TFLite models that would end the server (a kernel's CHECK failure), keep its worker
forever, or take memory past BACKEND_MEMORY_LIMIT (hostile_tf_fixtures.py), against a real server: each
is refused at store naming the offender, or answers an error, while the server stays up, PING answers
within 50 ms, other users' keys stay and no file is touched (hostile_watch)."""

import threading

import numpy as np
import pytest
import redis

import hostile_fixtures as hf
import hostile_tf_fixtures as ht
import model_fixtures as mf
import rdb_payloads as payloads
from hostile_watch import plant_bystanders, repeat_under_watch
from resp import Error, RawConnection
from server import wait_for

TF_LIMIT_TEXT = "Tensorflow memory limit exceeded, memory allocation failed."
BACKEND_CODES = {"TF": 0, "TFLITE": 1}


@pytest.fixture(scope="module", autouse=True)
def targets():
    hf.ensure_target_files()
    yield
    assert hf.untouched(), "a hostile model read, changed or created a target file"


def _store(key: str, backend: str, blob: bytes, io_names, *options) -> list:
    names = ["INPUTS", len(io_names[0]), *io_names[0], "OUTPUTS", len(io_names[1]), *io_names[1]] if io_names else []
    return ["AI.MODELSTORE", key, backend, "CPU", *names, *options, "BLOB", blob]


def _refused(reply, expected: str) -> None:
    assert isinstance(reply, Error), reply
    assert expected.encode() in reply, reply
    assert hf.SECRET_TEXT[:24] not in reply


@pytest.mark.parametrize("name,backend,build,expected,io_names", ht.REFUSED, ids=[case[0] for case in ht.REFUSED])
def test_refused_at_store_naming_the_offender(server, raw, name, backend, build, expected, io_names):
    blob = build()
    planted = plant_bystanders(server.port)
    reply = repeat_under_watch(server, lambda: raw.call(*_store("m", backend, blob, io_names)), planted=planted)
    _refused(reply, expected)
    assert raw.call("EXISTS", "m") == 0


def _vm_hwm_mb(pid: int) -> int:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) // 1024
    raise AssertionError("no VmHWM")


def test_memory_past_the_limit_answers_its_error_and_the_server_stays_bounded(new_server):
    """The report's 4 GB Fill through a PlaceholderWithDefault and 4 GB of strings from one repeated constant,
    under BACKEND_MEMORY_LIMIT 1000: stored, each run answers the limit's error, and the server's peak
    resident memory (VmHWM) grows by far less than the limit."""
    server = new_server(module_args=("BACKEND_MEMORY_LIMIT", "1000"))
    client = server.client()
    client.execute_command("AI.TENSORSET", "x", "FLOAT", 1, "VALUES", 1)
    # TensorFlow loaded and a session made first: the peak after is what the bombs add.
    client.execute_command(*_store("mul", "TF", mf.tf_mul_graph(), (["a", "b"], ["c"])))
    client.execute_command("AI.MODELEXECUTE", "mul", "INPUTS", 2, "x", "x", "OUTPUTS", 1, "c")
    before = _vm_hwm_mb(server.process.pid)
    planted = plant_bystanders(server.port)
    bombs = {"fill": ht.fill_through_placeholder_with_default(), "strings": ht.strings_constant()}

    def attack():
        for key, blob in bombs.items():
            assert client.execute_command(*_store(key, "TF", blob, ht.TF_IO)) == b"OK"
            for _ in range(2):  # the model stays, and answers the same the second time
                with pytest.raises(redis.ResponseError, match=f"^{TF_LIMIT_TEXT}$"):
                    client.execute_command("AI.MODELEXECUTE", key, "INPUTS", 1, "x", "OUTPUTS", 1, "y")
    repeat_under_watch(server, attack, planted=planted)
    grown = _vm_hwm_mb(server.process.pid) - before
    assert grown < 500, f"VmHWM grew by {grown} MB"
    assert client.info("ai")["ai_tf_refused"] >= 4 and client.exists("y") == 0


def test_string_copies_past_the_limit_answer_its_error(new_server):
    """A graph that copies its string input 40 times: a run whose input times that passes the limit answers
    the limit's error before it starts; a small input runs."""
    def build():
        tf = mf._import_tf()
        graph = tf.Graph()
        with graph.as_default():
            s = tf.compat.v1.placeholder(tf.string, shape=None, name="s")
            tf.strings.length(tf.concat([tf.reshape(s, [-1])] * 40, 0), name="n")
        return graph.as_graph_def().SerializeToString()

    server = new_server(module_args=("BACKEND_MEMORY_LIMIT", "100"))
    client = server.client()
    client.execute_command(*_store("copies", "TF", mf._cached("hostile_tf_string_copies", build), (["s"], ["n"])))
    client.execute_command("AI.TENSORSET", "small", "STRING", 1, "VALUES", "x" * 100)
    client.execute_command("AI.MODELEXECUTE", "copies", "INPUTS", 1, "small", "OUTPUTS", 1, "n")
    assert client.execute_command("AI.TENSORGET", "n", "VALUES") == [100] * 40
    client.execute_command("AI.TENSORSET", "big", "STRING", 1, "VALUES", "x" * 3_000_000)
    with pytest.raises(redis.ResponseError, match=f"^{TF_LIMIT_TEXT}$"):
        client.execute_command("AI.MODELEXECUTE", "copies", "INPUTS", 1, "big", "OUTPUTS", 1, "n")
    assert server.alive()


LOOPS = [ht.stateless_while_forever, ht.while_forever, ht.tf1_loop_forever]


@pytest.mark.parametrize("build", LOOPS, ids=[build.__name__ for build in LOOPS])
def test_endless_loop_stops_at_the_deadline_and_the_worker_takes_the_next_run(new_server, build):
    """MODEL_EXECUTION_TIMEOUT reaches TensorFlow: the store's warm-up and every run of a loop of 10^15
    iterations end at it with an error, and another model's run, queued behind on the only worker,
    completes right after."""
    server = new_server(module_args=("MODEL_EXECUTION_TIMEOUT", "1000"))
    client = server.client(socket_timeout=120)
    client.execute_command(*_store("mul", "TF", mf.tf_mul_graph(), (["a", "b"], ["c"])))
    client.execute_command("AI.TENSORSET", "a", "FLOAT", 1, "VALUES", 3)
    blob = build()
    planted = plant_bystanders(server.port)

    def attack():
        # The warm-up (shapes named at store) runs the loop once: it ends at the deadline, counted as failed.
        failed = client.info("ai")["ai_warmup_failed"]
        assert client.execute_command(*_store("loop", "TF", blob, ht.TF_IO, "WARMUP", 1, "FLOAT", "1")) == b"OK"
        assert client.info("ai")["ai_warmup_failed"] == failed + 1
        with pytest.raises(redis.ResponseError, match="MODEL_EXECUTION_TIMEOUT"):
            client.execute_command("AI.MODELEXECUTE", "loop", "INPUTS", 1, "a", "OUTPUTS", 1, "y")
        # A client with its own TIMEOUT gets TIMEDOUT; the worker is back for the next run in any case.
        outcome = {}

        def endless():
            with RawConnection(server.port, timeout=120) as connection:
                outcome["loop"] = connection.call("AI.MODELEXECUTE", "loop", "INPUTS", 1, "a", "OUTPUTS", 1, "y",
                                                  "TIMEOUT", 200)
        runner = threading.Thread(target=endless)
        runner.start()
        wait_for(lambda: client.info("ai").get("ai_queue_cpu_running", 0) >= 1 or not runner.is_alive(), timeout=30,
                 message="the loop running")
        assert client.execute_command("AI.MODELEXECUTE", "mul", "INPUTS", 2, "a", "a", "OUTPUTS", 1, "c",
                                      "TIMEOUT", 60_000) == b"OK"
        assert client.execute_command("AI.TENSORGET", "c", "VALUES") == [b"9"]
        runner.join(60)
        assert outcome["loop"] == b"TIMEDOUT"
    repeat_under_watch(server, attack, planted=planted)
    assert client.exists("y") == 0


def test_tflite_dynamic_tensor_is_stored_without_a_limit(new_server):
    """BACKEND_MEMORY_LIMIT 0 (RedisAI's default): a model with a dynamic tensor serves as in RedisAI."""
    server = new_server(module_args=("BACKEND_MEMORY_LIMIT", "0"))
    client = server.client()
    assert client.execute_command("AI.MODELSTORE", "m", "TFLITE", "CPU", "BLOB", ht.tflite_dynamic_fill()) == b"OK"
    client.execute_command("AI.TENSORSET", "n", "INT32", 1, "VALUES", 5)
    client.execute_command("AI.MODELEXECUTE", "m", "INPUTS", 1, "n", "OUTPUTS", 1, "s")
    assert np.isclose(float(client.execute_command("AI.TENSORGET", "s", "VALUES")[0]), 5.0)


def test_placement_compilation_and_executor_choices_are_cleared(r):
    """Nodes naming a remote task's device, XLA compilation, a kernel label, colocation, another executor and
    session configuration in a call, a gradient definition naming ReadFile: all cleared, the model runs here."""
    blob = ht.placement_and_compilation_attributes()
    assert r.execute_command(*_store("m", "TF", blob, ht.TF_IO)) == b"OK"
    r.execute_command("AI.TENSORSET", "x", "FLOAT", 2, "VALUES", 1, 2)
    r.execute_command("AI.MODELEXECUTE", "m", "INPUTS", 1, "x", "OUTPUTS", 1, "y")
    assert r.execute_command("AI.TENSORGET", "y", "VALUES") == [b"2", b"4"]
    assert r.execute_command("AI.MODELGET", "m", "BLOB") == blob  # the bytes as stored


def test_guarded_kernel_answers_an_error_where_it_would_abort(r):
    """TensorListGetItem (every Keras RNN holds it) aborts on an index of several elements: the check the
    server puts before it answers an error, and the server stays."""
    def build():
        tf = mf._import_tf()
        graph = tf.Graph()
        with graph.as_default():
            x = tf.compat.v1.placeholder(tf.float32, shape=None, name="x")
            index = tf.compat.v1.placeholder(tf.int32, shape=None, name="i")
            handle = tf.raw_ops.TensorListFromTensor(tensor=x, element_shape=tf.constant(-1))
            tf.raw_ops.TensorListGetItem(input_handle=handle, index=index, element_shape=tf.constant(-1),
                                         element_dtype=tf.float32, name="y")
        return graph.as_graph_def().SerializeToString()

    blob = mf._cached("hostile_tf_list_get_item", build)
    assert r.execute_command(*_store("m", "TF", blob, (["x", "i"], ["y"]))) == b"OK"
    r.execute_command("AI.TENSORSET", "x", "FLOAT", 2, 2, "VALUES", 1, 2, 3, 4)
    r.execute_command("AI.TENSORSET", "good", "INT32", 1, "VALUES", 1)
    r.execute_command("AI.MODELEXECUTE", "m", "INPUTS", 2, "x", "good", "OUTPUTS", 1, "y")
    assert r.execute_command("AI.TENSORGET", "y", "VALUES") == [b"3", b"4"]
    r.execute_command("AI.TENSORSET", "bad", "INT32", 2, 3, "VALUES", 0, 0, 0, 0, 0, 0)
    with pytest.raises(redis.ResponseError, match="size of index must be == 1"):
        r.execute_command("AI.MODELEXECUTE", "m", "INPUTS", 2, "x", "bad", "OUTPUTS", 1, "y")
    assert r.ping()


HOSTILE_IN_RDB = [case for case in ht.REFUSED if case[0] in ("lrn_grad", "tflite_dynamic_fill")]


@pytest.mark.parametrize("name,backend,build,expected,io_names", HOSTILE_IN_RDB, ids=[c[0] for c in HOSTILE_IN_RDB])
def test_hostile_model_in_restore_and_debug_reload_is_kept_but_never_built(new_server, name, backend, build,
                                                                           expected, io_names):
    blob = build()
    server = new_server()
    client = server.client()
    client.set("unsaved", "intact")
    inputs, outputs = io_names or ((), ())
    client.restore("evil", 0, payloads.model_v4(BACKEND_CODES[backend], blob, inputs, outputs))
    for _ in range(2):  # RESTORE, then a dump.rdb holding it
        client.execute_command("AI.TENSORSET", "x", "FLOAT", 1, "VALUES", 1)
        with pytest.raises(redis.ResponseError) as refusal:
            client.execute_command("AI.MODELEXECUTE", "evil", "INPUTS", 1, "x", "OUTPUTS", 1, "y")
        assert expected in str(refusal.value)
        assert client.execute_command("AI.MODELGET", "evil", "BLOB") == blob
        wait_for(lambda: "model 'evil' could not be rebuilt" in server.log(), message="log line naming the key")
        assert server.alive() and client.get("unsaved") == b"intact"
        client.execute_command("DEBUG", "RELOAD")
    assert hf.untouched()
