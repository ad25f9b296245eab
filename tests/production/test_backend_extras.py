"""Install only what you use: an environment with the `onnx` extra alone (what `make run BACKENDS=onnx`
installs) serves ONNX models, and a model of a backend it lacks answers an error naming what to install;
the server and the ONNX queue go on."""

import subprocess
import sys
from pathlib import Path

import pytest
import redis

import model_fixtures as mf

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def onnx_only_env(tmp_path_factory):
    venv = tmp_path_factory.mktemp("onnx-only") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    # What `make venv BACKENDS=onnx` runs, but for the test extra, which this test does not need.
    result = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "-e", f"{ROOT}[onnx]"],
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-2000:]
    return venv


def test_an_onnx_only_environment_serves_onnx_and_names_what_the_others_need(new_server, onnx_only_env):
    server = new_server(module_args=("PYTHON_ENV", str(onnx_only_env)))
    client = server.client()
    assert client.execute_command("AI.MODELSTORE", "m", "ONNX", "CPU", "BLOB", mf.onnx_mul()) == b"OK"
    client.execute_command("AI.TENSORSET", "a", "FLOAT", 2, "VALUES", 2, 3)
    for backend, blob, extra, module in (("TORCH", mf.torch_add_mul(), "torch", "torch"),
                                         ("TFLITE", mf.tflite_mul(), "tflite", "ai_edge_litert")):
        with pytest.raises(redis.ResponseError) as error:
            client.execute_command("AI.MODELSTORE", "t", backend, "CPU", "BLOB", blob)
        assert str(error.value) == (f"Could not load backend ({backend}: {module} is not installed in this environment; "
                                    f"install the '{extra}' extra: pip install -e '.[{extra}]' or make run "
                                    f"BACKENDS={extra})")
    assert client.execute_command("AI.MODELEXECUTE", "m", "INPUTS", 2, "a", "a", "OUTPUTS", 1, "b") == b"OK"
    assert client.execute_command("AI.TENSORGET", "b", "VALUES") == [b"4", b"9"]
    assert client.exists("t") == 0 and "ai_Torch_version" not in client.info("ai")
