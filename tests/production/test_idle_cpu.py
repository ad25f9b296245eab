"""A server with no client waiting uses no CPU: after runs on every path (MODELEXECUTE and DAGs through the
fast paths, a TorchScript run) its workers, the kill switch and the deadline thread go to sleep."""

import os
import time

import numpy as np

import model_fixtures as mf
from server import wait_for

IDLE_WINDOW_S = 2.0
# serverCron at hz 10 and the OS's own bookkeeping: a few ms of CPU in the window. A spinning or ticking
# thread would take the whole window (100 %) or its tick's share of it.
IDLE_CPU_FRACTION = 0.05


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_a_server_with_no_client_waiting_uses_no_cpu(new_server):
    server = new_server()
    client = server.client()
    x = np.array([1, 2, 3, 4], np.float32).tobytes()
    client.execute_command("AI.MODELSTORE", "m", "ONNX", "CPU", "BLOB", mf.onnx_mul())
    client.execute_command("AI.MODELSTORE", "t", "TORCH", "CPU", "BLOB", mf.torch_add_mul())
    client.execute_command("AI.TENSORSET", "a", "FLOAT", 4, "BLOB", x)
    for _ in range(50):
        client.execute_command("AI.MODELEXECUTE", "m", "INPUTS", 2, "a", "a", "OUTPUTS", 1, "c", "TIMEOUT", 60000)
        client.execute_command("AI.DAGEXECUTE", "LOAD", 1, "a", "|>", "AI.TENSORSET", "b", "FLOAT", 4, "BLOB", x,
                               "|>", "AI.MODELEXECUTE", "m", "INPUTS", 2, "a", "b", "OUTPUTS", 1, "d",
                               "|>", "AI.TENSORGET", "d", "BLOB")
    client.execute_command("AI.MODELEXECUTE", "t", "INPUTS", 2, "a", "a", "OUTPUTS", 1, "e")
    wait_for(lambda: client.info("ai")["ai_queue_CPU_length"] == 0, message="the queue empty")
    time.sleep(0.5)  # the kill switch's last tick, a worker's spin
    pid = server.process.pid
    before, start = cpu_seconds(pid), time.monotonic()
    time.sleep(IDLE_WINDOW_S)
    used = (cpu_seconds(pid) - before) / (time.monotonic() - start)
    assert used < IDLE_CPU_FRACTION, f"an idle server used {used:.1%} of a core"
