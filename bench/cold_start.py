"""Cold start (issue 21): the first AI.MODELEXECUTE of a real model against the steady p50 of the same call,
1 client, after MODELSTORE and after DEBUG RELOAD (what a restart, a failover or a new replica sees).

Per model (bench/real_fixtures.py: BERT TorchScript and ONNX, MobileNetV2 TF and TFLite), on a fresh server:
the inputs set, then STORES times: MODELSTORE (BERT TorchScript with `WARMUP 2 INT64 1,64 INT64 1,64`:
TorchScript declares no shapes; the others warm on their declared ones, a dimension without a size as 1)
and the first run timed (each store builds a new session: the median of the STORES first runs is the
figure); then STEADY_RUNS back-to-back runs (their p50); then RELOADS times DEBUG RELOAD and, once INFO ai
reports the server warm (`warmup_pending` 0: what a readiness check reads), the first run. Next to them,
the first runs of STORES models stored earlier (all stored, then each run once: the model's own coldness
without what a store leaves the machine doing), the same call after IDLE_S of idle (median of 5): what any request after a quiet spell costs (the
frameworks' thread pools and the worker go to sleep), and the first run on a server with `WARMUP_RUNS 0`
(RedisAI's behaviour). Target: first run ≤ 1.5 × the steady p50, after store and after reload.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import real_fixtures as rf  # noqa: E402
from common import Row, fmt_time, median, print_rows, start_server  # noqa: E402
from real_models import MODELS, inputs_of, key, rf_type  # noqa: E402

SECTION = "13. Cold start"
STEADY_RUNS = int(os.environ.get("BENCH_COLD_STEADY_RUNS", "30"))
STORES, RELOADS, IDLE_S = 5, 3, 0.5
NAMES = ["BERT TorchScript", "BERT ONNX", "MobileNetV2 TF (frozen graph)", "MobileNetV2 TFLite"]
TORCHSCRIPT_WARMUP = ["WARMUP", 2, "INT64", f"1,{rf.SEQ}", "INT64", f"1,{rf.SEQ}"]


def _command(fixture: str, inputs: list[str], outputs: list[str]) -> tuple:
    return ("AI.MODELEXECUTE", fixture, "INPUTS", len(inputs), *[key(fixture, i) for i in inputs],
            "OUTPUTS", len(outputs), *[key(fixture, "out:" + o) for o in outputs])


def _timed(db, command) -> float:
    start = time.perf_counter()
    db.execute_command(*command)
    return time.perf_counter() - start


def measure(name: str, module_args: tuple[str, ...] = (), reload: bool = True) -> dict:
    fixture, backend, options, inputs, outputs = MODELS[name]
    server = start_server(module_args)
    try:
        db = server.client(socket_timeout=600)
        for input_name, array in zip(inputs, inputs_of(fixture)):
            db.execute_command("AI.TENSORSET", key(fixture, input_name), rf_type(array), *array.shape, "BLOB",
                               array.tobytes())
        warm_words = TORCHSCRIPT_WARMUP if fixture == "bert_torchscript" else []
        blob = rf.path(fixture).read_bytes()
        command = _command(fixture, inputs, outputs)
        stores, firsts = [], []
        for _ in range(STORES):
            start = time.perf_counter()
            db.execute_command("AI.MODELSTORE", fixture, backend, "CPU", *options, *warm_words, "BLOB", blob)
            stores.append(time.perf_counter() - start)
            firsts.append(_timed(db, command))
        result = {"store_s": median(stores), "first_after_store_s": median(firsts), "firsts_after_store_s": firsts}
        result["steady_p50_s"] = median([_timed(db, command) for _ in range(STEADY_RUNS)])
        # First runs of models stored earlier (all stored, then each run once): a model's own coldness,
        # apart from what a store leaves the machine doing (the main thread freeing the blob's arguments).
        others = [f"{fixture}:other{i}" for i in range(STORES)]
        for other in others:
            db.execute_command("AI.MODELSTORE", other, backend, "CPU", *options, *warm_words, "BLOB", blob)
        result["first_stored_earlier_s"] = median([_timed(db, (command[0], other, *command[2:])) for other in others])
        db.delete(*others)
        idle = []
        for _ in range(5):
            time.sleep(IDLE_S)
            idle.append(_timed(db, command))
        result["after_idle_s"] = median(idle)
        if reload:
            warm_after, firsts = [], []
            for _ in range(RELOADS):
                start = time.perf_counter()
                db.execute_command("DEBUG", "RELOAD")
                while db.info("ai")["ai_warmup_pending"]:
                    time.sleep(0.005)
                warm_after.append(time.perf_counter() - start)
                firsts.append(_timed(db, command))
            result.update(warm_after_reload_s=median(warm_after), first_after_reload_s=median(firsts),
                          firsts_after_reload_s=firsts)
        return result
    finally:
        server.stop()


def main() -> list[Row]:
    if rf.missing():
        import subprocess

        subprocess.run([sys.executable, str(HERE / "real_fixtures.py")], check=True, timeout=1200)
    rows = []
    for name in NAMES:
        warm = measure(name)
        cold = measure(name, ("WARMUP_RUNS", "0"), reload=False)
        print(f"  {name}: warm {warm}, cold {cold}", flush=True)
        steady = warm["steady_p50_s"]
        for when in ("store", "reload"):
            first = warm[f"first_after_{when}_s"]
            extra = (f"; MODELSTORE took {fmt_time(warm['store_s'])}" if when == "store"
                     else f"; warm {fmt_time(warm['warm_after_reload_s'])} after DEBUG RELOAD")
            rows.append(Row(SECTION, f"{name}: first run after {when}", fmt_time(first) + extra, "steady p50",
                            fmt_time(steady), first / steady, f"first/steady (median of {STORES if when == 'store' else RELOADS})",
                            ("<=", 1.5),
                            data={**warm, "cold_first_s": cold["first_after_store_s"]}))
        rows.append(Row(SECTION, f"{name}: first run of a model stored earlier", fmt_time(warm["first_stored_earlier_s"]),
                        "steady p50", fmt_time(steady), warm["first_stored_earlier_s"] / steady,
                        f"first/steady (median of {STORES})"))
        rows.append(Row(SECTION, f"{name}: a run after {IDLE_S:g} s idle (no store)", fmt_time(warm["after_idle_s"]),
                        "steady p50", fmt_time(steady), warm["after_idle_s"] / steady, "idle/steady"))
        rows.append(Row(SECTION, f"{name}: first run after store, WARMUP_RUNS 0 (as RedisAI)",
                        fmt_time(cold["first_after_store_s"]), "steady p50", fmt_time(cold["steady_p50_s"]),
                        cold["first_after_store_s"] / cold["steady_p50_s"], "first/steady"))
    print_rows(rows)
    return rows


if __name__ == "__main__":
    main()
