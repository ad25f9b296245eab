"""What `make` does to a user's machine and checkout: `make run` stops the Debian service only when that
service is what holds the port, and `make lint` (run by `make test`) checks the project's files only."""

import subprocess
import uuid
from pathlib import Path

from server import free_port, wait_for

ROOT = Path(__file__).resolve().parents[2]


def test_make_run_leaves_another_server_on_its_port_alone(tmp_path):
    port = free_port()
    other = subprocess.Popen(["redis-server", "--port", str(port), "--save", "", "--dir", str(tmp_path)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True).stdout
                 == b"PONG\n", message="the other server")
        result = subprocess.run(["make", "-s", "run", f"PORT={port}"], cwd=ROOT, capture_output=True, text=True,
                                timeout=600)
        assert result.returncode != 0
        assert f"Port {port} is already in use by another server" in result.stderr
        assert "Stopping" not in result.stdout
        assert other.poll() is None  # still serving
    finally:
        other.kill()
        other.wait()


def test_make_lint_checks_the_projects_files_not_a_users_scratch():
    scratch = ROOT / f"scratch_{uuid.uuid4().hex[:8]}.py"
    scratch.write_text("import os\n")  # an unused import: ruff's F401
    try:
        result = subprocess.run(["make", "-s", "lint"], cwd=ROOT, capture_output=True, text=True, timeout=600)
        assert scratch.name not in result.stdout + result.stderr
    finally:
        scratch.unlink()
