"""TorchScript scripts and DAGs (issue: scripts and DAGs)."""

import subprocess
import time

import numpy as np
import pytest
import redis

import model_fixtures as mf
from resp import Error
from server import start_replica, wait_for_persistence

SCRIPT = """
def multiply(a, b):
    return a * b

def add_all(tensors: List[Tensor], keys: List[str], args: List[str]):
    total = tensors[0]
    for t in tensors[1:]:
        total = total + t
    return total + float(args[0])

def split(tensors: List[Tensor], keys: List[str], args: List[str]):
    x = tensors[0]
    return x * 2, (x > 2).to(torch.int64), torch.tensor([len(keys)])

def slow(tensors: List[Tensor], keys: List[str], args: List[str]):
    x = tensors[0]
    m = torch.ones(200, 200)
    for i in range(int(args[0])):
        m = torch.tanh(m @ m)
    return x + m[0, 0] * 0
"""
ENTRY_POINTS = ("add_all", "split", "slow")


def values(client, key):
    return [float(v) for v in client.execute_command("AI.TENSORGET", key, "VALUES")]


def store_script(client, key="s"):
    return client.execute_command("AI.SCRIPTSTORE", key, "CPU", "TAG", "v1", "ENTRY_POINTS", len(ENTRY_POINTS),
                                  *ENTRY_POINTS, "SOURCE", SCRIPT)


def test_seed_script_walkthrough_verbatim(server, r, tmp_path):
    script = tmp_path / "myscript.py"
    script.write_text("def multiply(a, b):\n    return a * b\n")
    port = str(server.port)

    def cli(*args, stdin=None):
        return subprocess.run(["redis-cli", "-p", port, *args], input=stdin, capture_output=True, check=True).stdout.decode().split()

    cli("AI.TENSORSET", "tA", "FLOAT", "2", "VALUES", "2", "3")
    cli("AI.TENSORSET", "tB", "FLOAT", "2", "VALUES", "3", "5")
    piped = subprocess.run(f"cat {script} | redis-cli -p {port} -x AI.SCRIPTSET myscript CPU SOURCE", shell=True,
                           capture_output=True, check=True)
    assert piped.stdout.decode().strip() == "OK"
    assert cli("AI.SCRIPTRUN", "myscript", "multiply", "INPUTS", "tA", "tB", "OUTPUTS", "tScript") == ["OK"]
    assert cli("AI.TENSORGET", "tScript", "VALUES") == ["6", "15"]


def test_scriptstore_get_execute(r):
    assert store_script(r) == b"OK"
    assert r.execute_command("AI.SCRIPTGET", "s", "META") == [b"device", b"CPU", b"tag", b"v1", b"Entry Points",
                                                              [e.encode() for e in ENTRY_POINTS]]
    assert r.execute_command("AI.SCRIPTGET", "s", "SOURCE") == SCRIPT.encode()
    assert r.execute_command("AI.SCRIPTGET", "s")[6:] == [b"source", SCRIPT.encode()]
    for i, v in enumerate(([1, 2], [3, 4], [10, 20])):
        r.execute_command("AI.TENSORSET", f"t{i}", "FLOAT", 2, "VALUES", *v)
    assert r.execute_command("AI.SCRIPTEXECUTE", "s", "add_all", "INPUTS", 3, "t0", "t1", "t2", "ARGS", 1, "0.5",
                             "OUTPUTS", 1, "sum") == b"OK"
    assert values(r, "sum") == [14.5, 26.5]
    assert r.execute_command("AI.SCRIPTEXECUTE", "s", "split", "KEYS", 2, "k1", "k2", "INPUTS", 1, "t1",
                             "OUTPUTS", 3, "double", "mask", "nkeys") == b"OK"
    assert values(r, "double") == [6, 8]
    assert r.execute_command("AI.TENSORGET", "mask", "META", "VALUES") == [b"dtype", b"INT64", b"shape", [2], b"values", [1, 1]]
    assert r.execute_command("AI.TENSORGET", "nkeys", "VALUES") == [2]
    info = r.execute_command("AI.INFO", "s")
    assert info[:4] == [b"key", b"s", b"type", b"SCRIPT"] and info[info.index(b"samples") + 1] == -1
    assert info[info.index(b"calls") + 1] == 2
    assert r.execute_command("AI.SCRIPTDEL", "s") == b"OK" and not r.exists("s")


