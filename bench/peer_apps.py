"""The serving frameworks users pick instead of RedisAI, each serving one ONNX model with onnxruntime over
HTTP on 127.0.0.1, for bench/serving.py (and bench/real_models.py). One process per server:

    python bench/peer_apps.py litserve PORT MODEL.onnx
    python bench/peer_apps.py rayserve PORT MODEL.onnx

Both answer `POST /predict` with a JSON body {"<input name>": [values], ...} -> {"<first output>": [values]}:
the same request as bench/http_app.py's FastAPI JSON endpoint, the same model, the same onnxruntime session
options (defaults), each framework in its documented default setup (LitServe: one worker on the CPU, its
default queue; Ray Serve: one replica, a local single-node Ray started by this process, no dashboard, no
usage stats). Inputs are float32 unless the model declares int64 (token ids).
"""

from __future__ import annotations

import os
import signal
import sys

import numpy as np


def _session(path: str):
    import onnxruntime

    return onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])


def _dtypes(session) -> dict[str, type]:
    return {i.name: (np.int64 if i.type == "tensor(int64)" else np.float32) for i in session.get_inputs()}


def _predict(session, dtypes, body: dict) -> dict:
    feeds = {name: np.asarray(body[name], dtype) for name, dtype in dtypes.items()}
    output = session.get_outputs()[0].name
    (result,) = session.run([output], feeds)
    return {output: result.tolist()}


try:
    import litserve as ls
except ImportError:  # pragma: no cover - only the Ray Serve peer runs then
    ls = None
else:
    class OnnxAPI(ls.LitAPI):
        """At module level: LitServe starts its worker with multiprocessing's spawn, which pickles it. The
        model's path comes through the environment, which the worker inherits."""

        def setup(self, device):
            self.session = _session(os.environ["BENCH_ONNX_MODEL"])
            self.dtypes = _dtypes(self.session)

        def decode_request(self, request):
            return request

        def predict(self, body):
            return _predict(self.session, self.dtypes, body)

        def encode_response(self, output):
            return output


def litserve(port: int, model: str) -> None:
    os.environ["BENCH_ONNX_MODEL"] = model
    server = ls.LitServer(OnnxAPI(), accelerator="cpu", devices=1, workers_per_device=1, timeout=60)
    server.run(host="127.0.0.1", port=port, log_level="warning", generate_client_file=False)


def rayserve(port: int, model: str) -> None:
    import tempfile

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray
    from ray import serve
    from starlette.requests import Request

    # Short: Ray's socket paths must fit in 107 bytes. The benchmark passes its own, and removes it.
    temp_dir = os.environ.get("BENCH_RAY_TEMP") or tempfile.mkdtemp(prefix="rb", dir="/tmp")
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, _node_ip_address="127.0.0.1", _temp_dir=temp_dir,
             object_store_memory=128 << 20, log_to_driver=False, configure_logging=False)

    @serve.deployment(num_replicas=1)
    class OnnxModel:
        def __init__(self, path: str):
            self.session = _session(path)
            self.dtypes = _dtypes(self.session)

        async def __call__(self, request: Request) -> dict:
            return _predict(self.session, self.dtypes, await request.json())

    serve.start(http_options={"host": "127.0.0.1", "port": port})
    serve.run(OnnxModel.bind(model), route_prefix="/predict", blocking=False)
    print(f"ready {temp_dir}", flush=True)
    signal.pause()


def main() -> None:
    kind, port, model = sys.argv[1], int(sys.argv[2]), sys.argv[3]

    def stop(signum, frame):
        if kind == "rayserve":
            try:
                from ray import serve
                import ray
                serve.shutdown()
                ray.shutdown()
            finally:
                os._exit(0)
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    {"litserve": litserve, "rayserve": rayserve}[kind](port, model)


if __name__ == "__main__":
    main()
