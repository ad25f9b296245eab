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


def error_of(client, *command) -> str:
    with pytest.raises(redis.ResponseError) as info:
        client.execute_command(*command)
    return str(info.value)


def test_tf_is_fed_as_redisai_fed_it_and_errors_carry_tensorflows_text(r):
    r.execute_command("AI.MODELSTORE", "reshape", "TF", "CPU", "INPUTS", 1, "x", "OUTPUTS", 1, "y",
                      "BLOB", mf.tf_reshape_sum())
    r.execute_command("AI.TENSORSET", "image", "FLOAT", 1, 1, 28, 28, "VALUES", *([1] * 784))
    assert r.execute_command("AI.MODELEXECUTE", "reshape", "INPUTS", 1, "image", "OUTPUTS", 1, "sum") == b"OK"
    assert r.execute_command("AI.TENSORGET", "sum", "VALUES") == [b"784"]
    r.execute_command("AI.MODELSTORE", "mul", "TF", "CPU", "INPUTS", 2, "a", "b", "OUTPUTS", 1, "c",
                      "BLOB", mf.tf_mul_graph())
    reply = r.execute_command("AI.DAGEXECUTE_RO", "ROUTING", "x", "|>", "AI.TENSORSET", "a", "FLOAT", 2, "VALUES", 2, 3,
                              "|>", "AI.TENSORSET", "b", "FLOAT", 2, 2, 3, "|>",
                              "AI.MODELEXECUTE", "mul", "INPUTS", 2, "a", "b", "OUTPUTS", 1, "c",
                              "|>", "AI.TENSORGET", "c", "VALUES")
    assert reply[:2] == [b"OK", b"OK"] and reply[3] == b"NA"
    assert str(reply[2]).startswith("Incompatible shapes: [2] vs. [2,2,3] \t [[{{node ")


def test_onnx_errors_are_onnxruntimes_message_without_the_python_prefix(r):
    r.execute_command("AI.MODELSTORE", "id", "ONNX", "CPU", "BLOB", mf.onnx_identity("FLOAT"))
    r.execute_command("AI.TENSORSET", "v", "FLOAT", 3, "VALUES", 1, 2, 3)
    message = error_of(r, "AI.MODELEXECUTE", "id", "INPUTS", 1, "v", "OUTPUTS", 1, "out")
    assert message.startswith("Invalid rank for input: x Got: 1 Expected: 2"), message
    assert "[ONNXRuntimeError]" not in message and "\n" not in message


MODELSTORE_ERRORS = [
    (("TORCH", "CPU", "MINBATCHSIZE", 2, "BLOB", "x"), "MINBATCHSIZE specified without BATCHSIZE"),
    (("TORCH", "CPU", "BATCHSIZE", 2, "MINBATCHTIMEOUT", 1000, "BLOB", "x"),
     "MINBATCHTIMEOUT specified without MINBATCHSIZE"),
    (("TORCH", "CPU", "BATCHSIZE", "x", "BLOB", "x"), "Invalid argument for BATCHSIZE"),
    (("TORCH", "CPU", "TAG", "t", "BATCHSIZE", 2, "MINBATCHSIZE", "-1", "BLOB", "x"), "Invalid argument for MINBATCHSIZE"),
    (("TF", "CPU", "INPUTS", 2, "a", "b", "OUTPUTS", 1, "mul"), "Invalid argument, expected BLOB"),
    (("TF", "CPU", "BATCHSIZE", 2), "Insufficient arguments, missing model BLOB"),
    (("TORCH", "CPU", "TAG", "t"), "Insufficient arguments, missing model BLOB"),
    (("TORCH", "CPU", "NOTBLOB", "x"), "Invalid argument, expected BLOB"),
    (("ONNX", "CPU", "INPUTS", 1, "a", "BLOB", "x"), "INPUTS argument should not be specified for this backend"),
]

MODELSET_ERRORS = [
    (("TORCH", "BLOB", "x"), "Invalid DEVICE"),
    (("TORCH", "MINBATCHTIMEOUT", "x"), "Invalid DEVICE"),
    (("TORCH", "CPU", "MINBATCHSIZE", 2, "BLOB", "x"), "MINBATCHSIZE specified without BATCHSIZE"),
    (("TORCH", "CPU", "BATCHSIZE", 2, "MINBATCHTIMEOUT", 1000, "BLOB", "x"),
     "MINBATCHTIMEOUT specified without MINBATCHSIZE"),
    (("TORCH", "CPU", "MINBATCHTIMEOUT", 1000, "BLOB", "x"), "MINBATCHTIMEOUT specified without BATCHSIZE"),
    (("TF", "CPU", "not_inputs", "BLOB", "x"), "INPUTS not specified"),
    (("TF", "CPU", "BLOB", "x"), "Insufficient arguments, INPUTS and OUTPUTS not specified"),
    (("TF", "CPU", "INPUTS", "a", "BLOB", "x"), "OUTPUTS not specified"),
    (("TFLITE", "CPU", "BATCHSIZE", 2, "BLOB", "x"), "Auto-batching not supported by the TFLITE backend"),
    (("TORCH", "CPU"), "Insufficient arguments, missing model BLOB"),
    (("TORCH", "CPU", "INPUTS", "a"), "Insufficient arguments, missing model BLOB"),
]