def test_scriptrun_variadic(r):
    r.execute_command("AI.SCRIPTSET", "v", "CPU", "SOURCE",
                      "def f(a, xs: List[Tensor]):\n    out = a\n    for x in xs:\n        out = out + x\n    return out\n")
    for i in range(3):
        r.execute_command("AI.TENSORSET", f"x{i}", "FLOAT", 1, "VALUES", i + 1)
    assert r.execute_command("AI.SCRIPTRUN", "v", "f", "INPUTS", "x0", "$", "x1", "x2", "OUTPUTS", "y") == b"OK"
    assert values(r, "y") == [6]


HOSTILE = [
    "def f(tensors: List[Tensor], keys: List[str], args: List[str]):\n    return __import__('os').system('touch {p}')\n",
    "def f(tensors: List[Tensor], keys: List[str], args: List[str]):\n    open('{p}', 'w')\n    return tensors[0]\n",
    "def f(tensors: List[Tensor], keys: List[str], args: List[str]):\n    return eval('1')\n",
    "import os\ndef f(tensors: List[Tensor], keys: List[str], args: List[str]):\n    os.system('touch {p}')\n    return tensors[0]\n",
    "def f(tensors: List[Tensor], keys: List[str], args: List[str]):\n    return torch.from_file('{p}', False, 4)\n",
    "def f(tensors: List[Tensor], keys: List[str], args: List[str]):\n    exec('open(\"{p}\", \"w\")')\n    return tensors[0]\n",
]


