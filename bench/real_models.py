"""Real architectures (bench/real_fixtures.py: BERT 4 layers seq 64 as TorchScript and ONNX, Keras MobileNetV2
as a frozen TF graph and as TFLite, random weights, built locally): what serving them through Redis costs
over calling the same framework in-process, and what auto-batching buys on BERT.

* Serving tax, 1 client: for each model a child process (one per framework, so the benchmark process
  imports none) loads the same blob with the same framework, in its default setup as the server's backend
  does, and measures in slices A B B A: the in-process call (inputs already arrays, outputs as numpy
  arrays), then AI.MODELEXECUTE of the model stored in redis-server (inputs already in keys), then again,
  then in-process again; 0.3 s of sleep between slices lets each side's framework thread pools go idle. Both
  answers are compared first. Target (issue 15): MODELEXECUTE p50 <= 1.05 x in-process p50 + 0.2 ms, i.e.
  the ratio p50 / (1.05 x in-process p50 + 0.2 ms) <= 1.
* Auto-batching: 16 client threads (one redis-py connection each, own input and output keys) sending
  MODELEXECUTE of BERT ONNX stored with BATCHSIZE 16 and of the same blob stored without, slices A B B A.
  Target (issue 15): >= 2x the throughput without batching. Next to it, the ceiling: onnxruntime alone,
  in a child process, samples/s at batch 16 over batch 1 (what batching can buy at all on this machine,
  before any serving).
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import real_fixtures as rf  # noqa: E402

SECTION = "10. Real models"
SLICE = float(os.environ.get("BENCH_REAL_SLICE", "1.5"))
SLICE_PAIRS = 2  # A B B A twice, each slice SLICE / 2: drift on a shared machine hits both sides alike
MIN_CALLS = 10
CLIENTS = 16
BATCH_SLICE = float(os.environ.get("BENCH_REAL_BATCH_SLICE", "2.0"))

# name: (fixture, backend, MODELSTORE options, inputs, outputs)
MODELS = {
    "BERT TorchScript": ("bert_torchscript", "TORCH", [], ["input_ids", "attention_mask"],
                         ["last_hidden_state", "pooler_output"]),
    "BERT torch.export": ("bert_exported", "TORCH", [], ["input_ids", "attention_mask"],
                          ["last_hidden_state", "pooler_output"]),
    "BERT ONNX": ("bert_onnx", "ONNX", [], ["input_ids", "attention_mask"], ["last_hidden_state", "pooler_output"]),
    "MobileNetV2 TF (frozen graph)": ("mobilenet_tf", "TF", ["INPUTS", 1, "input", "OUTPUTS", 1, "Identity"],
                                      ["input"], ["Identity"]),
    "MobileNetV2 TFLite": ("mobilenet_tflite", "TFLITE", [], ["input"], ["Identity"]),
}


def inputs_of(fixture: str) -> list[np.ndarray]:
    if fixture.startswith("bert"):
        return list(rf.bert_inputs())
    return [rf.image()]


def key(fixture: str, name: str) -> str:
    return f"{fixture}:{name}"


# -- the child: one framework, in-process and through the server ---------------------------------------

def in_process(fixture: str):
    """A callable running the model in this process as the server's backend would, inputs -> outputs."""
    blob = rf.path(fixture).read_bytes()
    arrays = inputs_of(fixture)
    if fixture == "bert_torchscript":
        import torch

        module = torch.jit.load(io.BytesIO(blob))
        tensors = [torch.from_numpy(a) for a in arrays]
        def call():
            with torch.inference_mode():  # as the backend runs (per worker thread)
                return [t.numpy() for t in module(*tensors)]
        return call
    if fixture == "bert_exported":
        import torch

        module = torch.export.load(io.BytesIO(blob)).module()
        tensors = [torch.from_numpy(a) for a in arrays]
        def call():
            with torch.inference_mode():
                return [t.numpy() for t in module(*tensors)]
        return call
    if fixture == "bert_onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(blob, providers=["CPUExecutionProvider"])
        feeds = dict(zip(["input_ids", "attention_mask"], arrays))
        return lambda: session.run(None, feeds)
    if fixture == "mobilenet_tf":
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import tensorflow as tf

        graph_def = tf.compat.v1.GraphDef()
        graph_def.ParseFromString(blob)
        graph = tf.Graph()
        with graph.as_default():
            tf.compat.v1.import_graph_def(graph_def, name="")
        session = tf.compat.v1.Session(graph=graph, config=tf.compat.v1.ConfigProto(allow_soft_placement=True))
        call = session.make_callable("Identity:0", ["input:0"])
        return lambda: [call(arrays[0])]
    if fixture == "mobilenet_tflite":
        from ai_edge_litert import interpreter as litert

        interpreter = litert.Interpreter(model_content=blob, num_threads=None)
        interpreter.allocate_tensors()
        (inp,), (out,) = interpreter.get_input_details(), interpreter.get_output_details()

        def call():
            interpreter.set_tensor(inp["index"], arrays[0])
            interpreter.invoke()
            return [interpreter.get_tensor(out["index"]).copy()]
        return call
    raise ValueError(fixture)


