"""Redis in production: INFO, Cluster, ACL, replication, fork safety under load, crash durability."""

import os
import signal
import socket
import threading
import time

import numpy as np
import pytest
import redis
from redis.cluster import RedisCluster

import model_fixtures as mf
from resp import Error, RawConnection
from server import wait_for, wait_for_persistence

SCRIPT = "def f(tensors: List[Tensor], keys: List[str], args: List[str]):\n    return tensors[0] * 2.0\n"


def values(client, key):
    return [float(v) for v in client.execute_command("AI.TENSORGET", key, "VALUES")]


# ------------------------------------------------------------------ INFO

def test_info_section(server, r, raw):
    r.execute_command("AI.MODELSTORE", "m", "ONNX", "CPU", "BLOB", mf.onnx_mul())
    info = r.info("ai")
    assert info["ai_RedisAI_version"] == "1.2.7" and info["ai_low_level_API_version"] == 1 and info["ai_rdb_version"] == 4
    assert info["ai_threads_per_queue"] == 1 and info["ai_model_execution_timeout"] == 5000
    assert "ai_onnxruntime_version" in info
    assert "ai_queue_CPU_bthread_n1_used_cpu_total" in info and info["ai_queue_CPU_length"] == 0
    text = raw.call("INFO", "MODULES").decode()
    assert text.index("# ai_versions") < text.index("# ai_git") < text.index("# ai_load_time_configs")


# ------------------------------------------------------------------ Cluster

def test_cluster(cluster):
    client = RedisCluster(host="127.0.0.1", port=cluster[0].port, protocol=2)
    client.execute_command("AI.TENSORSET", "{user1}a", "FLOAT", 2, "VALUES", 2, 3)
    client.execute_command("AI.MODELSTORE", "{user1}m", "ONNX", "CPU", "BLOB", mf.onnx_mul())
    client.execute_command("AI.SCRIPTSTORE", "{user1}s", "CPU", "ENTRY_POINTS", 1, "f", "SOURCE", SCRIPT)
    assert client.execute_command("AI.MODELEXECUTE", "{user1}m", "INPUTS", 2, "{user1}a", "{user1}a",
                                  "OUTPUTS", 1, "{user1}b") == b"OK"
    assert client.execute_command("AI.SCRIPTEXECUTE", "{user1}s", "f", "INPUTS", 1, "{user1}b",
                                  "OUTPUTS", 1, "{user1}c") == b"OK"
    reply = client.execute_command("AI.DAGEXECUTE", "LOAD", 1, "{user1}c", "PERSIST", 1, "{user1}d", "|>",
                                   "AI.MODELEXECUTE", "{user1}m", "INPUTS", 2, "{user1}c", "{user1}c",
                                   "OUTPUTS", 1, "{user1}d", "|>", "AI.TENSORGET", "{user1}d", "VALUES")
    assert reply == [b"OK", [b"64", b"324"]]
    # The key's owner answers; every other node redirects, and mixed slots are refused by Redis itself.
    slot = client.keyslot("{user1}a")
    owner = client.get_node_from_key("{user1}a")
    for node in cluster:
        with RawConnection(node.port) as raw:
            reply = raw.call("AI.TENSORGET", "{user1}a", "VALUES")
            if node.port == owner.port:
                assert reply == [b"2", b"3"]
            else:
                assert isinstance(reply, Error) and reply.startswith(f"MOVED {slot} ".encode())
    with RawConnection(owner.port) as raw:
        assert raw.call("AI.MODELEXECUTE", "{user1}m", "INPUTS", 2, "{user1}a", "{user2}a", "OUTPUTS", 1,
                        "{user1}x") == Error(b"CROSSSLOT Keys in request don't hash to the same slot")
        assert raw.call("AI.DAGEXECUTE", "LOAD", 1, "{user1}a", "PERSIST", 1, "{user2}x", "|>",
                        "AI.TENSORGET", "{user1}a") == Error(b"CROSSSLOT Keys in request don't hash to the same slot")
    client.close()


# ------------------------------------------------------------------ ACL



