"""Score a stream of sensor readings with a TorchScript model: Redis Stream in, RedisAI in the middle, scores out.

What it shows
-------------
1. Building a TorchScript model in-process (``torch.jit.script`` of a small ``nn.Module``, fixed weights,
   no downloads): it takes windows of 8 readings, shape [B, 8], smooths each window with a fixed
   3-tap Conv1d kernel and returns two outputs: the smoothed windows [B, 8] and an anomaly score [B]
   (root-mean-square residual between the raw and smoothed interior points: spikes score high).
2. Storing it with ``AI.MODELSTORE {sensor}model TORCH CPU BLOB <TorchScript archive>``.
3. A producer thread pushing 400 sensor readings (a noisy sine wave with a few injected spikes) into the
   Redis Stream ``{sensor}readings`` with XADD.
4. A consumer loop reading the stream in batches with ``XREAD BLOCK``, cutting the readings into tumbling
   windows of 8, and for every batch of complete windows:
   ``AI.TENSORSET {sensor}window FLOAT B 8 BLOB ...`` -> ``AI.MODELEXECUTE {sensor}model INPUTS 1 ...
   OUTPUTS 2 {sensor}smoothed {sensor}score`` -> ``AI.TENSORGET {sensor}score BLOB``.
   The scores go back into Redis: one XADD per window to the output stream ``{sensor}scores`` and a
   ZADD to the sorted set ``{sensor}ranking`` (top anomalies = ZREVRANGE).
5. Checking every server-side score against torch running the same model locally, and reporting
   summary statistics (50 windows, which ones were flagged as anomalies, ...).

All keys share the ``{sensor}`` hash tag, so they live in one slot (cluster friendly).

How to run
----------
In one terminal start the server with the module::

    make run

and in another::

    .venv/bin/python examples/torch_stream.py            # --host / --port to point elsewhere

Client side: redis-py, numpy and torch (only to build the model and to verify the scores).
"""

from __future__ import annotations

import argparse
import io
import threading
import time
import warnings

import numpy as np
import redis

WINDOW = 8
N_WINDOWS = 50
N_READINGS = WINDOW * N_WINDOWS
SPIKE_WINDOWS = (7, 23, 41)    # windows that get an injected spike
SEED = 11
TOLERANCE = 1e-5
ANOMALY_FACTOR = 4.0           # anomaly if score > ANOMALY_FACTOR * median score

STREAM_IN = "{sensor}readings"
STREAM_OUT = "{sensor}scores"
RANKING = "{sensor}ranking"
MODEL_KEY = "{sensor}model"
WINDOW_KEY = "{sensor}window"
SMOOTHED_KEY = "{sensor}smoothed"
SCORE_KEY = "{sensor}score"
ALL_KEYS = (STREAM_IN, STREAM_OUT, RANKING, MODEL_KEY, WINDOW_KEY, SMOOTHED_KEY, SCORE_KEY)


def build_model():
    """A scripted nn.Module: [B, 8] float -> (smoothed [B, 8], score [B])."""
    import torch
    from torch import nn

    class SmoothingScorer(nn.Module):
        def __init__(self):
            super().__init__()
            self.smooth = nn.Conv1d(1, 1, kernel_size=3, padding=1, padding_mode="replicate", bias=False)
            with torch.no_grad():
                self.smooth.weight.copy_(torch.tensor([[[0.25, 0.5, 0.25]]]))

        def forward(self, x):
            smoothed = self.smooth(x.unsqueeze(1)).squeeze(1)
            residual = (x - smoothed)[:, 1:-1]
            score = residual.pow(2).mean(dim=1).sqrt()
            return smoothed, score

    model = SmoothingScorer().eval()
    # RedisAI's TORCH backend runs TorchScript; recent torch marks torch.jit as deprecated, which is
    # irrelevant here, so keep the example's output clean.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return torch.jit.script(model)


def serialize(scripted) -> bytes:
    import torch

    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(scripted, buffer)
    return buffer.getvalue()


def sensor_readings(seed: int = SEED) -> np.ndarray:
    """A slow sine wave with mild noise, plus one spike in each of SPIKE_WINDOWS."""
    rng = np.random.default_rng(seed)
    t = np.arange(N_READINGS)
    values = np.sin(2 * np.pi * t / 64) + rng.normal(0, 0.03, N_READINGS)
    for w in SPIKE_WINDOWS:
        values[w * WINDOW + 3 + w % 3] += 3.0
    return values.astype(np.float32)


def producer(host: str, port: int, readings: np.ndarray, chunk: int = 25) -> None:
    """Pushes the readings into STREAM_IN, a pipelined chunk at a time (as a sensor gateway would)."""
    client = redis.Redis(host=host, port=port, protocol=2)
    try:
        for start in range(0, len(readings), chunk):
            pipe = client.pipeline(transaction=False)
            for i in range(start, min(start + chunk, len(readings))):
                pipe.xadd(STREAM_IN, {"seq": i, "value": repr(float(readings[i]))})
            pipe.execute()
            time.sleep(0.002)
    finally:
        client.close()


