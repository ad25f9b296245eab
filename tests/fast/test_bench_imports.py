"""Every benchmark module imports (a broken import would only show in `make bench`), short of the
packages only `make bench` installs (pyproject's `bench` extra)."""

import importlib
import sys
from pathlib import Path

import pytest

import model_fixtures as mf

BENCH = Path(__file__).resolve().parents[2] / "bench"
# Import names of the `bench` extra's packages.
BENCH_ONLY = {"matplotlib", "fastapi", "uvicorn", "aiohttp", "uvloop", "httptools", "litserve", "ray"}


@pytest.mark.parametrize("name", sorted(path.stem for path in BENCH.glob("*.py")))
def test_bench_module_imports(name, monkeypatch, tmp_path):
    monkeypatch.syspath_prepend(str(BENCH))
    # http_app is uvicorn's app module: it loads, at import, the model its runner names (bench/peers.py)
    model = tmp_path / "mul.onnx"
    model.write_bytes(mf.onnx_mul())
    monkeypatch.setenv("BENCH_ONNX_MODEL", str(model))
    try:
        importlib.import_module(name)
    except ModuleNotFoundError as e:
        if (e.name or "").split(".")[0] not in BENCH_ONLY:
            raise
        pytest.skip(f"{name} needs {e.name} (make bench installs it)")
    finally:
        sys.modules.pop(name, None)