def test_acl_key_patterns(server, r):
    r.execute_command("ACL", "SETUSER", "u1", "on", ">pw", "~u1:*", "+@all")
    r.execute_command("AI.TENSORSET", "other", "FLOAT", 1, "VALUES", 7)
    r.execute_command("AI.TENSORSET", "u1:x", "FLOAT", 2, "VALUES", 2, 3)
    r.execute_command("AI.MODELSTORE", "u1:m", "ONNX", "CPU", "BLOB", mf.onnx_mul())
    r.execute_command("AI.MODELSTORE", "m", "ONNX", "CPU", "BLOB", mf.onnx_mul())
    r.execute_command("AI.SCRIPTSTORE", "u1:s", "CPU", "ENTRY_POINTS", 1, "f", "SOURCE", SCRIPT)
    before = r.execute_command("DEBUG", "DIGEST")
    try:
        with RawConnection(server.port) as raw:
            assert raw.call("AUTH", "u1", "pw") == b"OK"
            nopermission = raw.call("GET", "other")  # the server's own wording (Redis 7 and 8 differ)
            assert isinstance(nopermission, Error) and nopermission.startswith(b"NOPERM ")
            denied = [
                ("AI.TENSORGET", "other"),
                ("AI.TENSORSET", "other", "FLOAT", 1),
                ("AI.MODELEXECUTE", "u1:m", "INPUTS", 2, "u1:x", "other", "OUTPUTS", 1, "u1:y"),
                ("AI.MODELEXECUTE", "u1:m", "INPUTS", 2, "u1:x", "u1:x", "OUTPUTS", 1, "y"),
                ("AI.MODELEXECUTE", "m", "INPUTS", 2, "u1:x", "u1:x", "OUTPUTS", 1, "u1:y"),
                ("AI.MODELGET", "m"),
                ("AI.MODELDEL", "m"),
                ("AI.SCRIPTEXECUTE", "u1:s", "f", "KEYS", 1, "other", "INPUTS", 1, "u1:x", "OUTPUTS", 1, "u1:y"),
                ("AI.DAGEXECUTE", "LOAD", 1, "other", "|>", "AI.TENSORGET", "other"),
                ("AI.DAGEXECUTE", "LOAD", 1, "u1:x", "PERSIST", 1, "y", "|>", "AI.TENSORSET", "y", "FLOAT", 1),
                ("AI.DAGEXECUTE_RO", "ROUTING", "other", "|>", "AI.TENSORSET", "a", "FLOAT", 1),
                ("AI.INFO", "m"),
            ]
            for command in denied:
                assert raw.call(*command) == nopermission, command
            assert raw.call("AI.MODELEXECUTE", "u1:m", "INPUTS", 2, "u1:x", "u1:x", "OUTPUTS", 1, "u1:y") == b"OK"
            assert raw.call("AI.SCRIPTEXECUTE", "u1:s", "f", "KEYS", 1, "u1:k", "INPUTS", 1, "u1:y", "OUTPUTS", 1, "u1:z") == b"OK"
            assert raw.call("AI.DAGEXECUTE", "LOAD", 1, "u1:z", "PERSIST", 1, "u1:w", "|>",
                            "AI.MODELEXECUTE", "u1:m", "INPUTS", 2, "u1:z", "u1:z", "OUTPUTS", 1, "u1:w") == [b"OK"]
            assert raw.call("AI.TENSORGET", "u1:w", "VALUES") == [b"64", b"324"]
        for command in denied:
            assert r.execute_command("ACL", "DRYRUN", "u1", *command) != b"OK", command
        assert r.execute_command("ACL", "DRYRUN", "u1", "AI.TENSORGET", "u1:w") == b"OK"
        r.delete("u1:y", "u1:z", "u1:w")
        assert r.execute_command("DEBUG", "DIGEST") == before  # the denied commands changed nothing
    finally:
        r.execute_command("ACL", "DELUSER", "u1")


# ------------------------------------------------------------------ replication

