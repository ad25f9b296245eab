"""The commands that recreate a value: used for AOF rewrite and for replication."""

from __future__ import annotations

from ..domain.model import Model
from ..domain.tensor import DTYPE_NAMES, Tensor


def tensorset_args(key: bytes, tensor: Tensor) -> list:
    dtype, shape, data = replication_parts(tensor)
    return [key, dtype, *[b"%d" % d for d in shape], b"BLOB", data]


def replication_parts(tensor: Tensor) -> tuple:
    """(type name, shape, data buffer) of `AI.TENSORSET key <type> <shape> BLOB <data>`."""
    name = tensor.dtype.name
    encoded = DTYPE_NAMES.get(name) or name.encode()
    array = tensor.array
    data = tensor.blob() if encoded == b"STRING" or not array.size else tensor.buffer()
    return encoded, array.shape, data


def modelstore_args(key: bytes, model: Model, chunk_size: int) -> list:
    args = [key, model.backend.encode(), model.device.encode(), b"TAG", model.tag,
            b"BATCHSIZE", str(model.batchsize).encode(), b"MINBATCHSIZE", str(model.minbatchsize).encode(),
            b"MINBATCHTIMEOUT", str(model.minbatchtimeout).encode()]
    if model.backend == "TF":
        args += [b"INPUTS", str(len(model.inputs)).encode(), *(n.encode() for n in model.inputs),
                 b"OUTPUTS", str(len(model.outputs)).encode(), *(n.encode() for n in model.outputs)]
    if model.warmup is not None:  # MODELSTORE's WARMUP, for replicas and the AOF
        args += [b"WARMUP", str(len(model.warmup)).encode()]
        for type_name, shape in model.warmup:
            args += [type_name.encode(), ",".join(str(dim) for dim in shape).encode()]
    args.append(b"BLOB")
    blob = memoryview(model.blob)
    args += [blob[i:i + chunk_size] for i in range(0, len(blob), chunk_size)] or [b""]
    return args


def scriptstore_args(key: bytes, script) -> list:
    args = [key, script.device.encode(), b"TAG", script.tag]
    if script.entry_points is not None:
        args += [b"ENTRY_POINTS", str(len(script.entry_points)).encode(), *(n.encode() for n in script.entry_points)]
    return args + [b"SOURCE", script.source]