def timed(call, seconds: float) -> list[float]:
    samples: list[float] = []
    end = time.perf_counter() + seconds
    while len(samples) < MIN_CALLS or time.perf_counter() < end:
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return samples


def child(name: str, port: int) -> None:
    import redis

    fixture, _, _, inputs, outputs = MODELS[name]
    local = in_process(fixture)
    db = redis.Redis(port=port, protocol=2, socket_timeout=300)
    command = ("AI.MODELEXECUTE", fixture, "INPUTS", len(inputs), *[key(fixture, i) for i in inputs],
               "OUTPUTS", len(outputs), *[key(fixture, "out:" + o) for o in outputs])

    def remote():
        return db.execute_command(*command)

    expected = local()
    remote()
    for o, value in zip(outputs, expected):
        got = np.frombuffer(db.execute_command("AI.TENSORGET", key(fixture, "out:" + o), "BLOB"), value.dtype)
        assert np.allclose(got, value.ravel(), rtol=1e-3, atol=1e-4), (name, o)
    for _ in range(5):  # warm-up of both sides
        local()
        remote()
    slices = {"inproc": [], "server": []}
    for which in ("inproc", "server", "server", "inproc") * SLICE_PAIRS:
        time.sleep(0.3)
        slices[which].append(timed(local if which == "inproc" else remote, SLICE / SLICE_PAIRS))
    print("RESULT " + json.dumps(slices), flush=True)


def ceiling() -> None:
    """onnxruntime alone, as the backend builds it: BERT ONNX samples/s at batch 1 and at batch CLIENTS."""
    import onnxruntime

    session = onnxruntime.InferenceSession(rf.path("bert_onnx").read_bytes(), providers=["CPUExecutionProvider"])
    rates = {}
    for batch in (1, CLIENTS):
        feeds = {i.name: np.repeat(a, batch, axis=0) for i, a in zip(session.get_inputs(), inputs_of("bert_onnx"))}
        for _ in range(3):
            session.run(None, feeds)
        samples = timed(lambda: session.run(None, feeds), BATCH_SLICE)
        rates[batch] = batch / float(np.median(samples))
    print("RESULT " + json.dumps(rates), flush=True)


# -- the parent ------------------------------------------------------------------------------------------