def mixed_workload(client, step: int):
    """Every AI.* write command at least once."""
    p = f"k{step}:"
    client.execute_command("AI.TENSORSET", p + "a", "FLOAT", 2, "VALUES", step, step + 1)
    client.execute_command("AI.MODELSTORE", p + "m", "ONNX", "CPU", "TAG", str(step), "BLOB", mf.onnx_mul())
    client.execute_command("AI.MODELSET", p + "tf", "TF", "CPU", "INPUTS", "a", "b", "OUTPUTS", "c", "BLOB", mf.tf_mul_graph())
    client.execute_command("AI.MODELEXECUTE", p + "m", "INPUTS", 2, p + "a", p + "a", "OUTPUTS", 1, p + "b")
    client.execute_command("AI.MODELRUN", p + "tf", "INPUTS", p + "a", p + "b", "OUTPUTS", p + "c")
    client.execute_command("AI.SCRIPTSTORE", p + "s", "CPU", "ENTRY_POINTS", 1, "f", "SOURCE", SCRIPT)
    client.execute_command("AI.SCRIPTSET", p + "old", "CPU", "SOURCE", "def g(a):\n    return a + 1\n")
    client.execute_command("AI.SCRIPTEXECUTE", p + "s", "f", "INPUTS", 1, p + "c", "OUTPUTS", 1, p + "d")
    client.execute_command("AI.SCRIPTRUN", p + "old", "g", "INPUTS", p + "d", "OUTPUTS", p + "e")
    client.execute_command("AI.DAGEXECUTE", "LOAD", 1, p + "e", "PERSIST", 1, p + "f", "|>",
                           "AI.MODELEXECUTE", p + "m", "INPUTS", 2, p + "e", p + "e", "OUTPUTS", 1, p + "f")
    client.execute_command("AI.DAGRUN", "PERSIST", 1, p + "g", "|>", "AI.TENSORSET", p + "g", "INT8", 1, "VALUES", 5)
    client.execute_command("AI.MODELDEL", p + "tf")
    client.execute_command("AI.SCRIPTDEL", p + "old")


def test_replication_full_and_partial_sync(new_server):
    master = new_server("master", config=("--repl-diskless-sync", "no"))
    client = master.client()
    early = new_server("early", config=("--replicaof", "127.0.0.1", str(master.port)))
    wait_for(lambda: early.client().info("replication")["master_link_status"] == "up", message="early replica")
    mixed_workload(client, 1)
    late = new_server("late", config=("--replicaof", "127.0.0.1", str(master.port)))  # full sync through an RDB
    wait_for(lambda: late.client().info("replication")["master_link_status"] == "up", message="late replica")
    mixed_workload(client, 2)
    partial_before = client.info("stats")["sync_partial_ok"]
    early.client().execute_command("CLIENT", "KILL", "TYPE", "master")  # reconnects with PSYNC
    mixed_workload(client, 3)
    wait_for(lambda: client.info("stats")["sync_partial_ok"] > partial_before, message="partial resync")
    assert client.wait(2, 20000) == 2
    digest = client.execute_command("DEBUG", "DIGEST")
    for replica in (early, late):
        replica_client = replica.client()
        wait_for(lambda c=replica_client: c.execute_command("DEBUG", "DIGEST") == digest, timeout=30,
                 message="replica digest")
        with pytest.raises(redis.ReadOnlyError):
            replica_client.execute_command("AI.TENSORSET", "x", "FLOAT", 1)
        assert values(replica_client, "k3:f") == values(client, "k3:f")
        assert replica_client.execute_command("AI.MODELGET", "k2:m", "META")[5] == b"2"
        assert replica_client.execute_command("AI.DAGEXECUTE_RO", "LOAD", 1, "k1:a", "|>", "AI.MODELEXECUTE",
                                              "k1:m", "INPUTS", 2, "k1:a", "k1:a", "OUTPUTS", 1, "t", "|>",
                                              "AI.TENSORGET", "t", "VALUES") == [b"OK", [b"1", b"4"]]


# ------------------------------------------------------------------ fork safety