def score_windows(client: redis.Redis, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One TENSORSET + MODELEXECUTE + TENSORGET round for a [B, 8] batch of windows."""
    client.execute_command("AI.TENSORSET", WINDOW_KEY, "FLOAT", *windows.shape, "BLOB", windows.tobytes())
    client.execute_command("AI.MODELEXECUTE", MODEL_KEY, "INPUTS", 1, WINDOW_KEY,
                           "OUTPUTS", 2, SMOOTHED_KEY, SCORE_KEY)
    scores = np.frombuffer(client.execute_command("AI.TENSORGET", SCORE_KEY, "BLOB"), dtype=np.float32)
    smoothed = np.frombuffer(client.execute_command("AI.TENSORGET", SMOOTHED_KEY, "BLOB"), dtype=np.float32)
    return scores, smoothed.reshape(windows.shape)


def main(host: str = "127.0.0.1", port: int = 6379) -> dict:
    import torch

    client = redis.Redis(host=host, port=port, protocol=2, socket_timeout=60)
    client.ping()
    client.delete(*ALL_KEYS)

    scripted = build_model()
    blob = serialize(scripted)
    client.execute_command("AI.MODELSTORE", MODEL_KEY, "TORCH", "CPU", "TAG", "example:v1", "BLOB", blob)
    print(f"AI.MODELSTORE {MODEL_KEY} TORCH CPU: {len(blob)}-byte TorchScript archive "
          f"(3-tap smoother + RMS-residual score over windows of {WINDOW})")

    readings = sensor_readings()
    thread = threading.Thread(target=producer, args=(host, port, readings), daemon=True)
    started = time.perf_counter()
    thread.start()
    print(f"Producer: XADD {N_READINGS} readings to {STREAM_IN} (spikes injected in windows {list(SPIKE_WINDOWS)})")

    last_id = "0-0"
    pending: list[float] = []
    received: list[float] = []
    windows_done = 0
    xread_calls = 0
    model_runs = 0
    server_scores: list[float] = []
    server_smoothed: list[np.ndarray] = []
    while windows_done < N_WINDOWS:
        reply = client.xread({STREAM_IN: last_id}, count=40, block=5000)
        xread_calls += 1
        if not reply:
            raise TimeoutError("no readings arrived within 5 s")
        for entry_id, fields in reply[0][1]:
            last_id = entry_id
            pending.append(float(fields[b"value"]))
        complete = len(pending) // WINDOW
        if complete == 0:
            continue
        batch = np.asarray(pending[:complete * WINDOW], dtype=np.float32).reshape(complete, WINDOW)
        received.extend(pending[:complete * WINDOW])
        del pending[:complete * WINDOW]

        scores, smoothed = score_windows(client, batch)
        model_runs += 1
        pipe = client.pipeline(transaction=False)
        for offset, score in enumerate(scores):
            index = windows_done + offset
            pipe.xadd(STREAM_OUT, {"window": index, "score": repr(float(score))})
            pipe.zadd(RANKING, {f"window:{index}": float(score)})
        pipe.execute()
        server_scores.extend(scores.tolist())
        server_smoothed.append(smoothed)
        print(f"  XREAD #{xread_calls}: {complete} window(s) -> windows {windows_done}..{windows_done + complete - 1}, "
              f"scores {np.array2string(scores, precision=3)}")
        windows_done += complete
    thread.join(timeout=10)
    elapsed = time.perf_counter() - started

    # Verify: same windows through the same scripted model, locally.
    scores = np.asarray(server_scores, dtype=np.float32)
    windows = np.asarray(received, dtype=np.float32).reshape(N_WINDOWS, WINDOW)
    if not np.array_equal(windows, readings.reshape(N_WINDOWS, WINDOW)):
        raise AssertionError("windows read back from the stream differ from the readings produced")
    with torch.no_grad():
        local_smoothed, local_scores = scripted(torch.from_numpy(windows))
    max_abs_diff = float(max(np.abs(scores - local_scores.numpy()).max(),
                             np.abs(np.concatenate(server_smoothed) - local_smoothed.numpy()).max()))
    if max_abs_diff > TOLERANCE:
        raise AssertionError(f"server scores differ from local torch by {max_abs_diff}")
    print(f"Matches local torch: max |diff| = {max_abs_diff:.2e} over {N_WINDOWS} windows")

    threshold = ANOMALY_FACTOR * float(np.median(scores))
    anomalies = [int(i) for i in np.flatnonzero(scores > threshold)]
    top = [(member.decode(), score) for member, score in client.zrevrange(RANKING, 0, 4, withscores=True)]
    out_len = client.xlen(STREAM_OUT)
    print(f"{STREAM_OUT}: {out_len} entries; {RANKING} top 5: "
          + ", ".join(f"{m}={s:.3f}" for m, s in top))
    print(f"Anomalies (score > {ANOMALY_FACTOR} x median = {threshold:.3f}): windows {anomalies}")
    print(f"{N_WINDOWS} windows in {model_runs} MODELEXECUTE calls / {xread_calls} XREADs, {elapsed:.2f} s")

    client.close()
    return {
        "windows": N_WINDOWS,
        "readings": N_READINGS,
        "model_runs": model_runs,
        "xread_calls": xread_calls,
        "scores": scores,
        "mean_score": float(scores.mean()),
        "median_score": float(np.median(scores)),
        "max_score": float(scores.max()),
        "threshold": threshold,
        "anomalies": anomalies,
        "injected": list(SPIKE_WINDOWS),
        "top": top,
        "output_stream_length": int(out_len),
        "max_abs_diff": max_abs_diff,
        "seconds": elapsed,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=6379)
    options = parser.parse_args()
    main(host=options.host, port=options.port)