@pytest.mark.parametrize("source", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_scripts_do_not_compile(r, tmp_path, source):
    sentinel = tmp_path / "sentinel"
    with pytest.raises(redis.ResponseError):
        r.execute_command("AI.SCRIPTSTORE", "h", "CPU", "ENTRY_POINTS", 1, "f", "SOURCE", source.format(p=sentinel))
    assert not sentinel.exists() and not r.exists("h")


def test_script_errors(r):
    def error(*args):
        with pytest.raises(redis.ResponseError) as info:
            r.execute_command(*args)
        return str(info.value)

    assert error("AI.SCRIPTSTORE", "s", "CPU", "SOURCE", "x") == "wrong number of arguments for 'AI.SCRIPTSTORE' command"
    assert error("AI.SCRIPTSTORE", "s", "CPU", "TAG", "t", "SOURCE", "x", "y") == "Insufficient arguments, missing script entry points"
    assert error("AI.SCRIPTSTORE", "s", "CPU", "ENTRY_POINTS", "x", "f", "SOURCE", "x") == "Non numeric entry points number provided to AI.SCRIPTSTORE command"
    assert error("AI.SCRIPTSTORE", "s", "CPU", "ENTRY_POINTS", 1, "f", "SOURCES", "x") == "Insufficient arguments, missing script SOURCE"
    assert error("AI.SCRIPTSTORE", "s", "CPU", "ENTRY_POINTS", 1, "nope", "SOURCE", SCRIPT) == "Function nope does not exist in the given script."
    assert error("AI.SCRIPTSTORE", "s", "CPU", "ENTRY_POINTS", 1, "multiply", "SOURCE", SCRIPT) == "Wrong number of inputs in function multiply. Expected 3 but was 2"
    bad_types = "def g(a: List[Tensor], b: List[str], c: int):\n    return a[0]\n"
    assert error("AI.SCRIPTSTORE", "s", "CPU", "ENTRY_POINTS", 1, "g", "SOURCE", bad_types).startswith("Wrong inputs type in function g.")
    assert error("AI.SCRIPTSTORE", "s", "TPU", "ENTRY_POINTS", 1, "add_all", "SOURCE", SCRIPT) == "Error configuring script: unsupported device"
    assert error("AI.SCRIPTSTORE", "s", "CPU", "ENTRY_POINTS", 1, "f", "SOURCE", "def f(:") != ""
    assert error("AI.SCRIPTSET", "s", "CPU", "SOURCE") == "wrong number of arguments for 'AI.SCRIPTSET' command"
    assert error("AI.SCRIPTGET", "missing") == "script key is empty"
    assert error("AI.SCRIPTDEL", "missing") == "script key is empty"
    assert not r.exists("s")
    store_script(r)
    r.execute_command("AI.TENSORSET", "x", "FLOAT", 1)
    assert error("AI.SCRIPTEXECUTE", "missing", "f", "INPUTS", 1, "x") == "script key is empty"
    assert error("AI.SCRIPTEXECUTE", "s", "add_all", "ARGS", 1, "x") == "KEYS or INPUTS scope must be provided first for AI.SCRIPTEXECUTE command"
    assert error("AI.SCRIPTEXECUTE", "s", "add_all", "INPUTS", 1, "x", "INPUTS", 1, "x") == "Already Encountered INPUTS scope in AI.SCRIPTEXECUTE command"
    assert error("AI.SCRIPTEXECUTE", "s", "add_all", "INPUTS", "y", "x") == "Invalid argument for inputs count in AI.SCRIPTEXECUTE"
    assert error("AI.SCRIPTEXECUTE", "s", "add_all", "INPUTS", 3, "x") == "number of inputs to AI.SCRIPTEXECUTE command does not match the number of given arguments"
    assert error("AI.SCRIPTEXECUTE", "s", "add_all", "INPUTS", 1, "x", "TIMEOUT") == "No value provided for TIMEOUT in AI.SCRIPTEXECUTE"
    assert error("AI.SCRIPTEXECUTE", "s", "add_all", "INPUTS", 1, "x", "FOO") == "Invalid AI.SCRIPTEXECUTE command. Unexpected argument: FOO"
    assert error("AI.SCRIPTEXECUTE", "s", "multiply", "INPUTS", 1, "x", "ARGS", 1, "1", "OUTPUTS", 1, "y") == "Function multiply is not an entry point of the script"
    assert "Function returned unexpected number of outputs" in error(
        "AI.SCRIPTEXECUTE", "s", "split", "INPUTS", 1, "x", "OUTPUTS", 1, "y")
    assert error("AI.SCRIPTEXECUTE", "s", "add_all", "INPUTS", 1, "x", "ARGS", 1, "zz", "OUTPUTS", 1, "y") != ""
    assert not r.exists("y")


def test_dag_set_script_model_get_in_one_round_trip(r):
    store_script(r)
    r.execute_command("AI.MODELSTORE", "m", "ONNX", "CPU", "BLOB", mf.onnx_mul())
    reply = r.execute_command(
        "AI.DAGEXECUTE", "PERSIST", 1, "c", "|>",
        "AI.TENSORSET", "a", "FLOAT", 2, "VALUES", 1, 2, "|>",
        "AI.TENSORSET", "b", "FLOAT", 2, "VALUES", 3, 4, "|>",
        "AI.SCRIPTEXECUTE", "s", "add_all", "INPUTS", 2, "a", "b", "ARGS", 1, "0", "OUTPUTS", 1, "sum", "|>",
        "AI.MODELEXECUTE", "m", "INPUTS", 2, "sum", "b", "OUTPUTS", 1, "c", "|>",
        "AI.TENSORGET", "c", "VALUES")
    assert reply[:4] == [b"OK", b"OK", b"OK", b"OK"] and reply[4] == [b"12", b"24"]
    assert r.keys() and sorted(r.keys()) == [b"c", b"m", b"s"]  # intermediates never reach the keyspace
    assert values(r, "c") == [12, 24]


def test_dag_load_and_tensor_versions(r):
    r.execute_command("AI.MODELSTORE", "m", "ONNX", "CPU", "BLOB", mf.onnx_mul())
    r.execute_command("AI.TENSORSET", "x", "FLOAT", 2, "VALUES", 2, 3)
    reply = r.execute_command(
        "AI.DAGEXECUTE_RO", "LOAD", 1, "x", "|>",
        "AI.MODELEXECUTE", "m", "INPUTS", 2, "x", "x", "OUTPUTS", 1, "y", "|>",
        "AI.TENSORGET", "y", "VALUES", "|>",
        "AI.TENSORSET", "x", "FLOAT", 2, "VALUES", 10, 10, "|>",
        "AI.MODELEXECUTE", "m", "INPUTS", 2, "x", "y", "OUTPUTS", 1, "y", "|>",
        "AI.TENSORGET", "y", "VALUES", "|>",
        "AI.TENSORGET", "x", "META")
    assert reply == [b"OK", [b"4", b"9"], b"OK", b"OK", [b"40", b"90"], [b"dtype", b"FLOAT", b"shape", [2]]]
    assert not r.exists("y")


def test_dag_failing_op_persists_nothing(r):
    r.execute_command("AI.MODELSTORE", "m", "ONNX", "CPU", "BLOB", mf.onnx_mul())
    reply = r.execute_command(
        "AI.DAGEXECUTE", "PERSIST", 2, "ok", "bad", "|>",
        "AI.TENSORSET", "a", "FLOAT", 2, "VALUES", 1, 2, "|>",
        "AI.TENSORSET", "i", "INT32", 2, "VALUES", 1, 2, "|>",
        "AI.MODELEXECUTE", "m", "INPUTS", 2, "a", "a", "OUTPUTS", 1, "ok", "|>",
        "AI.MODELEXECUTE", "m", "INPUTS", 2, "i", "i", "OUTPUTS", 1, "bad", "|>",
        "AI.TENSORGET", "bad", "VALUES")
    assert reply[:3] == [b"OK", b"OK", b"OK"]
    assert isinstance(reply[3], redis.ResponseError) and reply[4] == b"NA"
    assert not r.exists("ok") and not r.exists("bad")


def test_dag_prepared_reply_paths(r):
    """A DAG's reply is prepared by the worker and sent in C (module/outcome.c), except where Python must
    answer: a PERSIST key holding another type (WRONGTYPE, nothing written), and TENSORGETs over 1 MiB
    (sent from the tensors themselves)."""
    r.execute_command("AI.MODELSTORE", "m", "ONNX", "CPU", "BLOB", mf.onnx_mul())
    r.set("text", "keep")
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        r.execute_command("AI.DAGEXECUTE", "PERSIST", 2, "c", "text", "|>",
                          "AI.TENSORSET", "a", "FLOAT", 2, "VALUES", 1, 2, "|>",
                          "AI.MODELEXECUTE", "m", "INPUTS", 2, "a", "a", "OUTPUTS", 1, "c", "|>",
                          "AI.TENSORSET", "text", "FLOAT", 1, "VALUES", 5)
    assert not r.exists("c") and r.get("text") == b"keep"
    big = np.arange(1 << 19, dtype=np.float32)  # 2 MiB
    reply = r.execute_command("AI.DAGEXECUTE", "PERSIST", 1, "c", "|>",
                              "AI.TENSORSET", "a", "FLOAT", big.size, "BLOB", big.tobytes(), "|>",
                              "AI.MODELEXECUTE", "m", "INPUTS", 2, "a", "a", "OUTPUTS", 1, "c", "|>",
                              "AI.TENSORGET", "c", "META", "BLOB")
    assert reply[:2] == [b"OK", b"OK"]
    assert reply[2][:4] == [b"dtype", b"FLOAT", b"shape", [big.size]]
    assert np.array_equal(np.frombuffer(reply[2][5], np.float32), big * big)
    assert np.array_equal(np.frombuffer(r.execute_command("AI.TENSORGET", "c", "BLOB"), np.float32), big * big)
    small = r.execute_command("AI.DAGEXECUTE", "PERSIST", 1, "c", "|>",
                              "AI.TENSORSET", "a", "FLOAT", 2, "VALUES", 3, 4, "|>",
                              "AI.MODELEXECUTE", "m", "INPUTS", 2, "a", "a", "OUTPUTS", 1, "c", "|>",
                              "AI.TENSORGET", "c", "META", "VALUES")
    assert small == [b"OK", b"OK", [b"dtype", b"FLOAT", b"shape", [2], b"values", [b"9", b"16"]]]
    assert values(r, "c") == [9, 16]


def test_dag_errors(raw):
    raw.call("AI.MODELSTORE", "m", "ONNX", "CPU", "BLOB", mf.onnx_mul())
    store = raw.call("AI.SCRIPTSTORE", "s", "CPU", "ENTRY_POINTS", 1, "add_all", "SOURCE", SCRIPT)
    assert store == b"OK"
    raw.call("AI.TENSORSET", "x", "FLOAT", 1)
    cases = [
        (("AI.DAGEXECUTE", "LOAD", 1, "x"), b"ERR missing arguments for 'AI.DAGEXECUTE' command"),
        (("AI.DAGEXECUTE", "TIMEOUT", 5, "|>", "AI.TENSORGET", "x"), b"ERR AI.DAGEXECUTE and AI.DAGEXECUTE_RO commands must contain at least one out of ROUTING, LOAD, PERSIST keywords"),
        (("AI.DAGEXECUTE", "LOAD", 1, "x", "|>", "|>"), b"ERR DAG is empty"),
        (("AI.DAGEXECUTE", "LOAD", 1, "x", "FOO", "|>", "AI.TENSORGET", "x"), b"ERR Invalid DAG command. Unexpected argument:  FOO"),
        (("AI.DAGEXECUTE", "LOAD", 2, "x", "|>", "AI.TENSORGET", "x"), b"ERR number of keys to LOAD into DAG does not match the number of given arguments"),
        (("AI.DAGEXECUTE", "LOAD", "x", "x", "|>", "AI.TENSORGET", "x"), b"ERR invalid or negative value found in number of keys to LOAD"),
        (("AI.DAGEXECUTE", "LOAD", 1, "missing", "|>", "AI.TENSORGET", "missing"), b"ERR tensor key is empty or in a different shard"),
        (("AI.DAGEXECUTE", "PERSIST", 2, "y", "y", "|>", "AI.TENSORSET", "y", "FLOAT", 1), b"ERR PERSIST keys must be unique"),
        (("AI.DAGEXECUTE", "PERSIST", 1, "z", "|>", "AI.TENSORSET", "y", "FLOAT", 1), b"ERR PERSIST key cannot be found in DAG"),
        (("AI.DAGEXECUTE_RO", "PERSIST", 1, "y", "|>", "AI.TENSORSET", "y", "FLOAT", 1), b"ERR PERSIST cannot be specified in a read-only DAG"),
        (("AI.DAGEXECUTE_RO", "LOAD", 1, "x", "|>", "AI.SCRIPTEXECUTE", "s", "add_all", "INPUTS", 1, "x"), b"ERR AI.SCRIPTEXECUTE command cannot be specified in a read-only DAG"),
        (("AI.DAGEXECUTE", "LOAD", 1, "x", "|>", "AI.TENSORGET", "nope"), b"ERR INPUT key cannot be found in DAG"),
        (("AI.DAGEXECUTE", "LOAD", 1, "x", "|>", "AI.MODELSTORE", "m2", "ONNX", "CPU", "BLOB", b"x"), b"Unsupported command within DAG"),
        (("AI.DAGEXECUTE_RO", "LOAD", 1, "x", "|>", "AI.MODELSTORE", "m2", "ONNX", "CPU", "BLOB", b"x"), b"Unsupported command within DAG"),
        (("AI.DAGEXECUTE_RO", "LOAD", 1, "x", "PERSIST", 1, "x", "|>", "AI.TENSORSET", "x", "FLOAT", 1), b"ERR PERSIST cannot be specified in a read-only DAG"),
        (("AI.DAGEXECUTE", "LOAD", 1, "x", "|>", "AI.MODELRUN", "m", "INPUTS", "x", "x", "OUTPUTS", "y"), b"Deprecated AI.MODELRUN cannot be used in AI.DAGEXECUTE command"),
        (("AI.DAGRUN", "LOAD", 1, "x", "|>", "AI.MODELEXECUTE", "m", "INPUTS", 2, "x", "x", "OUTPUTS", 1, "y"), b"AI.MODELEXECUTE cannot be used in a deprecated AI.DAGRUN command"),
        (("AI.DAGEXECUTE", "LOAD", 1, "x", "|>", "AI.MODELEXECUTE", "m", "INPUTS", 2, "x", "x", "OUTPUTS", 1, "y", "TIMEOUT", 5), b"ERR TIMEOUT not allowed within a DAG command"),
        (("AI.DAGEXECUTE", "LOAD", 1, "x", "TIMEOUT", 0, "|>", "AI.TENSORGET", "x"), b"ERR Invalid value for TIMEOUT"),
        (("AI.DAGEXECUTE", "LOAD", 1, "x", "ROUTING", "|>", "AI.TENSORGET", "x"), b"ERR Missing ROUTING value"),
        (("AI.DAGRUN", "|>"), b"ERR wrong number of arguments for 'AI.DAGRUN' command"),
    ]
    for args, error in cases:
        assert raw.call(*args) == Error(error), args
    assert raw.call("DBSIZE") == 3


def test_dag_timeout(new_server):
    server = new_server(module_args=("INTRA_OP_PARALLELISM", "1"))
    client = server.client()
    store_script(client)
    client.execute_command("AI.TENSORSET", "x", "FLOAT", 1, "VALUES", 1)
    start = time.perf_counter()
    reply = client.execute_command(
        "AI.DAGEXECUTE", "LOAD", 1, "x", "TIMEOUT", 300, "|>",
        "AI.SCRIPTEXECUTE", "s", "slow", "INPUTS", 1, "x", "ARGS", 1, "3000", "OUTPUTS", 1, "y", "|>",
        "AI.SCRIPTEXECUTE", "s", "slow", "INPUTS", 1, "y", "ARGS", 1, "3000", "OUTPUTS", 1, "z", "|>",
        "AI.TENSORGET", "z", "VALUES")
    assert reply == b"TIMEDOUT"
    assert time.perf_counter() - start < 30


def test_dag_ops_on_different_devices_run_in_parallel(new_server):
    # Runs of ~1.6 s: far from MODEL_EXECUTION_TIMEOUT however busy the machine (the executor would stop them).
    server = new_server(module_args=("INTRA_OP_PARALLELISM", "1", "MODEL_EXECUTION_TIMEOUT", "120000"))
    client = server.client()
    client.execute_command("AI.MODELSTORE", "m1", "TORCH", "CPU:0", "BLOB", mf.torch_slow())
    client.execute_command("AI.MODELSTORE", "m2", "TORCH", "CPU:1", "BLOB", mf.torch_slow())
    client.execute_command("AI.TENSORSET", "x", "FLOAT", 1, "VALUES", 1)
    for _ in range(2):  # warm-up runs (TorchScript profiles its first calls)
        client.execute_command("AI.MODELEXECUTE", "m1", "INPUTS", 1, "x", "OUTPUTS", 1, "y")
        client.execute_command("AI.MODELEXECUTE", "m2", "INPUTS", 1, "x", "OUTPUTS", 1, "y")
    ratios = []
    for _ in range(5):  # best of 5: the other test worker shares the 2 cores
        start = time.perf_counter()
        client.execute_command("AI.MODELEXECUTE", "m1", "INPUTS", 1, "x", "OUTPUTS", 1, "y")
        one = time.perf_counter() - start
        start = time.perf_counter()
        reply = client.execute_command("AI.DAGEXECUTE", "LOAD", 1, "x", "|>",
                                       "AI.MODELEXECUTE", "m1", "INPUTS", 1, "x", "OUTPUTS", 1, "a", "|>",
                                       "AI.MODELEXECUTE", "m2", "INPUTS", 1, "x", "OUTPUTS", 1, "b")
        assert reply == [b"OK", b"OK"]
        ratios.append((time.perf_counter() - start) / one)
        if ratios[-1] < 1.75:
            break
    assert min(ratios) < 1.75, f"two independent ops took {ratios} times one op (serial would be 2)"


def fill_scripts(client):
    store_script(client)
    client.execute_command("AI.SCRIPTSET", "old", "CPU", "TAG", "t", "SOURCE", "def multiply(a, b):\n    return a * b\n")
    client.execute_command("AI.TENSORSET", "a", "FLOAT", 2, "VALUES", 2, 3)


def check_scripts(client):
    client.execute_command("AI.SCRIPTEXECUTE", "s", "add_all", "INPUTS", 2, "a", "a", "ARGS", 1, "1", "OUTPUTS", 1, "o1")
    client.execute_command("AI.SCRIPTRUN", "old", "multiply", "INPUTS", "a", "a", "OUTPUTS", "o2")
    assert values(client, "o1") == [5, 7] and values(client, "o2") == [4, 9]


def digests(client):
    return {key: client.execute_command("DEBUG", "DIGEST-VALUE", key)[0] for key in sorted(client.keys())}


def test_scripts_survive_reload_and_restarts(new_server):
    server = new_server(config=("--appendonly", "yes", "--aof-use-rdb-preamble", "no"))
    client = server.client()
    fill_scripts(client)
    client.execute_command("DEBUG", "RELOAD")
    check_scripts(client)
    before = digests(client)
    server.restart(save=False)  # from the AOF (commands as sent)
    assert digests(server.client()) == before
    client = server.client()
    client.bgrewriteaof()
    wait_for_persistence(client)
    server.restart(save=False)  # from the rewritten AOF
    client = server.client()
    assert digests(client) == before
    check_scripts(client)
    client.config_set("appendonly", "no")
    server.restart(save=True)  # from the RDB
    assert digests(server.client()) == before
    check_scripts(server.client())


def test_scripts_and_dag_outputs_reach_replica(new_server):
    master = new_server("master")
    replica = start_replica(new_server, master)
    client, replica_client = master.client(), replica.client()
    fill_scripts(client)
    client.execute_command("AI.DAGEXECUTE", "PERSIST", 1, "p", "|>", "AI.TENSORSET", "t", "FLOAT", 1, "VALUES", 3,
                           "|>", "AI.SCRIPTEXECUTE", "s", "add_all", "INPUTS", 1, "t", "ARGS", 1, "1", "OUTPUTS", 1, "p")
    assert client.wait(1, 10000) == 1
    assert digests(replica_client) == digests(client)
    assert values(replica_client, "p") == [4]
    assert replica_client.execute_command("AI.DAGEXECUTE_RO", "LOAD", 1, "p", "|>", "AI.TENSORGET", "p", "VALUES") == [[b"4"]]


def test_restore_old_script_layouts(r):
    import rdb_payloads as p
    source = b"def multiply(a, b):\n    return a * b\n"
    v2 = p.buffer(b"CPU\0") + p.buffer(b"tag") + p.buffer(source + b"\0")
    r.execute_command("AI.TENSORSET", "a", "FLOAT", 2, "VALUES", 2, 3)
    r.restore("s2", 0, p.payload("AI_SCRIPT", 2, v2))
    r.execute_command("AI.SCRIPTRUN", "s2", "multiply", "INPUTS", "a", "a", "OUTPUTS", "o")
    assert values(r, "o") == [4, 9]
    store_script(r, "s4")
    assert r.dump("s4")[10:16] == p.buffer(b"CPU\0")


def test_dag_persisting_loaded_tensors_keeps_every_key_whole(r):
    r.execute_command("AI.TENSORSET", "t1", "FLOAT", 2, "VALUES", 1, 2)
    assert r.execute_command("AI.DAGEXECUTE", "LOAD", 1, "t1", "PERSIST", 1, "t1", "|>", "AI.TENSORGET", "t1", "META") == [
        [b"dtype", b"FLOAT", b"shape", [2]]]
    assert r.execute_command("AI.TENSORGET", "t1", "VALUES") == [b"1", b"2"]
    r.copy("t1", "t2")
    r.delete("t1")
    assert r.execute_command("AI.TENSORGET", "t2", "VALUES") == [b"1", b"2"]
    r.execute_command("AI.TENSORSET", "t1", "FLOAT", 1, "VALUES", 5)
    assert r.execute_command("AI.TENSORGET", "t1", "VALUES") == [b"5"]