@pytest.mark.parametrize("args, message", MODELSTORE_ERRORS)
def test_modelstore_errors_in_redisais_order(r, args, message):
    assert error_of(r, "AI.MODELSTORE", "m", *args) == message
    assert not r.exists("m")


@pytest.mark.parametrize("args, message", MODELSET_ERRORS)
def test_modelset_errors_in_redisais_order(r, args, message):
    assert error_of(r, "AI.MODELSET", "m", *args) == message
    assert not r.exists("m")


def test_modelset_arity_is_four(r):
    assert error_of(r, "AI.MODELSET", "m", "TORCH") == "wrong number of arguments for 'AI.MODELSET' command"


DAG_COUNT_ERRORS = [
    (("AI.DAGEXECUTE", "PERSIST", 2, "a", "b", "LOAD", 1), "missing arguments after LOAD keyword in DAG command"),
    (("AI.DAGEXECUTE", "ROUTING", "a", "LOAD", 1, "a", "PERSIST", 1), "missing arguments after PERSIST keyword in DAG command"),
    (("AI.DAGEXECUTE", "ROUTING", "a", "LOAD", 0, "a", "|>", "AI.TENSORGET", "a"),
     "invalid or negative value found in number of keys to LOAD"),
    (("AI.DAGEXECUTE", "ROUTING", "a", "PERSIST", 0, "a", "|>", "AI.TENSORGET", "a"),
     "invalid or negative value found in number of keys to PERSIST"),
]


@pytest.mark.parametrize("command, message", DAG_COUNT_ERRORS)
def test_dag_load_and_persist_counts(r, command, message):
    r.execute_command("AI.TENSORSET", "a", "FLOAT", 1, "VALUES", 1)
    assert error_of(r, *command) == message


def backends_info(client):
    return client.info("ai")


def test_info_has_redisais_onnx_allocator_fields(new_server):
    client = new_server().client()
    # Warmed at store (declared shapes), yet counted as RedisAI counted: the warm-up's runs are not.
    client.execute_command("AI.MODELSTORE", "m", "ONNX", "CPU", "BLOB", mf.onnx_identity("FLOAT"))
    assert client.info("ai")["ai_warmup_done"] == 1
    info = backends_info(client)
    memory, accesses = info["ai_onnxruntime_memory"], info["ai_onnxruntime_memory_access_num"]
    assert memory >= len(mf.onnx_identity("FLOAT")) + 3 * 71 and accesses == 3
    assert info["ai_onnxruntime_maximum_run_sessions_number"] >= 1
    client.execute_command("AI.TENSORSET", "x", "FLOAT", 1, 2, "VALUES", 1, 2)
    client.execute_command("AI.MODELEXECUTE", "m", "INPUTS", 1, "x", "OUTPUTS", 1, "y")
    info = backends_info(client)
    assert info["ai_onnxruntime_memory"] == memory and info["ai_onnxruntime_memory_access_num"] == accesses + 6
    client.execute_command("AI.MODELDEL", "m")
    info = backends_info(client)
    assert info["ai_onnxruntime_memory"] == 0 and info["ai_onnxruntime_memory_access_num"] == accesses + 9


def test_loadbackend_path_that_cannot_be_a_library_fails_as_in_redisai(r):
    assert error_of(r, "AI.CONFIG", "LOADBACKEND", "TORCH", ".") == "error loading backend"
    assert r.execute_command("AI.CONFIG", "LOADBACKEND", "ONNX", "backends/redisai_onnxruntime/redisai_onnxruntime.so") == b"OK"


def test_scans_list_keys_in_redisais_order(r):
    """RedisAI listed its run-statistics hash table (SipHash-1-2, zero seed) in table order."""
    r.execute_command("AI.MODELSTORE", "m", "TF", "CPU", "TAG", "v1.2", "INPUTS", 2, "a", "b", "OUTPUTS", 1, "c",
                      "BLOB", mf.tf_mul_graph())
    r.execute_command("AI.MODELSTORE", "pt_model", "TORCH", "CPU", "BLOB", mf.torch_add_mul())
    assert r.execute_command("AI._MODELSCAN") == [[b"pt_model", b""], [b"m", b"v1.2"]]
    r.flushall()
    source = "def f(a):\n    return a\n"
    r.execute_command("AI.SCRIPTSET", "ket1", "CPU", "TAG", "v1.0", "SOURCE", source)
    r.execute_command("AI.SCRIPTSET", "ket2", "CPU", "SOURCE", source)
    assert r.execute_command("AI._SCRIPTSCAN") == [[b"ket1", b"v1.0"], [b"ket2", b""]]


def test_redisai_order_replays_table_growth():
    from redisai.commands.scan_order import redisai_order, siphash_1_2

    names = [f"model:{i}".encode() for i in range(40)]
    ordered = redisai_order(names)
    assert sorted(ordered) == sorted(names)
    buckets = [siphash_1_2(name) & 63 for name in ordered]  # 40 entries: a table of 64 buckets
    assert buckets == sorted(buckets)