def _fork_under_load(new_server, bgsaves: int, rewrites: int, clients: int):
    server = new_server(config=("--appendonly", "yes"))
    client = server.client()
    client.execute_command("AI.TENSORSET", "a", "FLOAT", 2, "VALUES", 2, 3)
    client.execute_command("AI.MODELSTORE", "m", "ONNX", "CPU", "BLOB", mf.onnx_mul())
    client.execute_command("AI.SCRIPTSTORE", "s", "CPU", "ENTRY_POINTS", 1, "f", "SOURCE", SCRIPT)
    stop, failures, done = threading.Event(), [], [0]

    def work(i):
        c = server.client()
        while not stop.is_set():
            if i % 2:
                c.execute_command("AI.MODELEXECUTE", "m", "INPUTS", 2, "a", "a", "OUTPUTS", 1, f"o{i}")
                expected = [4, 9]
            else:
                c.execute_command("AI.SCRIPTEXECUTE", "s", "f", "INPUTS", 1, "a", "OUTPUTS", 1, f"o{i}")
                expected = [4, 6]
            if values(c, f"o{i}") != expected:
                failures.append(i)
            done[0] += 1

    workers = [threading.Thread(target=work, args=(i,)) for i in range(clients)]
    for w in workers:
        w.start()
    forks = 0
    try:
        for i in range(bgsaves):
            client.bgsave()
            wait_for_persistence(client)
            assert client.info("persistence")["rdb_last_bgsave_status"] == "ok"
            forks += 1
            if rewrites and i % (bgsaves // rewrites) == 0:
                client.bgrewriteaof()
                wait_for_persistence(client)
                assert client.info("persistence")["aof_last_bgrewrite_status"] == "ok"
                forks += 1
    finally:
        stop.set()
        for w in workers:
            w.join()
    assert not failures and done[0] > 0
    digest = client.execute_command("DEBUG", "DIGEST")
    client.config_set("appendonly", "no")
    server.restart(save=True)
    assert server.client().execute_command("DEBUG", "DIGEST") == digest
    return forks, done[0]


def test_fork_safety_under_load(new_server):
    _fork_under_load(new_server, bgsaves=10, rewrites=2, clients=8)


@pytest.mark.long
def test_fork_safety_under_load_long(new_server):
    forks, replies = _fork_under_load(new_server, bgsaves=100, rewrites=10, clients=8)
    print(f"forks completed: {forks}, replies checked: {replies}")


# ------------------------------------------------------------------ crash durability

def _crash_run(new_server, seconds: float):
    server = new_server(config=("--appendonly", "yes", "--appendfsync", "always"))
    client = server.client()
    client.execute_command("AI.TENSORSET", "a", "FLOAT", 2, "VALUES", 2, 3)
    acknowledged: dict[str, bytes] = {}
    # One model stored before the clock starts: the writer's first store waits for an executor to start,
    # which may take longer than the run lasts on a busy machine.
    assert client.execute_command("AI.MODELSTORE", "m_first", "ONNX", "CPU", "BLOB", mf.onnx_mul()) == b"OK"
    models: list[str] = ["m_first"]
    stop = threading.Event()

    def writer():
        c = server.client()
        i = 0
        try:
            while not stop.is_set():
                data = np.random.default_rng(i).standard_normal(16).astype(np.float32).tobytes()
                if c.execute_command("AI.TENSORSET", f"t{i}", "FLOAT", 16, "BLOB", data) == b"OK":
                    acknowledged[f"t{i}"] = data
                if i % 20 == 0:
                    c.execute_command("AI.MODELSTORE", f"m{i}", "ONNX", "CPU", "BLOB", mf.onnx_mul())
                    models.append(f"m{i}")
                    c.execute_command("AI.MODELEXECUTE", f"m{i}", "INPUTS", 2, "a", "a", "OUTPUTS", 1, f"o{i}")
                    acknowledged[f"o{i}"] = np.array([4, 9], np.float32).tobytes()
                i += 1
        except (redis.ConnectionError, redis.TimeoutError):
            pass  # the server was killed mid-command: that write was never acknowledged

    thread = threading.Thread(target=writer)
    thread.start()
    time.sleep(seconds)
    os.kill(server.process.pid, signal.SIGKILL)
    server.process.wait()
    stop.set()
    thread.join()
    server.process = None
    server.start()
    client = server.client()
    missing = [k for k, v in acknowledged.items() if client.execute_command("AI.TENSORGET", k, "BLOB") != v]
    missing += [m for m in models if client.execute_command("AI.MODELGET", m, "BLOB") != mf.onnx_mul()]
    assert not missing, f"{len(missing)} acknowledged writes lost: {missing[:5]}"
    assert client.execute_command("AI.MODELEXECUTE", models[-1], "INPUTS", 2, "a", "a", "OUTPUTS", 1, "x") == b"OK"
    return len(acknowledged) + len(models)


def test_crash_durability(new_server):
    assert _crash_run(new_server, 2.0) > 20


@pytest.mark.long
def test_crash_durability_loop(new_server):
    total = sum(_crash_run(new_server, 1.0 + i / 2) for i in range(5))
    print(f"acknowledged writes found after SIGKILL: {total} of {total}")


# ------------------------------------------------------------------ memory

def test_tensor_memory_is_redis_memory(new_server):
    server = new_server()
    client = server.client()
    before = client.info("memory")["used_memory"]
    client.execute_command("AI.TENSORSET", "z", "FLOAT", 1024, 1024)  # 4 MiB, made on the main thread
    grown = client.info("memory")["used_memory"] - before
    assert 4 << 20 <= grown < (4 << 20) + (1 << 20), grown
    assert 4 << 20 <= client.memory_usage("z") < (4 << 20) + 4096
    client.execute_command("AI.MODELSTORE", "m", "TORCH", "CPU", "BLOB", mf.torch_two_outputs())
    before = client.info("memory")["used_memory"]
    client.execute_command("AI.MODELEXECUTE", "m", "INPUTS", 1, "z", "OUTPUTS", 2, "o1", "o2")  # made on a worker
    grown = client.info("memory")["used_memory"] - before
    assert 8 << 20 <= grown < (9 << 20), grown
    client.delete("z", "o1", "o2")
    assert client.info("memory")["used_memory"] < before - (3 << 20)
    assert client.memory_usage("m") >= len(mf.torch_two_outputs())


def test_outputs_overwritten_by_runs_are_freed(new_server):
    """A run's reply stores its outputs without Python (module/outcome.c): the values it replaces are
    released after the event loop's next sleep, with no further command."""
    server = new_server()
    client = server.client()
    client.execute_command("AI.MODELSTORE", "m", "TORCH", "CPU", "BLOB", mf.torch_two_outputs())
    client.execute_command("AI.TENSORSET", "z", "FLOAT", 1024, 1024)  # outputs: 2 x 4 MiB per run
    client.execute_command("AI.MODELEXECUTE", "m", "INPUTS", 1, "z", "OUTPUTS", 2, "o1", "o2")
    before = client.info("memory")["used_memory"]
    for _ in range(20):
        assert client.execute_command("AI.MODELEXECUTE", "m", "INPUTS", 1, "z", "OUTPUTS", 2, "o1", "o2") == b"OK"
    time.sleep(0.3)  # at least one event-loop sleep (hz 10)
    assert client.info("memory")["used_memory"] - before < 2 << 20


def test_outputs_of_runs_whose_client_left_are_freed(new_server):
    """A client that disconnects before its run ends never gets the prepared outcome: its output (4 MiB a
    run here) is released when Redis drops the blocked client. The model runs ~1.5 s, so the disconnect
    is always seen first, on a machine of any speed."""
    server = new_server(module_args=("INTRA_OP_PARALLELISM", "1", "MODEL_EXECUTION_TIMEOUT", "120000"))
    client = server.client()
    client.execute_command("AI.MODELSTORE", "m", "TORCH", "CPU", "BLOB", mf.torch_slow())
    client.execute_command("AI.TENSORSET", "z", "FLOAT", 1024, 1024)
    before = client.info("memory")["used_memory"]
    command = [b"AI.MODELEXECUTE", b"m", b"INPUTS", b"1", b"z", b"OUTPUTS", b"1", b"gone"]
    for _ in range(3):
        with socket.create_connection(("127.0.0.1", server.port)) as sock:
            sock.sendall(b"*%d\r\n" % len(command) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in command))
            wait_for(lambda: client.info("ai")["ai_queue_CPU_length"] > 0, message="the run queued")
    wait_for(lambda: client.info("ai")["ai_queue_CPU_length"] == 0, timeout=120, message="the runs done")
    assert client.ping() and not client.exists("gone")
    assert client.info("memory")["used_memory"] - before < 4 << 20


def test_maxmemory_evicts_tensors(new_server):
    server = new_server(config=("--maxmemory", "64mb", "--maxmemory-policy", "allkeys-lru"))
    client = server.client()
    blob = np.zeros(2 << 20, np.float32).tobytes()  # 8 MiB
    for i in range(40):
        client.execute_command("AI.TENSORSET", f"t{i}", "FLOAT", 2 << 20, "BLOB", blob)
        assert client.info("memory")["used_memory"] < 80_000_000
    assert client.exists("t39") and not client.exists("t0")
    assert client.info("stats")["evicted_keys"] >= 30


def test_noeviction_refuses_writes(new_server):
    server = new_server(config=("--maxmemory", "64mb", "--maxmemory-policy", "noeviction"))
    client = server.client()
    blob = np.zeros(2 << 20, np.float32).tobytes()
    with pytest.raises(redis.exceptions.OutOfMemoryError):
        for i in range(40):
            client.execute_command("AI.TENSORSET", f"t{i}", "FLOAT", 2 << 20, "BLOB", blob)
    assert 4 <= client.dbsize() < 10 and client.ping()