def main():
    from common import Row, fmt_rate, fmt_time, load_summary, median, percentile, print_rows, start_server
    from models import load

    if rf.missing():
        t0 = time.perf_counter()
        subprocess.run([sys.executable, str(HERE / "real_fixtures.py")], check=True, timeout=1200)
        print(f"built the real models in {time.perf_counter() - t0:.0f} s", flush=True)
    rows = []
    server = start_server()
    try:
        db = server.client(socket_timeout=600)
        for name, (fixture, backend, options, inputs, outputs) in MODELS.items():
            db.execute_command("AI.MODELSTORE", fixture, backend, "CPU", *options, "BLOB",
                               rf.path(fixture).read_bytes())
            for input_name, array in zip(inputs, inputs_of(fixture)):
                db.execute_command("AI.TENSORSET", key(fixture, input_name), rf_type(array), *array.shape, "BLOB",
                                   array.tobytes())

        for name, (fixture, *_rest) in MODELS.items():
            out = subprocess.run([sys.executable, str(HERE / "real_models.py"), "--child", name, str(server.port)],
                                 capture_output=True, text=True, timeout=600,
                                 env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
            line = next((x for x in out.stdout.splitlines() if x.startswith("RESULT ")), None)
            if out.returncode or line is None:
                raise RuntimeError(f"{name}: child failed ({out.returncode}): {out.stderr[-3000:]}")
            slices = json.loads(line[len("RESULT "):])
            local = [x for s in slices["inproc"] for x in s]
            remote = [x for s in slices["server"] for x in s]
            lp50, rp50 = median(local), median(remote)
            slice_text = " / ".join(f"{median(a) * 1e3:.1f}:{median(b) * 1e3:.1f}"
                                    for a, b in zip(slices["inproc"], slices["server"]))
            bound = 1.05 * lp50 + 0.2e-3
            rows.append(Row(
                SECTION, f"{name}, 1 client: MODELEXECUTE vs in-process",
                f"p50 {fmt_time(rp50)} · p99 {fmt_time(percentile(remote, 99))} "
                f"({rp50 / lp50:.2f}× in-process, +{fmt_time(rp50 - lp50)})",
                "in-process call", f"p50 {fmt_time(lp50)} · p99 {fmt_time(percentile(local, 99))} "
                f"(p50 ms per slice pair, in-process:MODELEXECUTE {slice_text})",
                rp50 / bound, "p50 / (1.05 × in-process p50 + 0.2 ms)", ("<=", 1.0),
                data={"kind": "tax", "model": name, "p50": rp50, "inproc_p50": lp50, "calls": len(remote),
                      "slices": slices,
                      "issue15": [{"target": f"{name}: MODELEXECUTE p50 ≤ 1.05× in-process + 0.2 ms (1 client)",
                                   "ratio": rp50 / bound, "op": "<=", "value": 1.0,
                                   "detail": f"{fmt_time(rp50)} vs {fmt_time(lp50)} in-process"}]}))
            print_rows(rows[-1:])

        # The same BERT as a torch.export program against TorchScript, both served.
        served = {row.data["model"]: row.data["p50"] for row in rows if row.data.get("kind") == "tax"}
        if "BERT torch.export" in served and "BERT TorchScript" in served:
            ratio = served["BERT torch.export"] / served["BERT TorchScript"]
            rows.append(Row(
                SECTION, "BERT torch.export program vs TorchScript, 1 client: MODELEXECUTE p50",
                f"p50 {fmt_time(served['BERT torch.export'])}", "TorchScript",
                f"p50 {fmt_time(served['BERT TorchScript'])}", ratio, "p50 export / TorchScript", ("<=", 1.2),
                data={"kind": "export", "ours": served["BERT torch.export"], "base": served["BERT TorchScript"]}))
            print_rows(rows[-1:])

        # Auto-batching on BERT ONNX, 16 clients.
        fixture = "bert_onnx"
        blob = rf.path(fixture).read_bytes()
        db.execute_command("AI.MODELSTORE", "bert_batched", "ONNX", "CPU", "BATCHSIZE", CLIENTS, "BLOB", blob)
        commands = {}
        for i in range(CLIENTS):
            ids, mask = rf.bert_inputs(seed=i)
            db.execute_command("AI.TENSORSET", f"ids{i}", "INT64", *ids.shape, "BLOB", ids.tobytes())
            db.execute_command("AI.TENSORSET", f"mask{i}", "INT64", *mask.shape, "BLOB", mask.tobytes())
        for model in ("bert_batched", fixture):
            commands[model] = [("AI.MODELEXECUTE", model, "INPUTS", 2, f"ids{i}", f"mask{i}", "OUTPUTS", 2,
                                f"h{model}{i}", f"p{model}{i}") for i in range(CLIENTS)]
        for i in range(CLIENTS):  # batched answers are the unbatched ones
            db.execute_command(*commands["bert_batched"][i])
            db.execute_command(*commands[fixture][i])
            a = np.frombuffer(db.execute_command("AI.TENSORGET", f"pbert_batched{i}", "BLOB"), np.float32)
            b = np.frombuffer(db.execute_command("AI.TENSORGET", f"p{fixture}{i}", "BLOB"), np.float32)
            assert np.allclose(a, b, rtol=1e-3, atol=1e-4)
        db.execute_command("AI.INFO", "bert_batched", "RESETSTAT")
        runs = {"bert_batched": [], fixture: []}
        for model in ("bert_batched", fixture, fixture, "bert_batched"):
            runs[model].append(load(server, None, CLIENTS, BATCH_SLICE, commands=commands[model]))
        # requests per backend run: AI.INFO's calls / the extended stats' runs (as bench/batching.py)
        mean_batch = _mean_batch(db, "bert_batched")
    finally:
        server.stop()

    rows += budget_rows()

    out = subprocess.run([sys.executable, str(HERE / "real_models.py"), "--ceiling"], capture_output=True, text=True,
                         timeout=600)
    line = next((x for x in out.stdout.splitlines() if x.startswith("RESULT ")), None)
    if out.returncode or line is None:
        raise RuntimeError(f"ceiling child failed ({out.returncode}): {out.stderr[-3000:]}")
    alone = {int(batch): rate for batch, rate in json.loads(line[len("RESULT "):]).items()}
    rows.append(Row(
        SECTION, f"BERT ONNX in onnxruntime alone (no server): batch {CLIENTS} vs batch 1, the ceiling of batching",
        f"{fmt_rate(alone[CLIENTS], 'samples/s')}", "batch 1", f"{fmt_rate(alone[1], 'samples/s')}",
        alone[CLIENTS] / alone[1], "samples/s batch 16 / batch 1", None,
        data={"kind": "batching ceiling", "ours": alone[CLIENTS], "base": alone[1]}))
    print_rows(rows[-1:])

    on, off = load_summary(runs["bert_batched"]), load_summary(runs[fixture])
    ratio = on["rate"] / off["rate"]
    batch_text = f" · {mean_batch:.1f} requests per backend run" if mean_batch else ""
    rows.append(Row(
        SECTION, f"BERT ONNX, {CLIENTS} clients: BATCHSIZE {CLIENTS} vs none",
        f"{fmt_rate(on['rate'], 'req/s')} · p50 {fmt_time(on['p50'])} · p99 {fmt_time(on['p99'])}{batch_text}",
        "no BATCHSIZE", f"{fmt_rate(off['rate'], 'req/s')} · p50 {fmt_time(off['p50'])} · p99 {fmt_time(off['p99'])}",
        ratio, "on/off req/s", (">=", 2.0), on["cpu"], off["cpu"],
        data={"kind": "batching", "ours": on["rate"], "base": off["rate"], "mean_batch": mean_batch,
              "issue15": [{"target": "BERT ONNX, 16 clients: BATCHSIZE 16 ≥ 2× the throughput without", "ratio": ratio,
                           "op": ">=", "value": 2.0}]}))
    print_rows(rows[-1:])
    return rows


BUDGET_MODELS = ("BERT TorchScript", "BERT ONNX")


def budget_rows() -> list:
    """The cost of BACKEND_MEMORY_LIMIT's bookkeeping: MODELEXECUTE p50 with the default (derived) budget
    against `BACKEND_MEMORY_LIMIT 0`, two servers, one redis-py client, slices A B B A."""
    from common import Row, fmt_time, median, print_rows, start_server

    servers = {"on": start_server(), "off": start_server(module_args=("BACKEND_MEMORY_LIMIT", "0"))}
    rows = []
    try:
        calls = {}
        for which, server in servers.items():
            db = server.client(socket_timeout=600)
            for name in BUDGET_MODELS:
                fixture, backend, options, inputs, outputs = MODELS[name]
                db.execute_command("AI.MODELSTORE", fixture, backend, "CPU", *options, "BLOB", rf.path(fixture).read_bytes())
                for input_name, array in zip(inputs, inputs_of(fixture)):
                    db.execute_command("AI.TENSORSET", key(fixture, input_name), rf_type(array), *array.shape, "BLOB",
                                       array.tobytes())
                command = ("AI.MODELEXECUTE", fixture, "INPUTS", len(inputs), *[key(fixture, i) for i in inputs],
                           "OUTPUTS", len(outputs), *[key(fixture, "out:" + o) for o in outputs])
                calls[which, name] = (lambda db=db, command=command: db.execute_command(*command))
                for _ in range(5):
                    calls[which, name]()
        for name in BUDGET_MODELS:
            slices = {"on": [], "off": []}
            for which in ("on", "off", "off", "on") * SLICE_PAIRS:
                time.sleep(0.3)
                slices[which].append(timed(calls[which, name], SLICE / SLICE_PAIRS))
            on, off = (median([x for piece in slices[w] for x in piece]) for w in ("on", "off"))
            rows.append(Row(
                SECTION, f"{name}, 1 client: MODELEXECUTE with the default memory budget vs BACKEND_MEMORY_LIMIT 0",
                f"p50 {fmt_time(on)}", "BACKEND_MEMORY_LIMIT 0", f"p50 {fmt_time(off)}", on / off, "p50 on / off",
                ("<=", 1.02), data={"kind": "budget", "model": name, "on": on, "off": off}))
            print_rows(rows[-1:])
    finally:
        for server in servers.values():
            server.stop()
    return rows


def _mean_batch(db, model: str) -> float | None:
    try:
        info = db.execute_command("AI.INFO", model, "EXTENDED")
    except Exception:
        return None
    info = dict(zip(info[::2], info[1::2]))
    runs = int(info.get(b"runs", 0) or 0)
    return int(info[b"calls"]) / runs if runs else None


def rf_type(array: np.ndarray) -> str:
    return {np.dtype(np.float32): "FLOAT", np.dtype(np.int64): "INT64"}[array.dtype]


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], int(sys.argv[3]))
    elif sys.argv[1:] == ["--ceiling"]:
        ceiling()
    else:
        main()
