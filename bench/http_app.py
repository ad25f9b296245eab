"""The server a user would otherwise write for the HTTP comparison (bench/serving.py): FastAPI on uvicorn
(1 worker) with onnxruntime, serving the ONNX model named by $BENCH_ONNX_MODEL (inputs a, b -> output c).

    POST /predict      JSON {"a": [16 floats], "b": [16 floats]}  ->  {"c": [16 floats]}
    POST /predict/raw  body: a then b as raw float32 bytes          ->  c as raw float32 bytes
    GET  /health       "ok" once the model is loaded

Handlers are `async def` calling `session.run` inline: for a model this small that is the fastest FastAPI
setup (no thread-pool hop); onnxruntime keeps its default threading, as RedisAI's ONNX backend does.
"""

from __future__ import annotations

import os

import numpy as np
import onnxruntime
from fastapi import FastAPI, Request, Response
from pydantic import BaseModel

session = onnxruntime.InferenceSession(os.environ["BENCH_ONNX_MODEL"], providers=["CPUExecutionProvider"])
app = FastAPI()


class Inputs(BaseModel):
    a: list[float]
    b: list[float]


class Outputs(BaseModel):
    c: list[float]


@app.get("/health")
async def health() -> str:
    return "ok"


@app.post("/predict")
async def predict(inputs: Inputs) -> Outputs:
    (c,) = session.run(["c"], {"a": np.asarray(inputs.a, np.float32), "b": np.asarray(inputs.b, np.float32)})
    return Outputs(c=c.tolist())


@app.post("/predict/raw")
async def predict_raw(request: Request) -> Response:
    x = np.frombuffer(await request.body(), np.float32)
    half = x.size // 2
    (c,) = session.run(["c"], {"a": x[:half], "b": x[half:]})
    return Response(c.tobytes(), media_type="application/octet-stream")
